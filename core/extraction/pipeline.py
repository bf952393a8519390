"""The in-memory extraction engine: a loaded dataset (``RecData``) -> the stages of
``recfeat.extraction.stages`` -> vectors per review, item or user in memory
(``FeatureResult``), with the manifest of ``recfeat.extraction.manifest``.

The same stages run in the streamed engine (``recfeat.extraction.stream``: a file read in
batches, written as it goes) and on Ray (``recfeat.extraction.ray_data``); for one input the
three give the same rows, ``rows_used``, vectors and manifest (tests/test_engines_agree.py).

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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat.atomic import write_file
from recfeat.data.features import (
    features_from_table,
    manifest_path,
    write_features,
    write_token_features,
)
from recfeat.data.recdata import RecData
from recfeat.errors import DataError
from recfeat.extraction.cache import open_cache
from recfeat.extraction.levels import (
    Grouping,
    group_rows,
    l2_normalize_rows,
    rating_weights,
    restrict_to_pairs,
)
from recfeat.extraction.manifest import (
    build_manifest,
    build_run_record,
    check_request,
    level_details,
    masked_counts,
    run_record_path,
    token_features_path,
)
from recfeat.extraction.stages import (
    DEFAULT_CHUNK_SIZE,
    EncodeStats,
    add_masked,
    default_encoder,
    encode_texts,
    make_cleaner,
    make_token_featurizer,
    prepare_texts,
    rows_from_unique,
)
from recfeat.jsonable import jsonable


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
    #: the tokenizer id of each token-feature column (tfidf), None when not decodable
    token_columns: Any = None

    def to_features(self):
        """The vectors as models and ``evaluate`` take them: ``Features`` keyed by item or
        user id, or ``ReviewVectors`` (one per review; models average training reviews);
        token features ride along."""
        return features_from_table(self.ids, self.vectors, dict(self.manifest),
                                   where="extraction", tokens=self.token_features,
                                   token_columns=self.token_columns)  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (Parquet), ``<stem>.manifest.json``, ``<stem>.run.json`` and, with
        token features, ``<stem>.tokens.npz``, committed as one unit
        (``recfeat.atomic.atomic_files``): a failure or a kill leaves the complete earlier
        set or the complete new one, never a mix."""
        import json

        path = Path(path)
        extra = {}
        if self.token_features is not None:
            tokens, columns = self.token_features.tocsr(), self.token_columns

            def write_tokens(tmp: Path) -> None:
                with open(tmp, "wb") as fh:
                    write_token_features(fh, tokens, columns)

            extra[token_features_path(path)] = write_tokens
        record = {**self.run, "outputs": [str(p) for p in self.output_paths(path)]}
        data = (json.dumps(jsonable(record), indent=2) + "\n").encode()
        extra[run_record_path(path)] = lambda tmp: write_file(tmp, data)
        return write_features(path, self.ids, self.vectors, self.manifest, extra=extra)

    def output_paths(self, path: str | Path) -> list[Path]:
        """Every file :meth:`save` writes for ``path``."""
        paths = [Path(path), manifest_path(path), run_record_path(path)]
        return paths + ([token_features_path(path)] if self.token_features is not None else [])



# -- the run --------------------------------------------------------------------------------


class _Extraction:
    """One extraction run: holds the shared cleaner, encoder, cache and running counts."""

    def __init__(self, data, encoder, cleaner, cache, featurizer, chunk_size, progress):
        self.data = data
        self.encoder = encoder
        self.cleaner = cleaner
        self.cache = cache
        self.featurizer = featurizer
        self.chunk_size = chunk_size
        self.progress = progress
        self.stats = EncodeStats()
        self.text_rows = 0
        self.empty_texts = 0
        self.masked = masked_counts(cleaner)
        self.normalize = bool(encoder.fingerprint().get("normalize", False))

    def encode_rows(self, raw: Sequence[Any], what: str):
        """(matrix of unique texts, TextSet, sparse token matrix or None)."""
        ts = prepare_texts(raw, self.cleaner)
        self.text_rows += ts.rows
        self.empty_texts += ts.empty
        if self.masked is not None:
            add_masked(self.masked, ts.masked)
        matrix, stats = encode_texts(
            ts.unique, self.encoder, self.cache, chunk_size=self.chunk_size,
            progress=self.progress, description=f"encoding {what}",
        )  # fmt: skip
        self.stats.add(stats)
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
    See ``recfeat.extraction.stages`` for the empty-text, truncation and resume policies.
    """
    start = time.perf_counter()
    check_request(level, aggregate, user_from, chunk_size)
    encoder = encoder if encoder is not None else default_encoder()
    cleaner = make_cleaner(cleaners)
    featurizer = make_token_featurizer(token_features)
    own_cache = not hasattr(cache, "get_many")
    store = open_cache(cache) if own_cache else cache
    try:
        run = _Extraction(data, encoder, cleaner, store, featurizer, chunk_size, progress)
        ids, vectors, tokens, details = _build_level(
            run, level, aggregate, user_from, train_interactions
        )
    finally:
        if own_cache:
            store.close()
    summary = data.summary()
    manifest = build_manifest(
        encoder=encoder, cleaner=cleaner, level=level, details=details, stats=run.stats,
        text_rows=run.text_rows, empty_texts=run.empty_texts, dataset=summary,
        featurizer=featurizer,
    )  # fmt: skip
    record = build_run_record(encoder=encoder, stats=run.stats, dataset=summary, store=store,
                              elapsed=time.perf_counter() - start, masked=run.masked)  # fmt: skip
    columns = featurizer.token_columns() if hasattr(featurizer, "token_columns") else None
    return FeatureResult(
        ids=ids, vectors=vectors, manifest=manifest, token_features=tokens, run=record,
        token_columns=columns if tokens is not None else None,
    )

def _build_level(run: _Extraction, level, aggregate, user_from, train):
    data = run.data
    if level == "review":
        table = _require_reviews(data, "so there are no review-level features; use --level item")
        matrix, ts, tokens = run.encode_rows(table["text"].tolist(), "reviews")
        ids = _id_frame(table, ("user", "item", "rating", "timestamp"))
        details = level_details(level, "reviews")
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
        extra: dict[str, Any] = {}
        name = "user reviews"
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
        extra = {"item_source": item_details["source"]}
        name = "vectors of rated items"
    details = level_details(level, name, mode, train=train is not None,
                            rows_used=grouping.rows_used, empty_groups=grouping.empty_groups,
                            **extra)  # fmt: skip
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
        details = level_details("item", "item texts")
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
    details = level_details("item", "item reviews", mode, train=train is not None,
                            rows_used=grouping.rows_used, empty_groups=grouping.empty_groups)
    return ids, vectors, tok, details


def _weights(mode: str, ratings: pd.Series, data: RecData) -> np.ndarray | None:
    if mode == "mean":
        return None
    return rating_weights(pd.to_numeric(ratings, errors="coerce").to_numpy(), data.rating_scale)

