"""Evaluation metrics. ``kind`` says how a metric is called:

- ``'rating'``: ``metric(y_true, y_pred) -> float`` over (user, item) pairs.
- ``'ranking'``: ``metric(rankings, relevant) -> float``, the mean over users of
  ``per_user(ranking, relevant)``; ``ranking`` is one user's FULL ordering of candidate items
  (best first, item codes), ``relevant`` the codes of that user's held-out items.
  Metrics with a cut-off take the option ``k`` and show as ``name@k`` (``display_name``).
- ``'catalog'``: ``metric(rankings, relevant, n_candidates=...)``, a property of all lists
  together (catalogue coverage).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ..errors import DataError
from .base import Component

# The error metrics' names, where a higher value is worse: for callers that hold a column
# title rather than a registered metric (the downstream gate, the chart).
LOWER_IS_BETTER = frozenset({"rmse", "mae"})


class Metric(Component):
    kind: ClassVar[str] = "rating"
    higher_is_better: ClassVar[bool] = True

    def display_name(self) -> str:
        """The column title: ``ndcg@10`` for a metric registered as ``ndcg@k`` with k=10."""
        k = getattr(self, "k", None)
        if self.name.endswith("@k") and k is not None:
            return f"{self.name[:-2]}@{k}"
        return self.name

    def __call__(self, *args, **kwargs) -> float:
        raise NotImplementedError


def objective_problem(name: object) -> str | None:
    """Why ``name`` cannot be what tuning optimises (a registered rating or ranking metric,
    e.g. ``ndcg@k``, ``recall@k``, ``mrr``, ``rmse``), or None when it can: catalogue
    metrics describe all lists together, not one model's fit to validation data."""
    from ..errors import closest
    from ..plugin.registry import get_registry

    registry = get_registry("metric")
    usable = [n for n in registry.names() if registry.get(n).kind in ("rating", "ranking")]
    if isinstance(name, str) and name in usable:
        return None
    return (f"objective {name!r} is not a rating or ranking metric.{closest(str(name), usable)} "
            f"Use one of {', '.join(usable)}")  # fmt: skip


class RatingMetric(Metric):
    """Compares predicted ratings with true ones, pair by pair."""

    kind: ClassVar[str] = "rating"
    higher_is_better: ClassVar[bool] = False

    def __call__(self, y_true, y_pred) -> float:
        y_true = np.asarray(y_true, dtype=np.float64)
        y_pred = np.asarray(y_pred, dtype=np.float64)
        if y_true.shape != y_pred.shape:
            raise DataError(
                f"{self.name}: {y_true.shape} true ratings but {y_pred.shape} predictions"
            )
        if len(y_true) == 0:
            raise DataError(f"{self.name}: no pairs to evaluate")
        if np.isnan(y_pred).any():
            raise DataError(f"{self.name}: {int(np.isnan(y_pred).sum())} predictions are NaN")
        return float(self.compute(y_true, y_pred))

    def compute(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        raise NotImplementedError


class RankingMetric(Metric):
    """Mean over users of a per-user score of a full ranking against the relevant set."""

    kind: ClassVar[str] = "ranking"

    def __call__(self, rankings: Sequence, relevant: Sequence) -> float:
        return float(np.mean(self.scores(rankings, relevant)))

    def scores(self, rankings: Sequence, relevant: Sequence) -> np.ndarray:
        """The per-user scores the mean is taken over (paired comparisons resample them)."""
        if len(rankings) != len(relevant):
            raise DataError(
                f"{self.name}: {len(rankings)} rankings but {len(relevant)} relevant sets"
            )
        if len(rankings) == 0:
            raise DataError(f"{self.name}: no users to evaluate")
        return np.asarray(
            [self.per_user(np.asarray(r), np.asarray(rel))
             for r, rel in zip(rankings, relevant, strict=False)],
            dtype=np.float64,
        )  # fmt: skip

    def per_user(self, ranking: np.ndarray, relevant: np.ndarray) -> float:
        raise NotImplementedError
