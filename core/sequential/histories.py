"""Users' time-ordered histories, kept as two arrays (a model file stores them as is).

Order: by ``timestamp``, ties broken by the row order of the training frame, which is the
interactions' own order (recfeat.evaluation.splits breaks ties the same way, so the last
training item here is the one the split saw last). Rows without a usable timestamp (none,
or negative: the loaders' "unknown") keep their row order.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class Histories:
    """Item codes of every user's history, concatenated in time order; user ``u``'s are
    ``items[offsets[u]:offsets[u + 1]]``."""

    items: np.ndarray  # int64 item codes
    offsets: np.ndarray  # int64, len n_users + 1

    @classmethod
    def of(cls, u: np.ndarray, i: np.ndarray, train: pd.DataFrame, n_users: int) -> Histories:
        """From the integer codes ``u``/``i`` of ``train``'s rows (RecModel._fit's)."""
        if "timestamp" in train.columns:
            t = pd.to_numeric(train["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
            t = np.where(np.isnan(t) | (t < 0), -1.0, t)
        else:
            t = np.full(len(u), -1.0)
        order = np.lexsort((np.arange(len(u)), t, u))  # user, then time, then row order
        counts = np.bincount(u, minlength=n_users)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(i[order].astype(np.int64), offsets)

    def of_user(self, code: int) -> np.ndarray:
        if code < 0:
            return np.zeros(0, dtype=np.int64)
        return self.items[self.offsets[code] : self.offsets[code + 1]]

    def last(self, codes: np.ndarray, n: int) -> list[np.ndarray]:
        """The last ``n`` items of each user (empty for unknown users, code -1)."""
        return [self.of_user(int(c))[-n:] for c in codes]

    def windows(self, length: int) -> list[np.ndarray]:
        """Training windows of at most ``length + 1`` items covering every history: a long
        history is cut from its end into consecutive pieces that overlap by one item, so every
        next-item transition is learned once (SASRec truncates instead and loses them)."""
        out = []
        for u in range(len(self.offsets) - 1):
            seq = self.of_user(u)
            end = len(seq)
            while end >= 2:
                start = max(0, end - length - 1)
                out.append(seq[start:end])
                end = start + 1
                if start == 0:
                    break
        return out


def left_pad(seqs: list[np.ndarray], length: int, shift: int = 1) -> np.ndarray:
    """(len(seqs), length) int64, each sequence right-aligned, 0 before it; codes move up by
    ``shift`` so 0 stays the padding."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for row, seq in enumerate(seqs):
        seq = seq[-length:]
        if len(seq):
            out[row, length - len(seq) :] = seq + shift
    return out
