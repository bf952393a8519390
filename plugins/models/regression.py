"""Feature regression (the seed's approach): a scikit-learn regressor predicts the rating
from [user profile, item text, their product, user and item rating statistics].

Per (user, item) pair the features are:
- ``user_text``: the user's profile, the mean of the (PCA-reduced) text vectors of the items
  the user rated in training, or the user's own vector from ``user_features``;
- ``item_text``: the item's reduced text vector; ``user_text * item_text`` (affinity, so even
  a linear model can match tastes to items);
- user and item rating statistics: shrunk mean deviation from the global mean and log count.

Training rows use LEAVE-ONE-OUT statistics and profiles (the row's own rating and item are
removed from its user's and item's aggregates), so the regressor learns from the same kind
of inputs it gets for a held-out pair; otherwise each training row would see its own target
inside the item mean. Cold items (no training ratings) get zero deviation, zero count and
their text vector, so these models score them.

PCA (``n_components``) is fitted on the training items' vectors only. LLM-token sparse
features are not used here (a gap, see benchmarks/results/models.md).
"""

from __future__ import annotations

import numpy as np

from recfeat.components import RecModel
from recfeat.plugin.options import check_ranges

from .content import item_vectors, lookup


class _FeatureRegressor(RecModel):
    def validate(self) -> None:
        check_ranges(self, {"n_components": (1, 10_000), "shrinkage": (0, None), "alpha": (0, None),
                            "max_iter": (1, 100_000), "learning_rate": (1e-12, 100),
                            "max_leaf_nodes": (2, 100_000)})  # fmt: skip

    uses_text = True
    cold_start_items = True
    predicts_ratings = True
    ranks_items = False
    needs_ratings = True

    def _estimator(self):
        raise NotImplementedError

    # -- features --------------------------------------------------------------------------
    def _reduce(self, vecs: np.ndarray) -> np.ndarray:
        return (vecs - self.pca_mean_) @ self.pca_components_.T

    def _fit(self, u, i, r, train, item_features, user_features):
        n_u, n_i = len(self.users_), len(self.items_)
        self.item_features_ = item_features
        if item_features is not None:
            vecs, found = lookup(item_features, self.items_)
        else:  # user features only: items carry no text
            vecs, found = np.zeros((n_i, self.feature_dim_)), np.zeros(n_i, dtype=bool)
        self.n_items_without_features_ = int((~found).sum())
        base = vecs[found] if found.any() else vecs
        n_comp = int(min(self.n_components, base.shape[0], base.shape[1]))
        self.pca_mean_ = base.mean(axis=0)
        _, _, vt = np.linalg.svd(base - self.pca_mean_, full_matrices=False)
        self.pca_components_ = vt[:n_comp]
        item_red = self._reduce(vecs) * found[:, None]
        self.item_text_ = item_red

        # Sums for leave-one-out aggregates.
        mu = float(r.mean())
        self.mu_ = mu
        dev = r - mu
        self.user_dev_sum_ = np.bincount(u, weights=dev, minlength=n_u)
        self.user_n_ = np.bincount(u, minlength=n_u).astype(float)
        self.item_dev_sum_ = np.bincount(i, weights=dev, minlength=n_i)
        self.item_n_ = np.bincount(i, minlength=n_i).astype(float)
        has_vec = found[i].astype(float)
        self.user_text_sum_ = np.zeros((n_u, n_comp))
        np.add.at(self.user_text_sum_, u, item_red[i])
        self.user_text_n_ = np.bincount(u, weights=has_vec, minlength=n_u)
        self.user_override_ = None
        if user_features is not None:
            uvec, ufound = lookup(user_features, self.users_)
            self.user_override_ = (self._reduce(uvec), ufound)

        # Leave-one-out inputs for the training rows.
        user_text = (self.user_text_sum_[u] - item_red[i]) / np.maximum(
            self.user_text_n_[u] - has_vec, 1.0
        )[:, None]
        user_text = self._apply_user_override(u, user_text)
        x = self._design(
            user_text,
            item_red[i],
            self.user_dev_sum_[u] - dev,
            self.user_n_[u] - 1,
            self.item_dev_sum_[i] - dev,
            self.item_n_[i] - 1,
        )
        self.estimator_ = self._estimator().fit(x, r)

    def _apply_user_override(self, uc, user_text):
        if self.user_override_ is not None:
            red, ok = self.user_override_
            mask = (uc >= 0) & ok[np.maximum(uc, 0)]
            user_text = user_text.copy()
            user_text[mask] = red[uc[mask]]
        return user_text

    def _design(self, user_text, item_text, u_dev, u_n, i_dev, i_n):
        shrink = self.shrinkage
        stats = np.column_stack(
            [u_dev / (u_n + shrink), np.log1p(u_n), i_dev / (i_n + shrink), np.log1p(i_n)]
        )
        return np.hstack([user_text, item_text, user_text * item_text, stats]).astype(np.float32)

    def _score_pairs(self, users, items, item_features):
        uc, ic = self.user_codes(users), self.item_codes(items)
        known_u, known_i = uc >= 0, ic >= 0
        uc0, ic0 = np.maximum(uc, 0), np.maximum(ic, 0)
        user_text = np.where(
            known_u[:, None],
            self.user_text_sum_[uc0] / np.maximum(self.user_text_n_[uc0], 1.0)[:, None],
            0.0,
        )
        user_text = self._apply_user_override(uc, user_text)
        # Item text: vectors given now, else the training ones (items without any: zeros).
        vecs, found = item_vectors(self, items, item_features)
        item_text = self._reduce(vecs) * found[:, None]
        x = self._design(
            user_text,
            item_text,
            np.where(known_u, self.user_dev_sum_[uc0], 0.0),
            np.where(known_u, self.user_n_[uc0], 0.0),
            np.where(known_i, self.item_dev_sum_[ic0], 0.0),
            np.where(known_i, self.item_n_[ic0], 0.0),
        )
        out = np.empty(len(x))
        step = 65536  # bounded memory when ranking every item for many users
        for start in range(0, len(x), step):
            out[start : start + step] = self.estimator_.predict(x[start : start + step])
        return out


class LinearText(_FeatureRegressor):
    """Ordinary least squares on [user profile, item text, product, rating statistics]."""

    name = "linear"
    #: text dimensions kept and the shrinkage of the rating statistics
    tune_space = {"n_components": [16, 32, 64], "shrinkage": [2.0, 5.0, 10.0]}

    def __init__(self, n_components: int = 32, shrinkage: float = 5.0):
        self.n_components = n_components
        self.shrinkage = shrinkage

    def _estimator(self):
        from sklearn.linear_model import LinearRegression

        return LinearRegression()


class RidgeText(_FeatureRegressor):
    """Ridge regression on [user profile, item text, product, rating statistics]."""

    name = "ridge"
    tune_space = {"n_components": [16, 32, 64], "alpha": [1.0, 10.0, 100.0]}

    def __init__(self, n_components: int = 32, shrinkage: float = 5.0, alpha: float = 10.0):
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.alpha = alpha

    def _estimator(self):
        from sklearn.linear_model import Ridge

        return Ridge(alpha=self.alpha)


class SGDText(_FeatureRegressor):
    """SGDRegressor (standardised inputs) on [user profile, item text, product, rating statistics]."""

    name = "sgd"
    tune_space = {"n_components": [16, 32], "alpha": [1e-4, 1e-3, 1e-2]}

    def __init__(
        self, n_components: int = 32, shrinkage: float = 5.0, alpha: float = 1e-3, seed: int = 0
    ):
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.alpha = alpha
        self.seed = seed

    def _estimator(self):
        from sklearn.linear_model import SGDRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(),
            SGDRegressor(alpha=self.alpha, random_state=self.seed, max_iter=50, tol=1e-4),
        )


class GBMText(_FeatureRegressor):
    """Histogram gradient boosting on [user profile, item text, product, rating statistics]."""

    name = "gbm"
    #: boosting is the slowest to fit here: two values per option, 8 points in all
    tune_space = {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31], "max_iter": [100, 200]}

    def __init__(
        self,
        n_components: int = 16,
        shrinkage: float = 5.0,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        seed: int = 0,
    ):
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.seed = seed

    def _estimator(self):
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            early_stopping=False,
            random_state=self.seed,
        )
