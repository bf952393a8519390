"""The Ray Data engine (``recfeat extract --ray DATA --out DIR/``): the driver plans, the
workers do the work.

The driver never holds the data. It lists the input files, joins (or starts) Ray, and
builds one Ray Dataset: the workers read the files (``read_json`` incl. .gz, ``read_csv``,
``read_parquet``; local paths or any URI pyarrow's filesystems take), map each raw batch to
review rows with ``recfeat.extraction.records.normalize_frame`` (the loaders' own mapping),
clean and encode it on an actor pool (``recfeat.extraction.ray_shards.ShardEncoder``: one
encoder per actor) and commit one Parquet shard per batch into ``DIR/``. What comes back to
the driver is one small summary row per shard. Item and user vectors are grouped sums on
Ray (``groupby().map_groups`` over the shards' partial sums), written by the workers too.
The driver writes ``DIR/run.json`` and, last, ``DIR/manifest.json`` (atomically): a folder
with a manifest is complete.

Resume: shards are named by their content and settings and a shard file that exists is
complete (see ``ray_shards``), so a re-run (after a killed driver) and Ray's retries (after a
killed actor: actors restart, tasks are retried) skip what was written. Shards that this run
did not produce (left by a run with other settings) are removed before the manifest is
written, so the folder holds exactly this run's rows.

The manifest has the local engine's fields and counts (``pipeline._manifest``), with the
unique-text counts grouped by cache key over the whole input, as the local engine does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import types
from typing import Any

from recfeat.errors import DataError, RecfeatError, UsageError, require
from recfeat.extraction.ray_shards import (
    PART_PREFIX,
    PARTIALS,
    SHARD_FORMAT,
    STATS,
    ShardEncoder,
    commit_text,
    exists,
    finish_groups,
    out_filesystem,
)

DEFAULT_BATCH_ROWS = 1024
READ_CPUS = 0.25  # reading is light next to encoding; whole CPUs stay free for the actors
MANIFEST = "manifest.json"
RUN_RECORD = "run.json"
LEVEL_PREFIX = "part-level-"
_KINDS = {
    "json": (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"),
    "csv": (".csv", ".tsv", ".csv.gz", ".tsv.gz"),
    "parquet": (".parquet", ".pq"),
}


@dataclasses.dataclass
class RayOptions:
    """Where and how wide: ``address`` None starts a local Ray with this machine's CPUs;
    ``actors`` (min, max) sizes the encoder pool (Ray scales between them)."""

    address: str | None = None
    actors: tuple[int, int] = (1, 1)
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    batch_rows: int = DEFAULT_BATCH_ROWS
    connect_timeout_s: float = 15.0


def parse_actors(text: str | int | None) -> tuple[int, int]:
    """``"2"`` -> (2, 2); ``"1-4"`` -> (1, 4)."""
    if text is None:
        return (1, 1)
    raw = str(text).strip()
    lo, sep, hi = raw.partition("-")
    try:
        low, high = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise UsageError(f"--actors {raw}: give a number (2) or a range MIN-MAX (1-4)") from None
    if low < 1 or high < low:
        raise UsageError(f"--actors {raw}: need 1 <= MIN <= MAX")
    return (low, high)


# -- inputs ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Inputs:
    paths: list[str]
    filesystem: Any
    kind: str  # json, csv, parquet
    fmt: str  # the normalize_frame format: amazon, jsonl, csv, parquet
    label: str


def _kind(name: str) -> str | None:
    low = name.lower()
    for kind, suffixes in _KINDS.items():
        if low.endswith(suffixes):
            return kind
    return None


def resolve_inputs(data: str, fmt: str | None, options: dict[str, Any]) -> Inputs:
    """The input files (one file, or a folder's shards) and the format to map them with.
    Local paths are checked here; a path only the driver sees fails on the workers and is
    reported by :func:`explain_failure`."""
    import pyarrow.fs as pafs

    uri = "://" in str(data)
    if uri:
        try:
            fs, path = pafs.FileSystem.from_uri(str(data))
        except (ValueError, OSError) as exc:  # ArrowInvalid is a ValueError
            raise UsageError(f"input {data}: not a URI pyarrow can open ({exc})") from None
    else:
        fs, path = pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(str(data)))
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise DataError(f"input path {data} does not exist; check the path (every Ray node "
                        "must see it too: a shared folder or a URI)")  # fmt: skip
    if info.type == pafs.FileType.Directory:
        found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        paths = sorted(
            f.path for f in found
            if f.type == pafs.FileType.File and _kind(f.base_name)
            and not f.base_name.startswith((".", "_"))
        )  # fmt: skip
        if not paths:
            raise DataError(f"folder {data} holds no .json(l)[.gz], .csv[.gz] or .parquet files")
    else:
        paths = [path]
    kinds = {_kind(p.rsplit("/", 1)[-1]) for p in paths}
    if None in kinds or len(kinds) != 1:
        raise UsageError(f"input {data}: --ray reads JSON Lines (.json, .jsonl, .gz), CSV or "
                         "Parquet, one kind per folder")  # fmt: skip
    kind = kinds.pop()
    return Inputs(paths, fs, kind, _stream_format(data, uri, fs, paths, kind, fmt, options),
                  label=str(data).rstrip("/").rsplit("/", 1)[-1])  # fmt: skip


def _stream_format(data, uri, fs, paths, kind, fmt, options) -> str:
    from recfeat.extraction.records import STREAMABLE, stream_format

    if fmt not in (None, "", "auto"):
        fmt = {"tsv": "csv", "ndjson": "jsonl"}.get(fmt, fmt)
        if fmt not in STREAMABLE:
            raise UsageError(f"--ray reads formats {', '.join(STREAMABLE)}, not {fmt}")
        return fmt
    if not uri:
        found = stream_format(data, "auto", options)
        if found is None:
            raise UsageError(f"{data}: --ray reads review files (formats "
                             f"{', '.join(STREAMABLE)}); run this one without --ray")  # fmt: skip
        return found
    if kind != "json":
        return kind
    obj = _first_line(fs, paths[0])
    try:
        obj = json.loads(obj)
    except ValueError:
        obj = {}
    return "amazon" if isinstance(obj, dict) and {"reviewerID", "asin"} <= set(obj) else "jsonl"


def _first_line(fs, path: str) -> bytes:
    with fs.open_input_stream(path, compression="detect") as fh:
        return fh.read(1 << 16).split(b"\n", 1)[0]


def read_dataset(ray, inputs: Inputs):
    """The input as a Ray Dataset, read on the workers; a ``path`` column names each row's
    file (for error messages and shard names)."""
    args = {"filesystem": inputs.filesystem, "include_paths": True, "num_cpus": READ_CPUS}
    if inputs.kind == "json":
        return ray.data.read_json(inputs.paths, **args)  # pyarrow, newline-delimited
    if inputs.kind == "csv":
        import csv

        import pyarrow as pa
        import pyarrow.csv as pacsv

        # every column as text, as the local loader reads CSV (ids keep leading zeros)
        first = inputs.paths[0]
        sep = "\t" if first.lower().removesuffix(".gz").endswith(".tsv") else ","
        header = next(csv.reader([_first_line(inputs.filesystem, first).decode("utf-8-sig")],
                                 delimiter=sep))  # fmt: skip
        return ray.data.read_csv(
            inputs.paths,
            parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=True
            ),
            **args,
        )
    return ray.data.read_parquet(inputs.paths, **args)


# -- errors ---------------------------------------------------------------------------------


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__


def explain_failure(exc: BaseException, *, data: str, batch_rows: int) -> BaseException:
    """One clear recfeat error for what went wrong on the workers (or ``exc`` itself)."""
    import ray.exceptions as rex

    for e in _chain(exc):
        if isinstance(e, RecfeatError):
            # a RayTaskError poses as its cause's type; give the cause without Ray's text
            return _plain(e) if isinstance(e, rex.RayError) else e
        if isinstance(e, (rex.OutOfMemoryError, MemoryError)):
            return DataError(
                f"a Ray worker ran out of memory on a batch of {batch_rows} rows; lower "
                f"--batch-rows (now {batch_rows}) or --batch-tokens, or give each actor more "
                "memory (fewer --actors per node)"
            )
        if isinstance(e, (FileNotFoundError, PermissionError)):
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return DataError(
                f"the Ray workers cannot read the input {data} ({why[:200]}); put it on "
                "storage every node sees (a shared folder, or a URI such as s3://bucket/path)"
            )
    return exc


def _plain(e: BaseException) -> RecfeatError:
    """The recfeat error a worker raised, without Ray's traceback text around it."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, RecfeatError):
        return cause
    text = str(e).strip().splitlines()
    base = next((c for c in type(e).__mro__ if issubclass(c, RecfeatError)
                 and not c.__module__.startswith("ray")), DataError)  # fmt: skip
    return base(text[-1] if text else type(e).__name__)


# -- the run --------------------------------------------------------------------------------


def _settings_digest(parts: dict[str, Any]) -> str:
    from recfeat.jsonable import jsonable

    canon = json.dumps(jsonable(parts), sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def _list(fs, folder: str, prefix: str = "", suffix: str = ".parquet") -> list[str]:
    import pyarrow.fs as pafs

    if not exists(fs, folder):
        return []
    found = fs.get_file_info(pafs.FileSelector(folder, recursive=False))
    return sorted(f.path for f in found if f.type == pafs.FileType.File
                  and f.base_name.startswith(prefix) and f.base_name.endswith(suffix))  # fmt: skip


def _check_out(out: str, inputs: Inputs):
    import pyarrow.fs as pafs

    fs, root = out_filesystem(out)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise UsageError(f"--out {out} is a file; with --ray give a folder (DIR/)")
    in_root = inputs.paths[0] if len(inputs.paths) == 1 else os.path.commonpath(inputs.paths)
    if type(fs) is type(inputs.filesystem) and any(
        p == root or p.startswith(root + "/") for p in inputs.paths
    ):  # fmt: skip
        raise UsageError(f"--out {out} holds the input ({in_root}); choose another folder")
    for sub in ("", f"/{STATS}", f"/{PARTIALS}"):
        fs.create_dir(root + sub, recursive=True)
    return fs, root


def extract_ray(
    data: str,
    out: str,
    *,
    encoder,
    cleaner,
    level: str = "review",
    fmt: str | None = None,
    aggregate: str | None = None,
    user_from: str = "auto",
    loader_options: dict[str, Any] | None = None,
    options: RayOptions | None = None,
) -> dict[str, Any]:
    """Run the Ray Data engine over ``data``; return the manifest written to ``out/``."""
    from recfeat.extraction.cache import fingerprint_digest, vector_fingerprint
    from recfeat.extraction.levels import check_aggregate, check_level
    from recfeat.extraction.ray_runner import connect, options_for_actor

    start = time.perf_counter()
    opts = options or RayOptions()
    ray = require("ray", "ray", "--ray")
    require("ray.data", "ray", "--ray")
    check_level(level)
    check_aggregate(aggregate)
    if level == "review" and aggregate:
        raise UsageError("--aggregate applies to --level item or user, not review")
    if level == "user" and user_from == "items":
        raise UsageError("--ray builds user profiles from reviews; --user-from items needs the "
                         "local engine (drop --ray)")  # fmt: skip
    if opts.batch_rows < 1:
        raise UsageError(f"--batch-rows must be at least 1, got {opts.batch_rows}")
    loader_options = dict(loader_options or {})
    inputs = resolve_inputs(data, fmt, loader_options)
    fs, root = _check_out(out, inputs)
    fp = encoder.fingerprint()
    spec = cleaner.spec() if hasattr(cleaner, "spec") else list(cleaner)
    job = {
        "encoder": encoder.name,
        "options": options_for_actor(encoder),
        "cleaners": spec,
        "fmt": inputs.fmt,
        "loader_options": loader_options,
        "level": level,
        "group_column": "item" if level == "item" else "user",
        "out": out,
        "key_digest": fingerprint_digest(fp).hex(),
    }
    job["settings_digest"] = _settings_digest({
        "shard": SHARD_FORMAT, "encoder": vector_fingerprint(fp), "cleaners": spec,
        "fmt": inputs.fmt, "loader_options": loader_options,
        "kind": "review" if level == "review" else job["group_column"],
    })  # fmt: skip
    connect(opts.address, timeout_s=opts.connect_timeout_s)
    _quiet(ray)
    try:
        shards = _encode_shards(ray, inputs, job, opts)
        _remove_stale(fs, root, {s["shard"] for s in shards}, level)
        counts = _unique_counts(ray, fs, root, shards)
        details, rows, dim, id_columns = _finish_level(
            ray, fs, root, shards, level, aggregate, data_format=inputs.fmt,
            normalize=bool(fp.get("normalize", False)), loader_options=loader_options,
        )  # fmt: skip
    except RecfeatError:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into one line, or re-raised
        raise explain_failure(exc, data=data, batch_rows=opts.batch_rows) from exc
    text_rows = sum(s["rows"] for s in shards)
    empty = sum(s["empty"] for s in shards)
    manifest = _build_manifest(encoder, cleaner, level, details, counts, text_rows, empty,
                               inputs)  # fmt: skip
    manifest.update(rows=rows, dim=dim, id_columns=id_columns, engine="ray",
                    shards=len(shards))  # fmt: skip
    record = {
        "format": "recfeat-run/1",
        "engine": "ray",
        "address": opts.address or "local",
        "actors": list(opts.actors),
        "batch_rows": opts.batch_rows,
        "inputs": inputs.paths,
        "shards": len(shards),
        "shards_written": sum(not s["skipped"] for s in shards),
        "shards_skipped": sum(bool(s["skipped"]) for s in shards),
        "actor_pids": sorted({int(s["pid"]) for s in shards}),
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    from recfeat.jsonable import jsonable

    commit_text(fs, f"{root}/{RUN_RECORD}", json.dumps(jsonable(record), indent=2) + "\n")
    commit_text(fs, f"{root}/{MANIFEST}", json.dumps(jsonable(manifest), indent=2) + "\n")
    return manifest


def _quiet(ray) -> None:
    import logging

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    # Ray 2.60's V2 Parquet reader imports fsspec's HTTP filesystem, which fails without
    # aiohttp; the V1 reader takes the same paths and filesystems.
    if hasattr(ctx, "use_datasource_v2"):
        ctx.use_datasource_v2 = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _encode_shards(ray, inputs: Inputs, job: dict[str, Any], opts: RayOptions) -> list[dict]:
    low, high = opts.actors
    ds = read_dataset(ray, inputs).map_batches(
        ShardEncoder,
        fn_constructor_kwargs={"job": job},
        batch_size=opts.batch_rows,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high),
        num_cpus=opts.cpus_per_actor,
        num_gpus=opts.gpus_per_actor or None,
        # Ray Data's actor pools default to max_restarts=-1 and max_task_retries=-1: a killed
        # actor is restarted and its batch retried (the shard commit is idempotent)
    )
    shards = ds.take_all()
    names = [s["shard"] for s in shards]
    if len(set(names)) != len(names):
        raise DataError(
            "two input batches are identical row for row, so their shards would collide; "
            "change --batch-rows"
        )
    return shards


def _remove_stale(fs, root: str, keep: set[str], level: str) -> None:
    """Shards of this folder that this run did not produce (other settings, other input)."""
    folders = [(root, PART_PREFIX)] if level == "review" else [(f"{root}/{PARTIALS}", PART_PREFIX)]
    folders.append((f"{root}/{STATS}", ""))
    for folder, prefix in folders:
        for path in _list(fs, folder, prefix):
            base = path.rsplit("/", 1)[-1]
            if base.startswith(LEVEL_PREFIX):
                continue
            name = base.removeprefix(prefix).removesuffix(".parquet")
            if name not in keep:
                fs.delete_file(path)
    if level == "review":  # an earlier item/user run in the same folder
        for path in _list(fs, root, LEVEL_PREFIX):
            fs.delete_file(path)


def _partitions(ray, shards: int) -> int:
    """Shuffle partitions for a grouping pass: one per cluster CPU, at most one per shard
    (Ray's default of 200 costs more in task start-up than a small corpus takes to group)."""
    cpus = int(ray.cluster_resources().get("CPU", 1) or 1)
    return max(1, min(shards, 2 * cpus))


def _unique_counts(ray, fs, root: str, shards: list[dict]) -> dict[str, int]:
    """unique_texts, tokens, truncated_texts, tokens_dropped, truncation_unknown over the
    distinct texts of the whole input: the shards' per-text statistics grouped by key."""
    from ray.data.aggregate import Max

    files = [f"{root}/{STATS}/{s['shard']}.parquet" for s in shards]
    if not files:
        return dict.fromkeys(("unique", "tokens", "truncated", "dropped", "unknown"), 0)
    per_text = (
        ray.data.read_parquet(files, filesystem=fs)
        .groupby("key", num_partitions=_partitions(ray, len(files)))
        .aggregate(Max("tokens", alias_name="tokens"), Max("dropped", alias_name="dropped"))
    )

    def flags(batch):
        import numpy as np

        known = batch["tokens"] >= 0
        return {
            "one": np.ones(len(known), dtype=np.int64),
            "tokens": np.where(known, batch["tokens"], 0),
            "dropped": np.where(known, batch["dropped"], 0),
            "truncated": (known & (batch["dropped"] > 0)).astype(np.int64),
            "unknown": (~known).astype(np.int64),
        }

    sums = per_text.map_batches(flags, batch_format="numpy").sum(
        ["one", "tokens", "dropped", "truncated", "unknown"]
    )
    if sums is None:
        return dict.fromkeys(("unique", "tokens", "truncated", "dropped", "unknown"), 0)
    get = (lambda k: int(sums[f"sum({k})"])) if isinstance(sums, dict) else None
    return {"unique": get("one"), "tokens": get("tokens"), "truncated": get("truncated"),
            "dropped": get("dropped"), "unknown": get("unknown")}  # fmt: skip


def _finish_level(ray, fs, root, shards, level, aggregate, *, data_format, normalize,
                  loader_options):  # fmt: skip
    """Review level: the shards are the output. Item/user: group the partial sums on Ray
    and write the vectors from the workers (``part-level-*.parquet``)."""
    import pyarrow.parquet as pq

    if level == "review":
        dim = int(shards[0]["dim"]) if shards else 0
        return ({"source": "reviews", "aggregate": None}, sum(s["rows"] for s in shards), dim,
                ["user", "item", "rating", "timestamp"])  # fmt: skip
    mode = aggregate or "mean"
    column = "item" if level == "item" else "user"
    files = [f"{root}/{PARTIALS}/{PART_PREFIX}{s['shard']}.parquet" for s in shards]
    partials = ray.data.read_parquet(files, filesystem=fs)
    low = 1.0
    if mode == "rating-weighted":
        low = _rating_floor(partials, data_format, loader_options)
    grouped = partials.groupby("group", num_partitions=_partitions(ray, len(files))).map_groups(
        finish_groups, batch_format="pandas",
        fn_kwargs={"low": low, "weighted": mode == "rating-weighted", "normalize": normalize,
                   "id_column": column, "count_column": "n_texts"},
    )  # fmt: skip
    staging = f"{root}/.recfeat-level.{os.getpid()}"
    if exists(fs, staging):
        fs.delete_dir(staging)
    grouped.write_parquet(staging, filesystem=fs)
    for path in _list(fs, root, LEVEL_PREFIX):
        fs.delete_file(path)
    written = _list(fs, staging)
    for i, path in enumerate(written):
        fs.move(path, f"{root}/{LEVEL_PREFIX}{i:05d}.parquet")
    fs.delete_dir(staging)
    rows = empty_groups = 0
    dim = 0
    for path in _list(fs, root, LEVEL_PREFIX):
        with fs.open_input_file(path) as fh:
            counts = pq.read_table(fh, columns=["n_texts"]).column("n_texts").to_numpy()
        rows += len(counts)
        empty_groups += int((counts == 0).sum())
        if not dim:
            with fs.open_input_file(path) as fh:
                dim = pq.read_schema(fh).field("vector").type.list_size
    rows_used = sum(s["rows"] - s["empty"] for s in shards)
    details = {
        "source": "item reviews" if level == "item" else "user reviews",
        "aggregate": mode, "interactions": "all", "rows_used": rows_used,
        "empty_groups": empty_groups,
    }  # fmt: skip
    if level == "user":
        details["interactions_note"] = (
            "profiles use all interactions; pass the training split (train_interactions) "
            "before evaluating, or test data leaks into the features"
        )
    return details, rows, dim, [column, "n_texts"]


def _rating_floor(partials, data_format: str, loader_options: dict[str, Any]) -> float:
    """The rating scale's floor as the local loader takes it: the format's scale when it
    has one (Amazon 1-5), else the lowest rating seen."""
    from recfeat.plugin.registry import get_registry

    loader = get_registry("dataset").create(data_format, **loader_options)
    scale = getattr(loader, "rating_scale", None)
    if scale is not None:
        return float(scale[0])
    low = partials.min("rating")
    return float(low) if low is not None and low == low else 0.0


def _build_manifest(encoder, cleaner, level, details, counts, text_rows, empty, inputs):
    """The local engine's manifest (``pipeline._manifest``) over this run's counts."""
    from recfeat.extraction.pipeline import EncodeStats, _manifest

    stats = EncodeStats(
        unique_texts=counts["unique"], tokens=counts["tokens"],
        truncated_texts=counts["truncated"], tokens_dropped=counts["dropped"],
        truncation_unknown=counts["unknown"],
    )  # fmt: skip
    summary = {"name": f"{inputs.fmt}:{inputs.label}", "format": inputs.fmt,
               "files": len(inputs.paths)}  # fmt: skip
    run = types.SimpleNamespace(
        encoder=encoder, cleaner=cleaner, stats=stats, text_rows=text_rows, empty_texts=empty,
        data=types.SimpleNamespace(summary=lambda: summary),
    )  # fmt: skip
    return _manifest(run, level, details, None)


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
    for path in _list(fs, root, prefix):
        if manifest["level"] == "review" and path.rsplit("/", 1)[-1].startswith(LEVEL_PREFIX):
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
