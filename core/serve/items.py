"""The server's item vectors: loaded at start (``--data`` item texts or ``--item-features``),
then added to or replaced by ``PUT /items/{id}`` / ``POST /items`` with no retraining.

Rows live in one float32 matrix that grows by doubling, so adding an item is O(dim). Only
the event loop touches the store (routes run there; encoding happens on the encode thread
and the rows are stored after it returns), so it needs no lock.

Clients choose the ids, so they are checked (``check_item_id``: at most ``MAX_ID_CHARS``
characters of valid text) and the store holds at most ``max_items`` (``--max-items``): a
request that would add more gets 507, and replacing a stored id is always allowed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfeat.extraction.cache import vector_fingerprint
from recfeat.serve.errors import ApiError, check_text

# Longest item id the API takes (ids are URL path segments; 10-character ASINs and
# 36-character UUIDs fit many times over). docs/serving.md documents it.
MAX_ID_CHARS = 256


def check_item_id(item_id: str, what: str = "item id") -> None:
    """ApiError 400 for an id that is empty, longer than ``MAX_ID_CHARS`` or not text."""
    if not item_id or not item_id.strip():
        raise ApiError(400, f"{what} is empty; send a non-empty id", code="invalid_id")
    if len(item_id) > MAX_ID_CHARS:
        raise ApiError(400, f"{what} has {len(item_id)} characters; the limit is {MAX_ID_CHARS}, "
                       "send a shorter id", code="invalid_id")  # fmt: skip
    if not item_id.isascii():
        check_text(item_id, what)


class StoreFull(ApiError):
    def __init__(self, size: int, new: int, limit: int):
        super().__init__(507, f"the item store is full: it holds {size} items and this request "
                         f"adds {new} new ones, over the limit of {limit} (server option "
                         "--max-items); raise --max-items or replace stored ids",
                         type_="server_error", code="store_full")  # fmt: skip


class ItemStore:
    def __init__(self, dim: int, manifest: dict[str, Any], max_items: int | None = None):
        self.dim = int(dim)
        self.max_items = max_items  # None: no limit
        self.manifest = manifest  # what the vectors were made with (models check it)
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.added: set[str] = set()  # items stored through the API since start
        self.version = 0  # bumps on every change; derived values key on it
        self._mean: tuple[int, np.ndarray] | None = None
        self._norms: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item: str) -> bool:
        return item in self.index

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: len(self.ids)]

    def room_for(self, ids: list[str]) -> None:
        """StoreFull (507) when storing ``ids`` would go over ``max_items``."""
        if self.max_items is None:
            return
        new = len({i for i in ids if i not in self.index})
        if len(self.ids) + new > self.max_items:
            raise StoreFull(len(self.ids), new, self.max_items)

    def put_many(self, ids: list[str], vectors: np.ndarray, *, added: bool = True) -> int:
        """Store (or replace) the vectors of ``ids``; returns how many ids were new. Nothing
        is stored when they would not fit (StoreFull)."""
        self.room_for(ids)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        new = 0
        for item, vec in zip(ids, vectors, strict=True):
            row = self.index.get(item)
            if row is None:
                row = len(self.ids)
                if row >= len(self._vectors):
                    grown = np.zeros((max(16, 2 * len(self._vectors)), self.dim), np.float32)
                    grown[:row] = self._vectors[:row]
                    self._vectors = grown
                self.ids.append(item)
                self.index[item] = row
                new += 1
            self._vectors[row] = vec
            if added:
                self.added.add(item)
        self.version += 1
        return new

    def lookup(self, ids) -> tuple[np.ndarray, np.ndarray]:
        from recfeat.data.features import lookup_rows

        return lookup_rows(self.index, self._vectors, ids)

    def mean(self) -> np.ndarray:
        """Mean item vector (recomputed only after a change): the common direction that
        MiniLM-style vectors share, removed before cosine as the content model does."""
        if self._mean is None or self._mean[0] != self.version:
            m = self.vectors.mean(axis=0) if len(self.ids) else np.zeros(self.dim, np.float32)
            self._mean = (self.version, m.astype(np.float32))
        return self._mean[1]

    def centred_norms(self) -> np.ndarray:
        """Each stored vector's length after removing ``mean()`` (float64, recomputed only
        after a change): cosines against the centred rows then need one float32 product per
        request instead of a centred float64 copy of the whole store."""
        if self._norms is None or self._norms[0] != self.version:
            center = self.mean().astype(np.float64)
            vectors = self.vectors
            norms = np.empty(len(vectors), np.float64)
            for start in range(0, len(vectors), 65536):  # bounded temporaries
                part = vectors[start : start + 65536].astype(np.float64) - center
                norms[start : start + 65536] = np.linalg.norm(part, axis=1)
            self._norms = (self.version, norms)
        return self._norms[1]

    def features(self, ids: list[str]):
        """``recfeat.data.features.Features`` of ``ids``, to hand to a text-aware model."""
        from recfeat.data.features import Features

        vectors, _ = self.lookup(ids)
        return Features(ids, vectors, self.manifest)


def vector_manifest(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The manifest fields a saved model compares (``feature_fingerprint``), as
    ``recfeat extract --level item`` writes them for the same encoder."""
    return {
        "level": "item",
        "encoder": vector_fingerprint(fingerprint),
        "weights_sha256": fingerprint.get("weights_sha256"),
        "pooling": fingerprint.get("pooling"),
        "precision": fingerprint.get("precision"),
    }
