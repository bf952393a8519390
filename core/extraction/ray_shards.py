"""The worker side of the Ray Data engine (``recfeat extract --ray``): what runs inside a
``map_batches`` actor, and the shard files it leaves behind.

One batch of planned input rows (``ray_data.read_planned_file``: de-duplicated and
normalised as every engine's rows are) becomes one **shard**, named by a digest of the run's settings
and of the batch itself (source file and every row), and committed with a rename: a shard
file that exists is complete, so it is its own done-marker. A batch whose shard is already
there (a re-run after a killed driver, or Ray retrying the task of a killed actor) is not
encoded again, and writing the same shard twice gives the same file, so retries can neither
lose nor duplicate rows.

Files under the output folder ``OUT``:

- ``OUT/part-<shard>.parquet``: review level, the output itself (id columns + ``vector``,
  the layout of ``recfeat.data.features``).
- ``OUT/_partials/part-<shard>.parquet``: item/user level, per (group, text, rating) the
  number of rows and the float64 sum of their vectors; ``recfeat.extraction.ray_data``
  groups these on Ray into the item/user vectors.
- ``OUT/_stats/<shard>.parquet``: per distinct text of the shard its cache key, tokens kept
  and tokens dropped; the manifest's unique-text and truncation counts are these, grouped by
  key on Ray (so they are over the unique texts of the whole input, as the local engine's).

The encoder is rebuilt in the actor from its registry name and options (never pickled); the
batch runs through the stages of ``recfeat.extraction.stages`` (cleaning, unique texts, the
one encode loop in ``recfeat.encode.engine``).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from recfeat.atomic import temp_sibling, write_text
from recfeat.errors import DataError
from recfeat.extraction.cache import text_keys
from recfeat.extraction.cleaning import build_cleaner_chain
from recfeat.extraction.levels import l2_normalize_rows, rating_weights
from recfeat.extraction.stages import prepare_texts, rows_from_unique, text_token_stats
from recfeat.plugin.registry import get_registry

SHARD_FORMAT = "recfeat-ray-shard/2"
PARTIALS = "_partials"
STATS = "_stats"
PART_PREFIX = "part-"
LEVEL_PREFIX = "part-level-"
MANIFEST = "manifest.json"
RUN_RECORD = "run.json"
META_KEY = b"recfeat-shard"


def out_filesystem(out: str):
    """(pyarrow filesystem, path inside it) for a local folder or a URI (s3://, gs://...)."""
    import pyarrow.fs as pafs

    if "://" in out:
        fs, path = pafs.FileSystem.from_uri(out)
        return fs, path.rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(out)).rstrip("/")


LEVEL_FORMAT = "recfeat-ray-level/1"  # the footer mark of an item/user-level output file


def written_by_recfeat(fs, path: str) -> bool:
    """Whether ``path`` is a shard, stats or level file a recfeat run wrote (its Parquet
    footer carries recfeat's summary under ``META_KEY``): the only files a run may delete."""
    import pyarrow.parquet as pq

    try:
        with fs.open_input_file(path) as fh:
            meta = pq.read_schema(fh).metadata or {}
        return json.loads(meta[META_KEY]).get("format", "").startswith(("recfeat-ray-shard/", "recfeat-ray-level/"))
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return False


def exists(fs, path: str) -> bool:
    import pyarrow.fs as pafs

    return fs.get_file_info(path).type != pafs.FileType.NotFound


def commit_table(fs, table, path: str) -> None:
    """Write ``table`` to a temporary sibling and rename it to ``path``: readers see the whole
    file or none (temporary names carry the writer's pid, see ``recfeat.atomic``)."""
    import pyarrow.parquet as pq

    head, _, name = path.rpartition("/")
    tmp = f"{head}/{temp_sibling(name).name}"
    try:
        pq.write_table(table, tmp, filesystem=fs)
        fs.move(tmp, path)
    except BaseException:
        try:
            fs.delete_file(tmp)
        except OSError:
            pass
        raise


def commit_text(fs, path: str, text: str) -> None:
    """The text counterpart of :func:`commit_table` (manifest, run record)."""
    if type(fs).__name__ == "LocalFileSystem":
        write_text(path, text)
        return
    head, _, name = path.rpartition("/")
    tmp = f"{head}/{temp_sibling(name).name}"
    with fs.open_output_stream(tmp) as fh:
        fh.write(text.encode("utf-8"))
    fs.move(tmp, path)


def vector_column(vectors: np.ndarray, dtype=None):
    """A fixed-size-list column (the feature-file layout) from an (n, dim) array."""
    import pyarrow as pa

    vectors = np.ascontiguousarray(vectors)
    dim = int(vectors.shape[1])
    flat = pa.array(vectors.reshape(-1), type=dtype or pa.from_numpy_dtype(vectors.dtype))
    return pa.FixedSizeListArray.from_arrays(flat, dim)


def shard_name(rows, settings_digest: str, source: str) -> str:
    """Digest of the settings, the source file and every normalised row of the batch."""
    h = hashlib.sha256(settings_digest.encode())
    h.update(source.encode("utf-8", "surrogatepass"))
    for col in ("user", "item", "rating", "timestamp", "text"):
        h.update(b"\x00" + col.encode())
        values = rows[col].to_numpy()
        if values.dtype == object:
            for v in values:
                h.update(str(v).encode("utf-8", "surrogatepass") + b"\x1f")
        else:
            h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()[:32]


class ShardEncoder:
    """Ray Data callable class: one encoder and one cleaner chain per actor, loaded once in
    ``__init__``; ``__call__`` turns a batch of raw rows into one committed shard and returns
    one summary row (shard name, rows, empty texts, whether it was already there, pid)."""

    def __init__(self, job: dict[str, Any]):
        self.job = job
        self.encoder = get_registry("encoder").create(job["encoder"], **job["options"])
        self.cleaner = build_cleaner_chain(job["cleaners"])
        self.fs, self.root = out_filesystem(job["out"])
        self.key_digest = bytes.fromhex(job["key_digest"])
        self.pid = os.getpid()

    def __call__(self, batch):
        """``batch``: planned, normalised rows (``ray_data.read_planned_file``); each planned
        batch in it (column ``batch``) becomes one shard, so shard names do not depend on how
        Ray blocks the rows. One summary row per shard comes back."""
        import pandas as pd

        out = []
        for _, rows in batch.groupby("batch", sort=False):
            source = str(rows["path"].iloc[0])
            rows = rows.drop(columns=["path", "batch"]).reset_index(drop=True)
            name = shard_name(rows, self.job["settings_digest"], source)
            path = self._shard_path(name)
            done = exists(self.fs, path)
            summary = self._read_summary(path) if done else self._write(rows, name, path)
            out.append({**summary, "skipped": done, "pid": self.pid})
        return pd.DataFrame(out)

    # -- paths ------------------------------------------------------------------------------
    def _shard_path(self, name: str) -> str:
        folder = self.root if self.job["level"] == "review" else f"{self.root}/{PARTIALS}"
        return f"{folder}/{PART_PREFIX}{name}.parquet"

    def _read_summary(self, path: str) -> dict[str, Any]:
        import pyarrow.parquet as pq

        with self.fs.open_input_file(path) as fh:
            meta = pq.read_schema(fh).metadata or {}
        return json.loads(meta[META_KEY])

    # -- the work ---------------------------------------------------------------------------
    def _encode(self, rows):
        """(unique-text vectors float32, unique index per row or -1, unique keys, per-text
        stats, dim, masked values by kind): the stages of ``recfeat.extraction.stages`` on
        one batch."""
        ts = prepare_texts(rows["text"].tolist(), self.cleaner)
        dim = int(self.encoder.dim)
        if ts.unique:
            try:
                matrix = self.encoder.encode(ts.unique, per_text=True)
            except TypeError:  # an encoder without per-text statistics
                matrix = self.encoder.encode(ts.unique)
            matrix = np.asarray(matrix, dtype=np.float32)
            dim = int(matrix.shape[1])
            stats = text_token_stats(
                self.encoder, ts.unique, dict(getattr(self.encoder, "last_stats", None) or {})
            )
        else:
            matrix, stats = np.zeros((0, dim), dtype=np.float32), None
        if stats is None:
            stats = np.full((len(ts.unique), 2), -1, dtype=np.int64)  # counts unknown
        keys = text_keys(ts.unique, self.key_digest)
        return matrix, ts.columns, keys, stats, dim, ts.masked

    def _write(self, rows, name: str, path: str) -> dict[str, Any]:
        import pyarrow as pa

        matrix, columns, keys, stats, dim, masked = self._encode(rows)
        summary = {
            "format": SHARD_FORMAT, "shard": name, "rows": int(len(rows)),
            "empty": int((columns < 0).sum()), "blank": int((rows["text"] == "").sum()),
            # values masked by kind (counts, never the values), as JSON text: the summary
            # row travels through Arrow, which has no type for an empty dict
            "dim": dim, "masked": json.dumps(masked, sort_keys=True),
        }  # fmt: skip
        stats_table = pa.table({
            "key": pa.array(keys, type=pa.binary()),
            "tokens": pa.array(stats[:, 0], type=pa.int64()),
            "dropped": pa.array(stats[:, 1], type=pa.int64()),
        })  # fmt: skip
        # stats first: the shard is the done-marker, so it must be the last file written
        meta = {META_KEY: json.dumps(summary).encode()}  # what marks the file as recfeat's
        commit_table(self.fs, stats_table.replace_schema_metadata(meta),
                     f"{self.root}/{STATS}/{name}.parquet")  # fmt: skip
        if self.job["level"] == "review":
            table = self._review_table(rows, matrix, columns, dim)
        else:
            table = self._partial_table(rows, matrix, columns, keys, dim)
        commit_table(self.fs, table.replace_schema_metadata(meta), path)
        return summary

    def _review_table(self, rows, matrix, columns, dim):
        import pyarrow as pa

        vectors = rows_from_unique(matrix if len(matrix) else np.zeros((0, dim), np.float32),
                                   columns)  # fmt: skip
        ids = rows[["user", "item", "rating", "timestamp"]].reset_index(drop=True)
        table = pa.Table.from_pandas(ids, preserve_index=False)
        return table.append_column("vector", vector_column(vectors, pa.float32()))

    def _partial_table(self, rows, matrix, columns, keys, dim):
        """Per (group, text, rating): rows and the float64 sum of their vectors. Empty texts
        keep a row with no key, so a group whose every text is empty still appears."""
        import pandas as pd
        import pyarrow as pa

        group = rows[self.job["group_column"]].astype(str).to_numpy()
        rating = rows["rating"].to_numpy(dtype=np.float64)
        frame = pd.DataFrame({"g": group, "c": columns, "r": rating})
        codes, uniques = pd.MultiIndex.from_frame(frame).factorize()
        sums = np.zeros((len(uniques), dim), dtype=np.float64)
        has = columns >= 0
        np.add.at(sums, codes[has], matrix[columns[has]].astype(np.float64))
        counts = np.bincount(codes, minlength=len(uniques))
        col = np.asarray(uniques.get_level_values(1), dtype=np.int64)
        return pa.table({
            "group": pa.array(np.asarray(uniques.get_level_values(0), dtype=object), pa.string()),
            "key": pa.array([keys[c] if c >= 0 else None for c in col], type=pa.binary()),
            "rating": pa.array(np.asarray(uniques.get_level_values(2), dtype=np.float64)),
            "n": pa.array(counts.astype(np.int64)),
            "vsum": vector_column(sums, pa.float64()),
        })  # fmt: skip


def finish_groups(frame, *, low: float, weighted: bool, normalize: bool, id_column: str,
                  count_column: str):  # fmt: skip
    """``map_groups`` body: one group's partial rows -> its vector, as the local engine's
    ``levels.group_rows``: the (rating-weighted) mean over its rows with a non-empty text,
    duplicates counted; zero when it has none; ``count_column`` = its distinct texts."""
    import pyarrow as pa

    key = frame["key"]
    has = key.notna().to_numpy()
    n = frame["n"].to_numpy(dtype=np.float64)
    w = rating_weights(frame["rating"].to_numpy(), (low, low)) if weighted else np.ones(len(n))
    vsum = np.stack(frame["vsum"].to_numpy()) if len(frame) else np.zeros((0, 0))
    keep = has & (w > 0)
    total = float((w[keep] * n[keep]).sum())
    vec = (w[keep, None] * vsum[keep]).sum(axis=0, keepdims=True)
    vec = vec / total if total > 0 else np.zeros_like(vec)
    vec = vec.astype(np.float32)
    if normalize:
        vec = l2_normalize_rows(vec)
    distinct = len({bytes(k) for k in key[keep]})
    return pa.table({
        id_column: pa.array([str(frame["group"].iloc[0])], pa.string()),
        count_column: pa.array([distinct], pa.int64()),
        "vector": vector_column(vec, pa.float32()),
    })  # fmt: skip


def list_files(fs, folder: str, prefix: str = "", suffix: str = ".parquet") -> list[str]:
    import pyarrow.fs as pafs

    if not exists(fs, folder):
        return []
    found = fs.get_file_info(pafs.FileSelector(folder, recursive=False))
    return sorted(f.path for f in found if f.type == pafs.FileType.File
                  and f.base_name.startswith(prefix) and f.base_name.endswith(suffix))  # fmt: skip


def read_output(out: str):
    """``(ids, vectors float32 (n, dim), manifest)`` of a ``--ray`` output folder, rows in
    shard order. Refuses a folder without its manifest (an unfinished run)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, root = out_filesystem(out)
    if not exists(fs, f"{root}/{MANIFEST}"):
        raise DataError(f"{out} has no {MANIFEST}: the run did not finish; run it again to resume")
    with fs.open_input_file(f"{root}/{MANIFEST}") as fh:
        manifest = json.loads(fh.read().decode())
    prefix = PART_PREFIX if manifest["level"] == "review" else LEVEL_PREFIX
    tables = []
    for path in list_files(fs, root, prefix):
        if (manifest["level"] == "review" and path.rsplit("/", 1)[-1].startswith(LEVEL_PREFIX)) or (
            not written_by_recfeat(fs, path)
        ):  # another run's level files, or a file of the user's that only looks like ours
            continue
        with fs.open_input_file(path) as fh:
            tables.append(pq.read_table(fh).replace_schema_metadata(None))
    table = pa.concat_tables(tables) if tables else None
    if table is None or table.num_rows == 0:
        return None, np.zeros((0, manifest.get("dim", 0)), np.float32), manifest
    vec = table.column("vector").combine_chunks()
    vectors = vec.flatten().to_numpy().reshape(len(vec), -1).astype(np.float32)
    ids = table.drop_columns(["vector"]).to_pandas()
    return ids, vectors, manifest
