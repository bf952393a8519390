"""One 21 MB review among 20 (issue 21): wall time and peak RSS of `recfeat extract
--max-length 16`, streamed and loaded, for this tree and optionally an earlier one.

    python benchmarks/bench_bounded_input.py                                  # this tree
    python benchmarks/bench_bounded_input.py --before-pythonpath /tmp/recfeat-ab21/pkg

Each run is a fresh `recfeat extract` process (default encoder, no cache); its peak RSS is
the child's own ``ru_maxrss`` (os.wait4), so runs do not see each other. Also checked: the
vectors equal those of the same file with the big review cut to 2,000 characters. Writes
benchmarks/results/bounded_input.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = "from recfeat.cli.main import cli; cli(prog_name='recfeat')"


def words(rng: random.Random, n: int) -> str:
    vocab = "strings guitar tone bright warm cheap sturdy pedal cable amp sound great poor".split()
    return " ".join(rng.choice(vocab) for _ in range(n))


def make_inputs(folder: Path) -> tuple[Path, Path]:
    rng = random.Random(0)
    rows = [{"user": f"u{i}", "item": f"i{i % 5}", "rating": 1 + i % 5, "text": words(rng, 30)} for i in range(20)]
    huge = words(rng, 4_300_000)[:21_000_000]
    paths = []
    for name, text in (("big.jsonl", huge), ("cut.jsonl", huge[:2000])):
        rows[7]["text"] = text
        path = folder / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths.append(path)
    return paths[0], paths[1]


def run(pythonpath: str | None, data: Path, out: Path, stream: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECFEAT_")}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    env.update(HF_HUB_OFFLINE="1", RECFEAT_PROGRESS="0")
    argv = [sys.executable, "-c", CLI, "extract", str(data), "--format", "jsonl", "--max-length", "16",
            "--no-cache", "--out", str(out)] + ([] if stream else ["--no-stream"])
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"extract failed: {err[-2000:]}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before-pythonpath", default=None, help="an earlier tree's package folder")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    import numpy as np
    import pyarrow.parquet as pq

    sides = [("after", None)] + ([("before", args.before_pythonpath)] if args.before_pythonpath else [])
    rows, same = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big, cut = make_inputs(tmp)
        for label, path in sides:
            for stream in (True, False):
                engine = "streamed" if stream else "loaded (--no-stream)"
                got = run(path, big, tmp / f"{label}-{stream}.parquet", stream)
                rows.append({"side": label, "engine": engine, **got})
                print(label, engine, got, flush=True)
        run(None, cut, tmp / "cut.parquet", True)
        ref = np.stack(pq.read_table(tmp / "cut.parquet").column("vector").to_numpy(zero_copy_only=False))
        for label, _ in sides:
            vec = np.stack(pq.read_table(tmp / f"{label}-True.parquet").column("vector").to_numpy(zero_copy_only=False))
            same[label] = bool(np.array_equal(vec, ref))
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "before": args.before_pythonpath,
              "rows": rows, "vectors_equal_to_the_2000_char_cut": same}  # fmt: skip
    out = Path(args.out)
    (out / "bounded_input.json").write_text(json.dumps(result, indent=1) + "\n")
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")  # fmt: skip
    lines = ["# One 21 MB review among 20: time and peak memory of extract (issue 21)", "",
             f"- Command: `python benchmarks/bench_bounded_input.py"
             f"{' --before-pythonpath ' + args.before_pythonpath if args.before_pythonpath else ''}`",
             f"- Date: {result['date']}; machine: {cpu}, {os.cpu_count()} logical CPUs; load average at end {tuple(round(x, 2) for x in result['load_avg'])}",
             "- Input: 20 JSON-lines reviews, one of 21,000,000 characters; `recfeat extract --max-length 16 --no-cache`, "
             "default encoder (all-MiniLM-L6-v2, real weights); one fresh process per row, peak RSS of that process",
             f"- Before: the package at `{args.before_pythonpath}` (commit abcdc30, before this round)" if args.before_pythonpath else "",
             "", "| side | engine | wall time (s) | peak RSS (MiB) |", "| --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {r['side']} | {r['engine']} | {r['seconds']} | {r['peak_rss_mb']} |" for r in rows]
    lines += ["", "Streamed vectors equal to those of the same file with the big review cut to 2,000 characters: "
              + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in same.items()), ""]  # fmt: skip
    (out / "bounded_input.md").write_text("\n".join(ln for ln in lines if ln is not None) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
