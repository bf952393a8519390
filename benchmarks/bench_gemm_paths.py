"""The two fp32 GEMM paths of the torch encoder side by side: speed and batch invariance.

``HFEncoder`` runs its fp32 Linear layers either through torch's own kernels (``blas``:
MKL's sgemm on x86) or prepacked for oneDNN (``onednn``). The default is a fixed function of
the CPU (``recfeat.machine.fp32_gemm_default``), because the two paths differ by ~1e-7 and a
per-process timed choice made two runs of one input write different bytes. This script
measures, in one process, what that choice trades:

- texts/s of each path on real Musical Instruments reviews (interleaved repeats, median);
- whether a text's vector is the same bits alone, among 20 and among 200 texts, at a short
  and at the full token limit (what a vector cache filled by another input relies on).

    python benchmarks/bench_gemm_paths.py            # writes benchmarks/results/gemm_paths.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_encode import load_texts  # noqa: E402


def _rows_differing(a, b) -> int:
    return int((a != b).any(axis=1).sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=800, help="reviews per timed call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("RECFEAT_DATA_DIR", "../shared/data"))
    parser.add_argument("--out", default=str(HERE / "results" / "gemm_paths.md"))
    args = parser.parse_args()
    import numpy as np

    import recfeat
    from recfeat.atomic import write_text
    from recfeat.machine import cpu_flags, cpu_model, cpu_vendor, fp32_gemm_default

    texts = load_texts(Path(args.data_dir), max(args.texts, 200))
    paths = {"blas": False, "onednn": True}
    encoders = {name: recfeat.encoder("minilm", onednn=flag) for name, flag in paths.items()}
    for enc in encoders.values():
        enc.encode(texts[:64])  # load + warm-up
    speed: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):  # interleaved, so drift of the VM hits both paths alike
        for name, enc in encoders.items():
            start = time.perf_counter()
            enc.encode(texts[: args.texts])
            speed[name].append(args.texts / (time.perf_counter() - start))
    invariance = []
    for name, flag in paths.items():
        for max_length in (16, 256):
            enc = recfeat.encoder("minilm", onednn=flag, max_length=max_length)
            many = enc.encode(texts[:200])[:20]
            few = enc.encode(texts[:20])
            one = np.concatenate([enc.encode([t]) for t in texts[:20]])
            diff = float(np.abs(many - few).max())
            invariance.append((name, max_length, _rows_differing(many, few), _rows_differing(one, few), diff))
    med = {name: statistics.median(v) for name, v in speed.items()}
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx", "avx_vnni")))
    lines = [
        "## fp32 GEMM paths of the torch encoder",
        "",
        f"Command: `python benchmarks/bench_gemm_paths.py --texts {args.texts} --repeats {args.repeats}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {cpu_model()} ({cpu_vendor() or 'vendor not reported'}), {os.cpu_count()} CPUs, "
        f"flags {', '.join(flags) or 'none of avx512/amx/avx_vnni'}. "
        f"Default on this machine: `{fp32_gemm_default()}`.",
        "",
        f"MiniLM (real weights), fp32, {args.texts} Musical Instruments reviews per call, max_length 256, "
        f"medians of {args.repeats} interleaved calls:",
        "",
        "| path | texts/s | runs | vs blas |",
        "| --- | --- | --- | --- |",
    ]
    for name in paths:
        runs = ", ".join(f"{v:.1f}" for v in speed[name])
        lines.append(f"| {name} | {med[name]:.1f} | {runs} | {med[name] / med['blas']:.2f}x |")
    lines += [
        "",
        "Batch invariance: the first 20 reviews encoded among 200, alone as 20, and one at a time.",
        "",
        "| path | max_length | rows differing, 200 vs 20 | rows differing, 1-by-1 vs 20 | max abs diff |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {n} | {ml} | {a} | {b} | {d:.2g} |" for n, ml, a, b, d in invariance]
    lines.append("")
    write_text(Path(args.out), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
