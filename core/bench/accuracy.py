"""``recfeat bench accuracy``: what each backend's vectors are worth downstream.

Every backend encodes the same texts (timed, tokenisation included); its vectors are compared
with the reference (torch fp32) row by row, then fed to the same recommendation models on the
same split through ``recfeat.evaluation.protocol.evaluate``. A backend whose downstream metric falls
more than ``max_drop`` below the reference's is flagged, and the downstream gate of
``--backend auto`` (``recfeat.selection.gate``: mean cosine >= ``min_cosine`` and every metric
within ``max_drop``) gives each backend its verdict and names the fastest that passes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recfeat.bench.measure import capture_environment, measure
from recfeat.bench.suite import REFERENCE, flag_drops
from recfeat.errors import RecfeatError, UsageError
from recfeat.progress import progress_bar
from recfeat.selection import backends as sb
from recfeat.selection import gate
from recfeat.selection.compare import parity

ACCURACY_METRICS = ("rmse", "recall@k", "ndcg@k")
# Cold items are represented by their first review only: the comparison is between backends
# under one protocol, and on the small --limit subsets it runs on most items have one or two
# reviews, so the default (3) would leave almost no cold candidates.
COLD_REVIEWS = 1
SPLITS = ("item-cold", "random")
PARETO_METRIC = "ndcg@10"


def run_accuracy(
    *,
    data: str,
    fmt: str,
    encoder: str,
    backends: Sequence[sb.BackendSpec],
    models: Sequence[str],
    split: str = "item-cold",
    max_drop: float = gate.DEFAULT_MAX_DROP,
    min_cosine: float = gate.DEFAULT_MIN_COSINE,
    ctx: sb.BuildContext | None = None,
    limit: int | None = None,
    seed: int = 0,
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Parity and downstream metrics per backend; rows are (backend, model)."""
    from recfeat.components.dataset import load_dataset
    from recfeat.evaluation.splits import make_split

    if split not in SPLITS:
        raise UsageError(f"unknown --split {split!r}; valid: {', '.join(SPLITS)}")
    if not models:
        raise UsageError("no models to evaluate; pass --models a,b")
    gate.check_settings(min_cosine, max_drop)
    say = progress or (lambda msg: None)
    ctx = ctx or sb.BuildContext(encoder=encoder)
    rec = gate.subset(load_dataset(data, fmt), limit, seed)
    texts, to_features = gate.texts_and_builder(rec)
    if ctx.calibration_texts is None:
        ctx.calibration_texts = [t for t in texts if t.strip()][:512]
    run = _Accuracy(
        encoder=encoder, ctx=ctx, say=say, rec=rec, texts=texts, to_features=to_features,
        models=models, split=split, split_obj=make_split(rec.interactions, split, seed=seed),
        seed=seed, random_weights=ctx.init == "random",
    )  # fmt: skip
    specs = _with_reference(backends)
    with progress_bar(len(specs), "scoring backends", unit="backend") as bar:
        for spec in specs:
            bar.describe(f"scoring backends: {spec.name}")
            _score_backend(run, spec)
            bar.advance()
    if not run.rows:
        raise RecfeatError("no backend could run: " + "; ".join(
            f"{f['backend']}: {f['error']}" for f in run.failed))
    flag_drops(run.rows, REFERENCE, max_drop)
    verdicts = gate_verdicts(run.rows, min_cosine=min_cosine, max_drop=max_drop, units=run.units)
    return _accuracy_results(run, verdicts, max_drop=max_drop, min_cosine=min_cosine,
                             command=command)  # fmt: skip


@dataclasses.dataclass
class _Accuracy:
    """One ``run_accuracy``: the data every backend is judged on, and what they gave so far."""

    encoder: str
    ctx: sb.BuildContext
    say: Callable[[str], None]
    rec: Any
    texts: list[str]
    to_features: Callable[..., Any]
    models: Sequence[str]
    split: str
    split_obj: Any
    seed: int
    random_weights: bool
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # backend -> "MODEL METRIC" -> per-unit values
    units: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    reference_vectors: np.ndarray | None = None


def _with_reference(backends: Sequence[sb.BackendSpec]) -> list[sb.BackendSpec]:
    """The backends with the reference first, added when not asked for: parity and drops
    need it."""
    specs = sorted(backends, key=lambda s: s.name != REFERENCE)
    if specs[0].name != REFERENCE:
        specs.insert(0, sb.get_backend(REFERENCE))
    return specs


def _score_backend(run: _Accuracy, spec: sb.BackendSpec) -> None:
    """Encode the texts with one backend (timed), evaluate the models on its vectors and add
    one row per model to ``run``; a backend that cannot encode is recorded under ``failed``."""
    from recfeat.evaluation.protocol import evaluate

    texts, ctx = run.texts, run.ctx
    run.say(f"{spec.name}: encoding {len(texts)} texts")
    try:
        runner = spec.build(ctx)
        runner.encode(texts[:16])  # warm-up
        m = measure(lambda r=runner: r.encode(texts), sequences=len(texts), tokens=0,
                    warmup=0, repeats=1, device=ctx.device, sync=runner.sync)
    except Exception as exc:  # noqa: BLE001 - reported per backend, others go on
        run.failed.append({"backend": spec.name, "error": f"{type(exc).__name__}: {exc}"
                           if not isinstance(exc, RecfeatError) else str(exc)})
        return
    run.random_weights = run.random_weights or runner.random_weights
    vectors = np.asarray(m.result, dtype=np.float32)
    if spec.name == REFERENCE:
        run.reference_vectors = vectors
    features = run.to_features(vectors, {"encoder": run.encoder, "backend": spec.name})
    run.say(f"{spec.name}: evaluating {', '.join(run.models)} on the {run.split} split")
    result = evaluate(run.rec, features, models=list(run.models), split=run.split_obj, k=10,
                      seed=run.seed, metrics=ACCURACY_METRICS, cold_reviews=COLD_REVIEWS)
    for model, per_metric in result.units.items():
        run.units.setdefault(spec.name, {}).update(
            {f"{model} {metric}": u for metric, u in per_metric.items()})
    for model, row in result.to_dict()["models"].items():
        run.rows.append({
            "backend": spec.name, "kind": spec.kind, "model": model,
            "seq_per_s": m.seq_per_s, "encode_s": m.stats.median_s,
            **parity(run.reference_vectors, vectors),
            "metrics": {k: v for k, v in row["metrics"].items() if v is not None},
            "not_applicable": row["not_applicable"],
        })


def _accuracy_results(run: _Accuracy, verdicts: dict[str, Any], *, max_drop: float,
                      min_cosine: float, command: str | None) -> dict[str, Any]:  # fmt: skip
    """The results dict ``recfeat.bench.report.write_report`` takes."""
    ctx = run.ctx
    notes = [
        f"{len(run.texts)} texts encoded per backend; split {run.split} (seed {run.seed}); "
        "metrics from recfeat.evaluation.protocol (full ranking, k=10).",
        verdicts["summary"],
    ]
    if run.random_weights:
        notes.append("RANDOM WEIGHTS: downstream metrics of random vectors mean nothing.")
    return {
        "mode": "accuracy",
        "command": command,
        "encoder": run.encoder,
        "init": ctx.init,
        "random_weights": run.random_weights,
        "dataset": run.rec.name,
        "split": run.split,
        "models": list(run.models),
        "reference": REFERENCE,
        "max_drop": max_drop,
        "min_cosine": min_cosine,
        "gate": verdicts,
        "pareto_metric": PARETO_METRIC,
        "environment": capture_environment(threads=ctx.threads, device=ctx.device),
        "rows": run.rows,
        "failed": run.failed,
        "notes": notes,
    }


def gate_verdicts(rows: list[dict[str, Any]], *, min_cosine: float, max_drop: float,
                  units: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """The downstream gate over ``bench accuracy``'s (backend, model) rows: one row per
    backend with its speed, cosine and every finite metric as ``"MODEL METRIC"``, judged like
    ``--backend auto`` judges its candidates (with each metric's paired interval where
    ``units``, backend -> metric -> per-unit values, has both sides)."""
    per_backend: dict[str, dict[str, Any]] = {}
    for r in rows:
        b = per_backend.setdefault(r["backend"], {
            "backend": r["backend"], "kind": r["kind"], "seq_per_s": r["seq_per_s"],
            "cosine_mean": r["cosine_mean"],
            "metrics": gate.Scores(units=(units or {}).get(r["backend"])),
            "candidate": r["kind"] == sb.RECFEAT,
        })  # fmt: skip
        for metric, value in r["metrics"].items():
            b["metrics"][f"{r['model']} {metric}"] = value
    table = list(per_backend.values())
    gate.judge(table, REFERENCE, min_cosine=min_cosine, max_drop=max_drop)
    best = gate.pick(table)
    gate.verdicts(best, table)
    if best is None:
        summary = (f"gate (mean cosine >= {min_cosine}, metrics within {max_drop * 100:g}%): "
                   "no recfeat backend passes")  # fmt: skip
    else:
        summary = (f"gate (mean cosine >= {min_cosine}, metrics within {max_drop * 100:g}% of "
                   f"{REFERENCE}): fastest passing {best['backend']} ({best['seq_per_s']:.1f} seq/s)")  # fmt: skip
    others = gate.rejections(best, table)
    if others:
        summary += "; " + "; ".join(others)
    return {"choice": best["backend"] if best else None, "backends": table, "summary": summary}
