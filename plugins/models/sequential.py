"""Sequential (next-item) models on the self-attentive network of recfeat.sequential.network.

``sasrec``: SASRec (Kang & McAuley, ICDM 2018) on item ids, trained with cross-entropy over
every item at every position (as RecBole's SASRec with ``loss_type CE``). A user's score for
an item is the dot product of the network's last hidden state over that user's training
history (time order, the last ``max_len`` items) with the item's embedding.

``sasrec-text``: the same network whose item representations come from text vectors, in the
spirit of UniSRec (Hou et al., KDD 2022): the frozen (or whitened, or fine-tuned) vectors of
any recfeat encoder (optionally PCA-whitened on the training items, ``whiten``) are mapped
by a trained linear adaptor; with ``ids`` (the default) an item-id embedding is added
for training items (UniSRec's transductive setting; ``ids=False``: the inductive one, text
alone). On Musical Instruments' leave-last-out validation splits the tuner chose ids in 3
of 4 runs. A new item (no
training interaction) is scored from its text vector alone, so the model ranks new items.

Both fall back to popularity for users with no training history (NaN for new items in
``sasrec-text``, which has no history to place them against). Training is seeded; it runs
on the CPU threads torch is given (``OMP_NUM_THREADS``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from recfeat.components import RecModel
from recfeat.errors import OptionError
from recfeat.sequential.histories import Histories, left_pad
from recfeat.sequential.network import (
    NetShape,
    TrainSettings,
    last_hidden,
    load_state,
    state_of,
)
from recfeat.sequential.network import train as train_network

from .content import fit_item_vectors, item_vectors
from .foldin import HISTORY, HISTORY_AND_TEXT
from .token_mix import TOKEN_WEIGHTS

#: users scored per forward pass
SCORE_BATCH = 256


class SASRec(RecModel):
    """Self-attentive sequential recommender on item ids (SASRec, CE loss)."""

    name = "sasrec"
    ranks_from_history = True
    explains = HISTORY  # recfeat.explain: leave-one-out through score_history
    #: --tune: epochs x dropout. Small data overfits quickly: on Musical Instruments' seed-0
    #: leave-last-out split (test NDCG@10, one look, before tuning existed) 50 epochs gave
    #: 0.065 and 200 gave 0.052; validation chooses among these.
    tune_space: ClassVar[dict[str, list]] = {
        "epochs": [25, 50, 100],
        "dropout": [0.2, 0.5],
    }

    def __init__(self, dim: int = 64, layers: int = 2, heads: int = 2, dropout: float = 0.2,
                 max_len: int = 50, epochs: int = 50, batch_size: int = 128, lr: float = 1e-3,
                 weight_decay: float = 0.0, seed: int = 0):  # fmt: skip
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.dropout = dropout
        self.max_len = max_len
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed

    # -- options ------------------------------------------------------------------------------
    def _check_options(self) -> None:
        for opt in ("dim", "layers", "heads", "max_len", "epochs", "batch_size"):
            value = getattr(self, opt)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise OptionError(f"{self.name}: {opt} must be a whole number >= 1 (got {value!r})")
        if self.dim % self.heads:
            raise OptionError(f"{self.name}: dim ({self.dim}) must be a multiple of heads "
                              f"({self.heads}); e.g. dim=64 heads=2")  # fmt: skip
        if not 0.0 <= self.dropout < 1.0:
            raise OptionError(f"{self.name}: dropout must be in [0, 1) (got {self.dropout})")
        if not self.lr > 0 or self.weight_decay < 0:
            raise OptionError(f"{self.name}: lr must be > 0 and weight_decay >= 0 "
                              f"(got {self.lr}, {self.weight_decay})")  # fmt: skip

    def _shape(self, text_dim: int = 0, ids: bool = True) -> NetShape:
        return NetShape(len(self.items_), int(self.dim), int(self.max_len), int(self.layers),
                        int(self.heads), float(self.dropout), text_dim, ids)  # fmt: skip

    # -- fitting ------------------------------------------------------------------------------
    def _fit(self, u, i, r, train, item_features, user_features):
        self._check_options()
        self.histories_ = Histories.of(u, i, train, len(self.users_))
        self.counts_ = np.bincount(i, minlength=len(self.items_)).astype(np.float64)
        text = self._fit_text(item_features)
        self.shape_ = self._network_shape()
        settings = TrainSettings(int(self.epochs), int(self.batch_size), float(self.lr),
                                 float(self.weight_decay), int(self.seed))  # fmt: skip
        windows = self.histories_.windows(int(self.max_len))
        net, self.training_ = train_network(self.shape_, windows, settings, text, label=self.name)
        self.state_ = state_of(net)
        self._net = net

    def _fit_text(self, item_features):
        return None

    def _network_shape(self) -> NetShape:
        return self._shape()

    # histories_ and shape_ are dataclasses: stored as their fields
    @property
    def histories_(self) -> Histories:
        return Histories(self.history_items_, self.history_offsets_)

    @histories_.setter
    def histories_(self, h: Histories) -> None:
        self.history_items_, self.history_offsets_ = h.items, h.offsets

    @property
    def shape_(self) -> NetShape:
        return NetShape(**self.network_)

    @shape_.setter
    def shape_(self, shape: NetShape) -> None:
        import dataclasses

        self.network_ = dataclasses.asdict(shape)

    # -- scoring ------------------------------------------------------------------------------
    def _module(self):
        net = getattr(self, "_net", None)
        if net is None:  # loaded from a model file: rebuild from the stored weights
            net = self._net = load_state(self.shape_, self.state_)
        return net

    def _table(self, net):
        return net.item_table(None)

    def _scores(self, seqs: list[np.ndarray], items, item_features) -> np.ndarray:
        """Scores of every (history, item): the network's last hidden state over each history
        (item codes, time order) x the items' representations; NaN where an item has none."""
        import torch

        net = self._module()
        ic = self.item_codes(items)
        with torch.no_grad():
            table = self._table(net)
            reps = torch.zeros((len(items), int(self.dim)))
            warm = ic >= 0
            reps[torch.from_numpy(warm)] = table[torch.from_numpy(ic[warm] + 1)]
            found = warm.copy()
            extra = self._new_item_reps(net, items, ~warm, item_features)
            if extra is not None:
                new_reps, new_found = extra
                reps[torch.from_numpy(new_found)] = new_reps
                found |= new_found
            out = np.empty((len(seqs), len(items)))
            for start in range(0, len(seqs), SCORE_BATCH):
                last = [x[-int(self.max_len) :] for x in seqs[start : start + SCORE_BATCH]]
                padded = left_pad(last, max(1, max(len(x) for x in last)))  # no all-padding columns
                out[start : start + SCORE_BATCH] = (last_hidden(net, padded, table) @ reps.T).numpy()
        out[:, ~found] = np.nan
        return out

    def _new_item_reps(self, net, items, new, item_features):
        return None

    def _score_matrix(self, users, items, item_features):
        uc, ic = self.user_codes(users), self.item_codes(items)
        scores = self._scores(self.histories_.last(uc, int(self.max_len)), items, item_features)
        unknown = uc < 0  # no history: popularity over training items
        if unknown.any():
            fallback = np.where(ic >= 0, self.counts_[np.maximum(ic, 0)], np.nan)
            scores[unknown] = fallback[None, :]
        return scores

    def _score_history(self, history: np.ndarray, items, item_features) -> np.ndarray:
        return self._scores([history], items, item_features)[0]

    _score_pairs = RecModel._score_pairs_by_user

    def __getstate__(self):  # the torch module is rebuilt from state_ after unpickling
        state = dict(self.__dict__)
        state.pop("_net", None)
        return state


class SASRecText(SASRec):
    """SASRec whose items are represented by their text vectors through a trained adaptor
    (linear, optionally after PCA whitening; UniSRec-style); ranks new items from their text."""

    name = "sasrec-text"
    explains = HISTORY_AND_TEXT
    uses_text = True
    cold_start_items = True
    #: --tune: with or without item-id embeddings x PCA whitening x epochs (dropout 0.2).
    #: Whitening is off by default: on Musical Instruments' new-item split (seeds 0 and 1,
    #: ids=False, 25 epochs) it cost half the NDCG@10 (0.049 / 0.035 against 0.083 / 0.104):
    #: new items are the mean of 3 reviews, noisier than training items, and whitening
    #: amplifies exactly the low-variance directions that noise lives in.
    #: ``token_weight`` mixes sparse token features into the text input (``token_mix``);
    #: tuning tries it only when the features carry token features.
    tune_space: ClassVar[dict[str, list]] = {
        "ids": [True, False],
        "whiten": [False, True],
        "epochs": [25, 50],
        "token_weight": TOKEN_WEIGHTS,
    }

    def __init__(self, dim: int = 64, layers: int = 2, heads: int = 2, dropout: float = 0.2,
                 max_len: int = 50, epochs: int = 50, batch_size: int = 128, lr: float = 1e-3,
                 weight_decay: float = 0.0, seed: int = 0, ids: bool = True,
                 whiten: bool = False, token_weight: float = 0.0):  # fmt: skip
        super().__init__(dim, layers, heads, dropout, max_len, epochs, batch_size, lr,
                         weight_decay, seed)  # fmt: skip
        self.ids = ids
        self.whiten = whiten
        self.token_weight = token_weight

    def _check_options(self) -> None:
        super()._check_options()
        for opt in ("ids", "whiten"):
            if not isinstance(getattr(self, opt), (bool, np.bool_)):
                raise OptionError(f"{self.name}: {opt} must be true or false "
                                  f"(got {getattr(self, opt)!r})")  # fmt: skip

    def _fit_text(self, item_features):
        self.item_features_ = item_features
        vecs, found = fit_item_vectors(self, item_features)
        self.n_items_without_features_ = int((~found).sum())
        dim = vecs.shape[1]
        mean = vecs[found].mean(axis=0) if found.any() else np.zeros(dim)
        white = np.eye(dim)
        if self.whiten and found.sum() > 1:
            # PCA whitening on the training items (UniSRec whitens; so does the counter-
            # evidence's baseline); the eps keeps near-empty directions from exploding.
            cov = np.cov((vecs[found] - mean).T)
            vals, vecs_e = np.linalg.eigh(cov)
            white = vecs_e / np.sqrt(np.maximum(vals, 0) + 1e-3 * vals.max())
        self.text_mean_ = mean.astype(np.float32)
        self.text_whiten_ = white.astype(np.float32)
        self.text_dim_ = dim
        text = self._transform(vecs) * found[:, None]
        # the training items' adaptor inputs, row 0 the padding: computed once, read by every
        # scoring call
        self.item_text_ = np.vstack([np.zeros((1, dim)), text]).astype(np.float32)
        return self.item_text_

    def _transform(self, vecs: np.ndarray) -> np.ndarray:
        return (vecs - self.text_mean_) @ self.text_whiten_

    def _network_shape(self) -> NetShape:
        return self._shape(self.text_dim_, bool(self.ids))

    def _table(self, net):
        import torch

        return net.item_table(torch.from_numpy(self.item_text_))

    def _new_item_reps(self, net, items, new, item_features):
        import torch

        if not new.any():
            return None
        vecs, found = item_vectors(self, items[new], item_features)
        mask = np.zeros(len(items), dtype=bool)
        mask[np.flatnonzero(new)[found]] = True
        text = torch.from_numpy(self._transform(vecs[found]).astype(np.float32))
        return net.represent(text), mask

    def _score_matrix(self, users, items, item_features):
        scores = super()._score_matrix(users, items, item_features)
        ic = self.item_codes(items)
        scores[np.ix_(self.user_codes(users) < 0, ic < 0)] = np.nan  # no history to place them
        return scores
