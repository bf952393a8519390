"""Baselines every other model must beat: global mean, user/item bias, popularity, random."""

from __future__ import annotations

import numpy as np

from recfeat.components import RecModel
from recfeat.plugin.options import check_ranges


class GlobalMean(RecModel):
    """Predicts the mean training rating for every pair (ranking: all ties)."""

    name = "global-mean"
    predicts_ratings = True
    ranks_items = False
    needs_ratings = True

    def __init__(self):
        pass

    def _fit(self, u, i, r, train, item_features, user_features):
        self.mean_ = float(r.mean())

    def _score_pairs(self, users, items, item_features):
        return np.full(len(users), self.mean_)


def fit_biases(u, i, r, n_users, n_items, reg_user, reg_item, iterations):
    """Regularised user and item biases around the global mean by alternating least squares.

    Minimises sum (r - mu - b_u - b_i)^2 + reg_user * sum b_u^2 + reg_item * sum b_i^2;
    each half-step is the exact minimiser given the other biases.
    """
    mu = float(r.mean())
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    n_u = np.bincount(u, minlength=n_users)
    n_i = np.bincount(i, minlength=n_items)
    for _ in range(iterations):
        bi = np.bincount(i, weights=r - mu - bu[u], minlength=n_items) / (reg_item + n_i)
        bu = np.bincount(u, weights=r - mu - bi[i], minlength=n_users) / (reg_user + n_u)
    return mu, bu, bi


class Bias(RecModel):
    """Global mean plus regularised user and item biases (mu + b_u + b_i)."""

    name = "bias"
    #: shrinkage of user and item biases towards zero (pseudo-counts)
    tune_space = {"reg_user": [1.0, 5.0, 20.0], "reg_item": [1.0, 5.0, 20.0]}
    predicts_ratings = True
    ranks_items = False
    needs_ratings = True

    def __init__(self, reg_user: float = 5.0, reg_item: float = 5.0, iterations: int = 10):
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.iterations = iterations

    def validate(self) -> None:
        check_ranges(self, {"reg_user": (0, None), "reg_item": (0, None), "iterations": (1, 10_000)})

    def _fit(self, u, i, r, train, item_features, user_features):
        self.mu_, self.user_bias_, self.item_bias_ = fit_biases(
            u,
            i,
            r,
            len(self.users_),
            len(self.items_),
            self.reg_user,
            self.reg_item,
            self.iterations,
        )

    def _score_pairs(self, users, items, item_features):
        # Unknown users or items contribute a zero bias: the estimate falls back to the rest.
        uc, ic = self.user_codes(users), self.item_codes(items)
        bu = np.where(uc >= 0, self.user_bias_[np.maximum(uc, 0)], 0.0)
        bi = np.where(ic >= 0, self.item_bias_[np.maximum(ic, 0)], 0.0)
        return self.mu_ + bu + bi


class Popularity(RecModel):
    """Ranks items by their number of training interactions (same list for every user)."""

    name = "popularity"

    def __init__(self):
        pass

    def _fit(self, u, i, r, train, item_features, user_features):
        self.counts_ = np.bincount(i, minlength=len(self.items_)).astype(np.float64)

    def _score_pairs(self, users, items, item_features):
        ic = self.item_codes(items)
        return np.where(ic >= 0, self.counts_[np.maximum(ic, 0)], np.nan)


class Random(RecModel):
    """Uniformly random scores, seeded: the floor for ranking metrics (scores any item)."""

    name = "random"
    cold_start_items = True

    def __init__(self, seed: int = 0):
        self.seed = seed

    def _fit(self, u, i, r, train, item_features, user_features):
        self.rng_ = np.random.default_rng(self.seed)

    def _score_pairs(self, users, items, item_features):
        return self.rng_.random(len(users))
