"""Produce the committed CPU throughput figures with the harness (recfeat bench throughput).

Runs all-MiniLM-L6-v2 on every recfeat backend and every installed peer, on the fixed shape
batch 32 x 128 tokens and on the Musical Instruments reviews (tokenisation included), then
writes benchmarks/results/throughput.{md,json} and throughput_{fixed,corpus}.png.

    python benchmarks/bench_throughput.py [--limit 2000] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BACKENDS = "torch-fp32,torch-bf16,onnx-fp32,onnx-fp32-o2,onnx-int8,openvino-fp32,openvino-bf16"
PEERS = "st-torch,st-onnx,st-onnx-qint8,openvino-peer"


def default_data() -> Path:
    root = Path(os.environ.get("RECFEAT_DATA_DIR", HERE.parent.parent / "shared" / "data"))
    return root / "amazon_musical_instruments_5" / "reviews_Musical_Instruments_5.json.gz"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(default_data()))
    ap.add_argument("--limit", type=int, default=None, help="seeded subset of the reviews")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--corpus-repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--backends", default=BACKENDS)
    ap.add_argument("--peers", default=PEERS)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--note", action="append", default=[], help="a line for the report")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from recfeat.bench import backends as bb
    from recfeat.bench import report as bench_report
    from recfeat.bench import suite as bench_suite

    specs = bb.parse_backends(args.backends, kind=bb.RECFEAT)
    peers = bb.parse_backends(args.peers, kind=bb.PEER)
    name, texts = bench_suite.corpus_texts(args.data, "auto", args.limit)
    ctx = bb.BuildContext(encoder="minilm", threads=args.threads, calibration_texts=texts[:512])
    command = "python benchmarks/bench_throughput.py " + " ".join(sys.argv[1:] if argv is None else argv)
    say = lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    fixed = bench_suite.run_throughput(
        encoder="minilm", backends=specs, peers=peers, batch_sizes=[32], seq_lens=[128],
        ctx=ctx, repeats=args.repeats, command=command, progress=say,
    )
    corpus = bench_suite.run_throughput(
        encoder="minilm", backends=specs, peers=peers, texts=texts, corpus_name=name,
        fixed=False, ctx=ctx, repeats=args.corpus_repeats or args.repeats, command=command,
        progress=say,
    )
    # One report: both workloads, one environment record, failures of either run.
    results = {**fixed, "rows": fixed["rows"] + corpus["rows"], "corpus": corpus["corpus"],
               "failed": fixed["failed"] + corpus["failed"],
               "notes": [*fixed["notes"], *args.note]}
    out = Path(args.out)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        report = bench_report.write_report(Path(tmp) / "report", results)
        out.mkdir(parents=True, exist_ok=True)
        for src, dst in (("results.md", "throughput.md"), ("results.json", "throughput.json"),
                         ("throughput_fixed.png", "throughput_fixed.png"),
                         ("throughput_corpus.png", "throughput_corpus.png")):
            if (report / src).exists():
                shutil.copyfile(report / src, out / f".{dst}.tmp")
                os.replace(out / f".{dst}.tmp", out / dst)
    print((out / "throughput.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
