"""implicit's ALS and BPR, configured as implicit's own MovieLens example configures them.

implicit's examples/movielens.py fits ``AlternatingLeastSquares()`` with the library
defaults on the BM25-weighted item x user matrix (``bm25_weight(m, B=0.9) * 5``), and
``BayesianPersonalizedRanking()`` with its defaults on the binary matrix; these peers do the
same by default (recfeat's own ``als``/``bpr`` wrap the same library with recfeat's
settings and no BM25). Their ``tune_space`` reaches beyond the example, to where implicit
itself scores best (benchmarks/peers/independent_als.py tunes implicit directly). Every
training interaction is a positive; ratings are ignored. Users unseen in training get NaN,
as recfeat's implicit models do.
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
    example: library defaults, ``bm25_weight(item_user, B=0.9) * 5``).

    ``tune_space``: 9 regularization strengths on the idf-only weighting (BM25 with B=0,
    unscaled), so the benchmark's 10 trials (the example first) try every one. Tuned
    directly on validation data carved from MovieLens 100k's training part, over 392
    configurations (benchmarks/results/independent_als.md), implicit scores best there:
    NDCG@10 0.273 with every held-out interaction relevant (binary confidences at best
    0.270, the example's B=0.9 at best 0.234, the example as given 0.175). The regularization
    that works is far above the library default 0.01 (the ridge term is not scaled by the
    number of interactions) and its optimum is sharp: 30 scores 0.272 at the library's
    factors and iterations, 20 or 40 about 0.255, while factors 64 to 256 and 15 to 50
    iterations move it by less than 0.003. So the budget goes to one fine sweep of it.
    """

    name = "implicit-als"
    tune_space: ClassVar[dict[str, list]] = {
        "bm25_b": [0.0],
        "bm25_scale": [1.0],
        "regularization": [5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 70.0, 100.0],
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

    ``tune_space``: step size x epochs around the library defaults (0.01 x 100), 9 points,
    so the benchmark's 10 trials try every one: SGD's useful step count depends on the
    data's size. Against 9 seeded draws from the earlier 54-point space (factors and
    regularization too), on the seed-0 random splits with rated >= 4 relevant, its choice
    scores validation NDCG@10 0.162 vs 0.154 (test 0.280 vs 0.245) on MovieLens 100k and
    0.039 vs 0.043 (test 0.049 vs 0.048) on Musical Instruments.
    """

    name = "implicit-bpr"
    tune_space: ClassVar[dict[str, list]] = {
        "learning_rate": [0.005, 0.01, 0.05],
        "iterations": [60, 100, 200],
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
