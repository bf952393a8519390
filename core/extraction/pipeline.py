"""Feature extraction: a dataset's texts -> cleaned -> encoded (through the cache) -> vectors
per review, item or user, with a manifest saying exactly how they were made.

Policies, recorded in every manifest:

- **Empty texts.** A text that is empty or only whitespace after cleaning gets a zero vector,
  is never sent to the encoder, and is counted as ``empty_texts``. At item and user level
  such rows weigh nothing in the mean (see ``recfeat.extraction.levels``).
- **Long texts.** Texts over the encoder's ``max_length`` are truncated by the encoder and
  counted as ``truncated_texts`` over the unique texts. Each text's counts (tokens kept,
  tokens dropped) are stored with its vector in the cache, so a fresh, a cached and a
  resumed run report the same numbers. Texts whose counts are not known (an encoder that
  cannot tokenize, vectors cached by an older release) are counted in ``truncation_unknown``.
- **Identical texts** are encoded once per run and once ever per encoder setting: the vector
  cache (``recfeat.extraction.cache``) is keyed by the cleaned text and the encoder fingerprint.
- **Resumable.** Unique texts are encoded in fixed chunks (``chunk_size``, default 2,048) and
  each chunk is committed to the cache as it finishes, so a killed run loses at most one
  chunk; re-running continues from the cache and, because chunk boundaries are fixed by the
  input, encodes the same batches as an uninterrupted run and gives identical vectors.
- **No leakage.** User profiles (and item means over reviews) use ``train_interactions``
  when given; without it they use all interactions and the manifest says so.
- **Deterministic artefacts.** The manifest (in the Parquet metadata and the
  ``.manifest.json`` beside it) holds only what the vectors depend on, so the same input and
  settings give byte-identical files whether the run was fresh, cached or resumed (a cache
  filled by other inputs: see docs/reliability.md, "Deterministic outputs"). What
  varies between runs (timings, cache hits, paths) goes to the run record
  (``FeatureResult.run``, written as ``<stem>.run.json``).
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat import __version__
from recfeat.data.recdata import RecData
from recfeat.errors import DataError, UsageError
from recfeat.extraction.cache import (
    fingerprint_digest,
    iter_chunks,
    open_cache,
    text_keys,
    vector_fingerprint,
)
from recfeat.extraction.levels import (
    USER_SOURCES,
    Grouping,
    check_aggregate,
    check_level,
    group_rows,
    l2_normalize_rows,
    rating_weights,
    restrict_to_pairs,
)
from recfeat.progress import progress_bar

DEFAULT_ENCODER = "minilm"
DEFAULT_CHUNK_SIZE = 2048
EMPTY_POLICY = "zero vector, not encoded, counted in empty_texts"
VERSIONED_PACKAGES = (
    "numpy", "pandas", "pyarrow", "torch", "transformers", "tokenizers", "onnxruntime",
    "openvino", "scipy",
)  # fmt: skip


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


@dataclasses.dataclass
class FeatureResult:
    """``ids`` (one row per vector), ``vectors`` float32 (n, dim), ``manifest`` (what the
    vectors depend on; deterministic); plus the sparse token features (scipy CSR, rows
    aligned with ``ids``) when asked for, and ``run``: this run's record (timings, cache
    hits and misses, paths), kept out of the artefact."""

    ids: pd.DataFrame
    vectors: np.ndarray
    manifest: dict[str, Any]
    token_features: Any = None
    run: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_features(self):
        """The vectors as models and ``evaluate`` take them: ``Features`` keyed by item or
        user id, or ``ReviewVectors`` (one per review; models average training reviews)."""
        from recfeat.evaluation.protocol import features_from_table

        return features_from_table(self.ids, self.vectors, dict(self.manifest), where="extraction")

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (Parquet), ``<stem>.manifest.json``, ``<stem>.run.json`` and, with
        token features, ``<stem>.tokens.npz``, committed as one unit
        (``recfeat.atomic.atomic_files``): a failure or a kill leaves the complete earlier
        set or the complete new one, never a mix."""
        import json

        from recfeat.atomic import write_file
        from recfeat.data.features import write_features
        from recfeat.jsonable import jsonable

        path = Path(path)
        extra = {}
        if self.token_features is not None:
            tokens = self.token_features.tocsr()

            def write_tokens(tmp: Path) -> None:
                import scipy.sparse as sp

                with open(tmp, "wb") as fh:
                    sp.save_npz(fh, tokens)

            extra[token_features_path(path)] = write_tokens
        record = {**self.run, "outputs": [str(p) for p in self.output_paths(path)]}
        data = (json.dumps(jsonable(record), indent=2) + "\n").encode()
        extra[run_record_path(path)] = lambda tmp: write_file(tmp, data)
        return write_features(path, self.ids, self.vectors, self.manifest, extra=extra)

    def output_paths(self, path: str | Path) -> list[Path]:
        """Every file :meth:`save` writes for ``path``."""
        from recfeat.data.features import manifest_path

        paths = [Path(path), manifest_path(path), run_record_path(path)]
        return paths + ([token_features_path(path)] if self.token_features is not None else [])


def _stem(path: Path) -> str:
    return path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.name


def token_features_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(_stem(path) + ".tokens.npz")


def run_record_path(path: str | Path) -> Path:
    """``<stem>.run.json``: the run record beside a features file."""
    path = Path(path)
    return path.with_name(_stem(path) + ".run.json")


# -- texts ----------------------------------------------------------------------------------


@dataclasses.dataclass
class TextSet:
    """Rows of text reduced to the unique non-empty cleaned texts.

    ``columns[i]`` is row i's index into ``unique`` or -1 when its cleaned text is empty."""

    unique: list[str]
    columns: np.ndarray
    empty: int

    @property
    def rows(self) -> int:
        return len(self.columns)


def prepare_texts(raw: Sequence[Any], cleaner) -> TextSet:
    """Clean each distinct raw text once, then deduplicate the cleaned texts."""
    raw = [t if isinstance(t, str) else "" for t in raw]
    distinct = list(dict.fromkeys(raw))
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
    return TextSet(unique=unique, columns=columns, empty=int((columns < 0).sum()))


def rows_from_unique(matrix: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """One vector per row; rows with an empty text get zeros."""
    out = np.zeros((len(columns), matrix.shape[1]), dtype=np.float32)
    has = columns >= 0
    out[has] = matrix[columns[has]]
    return out


# -- encoding through the cache -------------------------------------------------------------

Runner = Callable[[list[list[str]]], Iterator[tuple[int, np.ndarray, dict[str, Any]]]]


def local_runner(encoder) -> Runner:
    """Encode chunks one after another in this process."""

    def run(jobs: list[list[str]]):
        for i, job in enumerate(jobs):
            vectors = encoder.encode(job)
            yield i, vectors, dict(getattr(encoder, "last_stats", None) or {})

    return run


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
    runner: Runner | None = None,
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
                runner=runner, description=description,
            )  # fmt: skip
    stats = EncodeStats(unique_texts=len(texts))
    n = len(texts)
    if n == 0:
        return np.zeros((0, int(encoder.dim)), dtype=np.float32), stats
    keys = text_keys(texts, fingerprint_digest(encoder.fingerprint()))
    found = cache.get_many(keys)
    known = cache.get_stats(keys) if hasattr(cache, "get_stats") else {}
    per_text = np.full((n, 2), -1, dtype=np.int64)  # tokens kept, dropped; -1: unknown
    for i, k in enumerate(keys):
        if k in known:
            per_text[i] = known[k]
    del known
    # Texts encoded without per-text statistics: their chunk totals, for this run only.
    fallback = {"tokens": 0, "truncated_texts": 0, "tokens_dropped": 0, "texts": 0}
    out: np.ndarray | None = None

    def place(rows: Sequence[int], vectors: np.ndarray) -> None:
        nonlocal out
        vectors = np.asarray(vectors, dtype=np.float32)
        if out is None:
            out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
        if vectors.shape != (len(rows), out.shape[1]):
            raise DataError(
                f"encoder returned vectors of shape {vectors.shape} for {len(rows)} texts "
                f"(expected dim {out.shape[1]}); clear the vector cache if the encoder changed"
            )
        out[np.asarray(rows, dtype=np.int64)] = vectors

    hit_rows = [i for i, k in enumerate(keys) if k in found]
    if hit_rows:
        place(hit_rows, np.stack([found[keys[i]] for i in hit_rows]))
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
    pending = [[i for i in chunk if not hit[i]] for chunk in iter_chunks(n, chunk_size)]
    pending = [rows for rows in pending if rows]
    jobs = [[texts[i] for i in rows] for rows in pending]
    run = runner or local_runner(encoder)
    with progress_bar(n, description, enabled=progress) as bar:
        bar.advance(stats.cached)
        for i, vectors, chunk_stats in run(jobs):
            rows = pending[i]
            place(rows, vectors)
            st = text_token_stats(encoder, jobs[i], chunk_stats)
            cache.put_many([keys[r] for r in rows], np.asarray(vectors, dtype=np.float32), st)
            if st is not None:
                per_text[rows] = st
            else:
                fallback["texts"] += len(rows)
                for field in ("tokens", "truncated_texts", "tokens_dropped"):
                    fallback[field] += int(chunk_stats.get(field, 0) or 0)
            stats.encoded += len(rows)
            stats.chunks_encoded += 1
            bar.advance(len(rows))
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
    assert out is not None
    return out, stats


# -- extraction -----------------------------------------------------------------------------


def default_encoder(**options: Any):
    from recfeat.plugin.registry import get_registry

    return get_registry("encoder").create(DEFAULT_ENCODER, **options)


def make_cleaner(cleaners: Any):
    """``None`` -> the default chain; a list of specs -> that chain (empty: no cleaning);
    anything with ``.clean(texts)`` is used as is."""
    if cleaners is not None and hasattr(cleaners, "clean"):
        return cleaners
    from recfeat.extraction.cleaning import DEFAULT_CLEANERS, build_cleaner_chain

    if cleaners is None:
        return build_cleaner_chain(DEFAULT_CLEANERS)
    if isinstance(cleaners, str):
        cleaners = [c.strip() for c in cleaners.split(",") if c.strip()]
    return build_cleaner_chain(list(cleaners))


def make_token_featurizer(token_features: Any):
    if token_features is None or hasattr(token_features, "transform"):
        return token_features
    from recfeat.config import component_spec
    from recfeat.plugin.registry import get_registry

    name, options = component_spec(token_features)
    return get_registry("tokenizer").create(name, **options)


class _Extraction:
    """One extraction run: holds the shared cleaner, encoder, cache and running counts."""

    def __init__(self, data, encoder, cleaner, cache, featurizer, chunk_size, progress, runner):
        self.data = data
        self.encoder = encoder
        self.cleaner = cleaner
        self.cache = cache
        self.featurizer = featurizer
        self.chunk_size = chunk_size
        self.progress = progress
        self.runner = runner
        self.stats = EncodeStats()
        self.text_rows = 0
        self.empty_texts = 0
        self.normalize = bool(encoder.fingerprint().get("normalize", False))

    def encode_rows(self, raw: Sequence[Any], what: str):
        """(matrix of unique texts, TextSet, sparse token matrix or None)."""
        ts = prepare_texts(raw, self.cleaner)
        self.text_rows += ts.rows
        self.empty_texts += ts.empty
        matrix, stats = encode_texts(
            ts.unique, self.encoder, self.cache, chunk_size=self.chunk_size,
            progress=self.progress, runner=self.runner, description=f"encoding {what}",
        )  # fmt: skip
        for f in dataclasses.fields(EncodeStats):
            setattr(self.stats, f.name, getattr(self.stats, f.name) + getattr(stats, f.name))
        tokens = None
        if self.featurizer is not None:
            tokens = self.featurizer.fit_transform(ts.unique).tocsr().astype(np.float32)
        return matrix, ts, tokens

    def aggregate(self, grouping: Grouping, matrix, tokens):
        vectors = grouping.apply(matrix)
        if self.normalize:
            vectors = l2_normalize_rows(vectors)
        return vectors, (grouping.apply(tokens) if tokens is not None else None)


def _token_rows(tokens, columns: np.ndarray):
    import scipy.sparse as sp

    if tokens is None:
        return None
    has = (columns >= 0).astype(np.float32)
    picked = (
        tokens[np.maximum(columns, 0)]
        if tokens.shape[0]
        else sp.csr_matrix((len(columns), tokens.shape[1]), dtype=np.float32)
    )
    return (sp.diags(has) @ picked).tocsr().astype(np.float32)


def _require_reviews(data: RecData, why: str) -> pd.DataFrame:
    if data.reviews is None or len(data.reviews) == 0:
        raise DataError(f"dataset {data.name!r} has no review texts, {why}")
    return data.reviews


def _id_frame(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return table[[c for c in columns if c in table.columns]].reset_index(drop=True)


def extract(
    data: RecData,
    level: str = "review",
    encoder=None,
    cleaners: Any = None,
    *,
    aggregate: str | None = None,
    user_from: str = "auto",
    train_interactions: pd.DataFrame | None = None,
    cache: Any = None,
    token_features: Any = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool | None = None,
    ray: bool = False,
) -> FeatureResult:
    """Turn ``data``'s texts into one vector per review, item or user.

    - ``level='review'``: one vector per review row.
    - ``level='item'``: from the item texts when the dataset has them (MovieLens titles,
      genres and tags) and ``aggregate`` is not given; otherwise the ``aggregate``
      (``mean`` default, or ``rating-weighted``) of the item's review vectors.
    - ``level='user'``: the aggregate of the vectors of what the user rated, from their
      reviews (``user_from='reviews'``) or from the rated items' vectors
      (``user_from='items'``); ``auto`` uses reviews when the dataset has them.
      Only ``train_interactions`` are used when given, so evaluation data never leaks.

    ``encoder`` defaults to ``minilm``; ``cleaners`` to the default chain (a list of names
    or specs, or an empty list for none); ``cache`` to the shared on-disk cache (``False``
    disables it, a path picks its folder); ``token_features`` names a sparse token
    featuriser (``hashed-bow``, ``tfidf``) whose output rides along as ``token_features``.
    See the module docstring for the empty-text, truncation and resume policies.
    """
    start = time.perf_counter()
    check_level(level)
    check_aggregate(aggregate)
    if user_from not in USER_SOURCES:
        raise UsageError(
            f"unknown user source {user_from!r}; use one of: {', '.join(USER_SOURCES)}"
        )
    if chunk_size < 1:
        raise UsageError(f"chunk size must be at least 1, got {chunk_size}")
    if level == "review" and aggregate is not None:
        raise UsageError("--aggregate applies to item and user level, not review level")
    encoder = encoder if encoder is not None else default_encoder()
    cleaner = make_cleaner(cleaners)
    featurizer = make_token_featurizer(token_features)
    runner = None
    if ray:
        from recfeat.extraction.ray_runner import ray_runner

        runner = ray_runner(encoder)
    own_cache = not hasattr(cache, "get_many")
    store = open_cache(cache) if own_cache else cache
    try:
        run = _Extraction(data, encoder, cleaner, store, featurizer, chunk_size, progress, runner)
        ids, vectors, tokens, details = _build_level(
            run, level, aggregate, user_from, train_interactions
        )
    finally:
        if own_cache:
            store.close()
    manifest = _manifest(run, level, details, featurizer)
    record = run_record(run, store, time.perf_counter() - start)
    return FeatureResult(
        ids=ids, vectors=vectors, manifest=manifest, token_features=tokens, run=record
    )


def _build_level(run: _Extraction, level, aggregate, user_from, train):
    data = run.data
    scope = "train" if train is not None else "all"
    if level == "review":
        table = _require_reviews(data, "so there are no review-level features; use --level item")
        matrix, ts, tokens = run.encode_rows(table["text"].tolist(), "reviews")
        ids = _id_frame(table, ("user", "item", "rating", "timestamp"))
        details = {"source": "reviews", "aggregate": None}
        return ids, rows_from_unique(matrix, ts.columns), _token_rows(tokens, ts.columns), details
    if level == "item":
        return _item_level(run, aggregate, train)
    # user level
    source = user_from
    if source == "auto":
        source = "reviews" if data.reviews is not None and len(data.reviews) else "items"
    mode = aggregate or "mean"
    if source == "reviews":
        table = _require_reviews(
            data, "so user profiles cannot come from reviews; use --user-from items"
        )
        if train is not None:
            table = restrict_to_pairs(table, train)
        matrix, ts, tokens = run.encode_rows(table["text"].tolist(), "reviews")
        grouping = group_rows(
            table["user"].astype(str).to_numpy(), ts.columns, len(ts.unique),
            _weights(mode, table["rating"], data),
        )  # fmt: skip
        vectors, tok = run.aggregate(grouping, matrix, tokens)
        details = {"source": "user reviews", "aggregate": mode}
    else:
        item_ids, item_vectors, item_tokens, item_details = _item_level(run, None, train)
        inter = data.interactions if train is None else train
        index = {k: i for i, k in enumerate(item_ids["item"].astype(str))}
        columns = np.fromiter(
            (index.get(str(k), -1) for k in inter["item"]), dtype=np.int64, count=len(inter)
        )
        grouping = group_rows(
            inter["user"].astype(str).to_numpy(), columns, len(item_ids),
            _weights(mode, inter["rating"], data),
        )  # fmt: skip
        vectors, tok = run.aggregate(grouping, item_vectors, item_tokens)
        details = {
            "source": "vectors of rated items",
            "aggregate": mode,
            "item_source": item_details["source"],
        }
    details.update(
        interactions=scope,
        rows_used=grouping.rows_used,
        empty_groups=grouping.empty_groups,
    )
    if scope == "all":
        details["interactions_note"] = (
            "profiles use all interactions; pass the training split (train_interactions) "
            "before evaluating, or test data leaks into the features"
        )
    count_col = "n_texts" if source == "reviews" else "n_items"
    ids = pd.DataFrame({"user": grouping.labels.astype(str), count_col: _group_sizes(grouping)})
    return ids, vectors, tok, details


def _group_sizes(grouping: Grouping) -> np.ndarray:
    """Distinct non-empty texts (or items) behind each group's vector."""
    return np.diff(grouping.matrix.indptr).astype(np.int64)


def _item_level(run: _Extraction, aggregate, train):
    data = run.data
    has_item_text = data.items is not None and len(data.items) > 0
    if aggregate is None and has_item_text:
        table = data.items
        matrix, ts, tokens = run.encode_rows(table["text"].tolist(), "item texts")
        ids = _id_frame(table, ("item",))
        details = {"source": "item texts", "aggregate": None}
        return ids, rows_from_unique(matrix, ts.columns), _token_rows(tokens, ts.columns), details
    mode = aggregate or "mean"
    table = _require_reviews(
        data, "and no item texts either, so there is nothing to build item features from"
    )
    if train is not None:
        table = restrict_to_pairs(table, train)
    matrix, ts, tokens = run.encode_rows(table["text"].tolist(), "reviews")
    grouping = group_rows(
        table["item"].astype(str).to_numpy(), ts.columns, len(ts.unique),
        _weights(mode, table["rating"], data),
    )  # fmt: skip
    vectors, tok = run.aggregate(grouping, matrix, tokens)
    ids = pd.DataFrame({"item": grouping.labels.astype(str), "n_texts": _group_sizes(grouping)})
    details = {
        "source": "item reviews",
        "aggregate": mode,
        "interactions": "train" if train is not None else "all",
        "rows_used": grouping.rows_used,
        "empty_groups": grouping.empty_groups,
    }
    return ids, vectors, tok, details


def _weights(mode: str, ratings: pd.Series, data: RecData) -> np.ndarray | None:
    if mode == "mean":
        return None
    return rating_weights(pd.to_numeric(ratings, errors="coerce").to_numpy(), data.rating_scale)


def package_versions() -> dict[str, str]:
    """Versions of recfeat, Python and the numeric stack, read without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"recfeat": __version__, "python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


# What is a location, not a setting: kept out of the artefact, recorded in the run record.
_DATASET_LOCATION_FIELDS = ("file", "path", "folder")


def _manifest(run: _Extraction, level, details, featurizer) -> dict[str, Any]:
    """What the vectors depend on, and nothing that varies from run to run (no timings, no
    cache statistics, no paths): the same input and settings give the same manifest."""
    fp = run.encoder.fingerprint()
    vfp = vector_fingerprint(fp)
    s = run.stats
    spec = run.cleaner.spec() if hasattr(run.cleaner, "spec") else repr(run.cleaner)
    dataset = {k: v for k, v in run.data.summary().items() if k not in _DATASET_LOCATION_FIELDS}
    return {
        "recfeat": __version__,
        "level": level,
        **details,
        "encoder": vfp,
        "encoder_name": fp.get("encoder", getattr(run.encoder, "name", None)),
        "weights_sha256": fp.get("weights_sha256"),
        "pooling": fp.get("pooling"),
        "precision": fp.get("precision"),
        "max_length": fp.get("max_length"),
        "backend": fp.get("backend"),
        "tokenizer": (
            vfp.get("tokenizer_files_sha256")
            or vfp.get("tokenizer")
            or vfp.get("source")
            or vfp.get("model")
        ),  # fmt: skip
        "random_init": bool(fp.get("random_init", fp.get("init") == "random")),
        "cache_key_fields": sorted(vfp),
        "cleaners": spec,
        "token_features": (
            None
            if featurizer is None
            else {"name": getattr(featurizer, "name", None), **featurizer.get_options()}
            if hasattr(featurizer, "get_options")
            else repr(featurizer)
        ),  # fmt: skip
        "text_rows": run.text_rows,
        "unique_texts": s.unique_texts,
        "empty_texts": run.empty_texts,
        "empty_policy": EMPTY_POLICY,
        "truncated_texts": s.truncated_texts,
        "tokens_dropped": s.tokens_dropped,
        "tokens_encoded": s.tokens,
        "truncation_unknown": s.truncation_unknown,
        "dataset": dataset,
        "versions": package_versions(),
    }


def run_record(run: _Extraction, store, elapsed: float) -> dict[str, Any]:
    """This run's record: what it took and where things were (``<stem>.run.json``)."""
    import datetime as dt

    fp = run.encoder.fingerprint()
    s = run.stats
    summary = run.data.summary()
    return {
        "format": "recfeat-run/1",
        "recfeat": __version__,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "encoder": {k: v for k, v in fp.items() if k not in vector_fingerprint(fp)},
        "dataset": {k: summary[k] for k in _DATASET_LOCATION_FIELDS if k in summary},
        "cache": {
            "path": None if getattr(store, "path", None) is None else str(store.path),
            "hits": s.cached,
            "misses": s.encoded,
        },
        "encoded_texts": s.encoded,
        "cached_texts": s.cached,
        "chunks_encoded": s.chunks_encoded,
        "encode_seconds": round(s.seconds, 3),
        "elapsed_s": round(elapsed, 3),
    }
