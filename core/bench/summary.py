"""What a throughput run means: every path as a fraction of its precision's GEMM ceiling,
against the fastest peers, and the issue's targets met or missed with their margins.

Works on the plain rows ``recfeat.bench.suite.run_throughput`` returns (tests inject rows),
so the same rules hold in the CLI, ``benchmarks/bench_throughput.py`` and the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from recfeat.bench.ceilings import ceiling_for, fraction_of_ceiling

RECFEAT, PEER = "recfeat", "peer"  # recfeat.selection.backends' kinds (no heavy import here)
#: A peer counts as holding quality at this mean cosine to torch fp32.
PEER_QUALITY_COSINE = 0.999
#: The gate's cosine floor (recfeat.selection.gate.DEFAULT_MIN_COSINE) when no downstream gate ran.
GATE_COSINE = 0.99
#: The fixed shape the issue's targets name (batch x tokens).
TARGET_SHAPE = (32, 128)

# (id, what, goal): the CPU targets (issue 12's, with issue 26's 1.5x at any quality),
# each judged in ``evaluate_targets``.
TARGETS = (
    ("corpus_vs_quality_peer", "real corpus: recfeat's fastest gated path / fastest peer with "
     f"mean cosine >= {PEER_QUALITY_COSINE}", 2.0),
    ("corpus_vs_any_peer", "real corpus: recfeat's fastest gated path / fastest peer at any quality", 1.5),
    ("int8_fraction", f"fixed {TARGET_SHAPE[0]} x {TARGET_SHAPE[1]}: recfeat int8 path, fraction "
     "of the int8 ceiling (mean cosine >= 0.995 on the real corpus)", 0.60),
    ("overlap_ratio", "real corpus tokens/s / the same backend's fixed-shape tokens/s "
     "(recfeat's fastest gated path)", 0.90),
)
INT8_MIN_COSINE = 0.995


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def workload_key(row: dict[str, Any]) -> tuple:
    return (row.get("workload"), row.get("batch"), row.get("seq"))


# -- per-row figures -------------------------------------------------------------------------
def add_fractions(rows: Sequence[dict[str, Any]], ceilings: dict[str, dict[str, Any]]) -> None:
    """``fraction_of_ceiling`` (and the ceiling used) on every row with ``gflops_per_s``."""
    for row in rows:
        ceiling = ceiling_for(row.get("precision"), ceilings)
        row["ceiling_gflops"] = ceiling["gflops"] if ceiling else None
        row["fraction_of_ceiling"] = fraction_of_ceiling(
            (row.get("gflops_per_s") or 0) * 1e9, row.get("precision"), ceilings
        )


def add_fixed_ratios(rows: Sequence[dict[str, Any]]) -> None:
    """On corpus rows, ``fixed_ratio``: corpus tokens/s over the same backend's fixed-shape
    tokens/s at the target shape (or, without it, its best fixed shape): how close real
    texts, tokenisation included, come to the model-only figure."""
    fixed: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r.get("workload") != "fixed" or not _finite(r.get("tokens_per_s")):
            continue
        best = fixed.get(r["backend"])
        at_target = (r.get("batch"), r.get("seq")) == TARGET_SHAPE
        if best is None or at_target or (
            (best.get("batch"), best.get("seq")) != TARGET_SHAPE and r["tokens_per_s"] > best["tokens_per_s"]
        ):
            fixed[r["backend"]] = r
    for r in rows:
        ref = fixed.get(r["backend"])
        if r.get("workload") == "corpus" and ref and _finite(r.get("tokens_per_s")):
            r["fixed_ratio"] = r["tokens_per_s"] / ref["tokens_per_s"]
            r["fixed_shape"] = f"{ref.get('batch')}x{ref.get('seq')}"


def fastest_peers(rows: Sequence[dict[str, Any]]) -> dict[tuple, dict[str, dict[str, Any] | None]]:
    """Per workload: the fastest peer holding mean cosine >= 0.999 and the fastest at all."""
    out: dict[tuple, dict[str, dict[str, Any] | None]] = {}
    for r in rows:
        if r.get("kind") != PEER or not _finite(r.get("seq_per_s")):
            continue
        slot = out.setdefault(workload_key(r), {"quality": None, "any": None})
        if slot["any"] is None or r["seq_per_s"] > slot["any"]["seq_per_s"]:
            slot["any"] = r
        cos = r.get("cosine_mean")
        if _finite(cos) and cos >= PEER_QUALITY_COSINE and (
            slot["quality"] is None or r["seq_per_s"] > slot["quality"]["seq_per_s"]
        ):
            slot["quality"] = r
    return out


def add_peer_comparison(rows: Sequence[dict[str, Any]]) -> None:
    """``vs_quality_peer`` / ``vs_any_peer`` (seq/s ratios, with the peers' names) on every row."""
    best = fastest_peers(rows)
    for r in rows:
        slot = best.get(workload_key(r), {})
        for field, peer in (("quality", slot.get("quality")), ("any", slot.get("any"))):
            ok = peer is not None and _finite(r.get("seq_per_s"))
            r[f"vs_{field}_peer"] = r["seq_per_s"] / peer["seq_per_s"] if ok else None
            r[f"{field}_peer"] = peer["backend"] if peer is not None else None


def gate_passes(row: dict[str, Any]) -> tuple[bool, str]:
    """(passes, on what): the downstream gate's verdict where one ran, else the gate's
    cosine floor alone, said so."""
    if row.get("gate_passed") is not None:
        return bool(row["gate_passed"]), "downstream gate"
    cos = row.get("cosine_mean")
    return bool(_finite(cos) and cos >= GATE_COSINE), f"mean cosine >= {GATE_COSINE} only (no downstream gate ran)"


# -- targets --------------------------------------------------------------------------------
def _target(tid: str, value: float | None, detail: str) -> dict[str, Any]:
    what, goal = next((w, g) for i, w, g in TARGETS if i == tid)
    met = None if value is None else value >= goal
    margin = None if value is None else value / goal - 1
    return {"id": tid, "target": what, "goal": goal, "value": value, "met": met,
            "margin": margin, "detail": detail}  # fmt: skip


def evaluate_targets(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each of ``TARGETS`` with value, met (None: not measured in this run) and margin
    (value / goal - 1). Run after add_fractions, add_fixed_ratios and add_peer_comparison."""
    corpus = [r for r in rows if r.get("workload") == "corpus" and _finite(r.get("seq_per_s"))]
    ours = [r for r in corpus if r.get("kind") == RECFEAT and gate_passes(r)[0]]
    best = max(ours, key=lambda r: r["seq_per_s"]) if ours else None
    out = []
    if best is None:
        why = "no corpus run" if not corpus else "no recfeat path passes the gate on the corpus"
        out += [_target("corpus_vs_quality_peer", None, why), _target("corpus_vs_any_peer", None, why)]
    else:
        on = gate_passes(best)[1]
        for tid, field in (("corpus_vs_quality_peer", "quality"), ("corpus_vs_any_peer", "any")):
            peer = best.get(f"{field}_peer")
            value = best.get(f"vs_{field}_peer")
            detail = (f"{best['backend']} {best['seq_per_s']:.1f} seq/s (gated on {on}) vs "
                      + (f"{peer}" if peer else "no such peer in this run"))
            out.append(_target(tid, value, detail))
    # int8: the best fraction at the target shape among recfeat int8 paths holding cosine.
    corpus_cos = {r["backend"]: r.get("cosine_mean") for r in corpus}
    int8 = []
    for r in rows:
        if (r.get("kind") == RECFEAT and r.get("precision") == "int8" and r.get("workload") == "fixed"
                and (r.get("batch"), r.get("seq")) == TARGET_SHAPE and _finite(r.get("fraction_of_ceiling"))):
            cos = corpus_cos.get(r["backend"], r.get("cosine_mean"))
            if _finite(cos) and cos >= INT8_MIN_COSINE:
                int8.append((r, cos, r["backend"] in corpus_cos))
    if int8:
        r, cos, real = max(int8, key=lambda t: t[0]["fraction_of_ceiling"])
        src = "real corpus" if real else "synthetic ids only (no corpus run)"
        out.append(_target("int8_fraction", r["fraction_of_ceiling"],
                           f"{r['backend']}, mean cosine {cos:.5f} ({src})"))
    else:
        out.append(_target("int8_fraction", None, f"no recfeat int8 row at {TARGET_SHAPE[0]}x"
                           f"{TARGET_SHAPE[1]} with mean cosine >= {INT8_MIN_COSINE} and a ceiling"))
    if best is not None and _finite(best.get("fixed_ratio")):
        out.append(_target("overlap_ratio", best["fixed_ratio"],
                           f"{best['backend']} vs its fixed {best.get('fixed_shape')}"))
    else:
        out.append(_target("overlap_ratio", None, "needs a corpus row and a fixed row of the same backend"))
    return out


def summarise(rows: Sequence[dict[str, Any]], ceilings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Add every derived figure to ``rows`` and return the targets."""
    add_fractions(rows, ceilings)
    add_fixed_ratios(rows)
    add_peer_comparison(rows)
    return evaluate_targets(rows)
