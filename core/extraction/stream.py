"""Extraction in bounded memory: read reviews in batches, encode, write as it goes.

The in-memory path (``recfeat.extraction.pipeline.extract``) holds the dataset, every
unique text and every vector at once. This one holds one batch of rows, one chunk of texts
and, at item/user level, one running sum per id, so peak memory is set by the batch, the
chunk and the model, not by the corpus. It gives the same files:

- **Same rows.** A first pass (``recfeat.extraction.sources.plan_rows``, which the Ray
  engine runs too) plans de-duplication as the loaders do it (latest timestamp per
  (user, item), ties to the later line), keeping only 64-bit hashes of the ids (24 bytes a
  row); bad rows fail here, before any encoding. The second pass reads again and keeps the
  planned rows (``sources.iter_planned``).
- **Same vectors.** Unique cleaned texts are taken in first-seen order and encoded in the
  same fixed chunks of ``chunk_size`` through the same ``encode_texts`` (the one encode loop
  and the vector cache), so the batches the model sees are the in-memory path's and the
  vectors are identical. Rows wait only until their text's chunk is encoded; a text met
  again later is read back from the cache (with ``cache=False`` a private temporary cache
  stands in, so the user's cache is neither read nor written). Resuming works as before:
  every finished chunk is in the cache.
- **Same file.** Review vectors go to Parquet row groups (``pyarrow.parquet.ParquetWriter``)
  in the temporary of one ``atomic_files`` commit with the manifest and run record; the
  schema, id columns and manifest (``manifest.build_manifest``, the same counts) are the
  in-memory path's, so the two outputs are interchangeable. Item/user level keep
  ``(sum of weighted vectors, total weight)`` per id, then divide and re-normalise as
  ``levels.group_rows`` does, and write through ``FeatureResult.save``.

Not streamed (``why_not_streamed`` says which applies): MovieLens folders and item texts
(whole-table loaders), ``train_interactions``, token features, ``user_from='items'``, Ray.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.atomic import TMP_PREFIX, atomic_files, clean_stale, temp_sibling, write_file
from recfeat.data.features import VECTOR_COLUMN, manifest_path
from recfeat.errors import DataError, UsageError
from recfeat.extraction.cache import NoCache, VectorCache, fingerprint_digest, open_cache, text_keys
from recfeat.extraction.levels import l2_normalize_rows, rating_weights
from recfeat.extraction.manifest import (
    build_manifest,
    build_run_record,
    check_request,
    level_details,
    masked_counts,
    run_record_path,
)
from recfeat.extraction.pipeline import FeatureResult
from recfeat.extraction.records import stream_format
from recfeat.extraction.results import FileResult
from recfeat.extraction.sources import ID_COLUMNS, iter_planned, plan_rows
from recfeat.extraction.stages import (
    DEFAULT_CHUNK_SIZE,
    EncodeStats,
    add_masked,
    default_encoder,
    encode_texts,
    make_cleaner,
    prepare_texts,
)
from recfeat.jsonable import jsonable
from recfeat.progress import progress_bar

DEFAULT_BATCH_ROWS = 4096
RECENT_HASHES = 1 << 16  # text hashes kept in a Python set before merging into the array


# -- when streaming applies -----------------------------------------------------------------


def why_not_streamed(path, fmt: str = "auto", options: dict[str, Any] | None = None, *,
                     level: str = "review", user_from: str = "auto", train: Any = None,
                     token_features: Any = None, ray: bool = False,
                     backend: str | None = None) -> str | None:  # fmt: skip
    """None when this extraction can stream, else the reason (one phrase) it cannot."""
    if path is None:
        return "the input is the built-in sample"
    if ray:
        return "--ray runs its own engine"
    if backend == "auto":
        return "--backend auto measures the backends on the loaded dataset"
    if train is not None:
        return "--train restricts profiles to training interactions"
    if token_features:
        return "token features are fitted on every text at once"
    if level == "user" and user_from == "items":
        return "user profiles from item vectors need every item vector"
    try:
        found = stream_format(path, fmt, options)
    except DataError:
        return None if Path(str(path)).expanduser().exists() else "the input does not exist"
    if found is None:
        return "this input format is read whole (MovieLens folders, item text tables)"
    return None


# -- pass 2: texts -> chunks -> vectors ------------------------------------------------------


class _Seen:
    """Set of 64-bit text hashes in little memory: a sorted array plus a small Python set
    merged into it now and then (8 bytes per text instead of a Python object)."""

    def __init__(self):
        self.base = np.zeros(0, dtype=np.uint64)
        self.recent: set[int] = set()

    def add_new(self, hashes: np.ndarray) -> np.ndarray:
        """Mask of ``hashes`` (distinct) not seen before; they are added."""
        if len(self.base):
            pos = np.searchsorted(self.base, hashes)
            in_base = self.base[np.minimum(pos, len(self.base) - 1)] == hashes
        else:
            in_base = np.zeros(len(hashes), dtype=bool)
        new = np.array([not b and int(h) not in self.recent for h, b in zip(hashes, in_base, strict=True)],
                       dtype=bool)  # fmt: skip
        self.recent.update(int(h) for h in hashes[new])
        # A fixed bound on the Python set (~70 bytes an entry), not one that grows with the
        # corpus: merging costs O(n) per 65,536 texts, a few seconds over a million.
        if len(self.recent) >= RECENT_HASHES:
            self._merge()
        return new

    def _merge(self) -> None:
        merged = np.fromiter(self.recent, dtype=np.uint64, count=len(self.recent))
        merged.sort()
        self.recent = set()
        # merged and base are disjoint and sorted: one linear merge, no sort of the whole
        self.base = np.insert(self.base, np.searchsorted(self.base, merged), merged)


def _key_hashes(keys: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(k[:8] for k in keys), dtype=np.uint64).copy()


class _Rows:
    """Kept rows waiting for their vectors: id columns, each row's text key (None: empty)."""

    def __init__(self):
        self.frames: list[Any] = []
        self.keys: list[list[bytes | None]] = []
        self.start = 0  # global row number of the first waiting row
        self.count = 0

    def add(self, frame, keys: list[bytes | None]) -> None:
        self.frames.append(frame)
        self.keys.append(keys)
        self.count += len(frame)

    def take(self, upto: int):
        """Rows with global number < ``upto``: (frame, keys)."""
        import pandas as pd

        frames, keys, n = [], [], 0
        while self.frames and self.start + n < upto:
            frame, fkeys = self.frames[0], self.keys[0]
            room = upto - (self.start + n)
            if len(frame) <= room:
                frames.append(frame)
                keys.extend(fkeys)
                n += len(frame)
                self.frames.pop(0)
                self.keys.pop(0)
            else:
                frames.append(frame.iloc[:room])
                keys.extend(fkeys[:room])
                self.frames[0] = frame.iloc[room:]
                self.keys[0] = fkeys[room:]
                n += room
        self.start += n
        self.count -= n
        if not frames:
            return None, []
        return pd.concat(frames, ignore_index=True), keys


class _Streamer:
    """Pass 2: clean each batch, queue new unique texts, encode full chunks (the in-memory
    path's boundaries), hand rows whose vectors are known to ``sink(frame, keys, vectors)``."""

    def __init__(self, encoder, cleaner, cache, chunk_size: int, sink: Callable, bar):
        self.encoder = encoder
        self.cleaner = cleaner
        self.cache = cache
        self.chunk_size = chunk_size
        self.sink = sink
        self.bar = bar
        self.digest = fingerprint_digest(encoder.fingerprint())
        self.stats = EncodeStats()
        self.text_rows = 0
        self.empty_texts = 0
        self.masked = masked_counts(cleaner)
        self.seen = _Seen()
        self.pending: list[tuple[str, bytes, int]] = []  # (text, key, first row) in order
        self.recent: dict[bytes, np.ndarray] = {}
        self.rows = _Rows()
        self.counted = 0  # rows the bar has counted (row numbers below it)
        self.dim: int | None = None

    def add(self, frame, raw_texts) -> None:
        ts = prepare_texts(raw_texts, self.cleaner)
        self.text_rows += ts.rows
        self.empty_texts += ts.empty
        if self.masked is not None:
            add_masked(self.masked, ts.masked)
        ukeys = text_keys(ts.unique, self.digest)
        base = self.rows.start + self.rows.count
        if ukeys:
            new = self.seen.add_new(_key_hashes(ukeys))
            # first row of each unique text (every unique text has at least one row)
            cols = ts.columns
            has = np.flatnonzero(cols >= 0)
            _, at = np.unique(cols[has], return_index=True)
            first = has[at]
            for j in np.flatnonzero(new):
                self.pending.append((ts.unique[j], ukeys[j], base + int(first[j])))
        keys = [ukeys[c] if c >= 0 else None for c in ts.columns]
        self.rows.add(frame.reset_index(drop=True), keys)
        self._encode(final=False)

    def finish(self) -> None:
        self._encode(final=True)

    def _encode(self, final: bool) -> None:
        while len(self.pending) >= self.chunk_size or (final and self.pending):
            chunk = self.pending[: self.chunk_size]
            del self.pending[: self.chunk_size]
            # the rows this chunk completes: the bar moves through them batch by batch
            done = self.pending[0][2] if self.pending else self.rows.start + self.rows.count
            with self.bar.step(max(done - self.counted, 0), of=len(chunk)):
                vectors, stats = encode_texts(
                    [t for t, _, _ in chunk], self.encoder, self.cache,
                    chunk_size=self.chunk_size, progress=False, description="encoding reviews",
                )  # fmt: skip
            self.counted = max(self.counted, done)
            self.stats.add(stats)
            self.dim = int(vectors.shape[1])
            self.recent.update((k, v) for (_, k, _), v in zip(chunk, vectors, strict=True))
        upto = self.pending[0][2] if self.pending else self.rows.start + self.rows.count
        frame, keys = self.rows.take(upto)
        if frame is not None:
            self.sink(frame, keys, self._vectors(keys))
        self.bar.advance(max(upto - self.counted, 0))  # rows of texts known before
        self.counted = max(self.counted, upto)
        self.recent = {}  # later rows with these texts read them back from the cache

    def _vectors(self, keys: list[bytes | None]) -> np.ndarray:
        dim = self.dim if self.dim is not None else int(self.encoder.dim)
        out = np.zeros((len(keys), dim), dtype=np.float32)
        missing = list({k for k in keys if k is not None and k not in self.recent})
        found = self.cache.get_many(missing) if missing else {}
        lost = [k for k in missing if k not in found]
        if lost:
            raise DataError(
                f"{len(lost)} vectors encoded earlier in this run are no longer in the vector "
                f"cache {getattr(self.cache, 'path', '')}; was it cleared meanwhile? rerun"
            )
        for i, k in enumerate(keys):
            if k is not None:
                out[i] = self.recent[k] if k in self.recent else found[k]
        return out


# -- sinks: Parquet row groups, or running sums per id ---------------------------------------


class _ParquetSink:
    """Review rows + vectors appended to a Parquet file as row groups; the schema (and its
    metadata, the manifest) is the one ``write_features`` writes in one go."""

    def __init__(self, path: Path):
        self.path = path
        self.writer = None
        self.schema = None
        self.rows = 0

    def __call__(self, frame, keys, vectors: np.ndarray) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        dim = int(vectors.shape[1])
        flat = pa.array(
            np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32()
        )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.append_column(VECTOR_COLUMN, pa.FixedSizeListArray.from_arrays(flat, dim))
        table = table.replace_schema_metadata(None)
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table.cast(self.schema))
        self.rows += len(frame)

    def close(self, meta: dict[str, Any], id_columns: list[str], dim: int) -> None:
        """Finish the file with ``meta`` as the schema's ``recfeat`` metadata."""
        import base64
        import json

        import pyarrow.parquet as pq

        blob = json.dumps(jsonable(meta)).encode()
        if self.writer is None:  # no rows: an empty table of the right shape
            import pandas as pd

            frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in id_columns})
            self(frame, [], np.zeros((0, dim), dtype=np.float32))
        schema = self.schema.with_metadata({b"recfeat": blob})
        # The Arrow schema is stored in the footer under ARROW:schema; a key given here
        # replaces the writer's own, so readers see the manifest as schema metadata exactly
        # as in a file written by ``pq.write_table`` (checked below, and by the tests).
        self.writer.add_key_value_metadata({
            b"ARROW:schema": base64.b64encode(schema.serialize().to_pybytes()),
            b"recfeat": blob,
        })  # fmt: skip
        self.writer.close()
        got = pq.read_schema(self.path).metadata or {}
        if got.get(b"recfeat") != blob:
            raise DataError(
                f"pyarrow did not keep the manifest in {self.path}; rerun with --no-stream"
            )

    def abort(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()


class _GroupSink:
    """Item or user vectors as running sums: per id the weighted vector sum and total
    weight, and (hashed) which distinct texts fed it, for ``n_texts``."""

    def __init__(self, column: str, mode: str, rating_scale):
        self.column = column
        self.mode = mode
        self.rating_scale = rating_scale
        self.index: dict[str, int] = {}
        self.sums: np.ndarray | None = None
        self.weights = np.zeros(0, dtype=np.float64)
        self.pairs: list[np.ndarray] = []  # (group, text hash) per used row
        self.rows_used = 0

    def __call__(self, frame, keys, vectors: np.ndarray) -> None:
        labels = frame[self.column].astype(str).tolist()
        idx = np.fromiter((self.index.setdefault(x, len(self.index)) for x in labels),
                          dtype=np.int64, count=len(labels))  # fmt: skip
        n_groups, dim = len(self.index), int(vectors.shape[1])
        if self.sums is None:
            self.sums = np.zeros((0, dim), dtype=np.float64)
        if n_groups > len(self.weights):
            grow = max(n_groups, 2 * len(self.weights))
            sums = np.zeros((grow, dim), dtype=np.float64)
            sums[: len(self.sums)] = self.sums
            weights = np.zeros(grow, dtype=np.float64)
            weights[: len(self.weights)] = self.weights
            self.sums, self.weights = sums, weights
        if self.mode == "mean":
            w = np.ones(len(labels))
        else:
            w = rating_weights(frame["rating"].to_numpy(dtype=np.float64), self.rating_scale)
        has = np.array([k is not None for k in keys], dtype=bool) & (w > 0)
        if not has.any():
            return
        rows = np.flatnonzero(has)
        np.add.at(self.sums, idx[rows], vectors[rows].astype(np.float64) * w[rows, None])
        np.add.at(self.weights, idx[rows], w[rows])
        texts = _key_hashes([keys[r] for r in rows])
        self.pairs.append(np.stack([idx[rows].astype(np.uint64), texts], axis=1))
        self.rows_used += len(rows)

    def result(self, normalize: bool, dim: int):
        import pandas as pd

        n = len(self.index)
        labels = np.array(list(self.index), dtype=object)
        sums = self.sums[:n] if self.sums is not None else np.zeros((n, dim))
        totals = self.weights[:n]
        vectors = np.divide(sums, totals[:, None], out=np.zeros_like(sums),
                            where=totals[:, None] > 0).astype(np.float32)  # fmt: skip
        sizes = np.zeros(n, dtype=np.int64)
        if self.pairs:
            pairs = np.unique(np.concatenate(self.pairs), axis=0)
            sizes = np.bincount(pairs[:, 0].astype(np.int64), minlength=n).astype(np.int64)
        order = np.argsort(labels.astype(str), kind="stable")  # the in-memory path sorts ids
        vectors, sizes, labels, totals = vectors[order], sizes[order], labels[order], totals[order]
        if normalize:
            vectors = l2_normalize_rows(vectors)
        ids = pd.DataFrame({self.column: labels.astype(str), "n_texts": sizes})
        return ids, vectors, int((totals == 0).sum())


# -- the run ----------------------------------------------------------------------------------


def stream_extract(
    path: str | Path,
    out: str | Path,
    level: str = "review",
    encoder=None,
    cleaners: Any = None,
    *,
    fmt: str = "auto",
    options: dict[str, Any] | None = None,
    aggregate: str | None = None,
    user_from: str = "auto",
    cache: Any = None,
    chunk_size: int | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: bool | None = None,
    echo: Callable[[str], None] | None = None,
) -> FileResult:
    """Extract ``path`` (a row-streamable file or folder of shards) at ``level`` straight
    into ``out`` (Parquet + ``.manifest.json`` + ``.run.json``, committed as one unit), in
    memory bounded by ``batch_rows`` rows and ``chunk_size`` texts. Same options, vectors and
    manifest as ``pipeline.extract`` on the loaded dataset (see the module docstring)."""
    start = time.perf_counter()
    chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size)
    check_request(level, aggregate, user_from, chunk_size)
    if batch_rows < 1:
        raise UsageError(f"batch rows must be at least 1, got {batch_rows}")
    if level == "user" and user_from == "items":
        raise UsageError("user profiles from item vectors are not streamed; use extract()")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    found = stream_format(path, fmt, options)
    if found is None:
        raise UsageError(f"{path}: this input is read whole, not streamed; use extract()")
    mode = aggregate or "mean"
    plan = plan_rows(path, found, options, batch_rows,
                     want_ratings=level != "review" and mode == "rating-weighted")
    if echo:
        echo(
            f"streaming {plan.summary['name']}: {plan.summary['interactions']:,} interactions, "
            f"{plan.summary['reviews']:,} reviews ({time.perf_counter() - start:.1f} s to plan)"
        )
    encoder = encoder if encoder is not None else default_encoder()
    cleaner = make_cleaner(cleaners)
    return _run(path, Path(out), level, found, options, batch_rows, plan, encoder, cleaner,
                cache, chunk_size, mode, progress, start)  # fmt: skip


def _open_store(cache, out: Path, stack: contextlib.ExitStack):
    """(store used for encoding, store named in the run record)."""
    import shutil

    own = not hasattr(cache, "get_many")
    store = open_cache(cache) if own else cache
    if own:
        stack.callback(store.close)
    if isinstance(store, NoCache):
        # Rows whose text was encoded chunks ago read it back from here. A recfeat temporary
        # beside the output, so a killed run's folder is removed by the next run there
        # (``atomic.clean_stale``), as its half-written Parquet is.
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out.parent)
        folder = temp_sibling(out.with_name(out.name + ".vectors"), TMP_PREFIX)
        folder.mkdir()
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        private = VectorCache.in_dir(folder)
        stack.callback(private.close)
        return private, store
    return store, store


def _run(path, out: Path, level, found, options, batch_rows, plan, encoder, cleaner,
         cache, chunk_size, mode, progress, start) -> FileResult:  # fmt: skip
    import json

    normalize = bool(encoder.fingerprint().get("normalize", False))
    kept = int(plan.keep.sum())
    with contextlib.ExitStack() as stack:
        store, named = _open_store(cache, out, stack)
        commit = None
        if level == "review":
            paths = [out, manifest_path(out), run_record_path(out)]
            commit = stack.enter_context(atomic_files(paths))
            sink: Any = _ParquetSink(commit[out])
            stack.callback(sink.abort)
        else:
            sink = _GroupSink("item" if level == "item" else "user", mode, plan.rating_scale)
        bar = stack.enter_context(progress_bar(kept, f"encoding reviews ({level} level, streamed)",
                                               enabled=progress))  # fmt: skip
        streamer = _Streamer(encoder, cleaner, store, chunk_size, sink, bar)
        blank = 0
        for batch in iter_planned(path, found, options, plan.keep, batch_rows):
            blank += int((batch["text"] == "").sum())
            streamer.add(batch[ID_COLUMNS], batch["text"].tolist())
        streamer.finish()
        summary = plan.dataset_summary(blank)
        dim = streamer.dim if streamer.dim is not None else int(encoder.dim)
        if level == "review":
            details = level_details(level, "reviews")
        else:
            ids, vectors, empty_groups = sink.result(normalize, dim)
            details = level_details(level, f"{level} reviews", mode, rows_used=sink.rows_used,
                                    empty_groups=empty_groups)  # fmt: skip
        manifest = build_manifest(
            encoder=encoder, cleaner=cleaner, level=level, details=details,
            stats=streamer.stats, text_rows=streamer.text_rows,
            empty_texts=streamer.empty_texts, dataset=summary,
        )  # fmt: skip
        record = build_run_record(encoder=encoder, stats=streamer.stats, dataset=summary,
                                  store=named, elapsed=time.perf_counter() - start,
                                  engine="stream", masked=streamer.masked)  # fmt: skip
        if level != "review":
            result = FeatureResult(ids=ids, vectors=vectors, manifest=manifest, run=record)
            stack.close()
            result.save(out)
            return FileResult(out, manifest, result.run, len(ids), dim)
        meta = {**manifest, "rows": sink.rows, "dim": dim, "id_columns": ID_COLUMNS}
        sink.close(meta, ID_COLUMNS, dim)
        record = {**record, "outputs": [str(p) for p in paths]}
        write_file(commit[paths[1]], (json.dumps(jsonable(meta), indent=2) + "\n").encode())
        write_file(commit[paths[2]], (json.dumps(jsonable(record), indent=2) + "\n").encode())
    return FileResult(out, manifest, record, sink.rows, dim)
