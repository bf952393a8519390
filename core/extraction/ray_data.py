"""The Ray Data engine (``recfeat extract --ray DATA --out DIR/``): the same stages as the
local engines, run inside Ray actors.

- **Source.** The driver plans the rows once, as the streamed engine does
  (``recfeat.extraction.sources.plan_rows``: one pass keeping hashed ids, 24 bytes a row;
  the loaders' de-duplication rule). Read tasks on the workers then read each input file
  with the loaders' own mapping (``recfeat.extraction.records``) and keep the planned rows,
  ``--batch-rows`` at a time. So Ray starts from exactly the rows the loaded and streamed
  engines use (tests/test_engines_agree.py). The input must be at the same path on every
  node (a shared folder).
- **Stages.** Each batch is cleaned, reduced to unique texts and encoded in an actor
  (``recfeat.extraction.ray_shards.ShardEncoder``: one encoder per actor, the one encode
  loop) and committed as one Parquet shard into ``DIR/``. Item and user vectors are grouped
  sums on Ray (``groupby().map_groups`` over the shards' partial sums), written by the
  workers too. What comes back to the driver is one small summary row per shard.
- **Sink.** The driver writes ``DIR/run.json`` and, last, ``DIR/manifest.json``
  (atomically, ``recfeat.extraction.manifest.build_manifest``: the local engines' manifest
  plus ``rows``, ``dim``, ``id_columns``, ``engine`` and ``shards``): a folder with a manifest
  is complete.

Resume: shards are named by their content and settings and a shard file that exists is
complete (see ``ray_shards``), so a re-run (after a killed driver) and Ray's retries (after a
killed actor: actors restart, tasks are retried) skip what was written. Shards that this run
did not produce (left by a run with other settings) are removed before the manifest is
written, so the folder holds exactly this run's rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from typing import Any

import recfeat.errors as recfeat_errors
from recfeat.errors import DataError, RecfeatError, UsageError, require
from recfeat.extraction.cache import fingerprint_digest, vector_fingerprint
from recfeat.extraction.manifest import build_manifest, check_request, level_details, masked_counts
from recfeat.extraction.ray_runner import connect, options_for_actor
from recfeat.extraction.ray_shards import (
    LEVEL_FORMAT,
    LEVEL_PREFIX,
    MANIFEST,
    META_KEY,
    PART_PREFIX,
    PARTIALS,
    RUN_RECORD,
    SHARD_FORMAT,
    STATS,
    ShardEncoder,
    commit_table,
    commit_text,
    exists,
    finish_groups,
    list_files,
    out_filesystem,
    written_by_recfeat,
)
from recfeat.extraction.records import STREAMABLE, stream_format
from recfeat.extraction.sources import ID_COLUMNS, iter_planned, plan_rows
from recfeat.extraction.stages import EncodeStats, add_masked
from recfeat.jsonable import jsonable

DEFAULT_BATCH_ROWS = 1024
READ_CPUS = 0.25  # reading is light next to encoding; whole CPUs stay free for the actors


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


# -- the source: planned rows, read on the workers ------------------------------------------


def plan_input(data: str, fmt: str | None, options: dict[str, Any], batch_rows: int,
               want_ratings: bool):  # fmt: skip
    """``(format, plan)``: the streamable format of ``data`` and its de-duplication plan."""
    if "://" in str(data):
        raise UsageError(f"input {data}: --ray reads a path every node sees (a shared folder), "
                         "not a URI; copy the input there")  # fmt: skip
    found = stream_format(data, fmt or "auto", options)
    if found is None:
        raise UsageError(f"{data}: --ray reads review files (formats {', '.join(STREAMABLE)}); "
                         "run this one without --ray")  # fmt: skip
    return found, plan_rows(data, found, options, batch_rows, want_ratings)


def read_planned_file(batch, *, data: str, fmt: str, options: dict[str, Any], batch_rows: int):
    """Ray read task (a generator ``map_batches`` body): the planned rows of one input file,
    ``batch_rows`` at a time, with a ``path`` column naming the file."""
    import numpy as np

    for index, packed, n, name in zip(batch["index"], batch["keep"], batch["rows"],
                                      batch["path"], strict=True):  # fmt: skip
        keep = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=int(n)).astype(bool)
        for n, rows in enumerate(iter_planned(data, fmt, options, keep, batch_rows,
                                              only_file=int(index))):  # fmt: skip
            rows.insert(0, "path", str(name))
            rows.insert(1, "batch", f"{int(index)}-{n}")  # the planned batch: one shard
            yield rows


def read_dataset(ray, data: str, fmt: str, options: dict[str, Any], plan, batch_rows: int):
    """The planned rows as a Ray Dataset, one read task per input file. Each row carries its
    planned batch (``batch_rows`` rows, or a file's last rows), which is one shard whatever
    blocks Ray makes of the rows."""
    import numpy as np

    files = [
        {"index": i, "path": str(path), "rows": plan.file_rows[i],
         "keep": np.packbits(plan.file_keep(i)).tobytes()}
        for i, path in enumerate(plan.files) if plan.file_keep(i).any()
    ]  # fmt: skip
    return ray.data.from_items(files).map_batches(
        read_planned_file, batch_size=1, batch_format="pandas", num_cpus=READ_CPUS,
        fn_kwargs={"data": str(data), "fmt": fmt, "options": options, "batch_rows": batch_rows},
    )  # fmt: skip


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
        if isinstance(e, PermissionError):  # the file is there: the workers' user may not read it
            return DataError(
                f"the Ray workers may not read the input {data} (permission denied); make it "
                "readable by the user the Ray nodes run as"
            )
        if isinstance(e, FileNotFoundError):
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return DataError(
                f"the Ray workers cannot read the input {data} ({why[:200]}); put it on "
                "storage every node sees (a shared folder, or a URI such as s3://bucket/path)"
            )
    return _from_text(exc) or exc


_RAISED = re.compile(r"^recfeat(?:\.\w+)*\.(\w+(?:Error|Exception)): (.+)$", re.MULTILINE)


def _from_text(exc: BaseException) -> RecfeatError | None:
    """A recfeat error that a Ray Data UDF raised reaches the driver only as text inside a
    ``RayTaskError(UserCodeException)`` (the original is not chained): rebuild it from its
    ``recfeat.<module>.NameError: message`` line, so the user reads one line, not Ray's
    traceback (a class outside ``recfeat.errors`` comes back as a DataError)."""
    found = _RAISED.findall(str(exc))
    if not found:
        return None
    name, message = found[-1]
    cls = getattr(recfeat_errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, RecfeatError)) or cls is recfeat_errors.MissingDependencyError:
        cls = DataError  # its constructor takes other arguments; the message is what counts
    return cls(message.strip())


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
    canon = json.dumps(jsonable(parts), sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def _check_out(out: str, files):
    import pyarrow.fs as pafs

    fs, root = out_filesystem(out)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise UsageError(f"--out {out} is a file; with --ray give a folder (DIR/)")
    for path in files:
        path = os.path.abspath(path)
        if path == root or path.startswith(root + "/"):
            raise UsageError(f"--out {out} holds the input ({path}); choose another folder")
    return fs, root


def _make_dirs(fs, root: str) -> list[str]:
    """Create the output folders; return those this run created (deepest last)."""
    created = []
    for sub in ("", f"/{STATS}", f"/{PARTIALS}"):
        if not exists(fs, root + sub):
            fs.create_dir(root + sub, recursive=True)
            created.append(root + sub)
    return created


def _remove_if_empty(fs, folders: list[str]) -> None:
    """After a failed run: the folders it created and left empty go (deepest first)."""
    import pyarrow.fs as pafs

    for folder in reversed(folders):
        try:
            if not fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
                fs.delete_dir(folder)
        except OSError:
            continue


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
    start = time.perf_counter()
    opts = options or RayOptions()
    ray = require("ray", "ray", "--ray")
    require("ray.data", "ray", "--ray")
    check_request(level, aggregate, user_from)
    if level == "user" and user_from == "items":
        raise UsageError("--ray builds user profiles from reviews; --user-from items needs the "
                         "local engine (drop --ray)")  # fmt: skip
    if opts.batch_rows < 1:
        raise UsageError(f"--batch-rows must be at least 1, got {opts.batch_rows}")
    loader_options = dict(loader_options or {})
    mode = aggregate or "mean"
    # The workers' working folder is not the driver's (a remote node, or a head started
    # elsewhere): every local path they are given is made absolute here, on the driver.
    if "://" not in str(data):
        data = os.path.abspath(os.path.expanduser(str(data)))
    if "://" not in str(out):
        out = os.path.abspath(os.path.expanduser(str(out)))
    found, plan = plan_input(data, fmt, loader_options, opts.batch_rows,
                             want_ratings=level != "review" and mode == "rating-weighted")  # fmt: skip
    fs, root = _check_out(out, plan.files)
    fp = encoder.fingerprint()
    job = _job(encoder, cleaner, level, out, found, loader_options)
    connect(opts.address, timeout_s=opts.connect_timeout_s)
    _quiet(ray)
    _check_resources(ray, opts)
    created = _make_dirs(fs, root)
    try:
        ds = read_dataset(ray, data, found, loader_options, plan, opts.batch_rows)
        shards = _encode_shards(ray, ds, job, opts)
        _remove_stale(fs, root, {s["shard"] for s in shards}, level)
        counts = _unique_counts(ray, fs, root, shards)
        details, rows, dim, id_columns = _finish_level(
            ray, fs, root, shards, level, mode, plan=plan,
            normalize=bool(fp.get("normalize", False)),
        )  # fmt: skip
    except RecfeatError:
        _remove_if_empty(fs, created)
        raise
    except Exception as exc:  # noqa: BLE001 - turned into one line, or re-raised
        _remove_if_empty(fs, created)
        raise explain_failure(exc, data=data, batch_rows=opts.batch_rows) from exc
    manifest = _build_manifest(encoder, cleaner, level, details, counts, shards, plan)
    manifest.update(rows=rows, dim=dim, id_columns=id_columns, engine="ray",
                    shards=len(shards))  # fmt: skip
    record = _run_record(opts, plan, shards, time.perf_counter() - start,
                         _masked(cleaner, shards))  # fmt: skip
    commit_text(fs, f"{root}/{RUN_RECORD}", json.dumps(jsonable(record), indent=2) + "\n")
    commit_text(fs, f"{root}/{MANIFEST}", json.dumps(jsonable(manifest), indent=2) + "\n")
    return manifest


def _check_resources(ray, opts: RayOptions) -> None:
    """Refuse an actor pool the cluster can never place (Ray would wait for it forever):
    the smallest pool must fit in the cluster's CPUs and GPUs, and one actor in one node."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    low = opts.actors[0]
    for key, each, flag in (("CPU", opts.cpus_per_actor, "--cpus-per-actor"),
                            ("GPU", opts.gpus_per_actor, "--gpus-per-actor")):  # fmt: skip
        if not each:
            continue
        largest = max((float(n.get(key, 0)) for n in nodes), default=0.0)
        have = float(total.get(key, 0))
        if each > largest:
            raise UsageError(f"{flag} {each:g}: no node of this Ray cluster has that many {key}s "
                             f"(the largest has {largest:g}); lower {flag}")  # fmt: skip
        if low * each > have + 1e-9:
            raise UsageError(f"--actors {low} x {flag} {each:g} needs {low * each:g} {key}s; the "
                             f"cluster has {have:g}: lower --actors or {flag}")  # fmt: skip


def _job(encoder, cleaner, level: str, out: str, fmt: str, loader_options) -> dict[str, Any]:
    """What every actor needs (plain values: the encoder is rebuilt from its name), and the
    digest of the settings that shard names carry."""
    fp = encoder.fingerprint()
    spec = cleaner.spec() if hasattr(cleaner, "spec") else list(cleaner)
    job = {
        "encoder": encoder.name,
        "options": options_for_actor(encoder),
        "cleaners": spec,
        "level": level,
        "group_column": "item" if level == "item" else "user",
        "out": out,
        "key_digest": fingerprint_digest(fp).hex(),
    }
    job["settings_digest"] = _settings_digest({
        "shard": SHARD_FORMAT, "encoder": vector_fingerprint(fp), "cleaners": spec,
        "fmt": fmt, "loader_options": loader_options,
        "kind": "review" if level == "review" else job["group_column"],
    })  # fmt: skip
    return job


def _masked(cleaner, shards: list[dict]) -> dict[str, int] | None:
    """The values the masking cleaners replaced, by kind, summed over the shards."""
    total = masked_counts(cleaner)
    if total is not None:
        for shard in shards:
            add_masked(total, json.loads(shard.get("masked") or "{}"))
    return total


def _run_record(opts: RayOptions, plan, shards: list[dict], elapsed: float,
                masked: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "format": "recfeat-run/1",
        "engine": "ray",
        "address": opts.address or "local",
        "actors": list(opts.actors),
        "batch_rows": opts.batch_rows,
        "inputs": [str(p) for p in plan.files],
        "shards": len(shards),
        "shards_written": sum(not s["skipped"] for s in shards),
        "shards_skipped": sum(bool(s["skipped"]) for s in shards),
        "actor_pids": sorted({int(s["pid"]) for s in shards}),
        "elapsed_s": round(elapsed, 3),
        "masked": masked,
    }


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


def _encode_shards(ray, ds, job: dict[str, Any], opts: RayOptions) -> list[dict]:
    low, high = opts.actors
    ds = ds.map_batches(
        ShardEncoder,
        fn_constructor_kwargs={"job": job},
        batch_size=None,  # whole blocks: the actor splits them into planned batches
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
    """Shards of this folder that this run did not produce (other settings, other input).
    Only files that prove they are recfeat's (``ray_shards.written_by_recfeat``) are removed:
    a user's own ``part-0000.parquet`` beside them stays."""
    folders = [(root, PART_PREFIX)] if level == "review" else [(f"{root}/{PARTIALS}", PART_PREFIX)]
    folders.append((f"{root}/{STATS}", ""))
    for folder, prefix in folders:
        for path in list_files(fs, folder, prefix):
            base = path.rsplit("/", 1)[-1]
            if base.startswith(LEVEL_PREFIX):
                continue
            name = base.removeprefix(prefix).removesuffix(".parquet")
            if name not in keep and written_by_recfeat(fs, path):
                fs.delete_file(path)
    if level == "review":  # an earlier item/user run in the same folder
        for path in list_files(fs, root, LEVEL_PREFIX):
            if written_by_recfeat(fs, path):
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


def _finish_level(ray, fs, root, shards, level, mode, *, plan, normalize):
    """Review level: the shards are the output. Item/user: group the partial sums on Ray
    and write the vectors from the workers (``part-level-*.parquet``)."""
    import pyarrow.parquet as pq

    if level == "review":
        dim = int(shards[0]["dim"]) if shards else 0
        return level_details(level, "reviews"), sum(s["rows"] for s in shards), dim, ID_COLUMNS
    column = "item" if level == "item" else "user"
    files = [f"{root}/{PARTIALS}/{PART_PREFIX}{s['shard']}.parquet" for s in shards]
    partials = ray.data.read_parquet(files, filesystem=fs)
    # the rating scale's floor as the loaded engine takes it (the format's, else the lowest seen)
    low = float(plan.rating_scale[0]) if plan.rating_scale is not None else 0.0
    grouped = partials.groupby("group", num_partitions=_partitions(ray, len(files))).map_groups(
        finish_groups, batch_format="pandas",
        fn_kwargs={"low": low, "weighted": mode == "rating-weighted", "normalize": normalize,
                   "id_column": column, "count_column": "n_texts"},
    )  # fmt: skip
    staging = f"{root}/.recfeat-level.{os.getpid()}"
    if exists(fs, staging):
        fs.delete_dir(staging)
    foreign = [p for p in list_files(fs, root, LEVEL_PREFIX) if not written_by_recfeat(fs, p)]
    if foreign:  # before any level file is written: a user's file is never replaced
        raise RecfeatError(f"{foreign[0]} is in --out but was not written by recfeat; move it "
                           "out of the folder or choose another --out")  # fmt: skip
    grouped.write_parquet(staging, filesystem=fs)
    for path in list_files(fs, root, LEVEL_PREFIX):
        fs.delete_file(path)  # every one proved recfeat's just above
    written = list_files(fs, staging)
    mark = {META_KEY: json.dumps({"format": LEVEL_FORMAT, "level": level}).encode()}
    for i, path in enumerate(written):
        # rewritten, not moved: the footer mark is what lets a later run prove the file is
        # recfeat's before deleting it (one vector per group: small next to the shards)
        with fs.open_input_file(path) as fh:
            table = pq.read_table(fh)
        final = f"{root}/{LEVEL_PREFIX}{i:05d}.parquet"
        commit_table(fs, table.replace_schema_metadata({**(table.schema.metadata or {}), **mark}), final)
    fs.delete_dir(staging)
    rows = empty_groups = 0
    dim = 0
    for path in list_files(fs, root, LEVEL_PREFIX):
        with fs.open_input_file(path) as fh:
            counts = pq.read_table(fh, columns=["n_texts"]).column("n_texts").to_numpy()
        rows += len(counts)
        empty_groups += int((counts == 0).sum())
        if not dim:
            with fs.open_input_file(path) as fh:
                dim = pq.read_schema(fh).field("vector").type.list_size
    rows_used = sum(s["rows"] - s["empty"] for s in shards)
    details = level_details(level, f"{column} reviews", mode, rows_used=rows_used,
                            empty_groups=empty_groups)  # fmt: skip
    return details, rows, dim, [column, "n_texts"]


def _build_manifest(encoder, cleaner, level, details, counts, shards, plan):
    """The local engines' manifest (``manifest.build_manifest``) over this run's counts."""
    stats = EncodeStats(
        unique_texts=counts["unique"], tokens=counts["tokens"],
        truncated_texts=counts["truncated"], tokens_dropped=counts["dropped"],
        truncation_unknown=counts["unknown"],
    )  # fmt: skip
    return build_manifest(
        encoder=encoder, cleaner=cleaner, level=level, details=details, stats=stats,
        text_rows=sum(s["rows"] for s in shards), empty_texts=sum(s["empty"] for s in shards),
        dataset=plan.dataset_summary(sum(s["blank"] for s in shards)),
    )  # fmt: skip
