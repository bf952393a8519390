"""Benchmark: peak memory of streamed ``recfeat extract`` as the corpus grows 10k -> 1M texts.

Each size is one ``recfeat extract CORPUS --level review --no-cache`` in a fresh child
process; its peak RSS is the child's ``ru_maxrss`` (``os.wait4``), its wall time the
child's. The corpus is SYNTHETIC Amazon-schema JSON Lines (reviewerID, asin, overall,
unixReviewTime, summary, reviewText), written here from a seeded generator: every text is
distinct (a serial number in each), about 20 words, n/10 users and n/20 items, so nothing
is de-duplicated away and every text is encoded. The children run with one intra-op
thread (``OMP_NUM_THREADS=1``) so the run time stays bounded on a shared machine. The encoder is a TINY RANDOM-WEIGHT BERT
(1 layer, hidden 32, the MiniLM vocabulary and tokenizer; ``bench_cache.tiny_random_bert``)
with max_length 16: its vectors mean nothing, but loading, cleaning, de-duplication, the
encode loop and the Parquet writer around it are the real ones, which is what is measured.
Target (issue 13): peak RSS at 1M <= 1.25x the 10k figure.

``--in-memory`` adds the same runs with ``--no-stream`` (the whole-dataset path) for
comparison, at the sizes given to it (default 10k,100k; 1M in memory needs several GiB).

    .venv/bin/python benchmarks/bench_memory.py                      # 10k, 100k, 1M streamed
    .venv/bin/python benchmarks/bench_memory.py --sizes 10000,100000 --in-memory 10000,100000

Writes benchmarks/results/memory.{json,md,png} (atomically).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_cache import machine, tiny_random_bert  # noqa: E402

ENCODER_LABEL = (
    "TINY RANDOM-WEIGHT BERT (1 layer, hidden 32, MiniLM vocab/tokenizer), max_length 16, "
    "no cache; vectors are meaningless, the pipeline around them is real"
)
CLI = [
    sys.executable,
    "-c",
    "from recfeat.cli.main import cli; cli(prog_name='recfeat')",
    "extract",
]
WORDS = (
    "great good bad sound guitar string cable pedal amp tone cheap solid sturdy broke works "
    "fine loud quiet clean noise buzz tuner strap case stand mic price quality value fast slow "
    "shipping love hate recommend return perfect excellent poor decent nice easy hard light heavy"
).split()


def write_corpus(path: Path, n: int, seed: int = 0) -> int:
    """``n`` synthetic Amazon-schema reviews, all texts distinct; returns bytes written."""
    rng = random.Random(seed)
    users, items = max(1, n // 10), max(1, n // 20)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            words = " ".join(rng.choice(WORDS) for _ in range(18))
            fh.write(json.dumps({
                # (i mod users, i div users mod items): every (user, item) pair distinct
                "reviewerID": f"U{i % users:07d}",
                "asin": f"I{(i // users) % items:07d}",
                "overall": float(rng.randint(1, 5)),
                "unixReviewTime": 1_300_000_000 + i,  # distinct: no (user, item) repeats win ties
                "summary": rng.choice(WORDS),
                "reviewText": f"review {i} {words}",
            }) + "\n")  # fmt: skip
    return path.stat().st_size


def run_child(args: list[str], env: dict[str, str], timeout: float) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(CLI + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            raise SystemExit(f"recfeat extract {' '.join(args)} ran past {timeout:.0f} s")
        time.sleep(0.2)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"recfeat extract {' '.join(args)} failed ({code}):\n{err}{out}")
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "summary": out.strip().splitlines()[-1]}  # fmt: skip


def measure(sizes: list[int], in_memory: list[int], work: Path, timeout: float) -> list[dict]:
    model = tiny_random_bert(work / "tiny-random-bert")
    config = work / "tiny.toml"
    config.write_text(f'[encoder]\nuse = "hf"\nmodel = "{model}"\nmax_length = 16\n')
    # One intra-op thread: on a loaded 2-core machine torch's thread pool spins against the
    # other jobs and runs ~9x slower; one thread keeps the 1M run bounded (~15 min). It is
    # the same for every size, and memory per size is what is compared.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "RECFEAT_PROGRESS": "0", "RECFEAT_LOAD_PLUGINS": "", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "RECFEAT_CACHE_DIR": str(work / "cache")}  # fmt: skip
    rows = []
    for n in sorted(set(sizes) | set(in_memory)):
        corpus = work / f"corpus_{n}.json"
        size = write_corpus(corpus, n)
        for engine in ("stream", "in-memory"):
            if (engine == "stream" and n not in sizes) or (
                engine == "in-memory" and n not in in_memory
            ):
                continue
            out = work / f"out_{n}_{engine}.parquet"
            flag = "--stream" if engine == "stream" else "--no-stream"
            args = [str(corpus), "--format", "amazon", "--level", "review", "--config", str(config),
                    "--no-cache", flag, "--out", str(out)]  # fmt: skip
            run = run_child(args, env, timeout)
            record = json.loads(out.with_suffix(".run.json").read_text())
            manifest = json.loads(out.with_suffix(".manifest.json").read_text())
            if manifest["rows"] != n:
                raise SystemExit(f"{out}: {manifest['rows']} rows, expected {n}")
            row = {"texts": n, "engine": engine, "input_mib": round(size / 2**20, 1), **run,
                   "encoded_texts": record["encoded_texts"],
                   "texts_per_s": round(n / run["wall_s"], 1)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
            out.unlink()
        corpus.unlink()
    return rows


def verdict(rows: list[dict]) -> dict:
    streamed = {r["texts"]: r["peak_rss_mib"] for r in rows if r["engine"] == "stream"}
    if not streamed:
        return {}
    small, large = min(streamed), max(streamed)
    ratio = streamed[large] / streamed[small]
    return {"smallest": small, "largest": large, "ratio": round(ratio, 3),
            "target": "largest <= 1.25x smallest (1M vs 10k)",
            "met": bool(ratio <= 1.25) if (small, large) == (10_000, 1_000_000) else None}  # fmt: skip


def write_markdown(result: dict) -> str:
    lines = [
        "# Peak memory of streamed extraction (issue 13)",
        "",
        f"Command: `{result['command']}` ({result['date']}; {result['machine']['cores']} cores, "
        f"{result['machine']['cpu']}).",
        "",
        f"Encoder: {result['encoder']}. Corpus: SYNTHETIC Amazon-schema JSON Lines, every text "
        "distinct (~20 words), n/10 users, n/20 items. Each run is `recfeat extract --level review "
        "--no-cache` in a fresh process with one intra-op thread (OMP_NUM_THREADS=1); peak RSS "
        "is that process's ru_maxrss.",
        "",
        "| texts | engine | input MiB | wall s | texts/s | peak RSS MiB |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        lines.append(f"| {r['texts']:,} | {r['engine']} | {r['input_mib']} | {r['wall_s']} | "
                     f"{r['texts_per_s']:,} | {r['peak_rss_mib']} |")  # fmt: skip
    v = result["verdict"]
    if v:
        met = {True: "met", False: "MISSED", None: "not judged (sizes differ from 10k/1M)"}[
            v["met"]
        ]
        lines += ["", f"Streamed peak RSS at {v['largest']:,} texts is {v['ratio']}x the figure at "
                      f"{v['smallest']:,}; target {v['target']}: **{met}**."]  # fmt: skip
    lines += ["", "Timings are from a shared 2-core machine: indicative only.", ""]
    return "\n".join(lines)


def write_png(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recfeat.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for engine, marker in (("stream", "o"), ("in-memory", "s")):
        pts = [(r["texts"], r["peak_rss_mib"]) for r in result["runs"] if r["engine"] == engine]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker=marker, label=engine)
    ax.set_xscale("log")
    ax.set_xlabel("texts (synthetic reviews)")
    ax.set_ylabel("peak RSS (MiB)")
    ax.set_title("recfeat extract peak memory (tiny random-weight BERT)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="streamed corpus sizes, comma-separated")  # fmt: skip
    parser.add_argument("--in-memory", default="", help="sizes also run with --no-stream")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    in_memory = [int(s) for s in args.in_memory.split(",") if s]
    from recfeat.atomic import write_text
    from recfeat.jsonable import jsonable

    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_memory.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "encoder": ENCODER_LABEL,
    }
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        result["runs"] = measure(sizes, in_memory, Path(tmp), args.timeout)
    result["verdict"] = verdict(result["runs"])
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "memory.json", json.dumps(jsonable(result), indent=2) + "\n")
    write_text(args.out / "memory.md", write_markdown(result))
    write_png(result, args.out / "memory.png")
    print(f"wrote {args.out / 'memory.md'}: {result['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
