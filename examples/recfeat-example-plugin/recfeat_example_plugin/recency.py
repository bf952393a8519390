"""A recommendation model: popularity where recent interactions count more.

It follows recfeat's RecModel contract (scikit-learn conventions): ``__init__`` only
stores its options, the base class's ``fit`` validates the interactions and calls
``_fit``, ``predict``/``score_items`` call ``_score_pairs`` after a fitted check.
"""

from __future__ import annotations

import numpy as np

from recfeat.components import RecModel
from recfeat.errors import OptionError


class RecentPopularity(RecModel):
    """Ranks items by interactions weighted by recency (half-life in days)."""

    name = "recent-popularity"

    def __init__(self, half_life_days: float = 30.0):
        self.half_life_days = half_life_days

    def _fit(self, u, i, r, train, item_features, user_features) -> None:
        if not self.half_life_days > 0:
            raise OptionError(
                f"{self._what()}: half_life_days must be > 0, got {self.half_life_days}"
            )
        ts = train["timestamp"].to_numpy(dtype=np.float64) if "timestamp" in train else None
        if ts is None or not (ts >= 0).any():
            weights = np.ones(len(i))  # no timestamps: plain popularity
        else:
            known = ts >= 0  # -1 marks an unknown time: weight it like the oldest known one
            ts = np.where(known, ts, ts[known].min())
            age_days = (ts.max() - ts) / 86400.0
            weights = 0.5 ** (age_days / self.half_life_days)
        self.item_scores_ = np.bincount(i, weights=weights, minlength=len(self.items_))

    def _score_pairs(self, users, items, item_features) -> np.ndarray:
        codes = self.item_codes(items)
        # Same list for every user; items never seen in training score 0 here and NaN
        # in score_items (the base class masks them: this model has no cold-start ability).
        return np.where(codes >= 0, self.item_scores_[np.maximum(codes, 0)], 0.0)
