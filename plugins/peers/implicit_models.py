"""implicit's ALS and BPR, configured as implicit's own MovieLens example configures them.

implicit's examples/movielens.py fits ``AlternatingLeastSquares()`` with the library
defaults on the BM25-weighted item x user matrix (``bm25_weight(m, B=0.9) * 5``), and
``BayesianPersonalizedRanking()`` with its defaults on the binary matrix; these peers do the
same (recfeat's own ``als``/``bpr`` wrap the same library with recfeat's settings and no
BM25). Every training interaction is a positive; ratings are ignored. Users unseen in
training get NaN, as recfeat's implicit models do.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np

from recfeat.plugins.models.implicit_feedback import ALS, BPR

from . import require_library
from .base import FactorPeer


class _ImplicitPeer(FactorPeer):
    library = "implicit"
    bias_fallback = False

    def _make(self):
        raise NotImplementedError

    def _weight(self, user_items):
        return user_items

    def _fit(self, u, i, r, train, item_features, user_features):
        require_library("implicit", f"the {self.name!r} model")
        from scipy.sparse import csr_matrix
        from threadpoolctl import threadpool_limits

        user_items = csr_matrix(
            (np.ones(len(u), dtype=np.float32), (u, i)), shape=(len(self.users_), len(self.items_))
        )
        # implicit checks that BLAS is single-threaded when the model is built (it runs its
        # own threads): limit BLAS first, then build and fit inside the limit.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*OpenBLAS is configured", category=RuntimeWarning
            )
            model = self._make()
            model.fit(self._weight(user_items), show_progress=False)
        # BPR's item factors end in its item bias, matched by a constant 1 in the user factors
        self._set_factors(model.user_factors, model.item_factors)


class ImplicitALS(_ImplicitPeer):
    """implicit's AlternatingLeastSquares on BM25-weighted interactions (implicit's MovieLens
    example: library defaults, ``bm25_weight(item_user, B=0.9) * 5``)."""

    name = "implicit-als"
    tune_space: ClassVar[dict[str, list]] = {
        "factors": [32, 64, 100, 200],
        "regularization": [0.01, 0.1, 1.0],
        "bm25_b": [0.5, 0.9],
        "iterations": [15, 30],
    }

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        bm25_k1: float = 100.0,
        bm25_b: float = 0.9,
        bm25_scale: float = 5.0,
        seed: int = 0,
        threads: int = 2,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.bm25_scale = bm25_scale
        self.seed = seed
        self.threads = threads

    def _weight(self, user_items):
        from implicit.nearest_neighbours import bm25_weight

        # the example weights the item x user matrix: idf over users, length norm over items
        item_users = bm25_weight(user_items.T.tocoo(), K1=self.bm25_k1, B=self.bm25_b)
        return (item_users * self.bm25_scale).T.tocsr().astype(np.float32)

    def _make(self):
        # the same library object recfeat's own ``als`` builds; only the defaults and the
        # BM25 weighting of the matrix differ
        return ALS._make(self)


class ImplicitBPR(_ImplicitPeer):
    """implicit's BayesianPersonalizedRanking with the library defaults (implicit's examples).

    ``threads`` defaults to 1: implicit's BPR updates are lock-free across threads, so more
    than one thread makes runs with the same seed differ.
    """

    name = "implicit-bpr"
    tune_space: ClassVar[dict[str, list]] = {
        "factors": [32, 64, 100],
        "learning_rate": [0.005, 0.01, 0.05],
        "regularization": [0.001, 0.01, 0.1],
        "iterations": [100, 200],
    }

    def __init__(
        self,
        factors: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 0,
        threads: int = 1,
    ):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed
        self.threads = threads

    def _make(self):
        # the same library object recfeat's own ``bpr`` builds; only the defaults differ
        return BPR._make(self)
