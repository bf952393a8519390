"""Produce the committed CPU throughput figures with the harness (recfeat bench throughput).

Runs all-MiniLM-L6-v2 on every recfeat backend and every installed peer in ONE run: GEMM
ceilings first, then the fixed shape batch 32 x 128 tokens and the Musical Instruments
reviews (tokenisation included), the downstream gate on recfeat's paths, and writes
benchmarks/results/throughput.{md,json} and the PNGs (speed_quality.png among them).

    python benchmarks/bench_throughput.py [--limit 2000] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BACKENDS = ("torch-fp32,torch-bf16,onnx-fp32,onnx-fp32-o2,onnx-int8,onnx-int8-static,"
            "openvino-fp32,openvino-bf16,openvino-int8")
PNGS = ("throughput_fixed.png", "throughput_corpus.png", "speed_quality.png")


def default_data() -> Path:
    root = Path(os.environ.get("RECFEAT_DATA_DIR", HERE.parent.parent / "shared" / "data"))
    return root / "amazon_musical_instruments_5" / "reviews_Musical_Instruments_5.json.gz"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(default_data()))
    ap.add_argument("--limit", type=int, default=2000, help="seeded subset of the reviews")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--backends", default=BACKENDS)
    ap.add_argument("--peers", default=None, help="default: every peer; missing ones are listed")
    ap.add_argument("--ceiling-size", type=int, default=4096)
    ap.add_argument("--no-gate", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--note", action="append", default=[], help="a line for the report")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from recfeat.bench import backends as bb
    from recfeat.bench import report as bench_report
    from recfeat.bench import suite as bench_suite
    from recfeat.components.dataset import load_dataset
    from recfeat.selection import backends as sb
    from recfeat.selection import gate as bench_gate

    specs = bb.parse_backends(args.backends, kind=sb.RECFEAT)
    if args.peers is None:
        peers, missing = bb.default_peers("cpu")
    else:
        peers, missing = bb.parse_backends(args.peers, kind=sb.PEER), []
    rec = load_dataset(args.data, "auto")
    name, texts = bench_suite.corpus_texts(rec, "auto", args.limit)
    ctx = sb.BuildContext(encoder="minilm", threads=args.threads, calibration_texts=texts[:512])
    command = "python benchmarks/bench_throughput.py " + " ".join(sys.argv[1:] if argv is None else argv)
    say = lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    results = bench_suite.run_throughput(
        encoder="minilm", backends=specs, peers=peers, batch_sizes=[32], seq_lens=[128],
        texts=texts, corpus_name=name, ctx=ctx, repeats=args.repeats, command=command,
        progress=say, ceiling_size=args.ceiling_size or None, not_installed=missing,
        gate=None if args.no_gate else bench_gate.task_gate(rec),
        gate_rule=functools.partial(bench_gate.judge, min_cosine=bench_gate.DEFAULT_MIN_COSINE,
                                    max_drop=bench_gate.DEFAULT_MAX_DROP),
    )
    results["notes"] = [*results["notes"], *args.note]
    out = Path(args.out)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        report = bench_report.write_report(Path(tmp) / "report", results)
        out.mkdir(parents=True, exist_ok=True)
        pairs = [("results.md", "throughput.md"), ("results.json", "throughput.json")]
        for src, dst in [*pairs, *((p, p) for p in PNGS)]:
            if (report / src).exists():
                shutil.copyfile(report / src, out / f".{dst}.tmp")
                os.replace(out / f".{dst}.tmp", out / dst)
    print((out / "throughput.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
