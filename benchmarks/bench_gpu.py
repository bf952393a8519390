"""GPU benchmark driven by benchmarks/gpu.sh: model-only forward vs recfeat end to end vs
sentence-transformers, on random-weight standard shapes and synthetic review-like texts.

No network, no model package needed: every model is a standard shape built with seeded
random weights (labelled "random weights" everywhere). ``--dry-run`` runs every code path on
the CPU with tiny sizes so the script can be checked on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

_WORDS = (
    "the guitar strings sound bright and warm after a week of playing every night this pedal "
    "adds little hiss but tone is great for blues rock cheap cable broke two months would not "
    "buy again from seller stand holds my keyboard steady easy to fold carry tuner accurate "
    "clips well battery lasts value price although instructions were confusing microphone "
    "picks up too much room noise recording vocals at home love these picks thin enough "
    "strumming do slip returned because strap shorter than described listing amp speaker "
    "volume knob feels solid sturdy metal case shipping fast packaging arrived damaged works "
    "perfectly recommend beginners professional studio stage gig sound quality excellent"
).split()


def synthetic_reviews(n: int, seed: int = 0, mean_words: float = 70.0, min_words: int = 3) -> list[str]:
    """Deterministic review-like texts with a long-tailed length distribution (like reviews)."""
    rng = np.random.default_rng(seed)
    lengths = np.maximum(min_words, rng.lognormal(np.log(mean_words) - 0.3, 0.8, n).astype(int))
    vocab = np.array(_WORDS)
    return [" ".join(vocab[rng.integers(0, len(vocab), k)]) for k in lengths]


def _timeit(fn, sync, repeats: int, warmup: int = 1) -> tuple[float, object]:
    from recfeat.bench.measure import LatencyStats
    from recfeat.selection.timing import time_calls

    latencies, result = time_calls(fn, warmup=warmup, repeats=repeats, sync=sync)
    return LatencyStats.of(latencies).median_s, result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check the code paths")
    ap.add_argument("--shapes", default="bert-base,minilm,gpt2")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--texts", type=int, default=10261, help="synthetic reviews (Musical Instruments has 10,261)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (bf16)")
    ap.add_argument("--out", default="benchmarks/results/gpu")
    args = ap.parse_args(argv)

    import torch

    from recfeat.bench import backends as bb
    from recfeat.bench.measure import capture_environment
    from recfeat.plugin.registry import get_registry
    from recfeat.selection import backends as sb

    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    review_len = 256
    if args.dry_run:  # every code path (BERT family and a decoder), tiny sizes
        args.batch, args.seq, args.texts, args.repeats = 4, 16, 24, 1
        args.shapes, review_len = "minilm,gpt2", 32
    elif device == "cpu":
        print("gpu.sh: no CUDA GPU visible; run with --dry-run to check the script on CPU", file=sys.stderr)
        return 2
    dtypes = ["fp32", "bf16", "fp16"] if device == "cuda" else ["bf16"]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    try:
        import sentence_transformers  # noqa: F401

        have_st = True
    except ImportError:
        have_st = False
    reviews = synthetic_reviews(args.texts)
    long_texts = synthetic_reviews(max(args.batch * 4, 64), seed=1, mean_words=200, min_words=args.seq + 10)
    rows: list[dict] = []

    def add(shape, what, dtype, seqs, seconds, tokens=None, note=""):
        rows.append({"shape": shape, "what": what, "dtype": dtype, "seq_per_s": seqs / seconds,
                     "tokens_per_s": (tokens / seconds) if tokens else None, "note": note})
        print(f"  {shape:<10} {what:<34} {dtype:<5} {seqs / seconds:>10,.0f} seq/s {note}", flush=True)

    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    first_shape = shapes[0]
    for shape in shapes:
        print(f"[{shape}] random weights", flush=True)
        for dtype in dtypes:
            enc = get_registry("encoder").create(
                shape, init="random", device=device, precision=dtype, max_length=args.seq,
                batch_tokens=args.batch * args.seq, max_batch_size=args.batch,
            )
            ctx = sb.BuildContext(encoder=shape, init="random", device=device, max_length=args.seq)
            # One model serves every path below: forward, encode, overlapped encode.
            runner = sb.TorchRunner(sb.BACKENDS[f"torch-{dtype}"], ctx, encoder=enc)
            vocab = len(runner.loaded.tokenizer)
            rng = np.random.default_rng(0)
            ids = rng.integers(min(1000, vocab // 2), vocab, (args.batch, args.seq))
            mask = np.ones_like(ids)
            t, _ = _timeit(lambda r=runner, i=ids, m=mask: r.forward(i, m), sync, args.repeats)
            add(shape, f"model-only forward b{args.batch} s{args.seq}", dtype, args.batch, t,
                args.batch * args.seq, "SDPA")
            if args.compile and dtype == "bf16":
                compiled = torch.compile(runner.loaded.model)
                plain = runner.loaded.model
                runner.loaded.model = compiled
                t, _ = _timeit(lambda r=runner, i=ids, m=mask: r.forward(i, m), sync, args.repeats,
                               warmup=2)
                add(shape, f"model-only compiled b{args.batch} s{args.seq}", dtype, args.batch, t)
                runner.loaded.model = plain
            # End to end at the same shape: texts of >= seq tokens, truncated to seq.
            texts = long_texts[: args.batch * 4]
            enc.overlap = False
            t, _ = _timeit(lambda e=enc, x=texts: e.encode(x), sync, args.repeats)
            add(shape, f"recfeat encode, s{args.seq} texts", dtype, len(texts), t, note="sequential")
            enc.overlap = True  # the encode loop tokenises the next chunk on a thread
            t, _ = _timeit(lambda e=enc, x=texts: e.encode(x), sync, args.repeats)
            add(shape, f"recfeat overlapped, s{args.seq} texts", dtype, len(texts), t,
                note="tokenise || GPU")
            # Real-review-like lengths, max_length 256, token-budget batching. fp32 only for
            # the first shape: the time budget goes to the dtypes people deploy.
            if dtype == "fp32" and shape != first_shape:
                continue
            enc.max_length = review_len
            enc.batch_tokens = 65536 if device == "cuda" else 4096
            enc.max_batch_size = 1024 if device == "cuda" else 64
            enc.overlap = True
            t, _ = _timeit(lambda e=enc: e.encode(reviews), sync, max(1, args.repeats // 2))
            add(shape, f"recfeat overlapped, {len(reviews)} reviews", dtype, len(reviews), t,
                note=f"max_length {review_len}")
            enc.overlap = False
            t, _ = _timeit(lambda e=enc: e.encode(reviews), sync, max(1, args.repeats // 2))
            add(shape, f"recfeat encode, {len(reviews)} reviews", dtype, len(reviews), t,
                note="sequential")
            if have_st:
                from sentence_transformers import SentenceTransformer

                folder = bb.st_model_folder(sb.BuildContext(encoder=shape, init="random", max_length=review_len))
                tdt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
                st = SentenceTransformer(str(folder), device=device, model_kwargs={"dtype": tdt})
                st.max_seq_length = review_len
                bs = args.batch if device == "cuda" else 8
                t, _ = _timeit(
                    lambda st=st, bs=bs: st.encode(reviews, batch_size=bs, show_progress_bar=False,
                                                   convert_to_numpy=True), sync, max(1, args.repeats // 2))
                add(shape, f"sentence-transformers, {len(reviews)} reviews", dtype, len(reviews), t,
                    note=f"batch {bs}")
                del st
            enc = runner = None  # free this model before the next
            if device == "cuda":
                torch.cuda.empty_cache()

    result = {"random_weights": True, "dry_run": args.dry_run, "device": device,
              "environment": capture_environment(device=device), "args": vars(args), "rows": rows}
    out = Path(args.out)
    from recfeat.atomic import write_text
    from recfeat.jsonable import jsonable

    write_text(out / "gpu_results.json", json.dumps(jsonable(result), indent=2) + "\n")
    gpu = result["environment"].get("gpu") or "CPU (dry run)"
    lines = [f"recfeat GPU benchmark on {gpu} -- RANDOM WEIGHTS (speed only)",
             f"{'shape':<10} {'workload':<38} {'dtype':<5} {'seq/s':>10}  note"]
    for r in rows:
        lines.append(f"{r['shape']:<10} {r['what']:<38} {r['dtype']:<5} {r['seq_per_s']:>10,.0f}  {r['note']}")
    table = "\n".join(lines)
    write_text(out / "gpu_table.txt", table + "\n")
    print(f"\nresults in {out}/gpu_results.json\n\n" + table)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    code = main()
    print(f"(total {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    sys.exit(code)
