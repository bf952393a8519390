"""Benchmark: recfeat's OpenVINO bf16 path against plain OpenVINO bf16 (the ``openvino-peer``
of ``recfeat bench``), side by side in one process, interleaved.

Both run the same MiniLM (all-MiniLM-L6-v2) on the CPU with the THROUGHPUT hint, the bf16
inference hint and an ``AsyncInferQueue`` of the plugin's optimal number of requests; the
peer feeds sentence-transformers' ONNX export in batches of 32 texts sorted by length and
pools in numpy, recfeat feeds its own IR (pooling and normalisation in the graph) in
token-budget batches (``recfeat.encode.batching``). Rows:

- ``openvino-peer``: plain OpenVINO, as ``recfeat bench`` runs it;
- ``recfeat bf16, budget N``: recfeat's ``openvino`` encoder (precision bf16) with
  ``batch_tokens=N``, for the budget it had before (16384) and the ones asked for.

1. Configuration of each compiled model (hints, the precision the CPU really runs, streams,
   requests) and the IR's runtime graph (fused attention subgraphs, transposes).
2. The batches each plan makes of the corpus: how many, padding, and the model FLOPs the
   padded batches cost over those of the texts alone (the cost of padding; no timing noise).
3. Encode the corpus (tokenisation included): one warm-up each, then ``--rounds`` rounds,
   the order rotating from round to round; wall and process CPU time per call; per round
   the throughput ratio of each recfeat row over the peer; medians and ranges.
4. Model only: ``forward`` of a fixed 32 x 128 batch (both split it across their requests),
   interleaved the same way.
5. Cosine of each row's corpus vectors to recfeat's torch fp32 (the reference).

    .venv/bin/python benchmarks/bench_openvino_gap.py [--texts 500] [--rounds 5]
        [--budgets 16384,2048] [--out benchmarks/results]

Writes benchmarks/results/openvino_gap.md and openvino_gap.json.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MI_DIR = "amazon_musical_instruments_5"
PEER = "openvino-peer"


def data_dir() -> Path:
    return Path(os.environ.get("RECFEAT_DATA_DIR", REPO.parent / "shared" / "data"))


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4)}  # fmt: skip


def compiled_config(compiled) -> dict:
    """What the compiled model runs: hints, the precision the CPU really uses, streams."""
    out = {}
    for key in ("PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT", "NUM_STREAMS",
                "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "INFERENCE_NUM_THREADS"):  # fmt: skip
        out[key] = str(compiled.get_property(key))
    layers = collections.Counter(op.get_rt_info()["layerType"].astype(str)
                                 for op in compiled.get_runtime_model().get_ops())  # fmt: skip
    out["runtime_graph"] = {k: layers[k] for k in ("Subgraph", "Transpose", "FullyConnected")}
    return out


def plan_cost(lengths, batches, shape) -> dict:
    """Batches, padding and the model FLOPs of the padded batches over those of the texts."""
    from recfeat.bench.ceilings import corpus_flops, flops_per_sequence

    widths = [int(lengths[b].max()) for b in batches]
    padded = sum(len(b) * w for b, w in zip(batches, widths, strict=True))
    flops = sum(len(b) * flops_per_sequence(shape, w) for b, w in zip(batches, widths, strict=True))
    useful = corpus_flops(shape, lengths)
    return {"batches": len(batches), "padding_ratio": round(1 - int(lengths.sum()) / padded, 4),
            "flops_over_texts": round(flops / useful, 4)}  # fmt: skip


def timed(fn) -> tuple[float, float, object]:
    cpu, start = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, result


def interleaved(calls: dict, rounds: int) -> dict[str, list[dict]]:
    """``rounds`` rounds of every call, the order rotating each round (a drift in the
    machine's load hits every row alike); one untimed warm-up of each first."""
    for fn in calls.values():
        fn()
    names = list(calls)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            wall, cpu, _ = timed(calls[name])
            runs[name].append({"round": r + 1, "seconds": round(wall, 4),
                               "cpu_seconds": round(cpu, 4)})  # fmt: skip
            print(f"round {r + 1}: {name}: {wall:.2f} s", flush=True)
    return runs


def ratios(runs: dict[str, list[dict]], key: str) -> dict[str, dict]:
    """Per round, each row's throughput over the peer's (peer time / row time)."""
    out = {}
    for name, rows in runs.items():
        if name != PEER:
            out[name] = spread([p[key] / r[key] for p, r in zip(runs[PEER], rows, strict=True)])
    return out


def cosines(vectors, reference) -> dict:
    import numpy as np

    cos = (vectors * reference).sum(1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
    )
    return {"mean": round(float(cos.mean()), 6), "min": round(float(cos.min()), 6)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=500, help="seeded subset of the reviews")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--budgets",
        default="16384,2048",
        help="recfeat token budgets to time (16384: the default before issue 26)",
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--note", action="append", default=[], help="a line for the report")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RECFEAT_PROGRESS", "0")
    from recfeat.bench import backends as bb
    from recfeat.bench import suite
    from recfeat.encode.batching import plan_batches
    from recfeat.machine import cpu_flags, cpu_model, has_bf16
    from recfeat.plugin.registry import get_registry
    from recfeat.selection import backends as sb

    started, load_start = time.perf_counter(), os.getloadavg()
    budgets = [int(b) for b in args.budgets.split(",")]
    name, texts = suite.corpus_texts(str(data_dir() / MI_DIR), "auto", args.texts)
    ctx = sb.BuildContext(encoder="minilm", threads=args.threads, calibration_texts=texts)
    peer = bb.BACKENDS[PEER].build(ctx)
    folder = sb.export_artifact("openvino", ctx)  # recfeat's IR, as openvino-bf16 runs it
    ours = {}
    for budget in budgets:
        enc = get_registry("encoder").create("openvino", path=str(folder), precision="bf16",
                                             batch_tokens=budget, threads=args.threads)  # fmt: skip
        enc.load()
        ours[f"recfeat bf16, budget {budget}"] = enc
    default_budget = get_registry("encoder").create("openvino", path=str(folder)).batch_tokens
    reference = sb.BACKENDS["torch-fp32"].build(ctx).encode(texts)

    config = {PEER: compiled_config(peer.compiled)}
    config.update({k: compiled_config(e.open_backend().compiled) for k, e in ours.items()})
    shape = suite.model_shape("minilm", "pretrained")
    lengths = next(iter(ours.values())).tokenize(texts).lengths
    plans = {
        PEER: plan_cost(lengths, bb.length_sorted_batches(lengths, ctx.peer_batch_size), shape)
    }
    plans.update({k: plan_cost(lengths, plan_batches(lengths, e.batch_tokens, e.max_batch_size), shape)
                  for k, e in ours.items()})  # fmt: skip

    calls = {PEER: lambda: peer.encode(texts)}
    calls.update({k: (lambda e=e: e.encode(texts)) for k, e in ours.items()})
    corpus_runs = interleaved(calls, args.rounds)
    parity = {k: cosines(fn(), reference) for k, fn in calls.items()}
    ids, mask = suite.synthetic_batch(32, 128, shape["vocab"])
    fixed_calls = {PEER: lambda: peer.forward(ids, mask)}
    fixed_calls.update({k: (lambda e=e: e.open_backend().run(
        {"input_ids": ids, "attention_mask": mask, "token_type_ids": ids * 0}))
        for k, e in ours.items()})  # fmt: skip
    fixed_runs = interleaved(fixed_calls, args.rounds)

    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "bf16_units": has_bf16(), "cpu_flags": sorted(f for f in cpu_flags() if "bf16" in f or "amx" in f),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "command": "python benchmarks/bench_openvino_gap.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if k not in ("out", "note") and v is not None),
        "dataset": name, "texts": len(texts), "tokens": int(lengths.sum()),
        "mean_tokens": round(float(lengths.mean()), 1), "default_budget": default_budget,
        "config": config, "plans": plans,
        "corpus": {"runs": corpus_runs, "wall_ratio_vs_peer": ratios(corpus_runs, "seconds"),
                   "cpu_ratio_vs_peer": ratios(corpus_runs, "cpu_seconds"),
                   "seq_per_s": {k: round(len(texts) / statistics.median(r["seconds"] for r in v), 2)
                                 for k, v in corpus_runs.items()}},
        "fixed_32x128": {"runs": fixed_runs, "wall_ratio_vs_peer": ratios(fixed_runs, "seconds"),
                         "cpu_ratio_vs_peer": ratios(fixed_runs, "cpu_seconds")},
        "cosine_to_torch_fp32": parity,
        "total_seconds": round(time.perf_counter() - started, 1),
        "notes": args.note,
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "openvino_gap.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "openvino_gap.md").write_text(render(record))
    print(render(record))
    return 0


def render(rec: dict) -> str:
    names = list(rec["plans"])
    lines = [
        "# recfeat OpenVINO bf16 vs plain OpenVINO bf16 (issue 26)",
        "",
        f"- Date: {rec['date']}; CPU: {rec['cpu_model']}, {rec['cpus']} logical cores; "
        f"bf16 units: {rec['bf16_units']} ({', '.join(rec['cpu_flags']) or 'no bf16/amx flags'}); "
        f"Python {rec['python']}",
        f"- Command: `{rec['command']}` ({rec['total_seconds']} s in all)",
        f"- Load average {rec['load_avg_start']} at start, {rec['load_avg_end']} at the end (the "
        "machine is shared: single calls are noisy; every row met the same load, interleaved)",
        f"- Corpus: {rec['texts']} Musical Instruments reviews ({rec['dataset']}, seeded subset), "
        f"{rec['tokens']:,} tokens after truncation at 256, mean {rec['mean_tokens']}",
        f"- recfeat's default token budget for OpenVINO now: {rec['default_budget']}",
        *(f"\n> {note}" for note in rec.get("notes") or ()),
        "",
        "## Compiled models",
        "",
        "| row | hint | precision run | streams | requests | threads | runtime Subgraph / Transpose / FullyConnected |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for k in names:
        c = rec["config"][k]
        g = c["runtime_graph"]
        lines.append(f"| {k} | {c['PERFORMANCE_HINT']} | {c['INFERENCE_PRECISION_HINT']} | "
                     f"{c['NUM_STREAMS']} | {c['OPTIMAL_NUMBER_OF_INFER_REQUESTS']} | "
                     f"{c['INFERENCE_NUM_THREADS']} | {g['Subgraph']} / {g['Transpose']} / "
                     f"{g['FullyConnected']} |")  # fmt: skip
    lines += ["", "## Batches of the corpus (no timing: what each plan makes the model compute)", "",
              "| row | batches | padding | model FLOPs / the texts' own |",
              "| --- | ---: | ---: | ---: |"]  # fmt: skip
    for k in names:
        p = rec["plans"][k]
        lines.append(
            f"| {k} | {p['batches']} | {p['padding_ratio']:.1%} | {p['flops_over_texts']:.3f} |"
        )
    for title, block, unit in (("Corpus, tokenisation included", rec["corpus"], "encode"),
                               ("Model only, fixed 32 x 128", rec["fixed_32x128"], "forward")):  # fmt: skip
        lines += [
            "",
            f"## {title} ({unit} per call, s; rounds rotate the order)",
            "",
            "| round | " + " | ".join(names) + " |",
            "| --- |" + " ---: |" * len(names),
        ]
        for i in range(len(block["runs"][PEER])):
            lines.append(
                f"| {i + 1} | "
                + " | ".join(f"{block['runs'][k][i]['seconds']:.3f}" for k in names)
                + " |"
            )
        lines.append(
            "| median | "
            + " | ".join(
                f"{statistics.median(r['seconds'] for r in block['runs'][k]):.3f}" for k in names
            )
            + " |"
        )
        lines += ["", "| row | throughput / peer's, per round (wall): median (range) | (process CPU time) |",
                  "| --- | --- | --- |"]  # fmt: skip
        for k, w in block["wall_ratio_vs_peer"].items():
            c = block["cpu_ratio_vs_peer"][k]
            lines.append(
                f"| {k} | **{w['median']:.3f}** ({w['min']:.3f}-{w['max']:.3f}) | "
                f"{c['median']:.3f} ({c['min']:.3f}-{c['max']:.3f}) |"
            )
    lines += [
        "",
        "## Cosine to recfeat torch fp32 (corpus vectors)",
        "",
        "| row | mean | min |",
        "| --- | ---: | ---: |",
    ]
    for k, c in rec["cosine_to_torch_fp32"].items():
        lines.append(f"| {k} | {c['mean']:.6f} | {c['min']:.6f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
