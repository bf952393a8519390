"""Review-level vectors (one per (user, item) review), the leakage-safe text input for
review-only data: each split turns them into item vectors from its TRAINING reviews only
(``item_means``); ``leave_one_out`` is the old, leaky cold-item rule kept as a named option
(see recfeat.evaluation.coldstart). A module of its own so the protocol, the cold-start
rules, the leak checks and tuning can all use it without importing one another."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from recfeat.data.features import Features


@dataclasses.dataclass
class ReviewVectors:
    """One vector per (user, item) review, the leakage-safe input for review-only data."""

    users: np.ndarray
    items: np.ndarray
    vectors: np.ndarray
    manifest: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def item_means(self, pairs: pd.DataFrame) -> Features:
        """Item vectors = mean of the reviews whose (user, item) is in ``pairs`` (training)."""
        keep = self._rows_in(pairs)
        items = self.items[keep]
        labels, inverse = np.unique(items, return_inverse=True)
        sums = np.zeros((len(labels), self.dim))
        np.add.at(sums, inverse, self.vectors[keep])
        counts = np.bincount(inverse, minlength=len(labels))
        manifest = {**self.manifest, "level": "item", "source": "training reviews (evaluation)"}
        return Features(labels, sums / counts[:, None], manifest)

    def leave_one_out(self, items) -> _LeaveOneOut:
        """Per-user vectors of ``items`` built from every review except that user's own."""
        return _LeaveOneOut(self, items)

    def _rows_in(self, pairs: pd.DataFrame) -> np.ndarray:
        keys = pd.MultiIndex.from_arrays([pairs["user"].astype(str), pairs["item"].astype(str)])
        mine = pd.MultiIndex.from_arrays([self.users, self.items])
        return np.asarray(mine.isin(keys))


class _LeaveOneOut:
    def __init__(self, reviews: ReviewVectors, items):
        self.items = np.asarray(sorted(str(x) for x in items), dtype=object)
        index = {k: n for n, k in enumerate(self.items)}
        rows = np.fromiter((index.get(k, -1) for k in reviews.items), dtype=np.int64)
        keep = rows >= 0
        self.sums = np.zeros((len(self.items), reviews.dim))
        np.add.at(self.sums, rows[keep], reviews.vectors[keep])
        self.counts = np.bincount(rows[keep], minlength=len(self.items)).astype(float)
        self.own: dict[str, list[tuple[int, np.ndarray]]] = {}
        for user, row, vec in zip(
            reviews.users[keep], rows[keep], reviews.vectors[keep], strict=False
        ):
            self.own.setdefault(user, []).append((row, vec))
        self.manifest = {**reviews.manifest, "level": "item", "source": "other users' reviews"}

    def for_user(self, user: str) -> Features:
        sums, counts = self.sums.copy(), self.counts.copy()
        for row, vec in self.own.get(user, ()):
            sums[row] -= vec
            counts[row] -= 1
        ok = counts > 0
        return Features(self.items[ok], sums[ok] / counts[ok, None], self.manifest)
