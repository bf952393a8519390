"""Feature levels above single texts: items and users as (weighted) means of row vectors.

Aggregation is one sparse matrix ``A`` (groups x unique texts, or users x items) whose rows
sum to 1, applied as ``A @ X``. The same matrix serves dense vectors and sparse token
features, and duplicate texts cost nothing extra.

Policies (they are recorded in the manifest):

- Rows whose text is empty carry no information and get weight 0; a group whose every row
  is empty gets a zero vector and is counted in ``empty_groups``.
- ``mean``: every row weighs 1. ``rating-weighted``: a row rated ``r`` weighs
  ``r - r_min + 1`` (``r_min`` from the dataset's rating scale, else the lowest rating
  seen), so the lowest rating still counts once and a top rating counts most; rows without
  a rating (implicit feedback) weigh 1.
- When the encoder L2-normalises its vectors, aggregated vectors are normalised again so
  items, users and reviews live on the same sphere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recfeat.errors import DataError, UsageError

AGGREGATIONS = ("mean", "rating-weighted")
LEVELS = ("review", "item", "user")
USER_SOURCES = ("auto", "reviews", "items")


def check_aggregate(aggregate: str | None) -> str | None:
    if aggregate is not None and aggregate not in AGGREGATIONS:
        raise UsageError(
            f"unknown aggregation {aggregate!r}; use one of: {', '.join(AGGREGATIONS)}"
        )
    return aggregate


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise UsageError(f"unknown level {level!r}; use one of: {', '.join(LEVELS)}")
    return level


def rating_weights(
    ratings: Sequence[float] | np.ndarray, rating_scale: tuple[float, float] | None = None
) -> np.ndarray:
    """Weights for ``rating-weighted`` aggregation: ``r - r_min + 1``, NaN -> 1."""
    r = np.asarray(ratings, dtype=np.float64)
    known = ~np.isnan(r)
    if rating_scale is not None:
        low = float(rating_scale[0])
    elif known.any():
        low = float(r[known].min())
    else:
        low = 0.0
    w = np.ones_like(r)
    w[known] = np.maximum(r[known] - low + 1.0, 0.0)
    return w


@dataclasses.dataclass
class Grouping:
    """Which rows feed which group: ``labels`` (one per group, sorted) and ``matrix``
    (scipy CSR, groups x columns, rows summing to 1 or all zero)."""

    labels: np.ndarray
    matrix: object
    empty_groups: int
    rows_used: int

    def apply(self, x):
        """``A @ x`` for dense (returns float32 ndarray) or sparse ``x`` (returns CSR)."""
        import scipy.sparse as sp

        out = self.matrix @ x
        if sp.issparse(out):
            return out.tocsr().astype(np.float32)
        return np.asarray(out, dtype=np.float32)


def group_rows(
    groups: Sequence[str] | np.ndarray,
    columns: np.ndarray,
    n_columns: int,
    weights: np.ndarray | None = None,
) -> Grouping:
    """Build the averaging matrix: row ``i`` adds ``weights[i]`` to (group ``groups[i]``,
    column ``columns[i]``); ``columns[i] == -1`` marks an empty row (weight 0)."""
    import scipy.sparse as sp

    groups = np.asarray(groups, dtype=object)
    columns = np.asarray(columns, dtype=np.int64)
    w = np.ones(len(groups)) if weights is None else np.asarray(weights, dtype=np.float64)
    if not (len(groups) == len(columns) == len(w)):
        raise ValueError("groups, columns and weights must have one entry per row")
    codes, labels = pd.factorize(pd.Series(groups, dtype=object), sort=True)
    labels = np.asarray(labels, dtype=object)
    keep = (columns >= 0) & (w > 0)
    a = sp.coo_matrix(
        (w[keep], (codes[keep], columns[keep])), shape=(len(labels), n_columns)
    ).tocsr()  # duplicates (same group, same text) are summed here
    totals = np.asarray(a.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    a = sp.diags(scale) @ a
    return Grouping(
        labels=labels,
        matrix=a.tocsr(),
        empty_groups=int((totals == 0).sum()),
        rows_used=int(keep.sum()),
    )


def l2_normalize_rows(x: np.ndarray) -> np.ndarray:
    """Unit rows; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32)


def restrict_to_pairs(table: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``table`` whose (user, item) appears in ``pairs`` (e.g. training interactions)."""
    missing = [c for c in ("user", "item") if c not in pairs.columns]
    if missing:
        raise DataError(
            f"train interactions lack column(s) {', '.join(missing)} "
            f"(columns: {', '.join(map(str, pairs.columns))})"
        )
    wanted = pd.MultiIndex.from_arrays([pairs["user"].astype(str), pairs["item"].astype(str)])
    have = pd.MultiIndex.from_arrays([table["user"].astype(str), table["item"].astype(str)])
    return table[have.isin(wanted)]
