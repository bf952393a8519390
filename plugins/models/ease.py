"""EASE^R (Steck 2019) and its text-aware variant: closed-form item-item linear models.

``ease`` (ID-only): item-item weights B minimise ||X - X B||^2 + reg ||B||^2 with
diag(B) = 0, X the binary user x item matrix of training interactions. Closed form:
P = (X'X + reg I)^-1, B = I - P diag(1/diag P). A user's score for item j is x_u . B[:, j].

``ease-text``: the same with the item text as side information, in the spirit of Jeunen,
Van Balen & Goethals, "Closed-form models for collaborative filtering with side-information"
(RecSys 2020): the Gram matrix gains the items' text similarity,

    G = X'X + text_weight * c * T T'          (T: centred, unit-length item text vectors;
                                              c: the mean item count, so text_weight is
                                              relative to how much interaction data there is)

as if every text dimension were an extra pseudo-user. Sparse items borrow weight from items
whose text is similar. A COLD item j (not in training, text vector t_j given at score time)
gets the EASE column it would have if it were appended with no interactions: from the block
inverse of [[G + reg I, g_j], [g_j', .]], B[:, j] = (G + reg I)^-1 g_j with
g_j = text_weight * c * T t_j its text similarity to the training items. Each cold item is
placed independently of the other candidates. Warm and cold scores are on different scales,
so one ranking should not mix them (the evaluation never does: cold candidates are ranked
among cold items).

Every training interaction is a positive (ratings ignored). Users never seen in training
get the popularity ranking for warm items and NaN for cold items (no history to place them).
Prediction-time vectors only matter for items without a trained column (as in hybrid-als).

Defaults were chosen on validation splits carved from the TRAINING part of Musical
Instruments 5-core's seed-0 random split (inner seeds 1 and 2, NDCG@10, every held-out
interaction relevant), never on its test part: ``ease`` reg 100 (0.0778; 30: 0.0760, 300:
0.0774, 1000: 0.0775; dropout 0.1-0.3 changed nothing), ``ease-text`` reg 100 with
text_weight 0.3 (0.0821; 0.1: 0.0801, 1: 0.0778, reg 300: 0.0805). On the item-cold
validation splits ease-text scored 0.122-0.131 over its whole tune_space (content 0.122).
On MovieLens-100k item-cold (dense data, short titles + genres) the whitening by the
interaction Gram hurts the cold columns (validation 0.16-0.23 vs content 0.29): use
``content`` (with its popularity prior) or ``hybrid-als`` there.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from recfeat.components import RecModel
from recfeat.errors import OptionError

from .content import fit_item_vectors, item_vectors, l2_normalise
from .foldin import HISTORY, HISTORY_AND_TEXT, ease_contributions, ease_fold_in
from .token_mix import TOKEN_WEIGHTS, check_token_weight


def _binary_matrix(u, i, n_users, n_items):
    from scipy.sparse import csr_matrix

    x = csr_matrix((np.ones(len(u)), (u, i)), shape=(n_users, n_items))
    x.data[:] = 1.0  # duplicate rows count once
    return x


def ease_weights(gram: np.ndarray, reg: float, dropout: float = 0.0):
    """(B, P): EASE item-item weights with a zero diagonal, and P = (gram + Lambda)^-1 with
    Lambda = reg I + dropout / (1 - dropout) diag(gram), the dropout-emphasised ridge of
    Steck's EDLAE (NeurIPS 2020): frequent items are penalised more, so rare ones count."""
    a = gram + np.diag(reg + dropout / (1.0 - dropout) * np.diag(gram))
    p = np.linalg.inv(a)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b, p


class EASE(RecModel):
    """EASE^R: closed-form item-item linear autoencoder (ID-only, strong on small data)."""

    name = "ease"
    #: recfeat.explain: a score is the sum of B[j, i] over the history j (foldin.py)
    explains = HISTORY
    _fold_in = ease_fold_in
    _history_contributions = ease_contributions
    #: --tune: ridge x dropout emphasis, 8 points.
    tune_space: ClassVar[dict[str, list]] = {
        "reg": [30.0, 100.0, 300.0, 1000.0],
        "dropout": [0.0, 0.25],
    }

    def __init__(self, reg: float = 100.0, dropout: float = 0.0):
        self.reg = reg
        self.dropout = dropout

    def _check_options(self) -> None:
        if not self.reg > 0:
            raise OptionError(f"{self.name}: reg must be > 0 (got {self.reg})")
        if not 0.0 <= self.dropout < 1.0:
            raise OptionError(f"{self.name}: dropout must be in [0, 1) (got {self.dropout})")

    def _fit(self, u, i, r, train, item_features, user_features):
        self._check_options()
        x = _binary_matrix(u, i, len(self.users_), len(self.items_))
        self.history_ = x
        gram = (x.T @ x).toarray()
        self.popularity_ = np.diag(gram).copy()
        # P = (G + reg I)^-1 is kept: ease-text places cold items with it.
        self.weights_, self.inverse_ = ease_weights(
            self._gram(gram, item_features), self.reg, self.dropout
        )

    def _gram(self, gram, item_features):
        return gram

    def _user_scores(self, uc, cols: np.ndarray) -> np.ndarray:
        """Training history x item columns (rows of unknown users are for callers to fill)."""
        return np.asarray(self.history_[np.maximum(uc, 0)] @ cols)

    def _score_matrix(self, users, items, item_features):
        uc, ic = self.user_codes(users), self.item_codes(items)
        scores = self._user_scores(uc, self.weights_[:, np.maximum(ic, 0)])
        scores[uc < 0] = self.popularity_[np.maximum(ic, 0)][None, :]
        scores[:, ic < 0] = np.nan
        return scores

    _score_pairs = RecModel._score_pairs_by_user


class EASEText(EASE):
    """EASE whose Gram matrix adds item text similarity; cold items scored from their text."""

    name = "ease-text"
    explains = HISTORY_AND_TEXT
    uses_text = True
    cold_start_items = True
    #: --tune: ridge x text weight, 9 points (x token weight, 36, when the features carry
    #: token features: ``token_weight`` mixes them into the item text, see ``token_mix``).
    tune_space: ClassVar[dict[str, list]] = {
        "reg": [30.0, 100.0, 300.0],
        "text_weight": [0.1, 0.3, 1.0],
        "token_weight": TOKEN_WEIGHTS,
    }

    def __init__(self, reg: float = 100.0, text_weight: float = 0.3, dropout: float = 0.0,
                 token_weight: float = 0.0):  # fmt: skip
        self.reg = reg
        self.text_weight = text_weight
        self.dropout = dropout
        self.token_weight = token_weight

    def _check_options(self) -> None:
        super()._check_options()
        if self.text_weight < 0:
            raise OptionError(f"{self.name}: text_weight must be >= 0 (got {self.text_weight})")
        check_token_weight(self.name, self.token_weight)

    def _text(self, vecs: np.ndarray, found: np.ndarray) -> np.ndarray:
        return l2_normalise(vecs - self.text_mean_) * found[:, None]

    def _gram(self, gram, item_features):
        self.item_features_ = item_features
        vecs, found = fit_item_vectors(self, item_features)
        self.n_items_without_features_ = int((~found).sum())
        self.text_mean_ = vecs[found].mean(axis=0) if found.any() else np.zeros(vecs.shape[1])
        self.item_text_ = self._text(vecs, found)
        # text_weight is relative to the mean item count, so it transfers across data sizes.
        self.text_scale_ = self.text_weight * max(float(np.mean(np.diag(gram))), 1e-12)
        text_gram = self.item_text_ @ self.item_text_.T
        np.fill_diagonal(text_gram, found.astype(float))
        return gram + self.text_scale_ * text_gram

    def _cold_columns(self, items, item_features) -> tuple[np.ndarray, np.ndarray]:
        """EASE columns of items without a trained column, from their text (see module doc)."""
        vecs, found = item_vectors(self, items, item_features)
        sim = self.item_text_ @ self._text(vecs, found).T  # (train items, cold items)
        # With text_weight 0 the Gram has no text part; similarity still places the item.
        scale = self.text_scale_ or 1.0
        return self.inverse_ @ (scale * sim), found

    def _score_matrix(self, users, items, item_features):
        uc, ic = self.user_codes(users), self.item_codes(items)
        warm = ic >= 0
        scores = np.full((len(users), len(items)), np.nan)
        if warm.any():
            scores[:, warm] = super()._score_matrix(users, items[warm], None)
        cold = ~warm
        if cold.any():
            cols, found = self._cold_columns(items[cold], item_features)
            part = self._user_scores(uc, cols)
            part[uc < 0] = np.nan  # no history to place a cold item against
            part[:, ~found] = np.nan
            scores[:, cold] = part
        return scores
