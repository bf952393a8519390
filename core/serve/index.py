"""Top-k search over unit item vectors: exact, or approximate with faiss' HNSW graph.

Both indexes take an (n, d) matrix of unit rows, so the inner product is the cosine, and
answer ``search(queries, k, exclude=rows)`` with ``(ids, scores)``: (q, k) row numbers and
their inner products, best first, padded with -1 and -inf where fewer than k rows are left.
``exclude`` (row numbers, e.g. the items a user has seen) is applied inside the search (faiss'
``IDSelector``), so k results come back whatever is excluded.

The approximate one (``hnsw``) needs ``pip install 'recfeat[ann]'`` (faiss-cpu). Its
parameters are faiss' HNSW with inner product, M=32 links per node, efConstruction 64 and
efSearch 256, chosen with ``benchmarks/bench_ann.py`` (benchmarks/results/ann.md): on 1M
clustered 384-d vectors efSearch 128 just reaches recall@10 0.95 against the exact search and
256 leaves a margin for well under a millisecond more; a larger efConstruction would buy
recall with minutes of start-up on 2 cores.

``recfeat serve --index exact|hnsw|auto`` routes its text-profile ranking through
:class:`StoreIndex`: the index proposes candidates and the server scores them exactly, so
the scores are those of the exact path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfeat.errors import DataError, OptionError, closest, require

INDEX_KINDS = ("exact", "hnsw", "auto")
#: ``auto`` takes the approximate index from this many items on (when faiss is installed)
AUTO_MIN_ITEMS = 100_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 256
#: query rows scored at once by the exact index: bounds its (rows, n) score matrix
_EXACT_CELLS = 1 << 26


def check_index_kind(kind: Any, flag: str = "--index") -> str:
    """``kind`` if it is one of ``INDEX_KINDS``, else an OptionError naming them."""
    if kind not in INDEX_KINDS:
        hint = closest(kind, INDEX_KINDS) if isinstance(kind, str) else ""
        raise OptionError(f"{flag} {kind!r} is not an index kind; use one of "
                          f"{', '.join(INDEX_KINDS)}.{hint}".rstrip("."))  # fmt: skip
    return kind


def has_faiss() -> bool:
    import importlib.util

    return importlib.util.find_spec("faiss") is not None


def require_faiss(purpose: str = "an approximate nearest-neighbour index"):
    """The faiss module, or MissingDependencyError naming ``pip install 'recfeat[ann]'``."""
    return require("faiss", "ann", purpose)


def resolve_index_kind(kind: str, n_items: int) -> str:
    """``exact`` or ``hnsw``: ``auto`` is ``hnsw`` from ``AUTO_MIN_ITEMS`` items on when
    faiss is installed; ``hnsw`` without faiss is a MissingDependencyError."""
    check_index_kind(kind)
    if kind == "auto":
        return "hnsw" if n_items >= AUTO_MIN_ITEMS and has_faiss() else "exact"
    if kind == "hnsw":
        require_faiss("--index hnsw")
    return kind


def _matrix(vectors: Any, what: str = "item vectors") -> np.ndarray:
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or not x.shape[1]:
        raise DataError(f"{what} must be an (n, d) matrix with d > 0, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{what} hold NaN or infinite values; drop or re-encode those rows")
    return x


def _rows(exclude: Any, n: int) -> np.ndarray:
    rows = np.unique(np.asarray([] if exclude is None else exclude, dtype=np.int64))
    return rows[(rows >= 0) & (rows < n)]


class ExactIndex:
    """Every row scored (matrix product, then ``argpartition`` for the top k)."""

    kind = "exact"

    def __init__(self, vectors: Any):
        self.vectors = _matrix(vectors)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def params(self) -> dict[str, Any]:
        return {}

    def search(self, queries: Any, k: int, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        q = _matrix(np.atleast_2d(queries), "queries")
        n = len(self.vectors)
        ids = np.full((len(q), k), -1, np.int64)
        scores = np.full((len(q), k), -np.inf, np.float32)
        drop = _rows(exclude, n)
        take = min(k, n - len(drop))
        if take <= 0:
            return ids, scores
        step = max(1, _EXACT_CELLS // max(n, 1))
        for start in range(0, len(q), step):
            s = q[start : start + step] @ self.vectors.T
            s[:, drop] = -np.inf
            top = np.argpartition(-s, take - 1, axis=1)[:, :take]
            part = np.take_along_axis(s, top, axis=1)
            order = np.argsort(-part, axis=1, kind="stable")
            ids[start : start + step, :take] = np.take_along_axis(top, order, axis=1)
            scores[start : start + step, :take] = np.take_along_axis(part, order, axis=1)
        return ids, scores


class HNSWIndex:
    """faiss ``IndexHNSWFlat`` with inner product: a graph over the rows, searched from its
    top layer down; ``ef_search`` candidates are kept per query (at least k)."""

    kind = "hnsw"

    def __init__(self, vectors: Any, *, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION,
                 ef_search: int = HNSW_EF_SEARCH):  # fmt: skip
        faiss = require_faiss()
        x = _matrix(vectors)
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self._index = faiss.IndexHNSWFlat(x.shape[1], self.m, faiss.METRIC_INNER_PRODUCT)
        self._index.hnsw.efConstruction = self.ef_construction
        self._index.add(x)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def params(self) -> dict[str, Any]:
        return {"M": self.m, "efConstruction": self.ef_construction, "efSearch": self.ef_search}

    def search(self, queries: Any, k: int, exclude: Any = None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        q = _matrix(np.atleast_2d(queries), "queries")
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self.ef_search, k)
        drop = _rows(exclude, len(self))
        selectors = []  # the parameters hold only pointers: this keeps them alive meanwhile
        if len(drop):
            selectors.append(faiss.IDSelectorBatch(drop))
            selectors.append(faiss.IDSelectorNot(selectors[0]))
            params.sel = selectors[1]
        distances, labels = self._index.search(q, k, params=params)
        scores = np.where(labels >= 0, distances, -np.inf).astype(np.float32)
        return labels.astype(np.int64), scores


def build_index(vectors: Any, kind: str = "exact", **params: Any) -> ExactIndex | HNSWIndex:
    """An index over ``vectors`` ((n, d) unit rows) of ``kind`` (``exact``, ``hnsw``, or
    ``auto``: ``resolve_index_kind``); ``params`` go to :class:`HNSWIndex`."""
    x = _matrix(vectors)
    kind = resolve_index_kind(kind, len(x))
    return HNSWIndex(x, **params) if kind == "hnsw" else ExactIndex(x)


class StoreIndex:
    """Candidates for the server's text-profile ranking (``recfeat.serve.recommender``) from
    an approximate index over the item store as it was at start.

    The exact path ranks cosine after removing the mean item vector; the index holds the
    rows centred on the mean at build time. Items stored through the API since
    (``store.added``: new ones, and start-up ones whose vector was replaced) are not in the
    index or are stale there, so they are left out of its search and always proposed. The
    caller scores the candidates exactly with the current mean, so a ranking's scores are the
    exact path's, and ``None`` (score every row) comes back when the index found fewer than k
    items that are not excluded.
    """

    def __init__(self, store, **params: Any):
        from recfeat.encode.similarity import unit_rows  # the exact path's own normalisation

        self.store = store
        self.center = store.mean().astype(np.float64)
        rows = np.empty_like(store.vectors)
        for start in range(0, len(rows), 65536):  # in float64 a part at a time, as exact does
            part = store.vectors[start : start + 65536].astype(np.float64)
            rows[start : start + 65536] = unit_rows(part - self.center)
        self.index = HNSWIndex(rows, **params)
        self.kind = self.index.kind

    def candidates(self, history_mean: np.ndarray, k: int, exclude_rows) -> np.ndarray | None:
        """Row numbers of the store to score for a profile whose uncentred mean vector is
        ``history_mean``; ``exclude_rows`` are never returned."""
        from recfeat.encode.similarity import unit_rows

        store = self.store
        changed = np.fromiter((store.index[i] for i in store.added if i in store.index),
                              np.int64)  # fmt: skip
        exclude = np.unique(np.asarray(list(exclude_rows), dtype=np.int64))
        query = unit_rows(np.asarray(history_mean, np.float64) - self.center).astype(np.float32)
        ids, _ = self.index.search(query, k, exclude=np.concatenate([exclude, changed]))
        found = ids[0][ids[0] >= 0]
        fresh = np.setdiff1d(changed, exclude)
        if len(found) + len(fresh) < min(k, len(store) - len(exclude)):
            return None
        return np.union1d(found, fresh)


__all__ = ["AUTO_MIN_ITEMS", "INDEX_KINDS", "ExactIndex", "HNSWIndex", "StoreIndex",
           "build_index", "check_index_kind", "resolve_index_kind"]  # fmt: skip
