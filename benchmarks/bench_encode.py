"""Encoding throughput: recfeat's torch encoder vs sentence-transformers, in one process.

On the Amazon Musical Instruments reviews (10,261 texts; text = summary + ". " + reviewText),
all-MiniLM-L6-v2 at max_length 256:

- sentence-transformers ``encode`` with its defaults (fp32, batch 32),
- recfeat ``minilm`` fp32 (token-budget batching),
- recfeat ``minilm`` bf16 (autocast; AMX / AVX-512-bf16 CPUs).

Runners alternate order over repeats so drift in machine load spreads over all of them; the
median seq/s is reported with CPU seconds (a fairer figure on a shared machine), peak RSS
during each run, and cosine to recfeat fp32. Writes ``benchmarks/results/encode.json`` and
``encode.md``.

    python benchmarks/bench_encode.py            # full run
    python benchmarks/bench_encode.py --quick    # 1,000 texts, one repeat
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RECFEAT_LOAD_PLUGINS", "")

HERE = Path(__file__).resolve().parent
DATA_FILE = Path("amazon_musical_instruments_5") / "reviews_Musical_Instruments_5.json.gz"
TARGETS = {"recfeat fp32": 1.2, "recfeat bf16": 3.0}  # x sentence-transformers, from issue 3


def load_texts(data_dir: Path, limit: int | None) -> list[str]:
    path = data_dir / DATA_FILE
    if not path.exists():
        sys.exit(f"error: {path} not found; set RECFEAT_DATA_DIR or --data-dir")
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts.append(f"{row.get('summary', '')}. {row.get('reviewText', '')}")
            if limit and len(texts) >= limit:
                break
    return texts


class PeakRSS:
    """Highest resident set size (bytes) seen while the block runs, sampled every 20 ms."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.current())

    def __enter__(self):
        self.start = self.peak = self.current()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def machine() -> dict:
    from recfeat.machine import cpu_flags, cpu_model

    cpu = cpu_model()
    flags = cpu_flags()
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": isa,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def versions() -> dict:
    import sentence_transformers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
    }


def build_runners(args) -> dict:
    from sentence_transformers import SentenceTransformer

    from recfeat.encode.hub import packaged_minilm_path
    from recfeat.plugin.registry import get_registry

    st = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    st.max_seq_length = args.max_length
    common = dict(
        max_length=args.max_length,
        batch_tokens=args.batch_tokens,
        max_batch_size=args.max_batch_size,
        threads=args.threads,
    )
    fp32 = get_registry("encoder").create("minilm", precision="fp32", **common)
    bf16 = get_registry("encoder").create("minilm", precision="bf16", **common)
    return {
        "sentence-transformers fp32": lambda texts: st.encode(texts, convert_to_numpy=True),
        "recfeat fp32": fp32.encode,
        "recfeat bf16": bf16.encode,
    }


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from recfeat.encode.similarity import cosine_rows

    return cosine_rows(a, b)


def run(args) -> dict:
    data_dir = Path(args.data_dir or os.environ.get("RECFEAT_DATA_DIR") or "/work/shared/data")
    texts = load_texts(data_dir, args.limit)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runners = build_runners(args)
    for fn in runners.values():  # warm-up: model load, first-call allocations
        fn(texts[:64])
    names = list(runners)
    timings: dict[str, list[dict]] = {n: [] for n in names}
    outputs: dict[str, np.ndarray] = {}
    load_start = os.getloadavg()
    for rep in range(args.repeats):
        # Rotate and alternate direction so no runner always goes first or last.
        order = names[rep % len(names) :] + names[: rep % len(names)]
        if rep % 2:
            order.reverse()
        for name in order:
            with PeakRSS() as rss:
                wall, cpu = time.perf_counter(), time.process_time()
                out = runners[name](texts)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            outputs[name] = out
            timings[name].append(
                {
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "peak_rss_mib": rss.peak / 2**20,
                    "rss_growth_mib": (rss.peak - rss.start) / 2**20,
                }
            )
            print(f"[rep {rep + 1}] {name:28s} {len(texts) / wall:8.1f} seq/s  "
                  f"cpu {cpu:7.1f}s  rss {rss.peak / 2**20:6.0f} MiB", flush=True)
    load_end = os.getloadavg()

    base = "sentence-transformers fp32"
    ref = outputs["recfeat fp32"]
    rows = {}
    for name in names:
        walls = [t["wall_s"] for t in timings[name]]
        cpus = [t["cpu_s"] for t in timings[name]]
        cos = cosine(outputs[name], ref)
        rows[name] = {
            "seq_per_s": len(texts) / statistics.median(walls),
            "seq_per_cpu_s": len(texts) / statistics.median(cpus),
            "wall_s": walls,
            "cpu_s": cpus,
            "peak_rss_mib": max(t["peak_rss_mib"] for t in timings[name]),
            "rss_growth_mib": max(t["rss_growth_mib"] for t in timings[name]),
            "cosine_to_recfeat_fp32_mean": float(cos.mean()),
            "cosine_to_recfeat_fp32_min": float(cos.min()),
        }
    for name in names:
        rows[name]["x_sentence_transformers"] = rows[name]["seq_per_s"] / rows[base]["seq_per_s"]
        rows[name]["x_sentence_transformers_cpu"] = (
            rows[name]["seq_per_cpu_s"] / rows[base]["seq_per_cpu_s"]
        )
    targets = {
        name: {
            "target_x": want,
            "measured_x": rows[name]["x_sentence_transformers"],
            "met": rows[name]["x_sentence_transformers"] >= want
            and rows[name]["cosine_to_recfeat_fp32_mean"] >= (0.999 if "bf16" in name else 0.9999),
        }
        for name, want in TARGETS.items()
    }
    st_cos = cosine(outputs[base], ref)
    return {
        "benchmark": "encode",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "versions": versions(),
        "load_average_start_end": [load_start, load_end],
        "dataset": str(DATA_FILE),
        "texts": len(texts),
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "settings": {
            "max_length": args.max_length,
            "batch_tokens": args.batch_tokens,
            "max_batch_size": args.max_batch_size,
            "threads": args.threads,
            "repeats": args.repeats,
        },
        "results": rows,
        "sentence_transformers_vs_recfeat_fp32_cosine": {
            "mean": float(st_cos.mean()),
            "min": float(st_cos.min()),
        },
        "targets": targets,
        "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# Encoding throughput: recfeat vs sentence-transformers",
        "",
        f"- Date: {res['date']}",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, ISA {', '.join(m['isa'])}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()),
        f"- Command: `{res['command']}`",
        f"- Data: {res['dataset']} ({res['texts']:,} texts), model {res['model']}, "
        f"max_length {res['settings']['max_length']}, repeats {res['settings']['repeats']} "
        "(order alternated)",
        f"- Load average at start / end: {res['load_average_start_end'][0][0]:.1f} / "
        f"{res['load_average_start_end'][1][0]:.1f} (other work shares this machine when above "
        f"{m['cores']})",
        "",
        "| runner | seq/s (median) | x ST | seq per CPU-s | x ST (CPU) | peak RSS MiB "
        "(growth in run) | cosine to recfeat fp32 (mean / min) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in res["results"].items():
        lines.append(
            f"| {name} | {r['seq_per_s']:.1f} | {r['x_sentence_transformers']:.2f} | "
            f"{r['seq_per_cpu_s']:.1f} | {r['x_sentence_transformers_cpu']:.2f} | "
            f"{r['peak_rss_mib']:.0f} (+{r['rss_growth_mib']:.0f}) | "
            f"{r['cosine_to_recfeat_fp32_mean']:.6f} / "
            f"{r['cosine_to_recfeat_fp32_min']:.6f} |"
        )
    lines += [
        "",
        "Peak RSS is the whole process (all three runners' models stay loaded); growth is over "
        "the RSS just before that run. CPU-seconds include all threads, so the CPU ratio is "
        "the fairer one while other work shares the machine.",
        "",
        "Targets (issue 3, on wall-clock medians):",
        "",
    ]
    for name, t in res["targets"].items():
        status = "met" if t["met"] else "NOT met"
        lines.append(f"- {name} >= {t['target_x']}x sentence-transformers: "
                     f"measured {t['measured_x']:.2f}x, {status}")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="shared data folder (default $RECFEAT_DATA_DIR or /work/shared/data)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N texts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 texts, one repeat")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-tokens", type=int, default=None, help="default: the encoder's")
    parser.add_argument("--max-batch-size", type=int, default=None, help="default: the encoder's")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out-dir", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.limit, args.repeats = args.limit or 1000, 1
    from recfeat.plugins.encoders import MiniLMEncoder

    defaults = MiniLMEncoder.__init__.__kwdefaults__
    args.batch_tokens = args.batch_tokens or defaults["batch_tokens"]
    args.max_batch_size = args.max_batch_size or defaults["max_batch_size"]

    res = run(args)
    from recfeat.atomic import write_text

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from recfeat.jsonable import jsonable

    write_text(out / "encode.json", json.dumps(jsonable(res), indent=2) + "\n")
    write_text(out / "encode.md", markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
