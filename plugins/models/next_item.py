"""Simple next-item references: score candidates by their similarity to the user's LAST
items, the bar a sequential model must clear (cf. Ludewig & Jannach, "Evaluation of
session-based recommendation algorithms", 2018: such neighbourhood methods are often
competitive with neural ones).

``item-knn-last``: similarity from training interactions. ``mode="cooccurrence"``: cosine
of the items' user sets (how many users have both, over the square root of each count);
``mode="transition"``: how often the candidate directly FOLLOWED the item in someone's
time-ordered history, over the square root of both counts (a first-order Markov chain).

``text-knn-last``: cosine of the items' text vectors; it scores new items from their text.

Both sum the similarities to the user's last ``last`` training items, the most recent
weighted 1, the one before 1/2, and so on. Users with no history get popularity
(item-knn-last) or NaN (text-knn-last).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from recfeat.components import RecModel
from recfeat.errors import OptionError
from recfeat.sequential.histories import Histories

from .content import item_vectors, l2_normalise, lookup
from .foldin import HISTORY, HISTORY_AND_TEXT

MODES = ("cooccurrence", "transition")


def _check_last(model) -> None:
    last = model.last
    if isinstance(last, bool) or not isinstance(last, (int, np.integer)) or last < 1:
        raise OptionError(f"{model.name}: last must be a whole number >= 1 (got {last!r})")


def _recency_weights(seqs: list[np.ndarray]) -> list[np.ndarray]:
    return [1.0 / np.arange(len(s), 0, -1) for s in seqs]  # most recent last: weight 1


class ItemKNNLast(RecModel):
    """Items similar to the user's last ones, by co-occurrence or transitions in training."""

    name = "item-knn-last"
    ranks_from_history = True
    explains = HISTORY  # recfeat.explain: leave-one-out through score_history
    tune_space: ClassVar[dict[str, list]] = {"mode": list(MODES), "last": [1, 3, 10]}

    def __init__(self, mode: str = "transition", last: int = 1):
        self.mode = mode
        self.last = last

    def _fit(self, u, i, r, train, item_features, user_features):
        from scipy.sparse import csr_matrix

        if self.mode not in MODES:
            raise OptionError(f"{self.name}: mode must be one of {', '.join(MODES)} "
                              f"(got {self.mode!r})")  # fmt: skip
        _check_last(self)
        n_i = len(self.items_)
        hist = Histories.of(u, i, train, len(self.users_))
        self.history_items_, self.history_offsets_ = hist.items, hist.offsets
        counts = np.bincount(i, minlength=n_i).astype(np.float64)
        self.counts_ = counts
        if self.mode == "cooccurrence":
            x = csr_matrix((np.ones(len(u)), (u, i)), shape=(len(self.users_), n_i))
            x.data[:] = 1.0
            sim = (x.T @ x).tocsr().astype(np.float64)
            sim.setdiag(0.0)
        else:
            sizes = np.diff(hist.offsets)
            has_prev = np.ones(len(hist.items), dtype=bool)  # a predecessor in the same history
            has_prev[hist.offsets[:-1][sizes > 0]] = False  # each user's first item has none
            nxt = np.flatnonzero(has_prev)
            sim = csr_matrix((np.ones(len(nxt)), (hist.items[nxt - 1], hist.items[nxt])),
                             shape=(n_i, n_i))  # fmt: skip
            sim.sum_duplicates()
        scale = 1.0 / np.sqrt(np.maximum(counts, 1.0))
        sim = sim.multiply(scale[:, None]).multiply(scale[None, :]).tocsr()
        sim.eliminate_zeros()
        self.similarity_ = sim

    def _score_matrix(self, users, items, item_features):
        uc, ic = self.user_codes(users), self.item_codes(items)
        hist = Histories(self.history_items_, self.history_offsets_)
        out = self._score_seqs(hist.last(uc, int(self.last)), ic)
        out[uc < 0] = self.counts_[np.maximum(ic, 0)][None, :]
        out[:, ic < 0] = np.nan
        return out

    def _score_seqs(self, seqs: list[np.ndarray], ic: np.ndarray) -> np.ndarray:
        cols = np.maximum(ic, 0)
        out = np.zeros((len(seqs), len(ic)))
        for row, (seq, w) in enumerate(zip(seqs, _recency_weights(seqs), strict=True)):
            if len(seq):
                out[row] = np.asarray(self.similarity_[seq].T @ w).ravel()[cols]
        return out

    def _score_history(self, history: np.ndarray, items, item_features) -> np.ndarray:
        ic = self.item_codes(items)
        out = self._score_seqs([history[-int(self.last) :]], ic)[0]
        out[ic < 0] = np.nan
        return out

    _score_pairs = RecModel._score_pairs_by_user


class TextKNNLast(RecModel):
    """Items whose text is closest to that of the user's last ones; scores new items."""

    name = "text-knn-last"
    ranks_from_history = True
    explains = HISTORY_AND_TEXT
    uses_text = True
    cold_start_items = True
    tune_space: ClassVar[dict[str, list]] = {"last": [1, 3, 10]}

    def __init__(self, last: int = 1):
        self.last = last

    def _fit(self, u, i, r, train, item_features, user_features):
        _check_last(self)
        self.item_features_ = item_features
        hist = Histories.of(u, i, train, len(self.users_))
        self.history_items_, self.history_offsets_ = hist.items, hist.offsets
        vecs, found = lookup(item_features, self.items_)
        self.n_items_without_features_ = int((~found).sum())
        self.item_text_ = l2_normalise(vecs) * found[:, None]

    def _score_matrix(self, users, items, item_features):
        hist = Histories(self.history_items_, self.history_offsets_)
        return self._score_seqs(hist.last(self.user_codes(users), int(self.last)), items,
                                item_features)  # fmt: skip

    def _score_seqs(self, seqs: list[np.ndarray], items, item_features) -> np.ndarray:
        vecs, found = item_vectors(self, items, item_features)
        cand = l2_normalise(vecs)
        out = np.full((len(seqs), len(items)), np.nan)
        for row, (seq, w) in enumerate(zip(seqs, _recency_weights(seqs), strict=True)):
            if len(seq):
                out[row] = (w @ self.item_text_[seq]) @ cand.T
        out[:, ~found] = np.nan
        return out

    def _score_history(self, history: np.ndarray, items, item_features) -> np.ndarray:
        return self._score_seqs([history[-int(self.last) :]], items, item_features)[0]

    _score_pairs = RecModel._score_pairs_by_user
