"""How a cold (held-out) item is represented when it is ranked, so that nothing but text
that exists when the item is listed reaches a model.

Protocols (``protocol=``), chosen for an ``item-cold`` split:

- ``item-text``: the data has item texts (titles, descriptions, genres) and the item-level
  features built from them represent every item, cold ones included. No interaction is used.
- ``first-reviews`` (default on review-only data, e.g. Amazon 5-core): a cold item is
  represented by its FIRST ``n_reviews`` reviews by time (timestamp, ties by row order),
  i.e. the reviews it had shortly after it was listed. Those interactions are then removed
  from the test set and excluded from their reviewers' candidates (already seen), so a
  review that represents an item never decides a hit. Every candidate is built the same
  way, from exactly ``n_reviews`` reviews; an item with fewer is dropped from the
  candidates (counted in ``dropped_items``), so neither the number of reviews behind a
  vector nor its presence says which items are relevant.
- ``leave-one-out`` (the old rule, kept only to show why it was replaced): the item is the
  mean of its held-out reviews by users other than the ranked user. Only items the user
  reviewed lose a review, so "number of reviews behind a vector" separates relevant from
  irrelevant items (a text-free count scorer reached 3.4x random NDCG@10 on Musical
  Instruments); never use it for reported figures.
- ``ids-only``: the data has no text at all; nothing to represent, nothing removed.

Why ``n_reviews = 3`` by default: 5-core data guarantees at least 5 reviews per item, so
with 3 no cold item is dropped and every cold item keeps at least 2 held-out interactions
to be evaluated on; more representing reviews give steadier vectors but leave items with
5-6 reviews almost nothing to test on, fewer make the vector a single person's opinion.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from recfeat.data.features import ReviewVectors
from recfeat.errors import UsageError

DEFAULT_COLD_REVIEWS = 3
PROTOCOLS = ("first-reviews", "leave-one-out")
CANDIDATE_SETS = ("cold", "mixed")


@dataclasses.dataclass
class ColdStart:
    """The cold items' representation for one split, shared by every model."""

    protocol: str  # item-text | first-reviews | leave-one-out | ids-only
    n_reviews: int | None
    items: np.ndarray  # cold items that stay candidates (sorted)
    dropped_items: int  # cold items with fewer than n_reviews reviews
    representing: pd.DataFrame  # (user, item) rows used as item text: out of the test set
    features: Any = None  # Features of the kept cold items, the same for every user
    per_user: Any = None  # leave-one-out provider (``for_user(user) -> Features``)

    def describe(self) -> dict[str, Any]:
        text = {
            "item-text": "item-level features from item texts (no interaction used)",
            "first-reviews": f"mean of the item's first {self.n_reviews} reviews by time; "
            "those interactions are removed from the test set and from their reviewers' "
            "candidates",
            "leave-one-out": "LEAVE-ONE-OUT (old rule, leaks the review count): mean of the "
            "item's reviews by users other than the ranked one",
            "ids-only": "no text in the data; cold items are ids only",
        }[self.protocol]
        return {
            "protocol": self.protocol,
            "representation": text,
            "cold_reviews": self.n_reviews,
            "cold_candidates": int(len(self.items)),
            "dropped_items": int(self.dropped_items),
            "representing_interactions": int(len(self.representing)),
        }

    def drop_representing(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` without the interactions that represent an item (they are its text)."""
        if len(self.representing) == 0:
            return rows
        gone = pd.MultiIndex.from_frame(self.representing[["user", "item"]])
        keys = pd.MultiIndex.from_arrays([rows["user"], rows["item"]])
        return rows[~keys.isin(gone)]


def check_options(protocol: str, n_reviews: int, candidates: str) -> None:
    if protocol not in PROTOCOLS:
        raise UsageError(
            f"unknown cold-start protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}"
        )
    if candidates not in CANDIDATE_SETS:
        raise UsageError(
            f"unknown candidate set {candidates!r}; use one of {', '.join(CANDIDATE_SETS)}"
        )
    if isinstance(n_reviews, bool) or not isinstance(n_reviews, (int, np.integer)) or n_reviews < 1:
        raise UsageError(f"--cold-reviews must be a whole number >= 1 (got {n_reviews!r})")


def cold_start(split, item_features, data, protocol: str = "first-reviews",
               n_reviews: int = DEFAULT_COLD_REVIEWS) -> ColdStart | None:  # fmt: skip
    """The representation of ``split``'s cold items (None unless its test items are new:
    ``item-cold``, ``leave-last-out-new``).

    ``item_features``: item-level ``Features``, ``ReviewVectors`` or None (then the data
    decides: item texts -> ``item-text``, reviews -> the review protocol, so ID-only runs
    rank exactly the candidates and relevant items a text run ranks)."""
    if not split.new_items:
        return None
    cold = np.asarray(sorted(split.cold_items), dtype=object)
    none = split.test.iloc[:0][["user", "item"]]
    is_reviews = isinstance(item_features, ReviewVectors)
    if not is_reviews and (item_features is not None or getattr(data, "items", None) is not None):
        return ColdStart("item-text", None, cold, 0, none)
    if not is_reviews and getattr(data, "reviews", None) is None:
        return ColdStart("ids-only", None, cold, 0, none)
    if protocol == "leave-one-out":
        per_user = item_features.leave_one_out(cold) if is_reviews else None
        return ColdStart("leave-one-out", None, cold, 0, none, per_user=per_user)
    return _first_reviews(split, cold, item_features if is_reviews else None, n_reviews)


def _first_reviews(split, cold: np.ndarray, reviews, n: int) -> ColdStart:
    rows = split.test[split.test["item"].isin(set(cold))][["user", "item", "timestamp"]]
    rows = rows.assign(order=np.arange(len(rows)))  # split.test keeps the data's row order
    if reviews is not None:  # only reviews that have a vector can represent an item
        have = pd.MultiIndex.from_arrays([reviews.users, reviews.items])
        rows = rows[pd.MultiIndex.from_arrays([rows["user"], rows["item"]]).isin(have)]
    t = pd.to_numeric(rows["timestamp"], errors="coerce").fillna(-1)
    rows = rows.assign(t=t).sort_values(["item", "t", "order"], kind="stable")
    first = rows.groupby("item", sort=True).head(n)
    sizes = first.groupby("item").size()
    kept = np.asarray(sorted(sizes.index[sizes >= n]), dtype=object)
    first = first[first["item"].isin(set(kept))][["user", "item"]].reset_index(drop=True)
    features = None
    if reviews is not None:
        features = reviews.item_means(first)
        features.manifest = {
            **features.manifest,
            "source": f"first {n} reviews of each cold item (evaluation)",
        }
    return ColdStart("first-reviews", n, kept, len(cold) - len(kept), first, features=features)
