"""Texts/s of one ``encode`` call, for before/after comparisons of the encode loop.

Run it once per process, alternating trees, so machine drift hits both sides alike:

    git worktree add /tmp/old <commit>      # plus a folder that maps recfeat -> /tmp/old/core
    for i in 1 2 3; do
      for kind in bf16 fp32 onnx; do
        python benchmarks/ab_encode.py $kind --onnx DIR                      # after
        PYTHONPATH=/tmp/oldpkg python benchmarks/ab_encode.py $kind --onnx DIR  # before
      done
    done

``onnx`` runs an export folder (``recfeat export --optimize o2 --quantize dynamic-int8``).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["bf16", "fp32", "onnx"])
    parser.add_argument("--onnx", help="export folder for kind onnx")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--data-dir", default=os.environ.get("RECFEAT_DATA_DIR", "../shared/data"))
    args = parser.parse_args()
    from recfeat import get_registry  # after argparse: --help stays instant

    path = Path(args.data_dir) / "amazon_musical_instruments_5" / "reviews_Musical_Instruments_5.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = map(json.loads, itertools.islice(fh, args.texts))
        texts = [(r.get("summary", "") + " " + r.get("reviewText", "")).strip() for r in rows]
    if args.kind == "onnx":
        enc = get_registry("encoder").create("onnx", path=args.onnx)
    else:
        enc = get_registry("encoder").create("minilm", precision=args.kind)
    enc.encode(texts[:200])  # load + warm-up
    start = time.perf_counter()
    enc.encode(texts)
    print(f"{args.kind} {len(texts) / (time.perf_counter() - start):.1f}")


if __name__ == "__main__":
    main()
