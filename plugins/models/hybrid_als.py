"""Hybrid implicit-feedback ALS: collaborative item factors tied to a ridge regression on the
item's text, so a cold item is placed where its text says and warm items keep their own
collaborative residual.

Model (Hu, Koren & Volinsky's confidence-weighted ALS, with a text prior on item factors in
the spirit of collective / regression-prior matrix factorisation):

    s(u, i) = p_u . q_i
    q_i = W' x_i + d_i        x_i = [centred, scaled text vector of item i, 1]
    minimise  sum_{u,i} c_ui (y_ui - p_u . q_i)^2  +  reg ||p_u||^2
              + text_reg ||q_i - W' x_i||^2

with y_ui = 1 for training interactions (0 elsewhere), c_ui = 1 + alpha y_ui. Each step is a
closed-form ridge solve: users given items, items given users and the text prior W' x_i, and
W given the item factors (a ridge regression of the item factors on their text, ridge
strength ``projection_reg``). A cold item has no residual, so its factor is W' x_i and its
score comes from its text alone. ``text_reg`` sets how tightly warm item factors stay near
their text prediction: 0 is unregularised item factors (the text is then only used for cold
items), large values make every item a pure text projection.

Every training interaction is a positive (ratings are ignored: the model ranks). Users never
seen in training get the mean training user's factor (a non-personalised ranking).
``user_features`` are not used: user factors come from interactions alone.

Defaults (reg 10, text_reg 300, projection_reg 1) were chosen on validation slices carved
from the TRAINING part of Musical Instruments' seed-0 random and item-cold splits (three
inner seeds, NDCG@10), never on their test parts; see benchmarks/results/models.md.
"""

from __future__ import annotations

import numpy as np

from recfeat.components import RecModel
from recfeat.errors import OptionError
from recfeat.plugin.options import check_ranges

from .content import fit_item_vectors, item_vectors
from .foldin import HISTORY_AND_TEXT, hybrid_contributions, hybrid_fold_in
from .token_mix import TOKEN_WEIGHTS, check_token_weight


class HybridALS(RecModel):
    """Implicit ALS whose item factors have a learned text-regression prior (cold items OK)."""

    name = "hybrid-als"
    #: recfeat.explain: the user solve is linear in the history (foldin.py)
    explains = HISTORY_AND_TEXT
    _fold_in = hybrid_fold_in
    _history_contributions = hybrid_contributions
    #: --tune, 9 points (x token weight, 36, when the features carry token features:
    #: ``token_weight`` mixes them into the item text, see ``token_mix``)
    tune_space = {
        "reg": [1.0, 10.0, 50.0],
        "text_reg": [30.0, 300.0, 3000.0],
        "token_weight": TOKEN_WEIGHTS,
    }
    uses_text = True
    cold_start_items = True

    def __init__(
        self,
        factors: int = 64,
        alpha: float = 10.0,
        reg: float = 10.0,
        text_reg: float = 300.0,
        projection_reg: float = 1.0,
        iterations: int = 15,
        seed: int = 0,
        token_weight: float = 0.0,
    ):
        self.factors = factors
        self.alpha = alpha
        self.reg = reg
        self.text_reg = text_reg
        self.projection_reg = projection_reg
        self.iterations = iterations
        self.seed = seed
        self.token_weight = token_weight

    def validate(self) -> None:
        check_ranges(self, {"factors": (1, 10_000), "iterations": (1, 10_000)})
        self._check_options()

    def _check_options(self) -> None:
        for opt in ("alpha", "reg", "text_reg", "projection_reg"):
            if getattr(self, opt) < 0 or (opt == "projection_reg" and self.projection_reg == 0):
                raise OptionError(
                    f"hybrid-als: {opt} must be >= 0 (projection_reg > 0), got {getattr(self, opt)}"
                )
        if self.factors < 1 or self.iterations < 1:
            raise OptionError(
                f"hybrid-als: factors and iterations must be >= 1 "
                f"(got factors={self.factors}, iterations={self.iterations})"
            )
        check_token_weight(self.name, self.token_weight)

    def _text(self, vecs: np.ndarray, found: np.ndarray) -> np.ndarray:
        """Centred, unit-RMS text plus an intercept column; zeros (no intercept) when missing."""
        x = (vecs - self.text_mean_) / self.text_scale_
        return np.hstack([x, np.ones((len(x), 1))]) * found[:, None]

    def _fit(self, u, i, r, train, item_features, user_features):
        self._check_options()
        n_u, n_i, k = len(self.users_), len(self.items_), self.factors
        self.item_features_ = item_features
        # without item features (user_features only): no item text, so a zero prior (plain
        # ALS, item ridge text_reg)
        vecs, found = fit_item_vectors(self, item_features)
        self.n_items_without_features_ = int((~found).sum())
        base = vecs[found] if found.any() else vecs
        self.text_mean_ = base.mean(axis=0)
        self.text_scale_ = float(np.sqrt(((base - self.text_mean_) ** 2).sum(axis=1).mean())) or 1.0
        x = self._text(vecs, found)

        # Duplicate (user, item) rows count once: y is binary.
        pairs = np.unique(np.stack([u, i], axis=1), axis=0)
        by_user = _groups(pairs[:, 0], pairs[:, 1], n_u)
        by_item = _groups(pairs[:, 1], pairs[:, 0], n_i)

        rng = np.random.default_rng(self.seed)
        item_f = rng.normal(0, 0.01, (n_i, k))
        user_f = np.zeros((n_u, k))
        # W ridge normal matrix: fixed across iterations, factorised once.
        gram = x.T @ x
        ridge_inv = np.linalg.inv(gram + self.projection_reg * np.eye(x.shape[1]))
        W = np.zeros((x.shape[1], k))
        for _ in range(self.iterations):
            user_f = _solve_side(item_f, by_user, self.alpha, self.reg, None)
            prior = x @ W
            item_f = _solve_side(user_f, by_item, self.alpha, self.text_reg, prior)
            W = ridge_inv @ (x.T @ item_f)
        self.user_factors_ = user_f
        self.item_factors_ = item_f
        self.W_ = W
        # Unknown users: the mean training user, a non-personalised popularity-like ranking.
        self.mean_user_ = user_f.mean(axis=0)

    # -- scoring ---------------------------------------------------------------------------
    def _item_side(self, items, item_features):
        ic = self.item_codes(items)
        known = ic >= 0
        q = self.item_factors_[np.maximum(ic, 0)].copy()
        # Prediction-time vectors (new items, leave-one-out vectors) only matter for items the
        # model has no factor for; a warm item keeps its trained factor.
        cold = ~known
        if cold.any():
            vecs, found = item_vectors(self, items[cold], item_features)
            q[cold] = self._text(vecs, found) @ self.W_
            scorable = known.copy()
            scorable[cold] = found
        else:
            scorable = known
        return q, scorable

    def _user_side(self, users):
        uc = self.user_codes(users)
        p = self.user_factors_[np.maximum(uc, 0)].copy()
        p[uc < 0] = self.mean_user_
        return p

    def _score_matrix(self, users, items, item_features):
        q, scorable = self._item_side(items, item_features)
        scores = self._user_side(users) @ q.T
        scores[:, ~scorable] = np.nan
        return scores

    def _score_pairs(self, users, items, item_features):
        q, scorable = self._item_side(items, item_features)
        out = np.einsum("ij,ij->i", self._user_side(users), q)
        out[~scorable] = np.nan
        return out


def _groups(rows: np.ndarray, cols: np.ndarray, n: int) -> list[np.ndarray]:
    """For each row id 0..n-1, the column ids paired with it."""
    order = np.argsort(rows, kind="stable")
    bounds = np.searchsorted(rows[order], np.arange(n + 1))
    cols = cols[order]
    return [cols[bounds[j] : bounds[j + 1]] for j in range(n)]


def _solve_side(other: np.ndarray, groups, alpha: float, reg: float, prior) -> np.ndarray:
    """Confidence-weighted ridge solve of one side's factors given the other side's.

    For row j with positives S_j: (O'O + alpha O_S'O_S + reg I) f_j = (1 + alpha) O_S'1
    + reg prior_j (prior 0 when None): the implicit-ALS normal equations of Hu et al.
    """
    k = other.shape[1]
    base = other.T @ other + reg * np.eye(k)
    lhs = np.repeat(base[None], len(groups), axis=0)
    rhs = np.zeros((len(groups), k))
    for j, cols in enumerate(groups):
        if len(cols):
            o = other[cols]
            lhs[j] += alpha * (o.T @ o)
            rhs[j] = (1.0 + alpha) * o.sum(axis=0)
    if prior is not None:
        rhs += reg * prior
    if reg == 0:  # rows with no positives would be singular; a tiny jitter keeps them at 0
        lhs += 1e-8 * np.eye(k)
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]
