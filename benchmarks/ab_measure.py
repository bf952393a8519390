"""One measurement of the interleaved before/after run (``benchmarks/ab_refactor.sh``).

Each call is one fresh process on ONE side: the side is whichever ``recfeat`` this
interpreter imports (``PYTHONPATH`` pointing at the mapping folder of the old worktree for
"before", nothing for "after", i.e. the editable install of this working tree). The
harness (this file, ``ab_encode.py``, ``bench_memory.py``, ``bench_ray.py``,
``bench_serve.py`` and ``serve/``) is always the one in THIS folder, so both sides are
measured by the same code; only ``recfeat`` differs. Child processes (``recfeat extract``,
``recfeat serve``) inherit the environment and so import the same side.

Every measurement appends one JSON line to ``--raw``: the side, the round, where ``recfeat``
(and its ``plugins`` / ``exporters`` subpackages) were imported from, and a list of figures
``{"name", "value", "unit", "better": "higher"|"lower"}``. ``ab_report.py`` turns them into the
table.

    python benchmarks/ab_measure.py prepare --work DIR ...         # inputs, once, shared
    python benchmarks/ab_measure.py where                          # which recfeat is imported
    python benchmarks/ab_measure.py encode --kind bf16 --texts 1000 ...
    python benchmarks/ab_measure.py memory --sizes 10000,20000 ...
    python benchmarks/ab_measure.py ray --rows 200 ...
    python benchmarks/ab_measure.py serve --levels 1:30,8:120,64:240 ...
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # bench_memory, bench_ray, ab_encode, bench_cache
if str(REPO) not in sys.path:  # benchmarks.serve (bench_serve imports it this way)
    sys.path.insert(1, str(REPO))


def _sigterm(signum, frame):  # noqa: ARG001
    # the backstop timeouts send SIGTERM: unwind, so `finally` stops a server we started
    raise SystemExit(143)


signal.signal(signal.SIGTERM, _sigterm)


def _alarm(signum, frame):  # noqa: ARG001
    raise SystemExit("ran past --timeout")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] ab_measure: {msg}", file=sys.stderr, flush=True)


def where() -> dict:
    """Where recfeat, recfeat.plugins and recfeat.exporters come from (the side's check)."""
    import recfeat
    import recfeat.exporters
    import recfeat.plugins

    return {"recfeat": recfeat.__file__, "recfeat.plugins": recfeat.plugins.__file__,
            "recfeat.exporters": recfeat.exporters.__file__}  # fmt: skip


def fig(name: str, value, unit: str, better: str) -> dict:
    return {"name": name, "value": value, "unit": unit, "better": better}


def emit(args, bench: str, figures: list[dict], extra: dict | None = None, t0: float = 0.0) -> None:
    row = {
        "bench": bench, "side": args.side, "round": args.round, "order": args.order,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": round(time.perf_counter() - t0, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()], "where": where(),
        "figures": figures, **(extra or {}),
    }  # fmt: skip
    line = json.dumps(row)
    if args.raw:
        with open(args.raw, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    shown = ", ".join(f"{f['name']}={f['value']}" for f in figures)
    log(f"{bench} [{args.side}, round {args.round}] {shown}")


def child_env(args, **more: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "RECFEAT_PROGRESS": "0", **more}  # fmt: skip
    env.pop("RAY_ADDRESS", None)  # a local Ray of the run's own, never a shared cluster
    return env


# -- prepare ---------------------------------------------------------------------------------
def prepare(args) -> None:
    """The inputs both sides share, made once (same bytes for before and after)."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "tiny-random-bert"
    if not (model / "config.json").exists():
        from bench_cache import tiny_random_bert

        tmp = work / "tiny-random-bert.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tiny_random_bert(tmp)
        tmp.rename(model)
        log(f"made {model}")
    (work / "tiny.toml").write_text(f'[encoder]\nuse = "hf"\nmodel = "{model}"\nmax_length = 16\n')
    from bench_memory import write_corpus

    for n in [int(s) for s in args.memory_sizes.split(",") if s]:
        corpus = work / f"corpus_{n}.json"
        if not corpus.exists():
            write_corpus(corpus.with_suffix(".tmp"), n)
            corpus.with_suffix(".tmp").rename(corpus)
            log(f"made {corpus}")
    mi = work / f"mi_{args.ray_rows}.json.gz"
    if not mi.exists():
        import bench_ray

        bench_ray.DATA = (
            Path(args.data_dir)
            / "amazon_musical_instruments_5"
            / "reviews_Musical_Instruments_5.json.gz"
        )
        bench_ray.mi_slice(mi.with_suffix(".tmp"), args.ray_rows)
        mi.with_suffix(".tmp").rename(mi)
        log(f"made {mi}")
    texts = work / "serve_texts.json"
    if not texts.exists():
        import bench_serve

        pool, info = bench_serve.load_texts(Path(args.data_dir), 0)
        texts.write_text(json.dumps({"info": info, "texts": pool}))
        log(f"made {texts} ({len(pool)} texts)")


# -- encode ----------------------------------------------------------------------------------
def encode(args) -> None:
    """``ab_encode.py KIND --texts N`` in this process: texts/s of one encode call."""
    import ab_encode

    t0 = time.perf_counter()
    argv = ["ab_encode.py", args.kind, "--texts", str(args.texts), "--data-dir", args.data_dir]
    out = io.StringIO()
    saved = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(out):
            ab_encode.main()
    finally:
        sys.argv = saved
    kind, rate = out.getvalue().strip().splitlines()[-1].split()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    emit(args, f"encode-{kind}", [
        fig(f"torch {kind}: texts/s", float(rate), "texts/s", "higher"),
        fig(f"torch {kind}: process peak RSS", round(rss, 1), "MiB", "lower"),
    ], {"texts": args.texts}, t0)  # fmt: skip


# -- streaming memory --------------------------------------------------------------------------
def memory(args) -> None:
    """As bench_memory.py's streamed runs: ``recfeat extract CORPUS --level review --no-cache
    --stream`` per size in a fresh child, tiny random-weight BERT (max_length 16), one thread;
    peak RSS = the child's ru_maxrss."""
    import bench_memory

    t0 = time.perf_counter()
    work = Path(args.work)
    scratch = Path(tempfile.mkdtemp(prefix=f"mem-{args.side}-", dir=args.scratch))
    env = child_env(args, RECFEAT_LOAD_PLUGINS="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                    RECFEAT_CACHE_DIR=str(scratch / "cache"))  # fmt: skip
    figures, runs = [], []
    sizes = [int(s) for s in args.sizes.split(",") if s]
    try:
        for n in sizes:
            corpus = work / f"corpus_{n}.json"
            out = scratch / f"out_{n}.parquet"
            cli = ["--format", "amazon", "--level", "review", "--config", str(work / "tiny.toml"),
                   "--no-cache", "--stream", "--out", str(out)]  # fmt: skip
            run = bench_memory.run_child([str(corpus), *cli], env, args.timeout)
            manifest = json.loads(out.with_suffix(".manifest.json").read_text())
            if manifest["rows"] != n:
                raise SystemExit(f"{out}: {manifest['rows']} rows, expected {n}")
            runs.append({"texts": n, **run})
            figures += [
                fig(f"stream {n:,} texts: peak RSS", run["peak_rss_mib"], "MiB", "lower"),
                fig(f"stream {n:,} texts: texts/s", round(n / run["wall_s"], 1), "texts/s", "higher"),
            ]  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if len(runs) > 1:
        ratio = runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"]
        figures.append(
            fig(f"stream peak RSS {sizes[-1]:,} / {sizes[0]:,}", round(ratio, 3), "x", "lower")
        )
    emit(args, "memory-stream", figures, {"runs": runs}, t0)


# -- Ray vs local ----------------------------------------------------------------------------
def ray(args) -> None:
    """As bench_ray.py's throughput part, on the first ``--rows`` Musical Instruments rows:
    ``recfeat extract`` local (``--no-cache``) vs ``--ray --actors 1 --cpus-per-actor 0.75``,
    all-MiniLM-L6-v2 default settings; each a fresh process with an empty vector cache; the
    driver's peak RSS is its VmHWM. The Ray figure includes Ray's start-up (~25 s)."""
    import bench_ray

    t0 = time.perf_counter()
    data = Path(args.work) / f"mi_{args.rows}.json.gz"
    scratch = Path(tempfile.mkdtemp(prefix=f"ray-{args.side}-", dir=args.scratch))
    env = child_env(args, RECFEAT_CACHE_DIR=str(scratch / "cache"))
    figures, runs, same = [], {}, None
    try:
        local = scratch / "local.parquet"
        runs["local"] = bench_ray.run_cli(
            [str(data), "--no-cache", "--out", str(local)], env, args.timeout
        )
        log(f"ray bench, local: {runs['local']}")
        out = scratch / "ray_1"
        runs["ray_1"] = bench_ray.run_cli([str(data), "--ray", "--actors", "1", "--cpus-per-actor",
                                           "0.75", "--out", str(out)], env, args.timeout)  # fmt: skip
        log(f"ray bench, ray 1 actor: {runs['ray_1']}")
        read_output = ray_reader()
        _, _, manifest = read_output(str(out))
        n = manifest.get("text_rows", args.rows)
        try:
            same = same_answer(local, out, read_output)
        except Exception as exc:  # a sanity check, not a figure
            same = {"error": f"{type(exc).__name__}: {exc}"}
        for name, run in runs.items():
            figures += [
                fig(f"{name}: rows/s", round(n / run["wall_s"], 2), "rows/s", "higher"),
                fig(f"{name}: driver peak RSS", run["driver_peak_rss_mib"], "MiB", "lower"),
            ]  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    emit(args, "ray-vs-local", figures, {"rows": n, "runs": runs, "ray_vs_local": same}, t0)


def ray_reader():
    """This side's reader of a ``--ray`` output folder (it moved in the refactor)."""
    try:
        from recfeat.extraction.ray_shards import read_output
    except ImportError:
        from recfeat.extraction.ray_data import read_output
    return read_output


def same_answer(local_path: Path, ray_out: Path, read_output) -> dict:
    """bench_ray's check with this side's readers: same (user, item) rows, max |diff|."""
    import numpy as np

    from recfeat.data.features import read_features

    ids, vec, _ = read_features(local_path)
    rids, rvec, _ = read_output(str(ray_out))
    a = ids.sort_values(["user", "item"]).index.to_numpy()
    b = rids.sort_values(["user", "item"]).index.to_numpy()
    same_ids = bool(
        (
            ids.iloc[a][["user", "item"]].to_numpy() == rids.iloc[b][["user", "item"]].to_numpy()
        ).all()
    )
    return {"same_ids": same_ids, "max_abs_diff": float(np.abs(vec[a] - rvec[b]).max())}


# -- serve -----------------------------------------------------------------------------------
SERVE_BOOT = (
    "import sys, recfeat; print('ab: recfeat imported from ' + recfeat.__file__, "
    "flush=True); from recfeat.cli.main import cli; cli(prog_name='recfeat')"
)


def encoder_flag() -> str:
    """``serve --encoder`` (after the refactor) or ``serve --model`` (before it; after it,
    ``--model`` names the recommender), read from this side's own command definition."""
    from recfeat.cli.main import cli

    opts = {o for p in cli.commands["serve"].params for o in getattr(p, "opts", [])}
    return "--encoder" if "--encoder" in opts else "--model"


def serve(args) -> None:
    """As bench_serve.py, reduced: offline batch + batch-1 of torch-fp32 MiniLM in this
    process, then ``recfeat serve`` on loopback: warm-up, then closed-loop single-text POST
    /v1/embeddings at each concurrency level, every level on texts the server has not seen.
    No peer, no soak."""
    import bench_serve

    servers = bench_serve.servers

    t0 = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix=f"serve-{args.side}-", dir=args.scratch))
    bench_serve.CACHE = scratch  # its logs go here, not into the repository's cache
    pool = json.loads((Path(args.work) / "serve_texts.json").read_text())["texts"]
    levels = [tuple(int(x) for x in lv.split(":")) for lv in args.levels.split(",")]
    conc, counts = [c for c, _ in levels], [n for _, n in levels]
    warm, level_texts = bench_serve.slices(pool, args.warmup, counts)
    one = level_texts[conc.index(1)] if 1 in conc else level_texts[0]
    top = level_texts[conc.index(max(conc))][: args.offline_texts]
    figures = []
    extra: dict = {"levels": levels}
    try:
        off = bench_serve.offline("torch-fp32", top, one[: args.batch1], 1)
        extra["offline"] = off
        figures += [
            fig(f"offline encode() of {off['texts']} texts: texts/s", off["texts_per_s"], "texts/s", "higher"),
            fig("offline batch-1 p50", off["batch1"]["p50_ms"], "ms", "lower"),
        ]  # fmt: skip
        import gc

        gc.collect()
        flag = encoder_flag()
        argv = [sys.executable, "-c", SERVE_BOOT, "serve", "--host", servers.HOST, "--port", "0",
                flag, "minilm", "--backend", "torch", "--precision", "fp32"]  # fmt: skip
        spec = servers.ServerSpec(name="recfeat serve torch-fp32", kind="recfeat", argv=argv,
                                  env=servers.offline_env(scratch), ready_path="/ready",
                                  config={"choice": "torch-fp32", "encoder flag": flag})  # fmt: skip
        ns = argparse.Namespace(time_limit=args.level_time_limit, soak_concurrency=64,
                                soak_time_limit=0, start_timeout=args.start_timeout)  # fmt: skip
        srv = bench_serve.measure_server(spec, warm, level_texts, conc, ns, None)
        srv.pop("_check_vectors", None)
        imported = next((ln.split("imported from ", 1)[1] for ln in srv.get("output_tail", [])
                         if "ab: recfeat imported from" in ln), None)  # fmt: skip
        log_path = Path(srv.get("log", ""))
        if imported is None and log_path.is_file():
            imported = next((ln.split("imported from ", 1)[1] for ln in log_path.read_text().splitlines()
                             if "ab: recfeat imported from" in ln), None)  # fmt: skip
        extra["server"] = {k: srv.get(k) for k in ("status", "reason", "ready_s", "levels",
                                                   "exit_code", "startup_line")}  # fmt: skip
        extra["server_recfeat"] = imported
        if srv.get("status") != "ok":
            raise SystemExit(f"recfeat serve did not run: {srv.get('reason')}")
        figures.append(fig("server ready after launch", srv["ready_s"], "s", "lower"))
        for row in srv["levels"]:
            c = row["concurrency"]
            figures += [
                fig(f"served c={c}: texts/s", row["texts_per_s"], "texts/s", "higher"),
                fig(f"served c={c}: p50", row["p50_ms"], "ms", "lower"),
                fig(f"served c={c}: p99", row["p99_ms"], "ms", "lower"),
                fig(f"served c={c}: failed requests", row["failures"], "count", "lower"),
                fig(f"served c={c}: server RSS max", row["rss_mb_max"], "MiB", "lower"),
            ]  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    emit(args, "serve", figures, extra, t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["prepare", "where", "encode", "memory", "ray", "serve"])
    ap.add_argument("--side", default="?", help="before / after (a label; the import decides)")
    ap.add_argument("--round", type=int, default=0)
    ap.add_argument("--order", type=int, default=0, help="0: this side ran first in its pair")
    ap.add_argument("--raw", default=None, help="JSON-lines file to append the result to")
    ap.add_argument("--work", default="/tmp/recfeat-ab/work", help="shared inputs (prepare)")
    ap.add_argument("--scratch", default=None, help="where each run's outputs go (deleted)")
    ap.add_argument(
        "--data-dir",
        default=os.environ.get("RECFEAT_DATA_DIR", str(REPO.parent / "shared" / "data")),
    )
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per child process")
    ap.add_argument("--kind", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--sizes", default="10000,20000")
    ap.add_argument("--memory-sizes", default="10000,20000", help="prepare: corpora to write")
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--ray-rows", type=int, default=200, help="prepare: MI slice to write")
    ap.add_argument("--levels", default="1:30,8:120,64:240", help="concurrency:requests,...")
    ap.add_argument("--warmup", type=int, default=16)
    ap.add_argument("--offline-texts", type=int, default=240)
    ap.add_argument("--batch1", type=int, default=30)
    ap.add_argument("--level-time-limit", type=float, default=60.0)
    ap.add_argument("--start-timeout", type=float, default=120.0)
    args = ap.parse_args()
    if args.scratch:
        Path(args.scratch).mkdir(parents=True, exist_ok=True)
    if args.what == "where":
        print(json.dumps(where()))
        return 0
    if args.what == "encode":
        # in-process work: bound it here (the child-process benches bound their children)
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(max(1, int(args.timeout)))
    {"prepare": prepare, "encode": encode, "memory": memory, "ray": ray, "serve": serve}[args.what](
        args
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
