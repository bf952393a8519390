"""Issue-14 figures: ``recfeat serve`` under load on loopback, beside the same backend
offline and beside a peer server (infinity), in one run.

What one run does, in order (every phase bounded in count and time):

1. draws single texts from the Musical Instruments reviews (seeded shuffle, cleaned with the
   cleaner chain the server applies, duplicates dropped) and cuts them into disjoint slices:
   warm-up, one per concurrency level, and a soak pool;
2. offline, in this process, for each recfeat backend: ``recfeat.encoder(...).encode`` of
   the concurrency-64 slice in one call (batch throughput) and ``encode([text])`` one text
   at a time over the concurrency-1 slice (batch-1 latency);
3. each server in turn, started here as a subprocess on an ephemeral loopback port and
   waited for until ready: warm-up requests, then concurrency 1, 8 and 64 (single-text POST
   /v1/embeddings, OpenAI-compatible, the same bytes for every server), each level with
   texts that server has not seen (so no cache answers them); then, for recfeat, a soak of
   ``--soak`` requests whose texts are all new, with the server's RSS sampled throughout;
4. writes ``benchmarks/results/serve.{json,md,png}`` (atomically) with the targets checked.

The load generator (benchmarks/serve/loadgen.py) runs on the same 2 CPUs as the server; its
CPU share is measured and reported beside every figure. The peer (infinity-emb) runs from its
own virtual environment (``bash benchmarks/peers/install_infinity.sh``); without it the
report lists it as not installed, with the reason.

    python benchmarks/bench_serve.py [--backends torch-fp32] [--peers infinity-optimum]
        [--concurrency 1,8,64] [--requests 100,400,1500] [--soak 20000] [--quick]

``--quick`` (small counts) proves the pipeline: about 3 minutes on a quiet 2-core machine
(12 minutes were measured under a load average of 13). The default run takes about 10-12
minutes on a quiet 2-core machine, most of it the 20,000-request soak (capped at
``--soak-time-limit`` 480 s; when the cap cuts it, the RSS windows shrink to half of what was
answered and the report says so: raise the cap on a slower machine). ``--render JSON``
rewrites the .md/.png from an earlier run's .json without measuring anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks.serve` resolves from a plain `python benchmarks/...`
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.serve import loadgen, servers  # noqa: E402
from benchmarks.serve import report as rep  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CACHE = REPO / ".recfeat-cache" / "serve_bench"
#: infinity is started with this --served-model-name and gets it as "model"; recfeat gets the
#: name its /ready reply gives
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
PEER_CHOICES = ("infinity-optimum", "infinity-torch")
#: the agreement check uses short warm-up texts only: infinity's optimum engine keeps up to
#: 512 tokens where recfeat and sentence-transformers keep 256, so long texts differ by design
AGREEMENT_CHARS = 600
QUICK = {"requests": "40,200,400", "soak": 1500, "warmup": 16, "batch1": 40,
         "soak_time_limit": 90.0, "time_limit": 45.0}  # fmt: skip


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] bench_serve: {message}", file=sys.stderr, flush=True)


def ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"bench_serve: {text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise SystemExit(f"bench_serve: {text!r} needs positive integers")
    return values


# -- texts ---------------------------------------------------------------------------------
def load_texts(data_dir: Path, seed: int) -> tuple[list[str], dict]:
    """Review texts, cleaned as the server cleans them, without duplicates, shuffled."""
    import numpy as np

    import recfeat
    from recfeat.extraction.stages import make_cleaner

    path = data_dir / "amazon_musical_instruments_5"
    if not path.exists():
        raise SystemExit(f"bench_serve: {path} does not exist; pass --data-dir (the shared data "
                         "folder holding amazon_musical_instruments_5)")  # fmt: skip
    data = recfeat.load_dataset(path)
    raw = data.reviews["text"].fillna("").astype(str).tolist()
    cleaned = make_cleaner(None).clean(raw)
    texts = list(dict.fromkeys(t for t in cleaned if t.strip()))
    order = np.random.default_rng(seed).permutation(len(texts))
    texts = [texts[i] for i in order]
    info = {"name": f"Amazon Musical Instruments 5-core reviews ({path.name})",
            "reviews": len(raw), "texts": len(texts),
            "mean_chars": sum(map(len, texts)) / len(texts)}  # fmt: skip
    return texts, info


def slices(texts: list[str], warmup: int, counts: list[int]) -> tuple[list[str], list[list[str]]]:
    """Disjoint slices: warm-up first, then one per level; a level needing more texts than are
    left reuses from the start of the pool (said in the report: the cache may answer those)."""
    need = warmup + sum(counts)
    if need > len(texts):
        log(f"{need} distinct texts wanted, {len(texts)} available: levels cycle through them")
    pool = (texts * (need // len(texts) + 1))[:need]
    out, at = [], warmup
    for n in counts:
        out.append(pool[at : at + n])
        at += n
    return pool[:warmup], out


def soak_texts(texts: list[str], n: int) -> list[str]:
    """``n`` texts no earlier request sent: pass k over the pool appends ' #k' to each."""
    return [f"{texts[j % len(texts)]} #{j // len(texts) + 1}" for j in range(n)]


# -- offline -------------------------------------------------------------------------------
def export_folder(choice: str) -> Path:
    """An export of MiniLM for an onnx/openvino choice, made once under .recfeat-cache/."""
    import recfeat
    from recfeat.encode.vocabulary import parse_choice

    c = parse_choice(choice)
    folder = CACHE / f"minilm-{c.label}"
    if not (folder / "manifest.json").exists():
        log(f"exporting MiniLM for {choice} into {folder} (once)")
        optimize = c.variant if c.variant in ("o1", "o2", "o3") else None
        recfeat.export("minilm", folder, backend=c.backend, optimize=optimize,
                       quantize=c.quantization, force=True)  # fmt: skip
    return folder


def server_model(choice: str) -> str:
    """What `--encoder` the server and the offline encoder get for a backend choice."""
    return "minilm" if choice.startswith("torch-") else str(export_folder(choice))


def offline_encoder(choice: str, warm: list[str], threads: int | None = None):
    """The encoder the server runs for ``choice``, loaded here and warmed on ``warm``."""
    import recfeat

    backend, precision = choice.split("-", 1)
    precision = precision.split("-", 1)[0]
    enc = recfeat.encoder(server_model(choice), backend=backend, precision=precision,
                          **({"threads": threads} if threads else {}))  # fmt: skip
    enc.encode(warm)  # load + warm the shapes
    return enc


def offline(enc, batch_texts: list[str], one_texts: list[str], repeats: int) -> dict:
    """Batch throughput (one encode call over ``batch_texts``) and batch-1 latency."""
    from recfeat.bench.measure import percentile

    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        enc.encode(batch_texts)
        walls.append(time.perf_counter() - start)
    wall = sorted(walls)[len(walls) // 2]
    for text in one_texts[:5]:
        enc.encode([text])
    lat = []
    for text in one_texts:
        start = time.perf_counter()
        enc.encode([text])
        lat.append((time.perf_counter() - start) * 1e3)
    return {
        "texts": len(batch_texts), "repeats": repeats, "wall_s": [round(w, 3) for w in walls],
        "texts_per_s": round(len(batch_texts) / wall, 2),
        "batch1": {"n": len(lat), "p50_ms": round(percentile(lat, 50), 3),
                   "p95_ms": round(percentile(lat, 95), 3),
                   "mean_ms": round(sum(lat) / len(lat), 3)},
    }  # fmt: skip


# -- served --------------------------------------------------------------------------------
def prom_values(text: str) -> dict[str, float]:
    """Prometheus text format -> {'name{labels}': value} (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out


def batching_delta(before: dict[str, float], after: dict[str, float]) -> dict | None:
    """Mean texts and requests per engine call between two /metrics scrapes of recfeat."""
    def delta(key):
        return after.get(key, 0.0) - before.get(key, 0.0)

    calls = delta("recfeat_batch_size_count")
    if calls <= 0:
        return None
    return {"engine_calls": int(calls),
            "mean_texts_per_call": round(delta("recfeat_batch_size_sum") / calls, 2),
            "mean_requests_per_call": round(delta("recfeat_batch_requests_sum") / calls, 2),
            "cache_hits": int(delta("recfeat_cache_hits_total")),
            # seconds the encode thread held a batcher group (tokenising + the model)
            "engine_s": round(delta("recfeat_inference_seconds_sum")
                              + delta("recfeat_tokenize_seconds_sum"), 3)}  # fmt: skip


def merge_runs(runs: list) -> object:
    """One LoadRun of the parts of an interleaved level, laid end to end: each part's samples
    and RSS times are shifted back by the time spent offline before it, so span-based
    figures (texts/s) count served time only."""
    import dataclasses

    samples, rss, shift, prev_end, rss_t0 = [], [], 0.0, None, 0.0
    for run in runs:
        if not run.samples:
            continue
        start = min(x.start for x in run.samples)
        if prev_end is not None:
            shift += start - prev_end
        samples += [dataclasses.replace(x, start=x.start - shift, end=x.end - shift)
                    for x in run.samples]  # fmt: skip
        answered = len(samples) - len(run.samples)
        rss += [(rss_t0 + t, answered + done, b) for t, done, b in run.rss]
        prev_end = max(x.end for x in run.samples)
        rss_t0 += prev_end - start
    first = runs[0]
    return dataclasses.replace(
        first, max_requests=sum(r.max_requests for r in runs),
        samples=sorted(samples, key=lambda x: x.start), rss=rss,
        client_cpu_s=sum(r.client_cpu_s for r in runs),
        server_cpu_s=(None if any(r.server_cpu_s is None for r in runs)
                      else sum(r.server_cpu_s for r in runs)),
        stopped_by="time" if any(r.stopped_by == "time" for r in runs) else "count",
    )  # fmt: skip


def vectors_of(port: int, path: str, texts: list[str], model: str):
    """One batch request's embeddings (float32 rows), None when the server refuses it."""
    import http.client

    import numpy as np

    conn = http.client.HTTPConnection(servers.HOST, port, timeout=120)
    try:
        conn.request("POST", path, loadgen.openai_body(texts, model),
                     {"Content-Type": "application/json"})  # fmt: skip
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    if resp.status != 200:
        return None
    rows = sorted(json.loads(body)["data"], key=lambda r: r["index"])
    return np.asarray([r["embedding"] for r in rows], dtype=np.float32)


def agreement(reference, vectors) -> float | None:
    """The smallest cosine between matching rows: do two servers serve the same model?"""
    import numpy as np

    if reference is None or vectors is None or reference.shape != vectors.shape:
        return None
    a = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    b = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return round(float((a * b).sum(axis=1).min()), 6)


def served_model(port: int, ready_path: str) -> str:
    """The model name recfeat serve answers to, from its /ready reply: ``minilm`` for torch,
    the export folder for onnx/openvino (the packaged model's hub id is only accepted for
    torch)."""
    try:
        status, body = loadgen.get(servers.HOST, port, ready_path)
        if status == 200:
            return str(json.loads(body).get("model") or MODEL_ID)
    except (OSError, ValueError):
        pass
    return MODEL_ID


def scrape(port: int) -> dict[str, float]:
    try:
        status, body = loadgen.get(servers.HOST, port, "/metrics")
    except OSError:
        return {}
    return prom_values(body.decode("utf-8", "replace")) if status == 200 else {}


def trace(rss, limit: int = 400) -> list[list[float]]:
    """(requests answered, MiB) pairs, thinned to at most ``limit`` points."""
    step = max(1, len(rss) // limit)
    return [[done, round(b / rep.MB, 1)] for _, done, b in rss[::step]]


def measure_server(spec, warm: list[str], level_texts: list[list[str]], conc: list[int],
                   args, soak: list[str] | None, interleave=None) -> dict:  # fmt: skip
    """Start ``spec``, run warm-up, every level and the soak, stop it; a dict for the report.

    ``interleave``: ``(encoder, texts)`` to cut each level into ``args.interleave`` parts
    with an offline ``encode()`` of the next 1/``args.interleave`` of ``texts`` (one call) in
    this process before each part, so the served and the offline figures of a level see the
    same load on a shared machine; the level then reports both and their ratio."""
    out = {"name": spec.name, "kind": spec.kind, "config": spec.config,
           "backend": spec.config.get("choice")}  # fmt: skip
    log(f"starting {spec.name}: {' '.join(spec.argv)}")
    try:
        srv = servers.start(spec, timeout_s=args.start_timeout)
    except (servers.StartError, OSError) as exc:
        log(f"{spec.name} did not start: {exc}")
        return {**out, "status": "failed to start", "reason": str(exc)}
    try:
        out.update(status="ok", ready_s=round(srv.ready_s, 1), port=srv.port,
                   startup_line=next((ln for ln in srv.output if "ready on" in ln), None))  # fmt: skip
        model = spec.model or served_model(srv.port, spec.ready_path)
        out["model_sent"] = model
        check = [t for t in warm if len(t) < AGREEMENT_CHARS][:8]
        out["_check_vectors"] = vectors_of(srv.port, spec.embeddings_path, check,
                                           model) if check else None  # fmt: skip
        run = lambda texts, c, n, limit: loadgen.run_load(  # noqa: E731
            servers.HOST, srv.port, spec.embeddings_path,
            [loadgen.openai_body(t, model) for t in texts],
            concurrency=c, max_requests=n, time_limit_s=limit, server_pid=srv.pid)
        if warm:
            w = run(warm, min(8, len(warm)), len(warm), args.time_limit)
            out["warmup"] = rep.summarize(w)
        out["levels"] = []
        for c, texts in zip(conc, level_texts, strict=True):
            before = scrape(srv.port) if spec.kind == "recfeat" else {}
            if interleave is None:
                result = run(texts, c, len(texts), args.time_limit)
                off = None
            else:
                result, off = interleaved(run, texts, c, args, *interleave)
            row = rep.summarize(result)
            if spec.kind == "recfeat":
                row["batching"] = batching_delta(before, scrape(srv.port))
            if off is not None:
                row["offline_interleaved"] = off
            out["levels"].append(row)
            log(f"{spec.name} c={c}: {row['ok']}/{row['requests']} ok, {row['texts_per_s']} "
                f"texts/s, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, statuses "
                f"{row['statuses']}, client CPU {row['client_cpu_pct']}%"
                + (f"; offline between the parts {off['texts_per_s']} texts/s" if off else ""))  # fmt: skip
        if soak:
            log(f"{spec.name}: soak of {len(soak)} requests at concurrency {args.soak_concurrency}")
            result = run(soak, args.soak_concurrency, len(soak), args.soak_time_limit)
            row = rep.summarize(result)
            row["rss"] = rep.soak_rss(result.rss, row["requests"])
            row["rss_trace"] = trace(result.rss)
            out["soak"] = row
            log(f"{spec.name} soak: {row['ok']}/{row['requests']} ok ({row['stopped_by']}), "
                f"RSS {row['rss']}")  # fmt: skip
        if spec.kind == "recfeat":
            out["metrics"] = {k: v for k, v in scrape(srv.port).items()
                              if k.startswith("recfeat_requests_total")}  # fmt: skip
    finally:
        code = srv.stop()
        out["exit_code"] = code
        out["output_tail"] = srv.output[-15:]
        out["log"] = save_log(spec.name, srv.output)
    return out


def interleaved(run, texts: list[str], concurrency: int, args, enc, offline_texts: list[str]):
    """A level in ``args.interleave`` parts, each after an offline encode() of the next slice
    of ``offline_texts``: (the merged LoadRun, the offline figures)."""
    parts = max(1, min(args.interleave, len(texts)))
    cut = [round(i * len(texts) / parts) for i in range(parts + 1)]
    step = max(1, len(offline_texts) // parts)
    runs, walls, done, one = [], [], 0, []
    start_time = time.perf_counter()
    for k in range(parts):
        chunk = offline_texts[(k * step) % len(offline_texts):][:step]
        started = time.perf_counter()
        enc.encode(chunk)
        walls.append(time.perf_counter() - started)
        done += len(chunk)
        part = texts[cut[k] : cut[k + 1]]
        if concurrency == 1:  # batch-1 latency of the part's own texts, for the p50 target
            for text in part:
                started = time.perf_counter()
                enc.encode([text])
                one.append((time.perf_counter() - started) * 1e3)
        left = args.time_limit - (time.perf_counter() - start_time)
        runs.append(run(part, min(concurrency, len(part)), len(part), max(left, 1.0)))
        if runs[-1].stopped_by == "time":
            break
    merged = merge_runs(runs)
    merged.concurrency = concurrency
    out = {"parts": len(runs), "texts": done, "texts_per_call": step,
           "wall_s": round(sum(walls), 3), "texts_per_s": round(done / sum(walls), 2)}
    if one:
        from recfeat.bench.measure import percentile

        out["batch1"] = {"n": len(one), "p50_ms": round(percentile(one, 50), 3),
                         "p95_ms": round(percentile(one, 95), 3)}  # fmt: skip
    return merged, out


def save_log(name: str, lines: list[str]) -> str:
    """The server's whole output, kept beside the cache (its start-up lines say what it
    loaded: infinity's "Optimized model found", recfeat's backend and warm-up line)."""
    from recfeat.atomic import write_text

    path = CACHE / "logs" / (name.replace(" ", "_") + ".log")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(lines) + "\n")
    return str(path)


def check_agreement(results: dict) -> None:
    """Each server's smallest cosine to the first recfeat server on the same short texts."""
    ran = [s for s in results["servers"] if s.get("status") == "ok"]
    ref = next((s.get("_check_vectors") for s in ran if s["kind"] == "recfeat"), None)
    for srv in results["servers"]:
        vectors = srv.pop("_check_vectors", None)
        if srv.get("status") == "ok":
            srv["min_cosine_vs_recfeat"] = agreement(ref, vectors)


def peer_specs(names: list[str], args) -> list:
    """Server specs for the peers asked for, or report rows saying why one cannot run."""
    specs = []
    for name in names:
        if name not in PEER_CHOICES:
            raise SystemExit(f"bench_serve: unknown peer {name!r}; valid: {', '.join(PEER_CHOICES)}, none")
        engine = name.split("-", 1)[1]
        missing = servers.infinity_missing(engine)
        if missing:
            specs.append({"name": f"infinity {engine}", "kind": "peer", "status": "not installed",
                          "reason": missing})  # fmt: skip
            continue
        specs.append(servers.infinity_spec(engine=engine, batch_size=args.peer_batch_size,
                                           served_name=MODEL_ID, cache=CACHE))  # fmt: skip
    return specs


def environment(args) -> dict:
    from recfeat.bench.measure import capture_environment

    env = capture_environment(device="cpu")
    env["note"] = ("client and server share the machine's CPUs; the machine may also run "
                   "other work (see the load averages)")
    return env


def write_outputs(stem: Path, results: dict) -> list[dict]:
    from recfeat.atomic import write_text
    from recfeat.jsonable import jsonable

    results = {**results, "servers": [{k: v for k, v in srv.items() if not k.startswith("_")}
                                       for srv in results["servers"]]}  # fmt: skip
    targets = rep.check_targets(results)
    results["targets"] = targets
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_text(stem.with_suffix(".json"), json.dumps(jsonable(results), indent=1) + "\n")
    write_text(stem.with_suffix(".md"), rep.markdown(results, targets))
    rep.plot(stem.with_suffix(".png"), results)
    return targets


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECFEAT_DATA_DIR",
                                                         str(REPO.parent / "shared" / "data")))  # fmt: skip
    ap.add_argument("--backends", default="torch-fp32",
                    help="recfeat backends to serve, comma-separated (torch-fp32, torch-bf16, "
                    "onnx-fp32, openvino-bf16, ...)")  # fmt: skip
    ap.add_argument("--peers", default="infinity-optimum",
                    help=f"peer servers: {', '.join(PEER_CHOICES)}, comma-separated, or none")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--requests", default="100,400,1500", help="requests per level (at most)")
    ap.add_argument("--time-limit", type=float, default=90.0, help="seconds per level (at most)")
    ap.add_argument("--warmup", type=int, default=64, help="warm-up requests per server")
    ap.add_argument("--soak", type=int, default=20000,
                    help="soak requests against each recfeat server (0: no soak)")
    ap.add_argument("--soak-concurrency", type=int, default=64)
    ap.add_argument("--soak-time-limit", type=float, default=480.0)
    ap.add_argument("--offline-repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None,
                    help="encoder threads, offline and served alike (default: the backend's own)")
    ap.add_argument("--interleave", type=int, default=4,
                    help="cut each recfeat level into this many parts, each after an offline "
                    "encode() of 1/N of the concurrency-64 texts, for load-matched served vs "
                    "offline ratios (0: offline only once, before the servers)")  # fmt: skip
    ap.add_argument("--batch1", type=int, default=100, help="texts timed one at a time offline")
    ap.add_argument("--peer-batch-size", type=int, default=32,
                    help="infinity --batch-size (its default)")
    ap.add_argument("--start-timeout", type=float, default=300.0)
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra argument for recfeat serve (repeat it), e.g. --serve-arg=--batch-window-ms=2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small counts: proves the pipeline")
    ap.add_argument("--out", default=str(RESULTS / "serve"), help="output stem (.json/.md/.png)")
    ap.add_argument("--note", action="append", default=[], help="a line for the report")
    ap.add_argument("--render", metavar="JSON", default=None,
                    help="only rewrite the .md/.png (and targets) from an earlier run's .json")
    args = ap.parse_args(argv)
    if args.render:
        results = json.loads(Path(args.render).read_text(encoding="utf-8"))
        results["notes"] = [*results.get("notes", []), *args.note]
        results.setdefault("peer_setup", list(servers.PEER_SETUP))
        write_outputs(Path(args.out), results)
        print(f"rewrote {Path(args.out).with_suffix('.md')} (.json, .png) from {args.render}")
        return 0
    if args.quick:
        for key, value in QUICK.items():
            if ap.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    conc, counts = ints(args.concurrency), ints(args.requests)
    if len(conc) != len(counts):
        raise SystemExit("bench_serve: --requests needs one count per --concurrency level")
    choices = [c.strip() for c in args.backends.split(",") if c.strip()]
    peers = [] if args.peers.strip() in ("", "none") else [p.strip() for p in args.peers.split(",")]

    wall0 = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)
    texts, corpus = load_texts(Path(args.data_dir), args.seed)
    warm, level_texts = slices(texts, args.warmup, counts)
    one_slice = level_texts[conc.index(1)] if 1 in conc else level_texts[0]
    top_slice = level_texts[conc.index(max(conc))]
    soak = soak_texts(texts, args.soak) if args.soak else None
    command = "python benchmarks/bench_serve.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = {
        "command": command.strip(),
        "environment": environment(args),
        "load_start": load_start,
        "corpus": corpus,
        "settings": {"route": "/v1/embeddings", "seed": args.seed, "concurrency": conc,
                     "requests": counts, "time_limit_s": args.time_limit,
                     "warmup_requests": args.warmup, "soak": args.soak,
                     "soak_concurrency": args.soak_concurrency,
                     "soak_time_limit_s": args.soak_time_limit, "model": MODEL_ID,
                     "serve_args": args.serve_arg, "interleave": args.interleave,
                     "threads": args.threads},  # fmt: skip
        "notes": list(args.note),
        "peer_setup": list(servers.PEER_SETUP) if peers else [],
        "offline": {},
        "servers": [],
    }

    encoders = {}
    for choice in choices:
        log(f"offline {choice}: encode() of {len(top_slice)} texts, batch-1 over {args.batch1}")
        try:
            encoders[choice] = offline_encoder(choice, top_slice[:64], args.threads)
            results["offline"][choice] = offline(encoders[choice], top_slice,
                                                 one_slice[: args.batch1], args.offline_repeats)  # fmt: skip
        except Exception as exc:  # a backend that cannot load here is reported, not fatal
            results["offline"][choice] = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"offline {choice}: {results['offline'][choice]}")
    import gc

    gc.collect()

    for choice in choices:
        try:
            model = server_model(choice)
        except Exception as exc:
            results["servers"].append({"name": f"recfeat serve {choice}", "kind": "recfeat",
                                       "backend": choice, "status": "failed to start",
                                       "reason": f"{type(exc).__name__}: {exc}"})  # fmt: skip
            continue
        extra = [*args.serve_arg, *([f"--threads={args.threads}"] if args.threads else [])]
        spec = servers.recfeat_spec(choice, model, CACHE, extra)
        pair = (encoders[choice], top_slice) if args.interleave > 0 and choice in encoders else None
        results["servers"].append(measure_server(spec, warm, level_texts, conc, args, soak, pair))
        write_outputs(Path(args.out), {**results, "wall_s": time.perf_counter() - wall0,
                                       "load_end": round(os.getloadavg()[0], 2)})  # fmt: skip
    for spec in peer_specs(peers, args):
        if isinstance(spec, dict):
            log(f"{spec['name']}: {spec['reason']}")
            results["servers"].append(spec)
            continue
        results["servers"].append(measure_server(spec, warm, level_texts, conc, args, None))

    check_agreement(results)
    results["wall_s"] = time.perf_counter() - wall0
    results["load_end"] = round(os.getloadavg()[0], 2)
    targets = write_outputs(Path(args.out), results)
    for t in targets:
        log(f"{'met   ' if t['met'] else 'MISSED' if t['met'] is False else 'n/a   '} "
            f"{t['target']}: {t['measured']}")  # fmt: skip
    print(f"wrote {Path(args.out).with_suffix('.md')} (.json, .png) in "
          f"{results['wall_s'] / 60:.1f} min")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
