"""Why ``recfeat serve`` cuts a batcher group into calls of similar length, in process.

1. Padding (exact, no timing): the concurrency-64 texts of bench_serve.py (default slices)
   cut into groups of 1, 8 and 60 (what the micro-batcher hands the encode thread at
   concurrency 1, 8 and 64) and into one group of all of them (offline); for each, the padded
   tokens per real token and the engine batches, with the engine's own cut of one call per
   group against ``recfeat.serve.embedder.length_groups`` (at the quiet-machine batch cost).
2. Timing (``--rounds N``): the same groups encoded one call each vs in length groups with
   the cost learned as the server learns it, and the whole slice offline in one call,
   interleaved round by round in this one process (timings on a shared machine are only
   comparable side by side).

    python benchmarks/serve/groups.py [--texts 1500] [--rounds 0] [--timed-texts 240] [--threads N]
        [--out benchmarks/results/serve_groups]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

GROUPS = (1, 8, 60)


def padding(lengths, plan, size: int, cost: float) -> dict:
    """Padded tokens per real token and batches, one call per group vs length groups."""
    import numpy as np

    from recfeat.encode.batching import padded_width
    from recfeat.serve.embedder import length_groups

    def padded(calls):
        total = batches = 0
        for g in calls:
            for b in plan.batches(g):
                total += len(b) * padded_width(int(g[b].max()), plan.pad_multiple, plan.max_length)
                batches += 1
        return total, batches

    one, split = [], []
    for start in range(0, len(lengths), size):
        g = lengths[start : start + size]
        one.append(g)
        split += [g[rows] for rows in length_groups(
            g, pad_multiple=plan.pad_multiple, cap=plan.max_length, budget_tokens=plan.batch_tokens,
            max_rows=plan.max_batch_size, batch_cost=cost)]  # fmt: skip
    real = int(np.sum(lengths))
    (p1, b1), (p2, b2) = padded(one), padded(split)
    return {"group": size, "groups": len(one), "real_tokens": real,
            "one_call": {"padded_per_real": round(p1 / real, 3), "batches": b1},
            "length_groups": {"padded_per_real": round(p2 / real, 3), "batches": b2,
                              "calls": len(split)}}  # fmt: skip


def timing(texts: list[str], rounds: int, threads: int | None) -> dict:
    """texts/s of one call per group vs length groups (learned cost), and offline."""
    import recfeat
    from recfeat.serve.embedder import Embedder
    from recfeat.serve.metrics import Metrics

    enc = recfeat.encoder("minilm", **({"threads": threads} if threads else {}))
    emb = Embedder(enc, None, Metrics(), cache_size=0, max_inputs=256, max_chars=10**6,
                   budget_tokens=8192, window_s=0.0, max_queue=8, timeout_s=60.0)  # fmt: skip
    emb.warm_up()
    plan = emb._group_plan()
    if plan is None:
        raise SystemExit("groups.py: this encoder keeps one call per group (not on the CPU)")

    def run(size: int, grouped: bool) -> float:
        emb._plan = plan if grouped else None  # None: the one-call path
        try:
            start = time.perf_counter()
            for i in range(0, len(texts), size):
                emb.encode_now(texts[i : i + size])
            return len(texts) / (time.perf_counter() - start)
        finally:
            emb._plan = plan

    rows: dict[str, list[float]] = {}
    costs = []
    for r in range(rounds):
        rows.setdefault("offline, one call", []).append(run(len(texts), False))
        for size in GROUPS[1:]:
            rows.setdefault(f"groups of {size}, one call each", []).append(run(size, False))
            rows.setdefault(f"groups of {size}, length groups", []).append(run(size, True))
        rows.setdefault("groups of 1", []).append(run(1, False))
        costs.append(round(emb.batch_cost.tokens, 1))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rows.items())
              + f"; learned batch cost {costs[-1]} tokens; load {os.getloadavg()[0]:.1f}",
              file=sys.stderr, flush=True)  # fmt: skip
    return {"rounds": rounds, "texts": len(texts), "threads": threads or "torch's default",
            "texts_per_s": rows, "learned_batch_cost_tokens": costs}


def markdown(result: dict) -> str:
    lines = ["# recfeat serve: batcher groups in calls of similar length", "",
             f"Command: `{result['command']}`", "", f"- {result['environment']}",
             f"- texts: {result['corpus']}", "",
             "## Padding (exact)", "",
             "Padded tokens per real token and engine batches (the engine's plan: budget "
             f"{result['plan']['batch_tokens']} tokens, at most {result['plan']['max_batch_size']} "
             f"rows, widths rounded to {result['plan']['pad_multiple']}) for the same texts cut "
             "into groups as the micro-batcher hands them over; length groups at the "
             f"quiet-machine batch cost of {result['cost']} tokens.", "",
             "| group | groups | one call: padded / real | batches | length groups: padded / real "
             "| calls | batches |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for p in result["padding"]:
        o, s = p["one_call"], p["length_groups"]
        name = "all (offline)" if p["groups"] == 1 and p["group"] > 60 else p["group"]
        lines.append(f"| {name} | {p['groups']} | {o['padded_per_real']:.3f} | {o['batches']} "
                     f"| {s['padded_per_real']:.3f} | {s['calls']} | {s['batches']} |")  # fmt: skip
    t = result.get("timing")
    if t:
        lines += ["", f"## Timing ({t['rounds']} rounds interleaved, {t['texts']} texts, MiniLM "
                  f"torch fp32, threads: {t.get('threads')})", "", "| run | texts/s per round | median |", "|---|---|---|"]  # fmt: skip
        for name, values in t["texts_per_s"].items():
            med = sorted(values)[len(values) // 2]
            lines.append(f"| {name} | {', '.join(f'{v:.1f}' for v in values)} | {med:.1f} |")
        lines += ["", f"Learned batch cost after each round (tokens): {t['learned_batch_cost_tokens']}"]
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECFEAT_DATA_DIR",
                                                         str(REPO.parent / "shared" / "data")))  # fmt: skip
    ap.add_argument("--texts", type=int, default=1500, help="texts of the concurrency-64 slice")
    ap.add_argument("--rounds", type=int, default=0, help="timed rounds (0: padding only)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for the timed encoder (default: torch's own)")
    ap.add_argument("--timed-texts", type=int, default=240,
                    help="the first N of those texts are timed (a round encodes them 6 times)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve_groups"))
    args = ap.parse_args(argv)
    if args.texts < 60 or args.rounds < 0 or args.timed_texts < 60:
        raise SystemExit("groups.py: --texts and --timed-texts must be at least 60, --rounds "
                         "at least 0")

    import numpy as np

    import recfeat
    from benchmarks.bench_serve import load_texts, slices
    from recfeat.atomic import write_text
    from recfeat.bench.measure import capture_environment
    from recfeat.serve.embedder import BATCH_COST_TOKENS

    texts, corpus = load_texts(Path(args.data_dir), 0)
    _, levels = slices(texts, 64, [100, 400, 1500])  # bench_serve.py's default slices
    top = levels[-1][: args.texts]
    enc = recfeat.encoder("minilm")
    plan = enc.plan
    lengths = np.asarray(enc.tokenize(top).lengths)
    env = capture_environment(device="cpu")
    result = {
        "command": "python benchmarks/serve/groups.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "environment": f"{env.get('date')}; {env.get('cpu_model')} ({env.get('cpu_count')} logical "
                       f"CPUs); load average at start {os.getloadavg()[0]:.1f}",
        "corpus": f"{corpus['name']}, bench_serve.py's concurrency-64 slice ({len(top)} texts, "
                  f"mean {lengths.mean():.1f} tokens kept)",
        "plan": {"batch_tokens": plan.batch_tokens, "max_batch_size": plan.max_batch_size,
                 "pad_multiple": plan.pad_multiple, "max_length": plan.max_length},
        "cost": BATCH_COST_TOKENS,
        "padding": [padding(lengths, plan, size, BATCH_COST_TOKENS)
                    for size in (*GROUPS, len(top))],
    }  # fmt: skip
    if args.rounds:
        result["timing"] = timing(top[: args.timed_texts], args.rounds, args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    write_text(out.with_suffix(".md"), markdown(result))
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
