"""The stages every extraction engine runs, in this order, whatever reads the rows and
wherever the vectors go (``recfeat.extraction.pipeline`` in memory, ``stream`` in batches,
``ray_shards`` inside Ray actors):

1. de-duplication of repeated (user, item) rows: the loaders' ``validation.dedupe_latest``
   for a loaded dataset, ``sources.plan_rows`` (the same rule, in bounded memory) for files;
2. cleaning, and reduction to the unique non-empty cleaned texts (:func:`prepare_texts`);
3. cache lookup and the one encode loop, in fixed chunks (:func:`encode_texts`);
4. review/item/user aggregation (``recfeat.extraction.levels``).

Policies, recorded in every manifest (``recfeat.extraction.manifest``):

- **Empty texts.** A text that is empty or only whitespace after cleaning gets a zero vector,
  is never sent to the encoder, and is counted as ``empty_texts``. At item and user level
  such rows weigh nothing in the mean (see ``recfeat.extraction.levels``).
- **Long texts.** Texts over the encoder's ``max_length`` are truncated by the encoder and
  counted as ``truncated_texts`` over the unique texts. Each text's counts (tokens kept,
  tokens dropped) are stored with its vector in the cache, so a fresh, a cached and a
  resumed run report the same numbers. Texts whose counts are not known (an encoder that
  cannot tokenize, vectors cached by an older release) are counted in ``truncation_unknown``.
  A text over ``recfeat.encode.engine.LONG_TEXT_CHARS`` characters (131,072) is cut before
  tokenising, with the same kept tokens: its ``tokens_dropped`` counts only the tokens of
  the part tokenised (a lower bound); whether it was truncated is exact.
- **Identical texts** are encoded once per run and once ever per encoder setting: the vector
  cache (``recfeat.extraction.cache``) is keyed by the cleaned text and the encoder fingerprint.
- **Resumable.** Unique texts are encoded in fixed chunks (``chunk_size``, default 2,048) and
  each chunk is committed to the cache as it finishes, so a killed run loses at most one
  chunk; re-running continues from the cache and, because chunk boundaries are fixed by the
  input, encodes the same batches as an uninterrupted run and gives identical vectors.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from recfeat.config import component_spec
from recfeat.errors import DataError
from recfeat.extraction.cache import fingerprint_digest, iter_chunks, open_cache, text_keys
from recfeat.extraction.cleaning import DEFAULT_CLEANERS, build_cleaner_chain
from recfeat.plugin.registry import get_registry
from recfeat.progress import progress_bar

DEFAULT_ENCODER = "minilm"
DEFAULT_CHUNK_SIZE = 2048


@dataclasses.dataclass
class EncodeStats:
    """What the encoding step did: how many unique texts, how many came from the cache."""

    unique_texts: int = 0
    encoded: int = 0
    cached: int = 0
    chunks_encoded: int = 0
    tokens: int = 0
    truncated_texts: int = 0
    tokens_dropped: int = 0
    truncation_unknown: int = 0
    seconds: float = 0.0

    def add(self, other: EncodeStats) -> None:
        """Add ``other``'s counts to these (an engine that encodes in several calls)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

# -- texts ----------------------------------------------------------------------------------


@dataclasses.dataclass
class TextSet:
    """Rows of text reduced to the unique non-empty cleaned texts.

    ``columns[i]`` is row i's index into ``unique`` or -1 when its cleaned text is empty;
    ``masked``: values the chain's masking cleaners replaced, by kind, counted over the rows
    (a text in three rows counts three times, whichever engine cleaned it how often)."""

    unique: list[str]
    columns: np.ndarray
    empty: int
    masked: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.columns)


def prepare_texts(raw: Sequence[Any], cleaner) -> TextSet:
    """Clean each distinct raw text once, then deduplicate the cleaned texts."""
    raw = [t if isinstance(t, str) else "" for t in raw]
    distinct = list(dict.fromkeys(raw))
    masked: dict[str, int] = dict.fromkeys(getattr(cleaner, "masks", ()), 0)
    if hasattr(cleaner, "clean_counted"):
        cleaned, hits = cleaner.clean_counted(distinct)
        if hits:
            _add_row_counts(masked, hits, distinct, raw)
    else:
        cleaned = cleaner.clean(distinct) if cleaner is not None else distinct
    cleaned = [c if isinstance(c, str) else "" for c in cleaned]
    index: dict[str, int] = {}
    unique: list[str] = []
    by_raw: dict[str, int] = {}
    for r, c in zip(distinct, cleaned, strict=True):
        if not c.strip():
            by_raw[r] = -1
            continue
        if c not in index:
            index[c] = len(unique)
            unique.append(c)
        by_raw[r] = index[c]
    columns = np.fromiter((by_raw[t] for t in raw), dtype=np.int64, count=len(raw))
    return TextSet(unique=unique, columns=columns, empty=int((columns < 0).sum()), masked=masked)


def _add_row_counts(masked: dict[str, int], hits: dict[int, dict[str, int]],
                    distinct: list[str], raw: list[str]) -> None:  # fmt: skip
    """Add each distinct text's masked counts once per row that holds it."""
    import collections

    rows = collections.Counter(raw) if len(raw) != len(distinct) else None
    for i, counts in hits.items():
        times = rows[distinct[i]] if rows is not None else 1
        for kind, n in counts.items():
            masked[kind] = masked.get(kind, 0) + n * times


def add_masked(total: dict[str, int], more: dict[str, int] | None) -> dict[str, int]:
    """``total`` with ``more``'s counts added (the run's sum over batches), in place."""
    for kind, n in (more or {}).items():
        total[kind] = total.get(kind, 0) + int(n)
    return total


def rows_from_unique(matrix: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """One vector per row; rows with an empty text get zeros."""
    out = np.zeros((len(columns), matrix.shape[1]), dtype=np.float32)
    has = columns >= 0
    out[has] = matrix[columns[has]]
    return out


# -- encoding through the cache -------------------------------------------------------------


def text_token_stats(encoder, texts: Sequence[str], chunk_stats: dict[str, Any] | None = None):
    """``(n, 2)`` int64: tokens kept and tokens dropped by truncation for each text, or None
    when the encoder cannot say. Taken from the encoder's per-text statistics when it reports
    them (``n_kept``/``n_dropped`` in ``last_stats``), else from its ``tokenize``."""
    chunk_stats = chunk_stats or {}
    kept, dropped = chunk_stats.get("n_kept"), chunk_stats.get("n_dropped")
    if kept is not None and dropped is not None and len(kept) == len(dropped) == len(texts):
        return np.stack([np.asarray(kept), np.asarray(dropped)], axis=1).astype(np.int64)
    tokenize = getattr(encoder, "tokenize", None)
    if not callable(tokenize) or not texts:
        return None
    batch = tokenize(list(texts))
    return np.stack([batch.lengths, np.asarray(batch.n_dropped)], axis=1).astype(np.int64)


def encode_texts(
    texts: Sequence[str],
    encoder,
    cache=False,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool | None = None,
    description: str = "encoding",
) -> tuple[np.ndarray, EncodeStats]:
    """Vectors for ``texts`` (unique, non-empty), taken from ``cache`` where present.

    Missing texts are encoded chunk by chunk (fixed chunk boundaries over ``texts``) and each
    chunk is committed to the cache, with its texts' token statistics, before the next
    starts. The truncation counts in the returned stats are over all ``texts``, cached or
    not, so they do not depend on what the cache held."""
    start = time.perf_counter()
    if not hasattr(cache, "get_many"):
        with open_cache(cache) as opened:
            return encode_texts(
                texts, encoder, opened, chunk_size=chunk_size, progress=progress,
                description=description,
            )  # fmt: skip
    stats = EncodeStats(unique_texts=len(texts))
    n = len(texts)
    if n == 0:
        return np.zeros((0, int(encoder.dim)), dtype=np.float32), stats
    keys = text_keys(texts, fingerprint_digest(encoder.fingerprint()))
    out = _Vectors(n)
    per_text, hit = _from_cache(texts, keys, encoder, cache, out, stats)
    fallback = _encode_missing(texts, keys, hit, encoder, cache, out, per_text, stats,
                               chunk_size, progress, description)  # fmt: skip
    if stats.cached + stats.encoded != n:
        raise DataError(
            f"encoding returned {stats.cached + stats.encoded} of {n} vectors; rerun to resume"
        )
    has = per_text[:, 0] >= 0
    stats.tokens = int(per_text[has, 0].sum()) + fallback["tokens"]
    stats.truncated_texts = int((per_text[has, 1] > 0).sum()) + fallback["truncated_texts"]
    stats.tokens_dropped = int(per_text[has, 1].sum()) + fallback["tokens_dropped"]
    stats.truncation_unknown = int((~has).sum()) - fallback["texts"]
    stats.seconds = time.perf_counter() - start
    assert out.matrix is not None
    return out.matrix, stats


SANE_ABS = 1e6  # larger than any component an encoder writes; what is beyond is corruption


class _Vectors:
    """The (n, dim) result, allocated when the first vectors (cached or encoded) arrive."""

    def __init__(self, n: int):
        self.n = n
        self.matrix: np.ndarray | None = None

    def place(self, rows: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.matrix is None:
            self.matrix = np.zeros((self.n, vectors.shape[1]), dtype=np.float32)
        if vectors.shape != (len(rows), self.matrix.shape[1]):
            raise DataError(
                f"encoder returned vectors of shape {vectors.shape} for {len(rows)} texts "
                f"(expected dim {self.matrix.shape[1]}); clear the vector cache if the encoder "
                "changed"
            )
        if not np.isfinite(vectors).all():
            bad = int((~np.isfinite(vectors)).any(axis=1).sum())
            raise DataError(
                f"the encoder returned NaN or infinite vectors for {bad} of {len(rows)} texts; "
                "try --precision fp32 (fp16/bf16 can overflow) or report the encoder"
            )
        self.matrix[np.asarray(rows, dtype=np.int64)] = vectors


def _from_cache(texts, keys, encoder, cache, out: _Vectors, stats: EncodeStats):
    """Place the cached vectors; ``(per-text (tokens kept, dropped), -1 unknown; hit mask)``."""
    n = len(texts)
    found = cache.get_many(keys)
    known = cache.get_stats(keys) if hasattr(cache, "get_stats") else {}
    per_text = np.full((n, 2), -1, dtype=np.int64)
    for i, k in enumerate(keys):
        if k in known:
            per_text[i] = known[k]
    del known
    # The cache is a file on disk, so untrusted: a vector that is not finite or absurdly
    # large (no encoder writes 1e6) is treated as missing and encoded again.
    hit_rows = [i for i, k in enumerate(keys) if k in found]
    if hit_rows:
        cached = np.stack([found[keys[i]] for i in hit_rows]).astype(np.float32, copy=False)
        sane = np.isfinite(cached).all(axis=1) & (np.abs(cached) < SANE_ABS).all(axis=1)
        hit_rows = [i for i, ok in zip(hit_rows, sane, strict=True) if ok]
        out.place(hit_rows, cached[sane])
    stats.cached = len(hit_rows)
    del found
    # Vectors cached before their statistics were kept: tokenize those texts (no model
    # run) and record the counts, so this and every later run reports them.
    backfill = [i for i in hit_rows if per_text[i, 0] < 0]
    if backfill:
        st = text_token_stats(encoder, [texts[i] for i in backfill])
        if st is not None:
            per_text[backfill] = st
            cache.put_many([keys[i] for i in backfill], None, st)
    hit = np.zeros(n, dtype=bool)
    hit[hit_rows] = True
    return per_text, hit


def _encode_missing(texts, keys, hit, encoder, cache, out: _Vectors, per_text, stats,
                    chunk_size, progress, description) -> dict[str, int]:  # fmt: skip
    """Encode the texts not cached, in the fixed chunks, committing each to the cache;
    returns the chunk totals of texts encoded without per-text statistics."""
    fallback = {"tokens": 0, "truncated_texts": 0, "tokens_dropped": 0, "texts": 0}
    pending = [[i for i in chunk if not hit[i]] for chunk in iter_chunks(len(texts), chunk_size)]
    pending = [rows for rows in pending if rows]
    with progress_bar(len(texts), description, enabled=progress) as bar:
        bar.advance(stats.cached)
        for rows in pending:
            job = [texts[i] for i in rows]
            with bar.step(len(rows)):  # moved per encoded batch by encoders that report them
                vectors = encoder.encode(job)
            chunk_stats = dict(getattr(encoder, "last_stats", None) or {})
            out.place(rows, vectors)
            st = text_token_stats(encoder, job, chunk_stats)
            cache.put_many([keys[r] for r in rows], np.asarray(vectors, dtype=np.float32), st)
            if st is not None:
                per_text[rows] = st
            else:
                fallback["texts"] += len(rows)
                for field in ("tokens", "truncated_texts", "tokens_dropped"):
                    fallback[field] += int(chunk_stats.get(field, 0) or 0)
            stats.encoded += len(rows)
            stats.chunks_encoded += 1
    return fallback


# -- the components the stages use --------------------------------------------------------


def default_encoder(**options: Any):
    return get_registry("encoder").create(DEFAULT_ENCODER, **options)


def make_cleaner(cleaners: Any):
    """``None`` -> the default chain; a list of specs -> that chain (empty: no cleaning);
    anything with ``.clean(texts)`` is used as is."""
    if cleaners is not None and hasattr(cleaners, "clean"):
        return cleaners
    if cleaners is None:
        return build_cleaner_chain(DEFAULT_CLEANERS)
    if isinstance(cleaners, str):
        cleaners = [c.strip() for c in cleaners.split(",") if c.strip()]
    return build_cleaner_chain(list(cleaners))


def make_token_featurizer(token_features: Any):
    if token_features is None or hasattr(token_features, "transform"):
        return token_features
    name, options = component_spec(token_features)
    return get_registry("tokenizer").create(name, **options)

