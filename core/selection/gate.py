"""The downstream-quality gate: is a faster backend's vectors still as good *for the user's
task*?

Mean cosine to torch fp32 says how close the vectors are, not what the difference does to
the recommendations. The gate feeds each candidate's vectors to the same models on the same
seeded sample split of the user's data (``recfeat.evaluation.protocol.evaluate``): item
cold-start NDCG@10 of ``content`` and the RMSE of ``ridge`` (cold items represented by their
first review, as in ``bench accuracy``). A candidate passes when its mean cosine reaches the
floor and each of those metrics is *shown* to be at most ``max_drop`` (relative) worse than
the reference's: the upper end of the paired-bootstrap 95% interval of the drop
(``recfeat.evaluation.paired``; the same test users, or rating pairs, resampled for both)
must be within it. Without per-unit scores (a cached table) the point drop is used. Data without ratings gates on NDCG only, data without interactions to split on
cosine only; ``TaskGate.notes`` says which.

``judge`` and ``pick`` work on plain measurement rows, so ``--backend auto``
(``recfeat.selection.auto_backend``), ``bench accuracy`` (``recfeat.bench.accuracy``) and tests
share one rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recfeat.encode.similarity import cosine_rows
from recfeat.errors import DataError, OptionError, UsageError, ValidationFailedError
from recfeat.evaluation.paired import drop_interval
from recfeat.plugin.registry import get_registry
from recfeat.selection import compare

DEFAULT_MIN_COSINE = 0.99
# A distilled student is a different model: its vectors are judged by the downstream gate,
# and this floor only refuses one that does not follow the teacher at all.
STUDENT_MIN_COSINE = 0.9
DEFAULT_MAX_DROP = 0.01
# model -> the metric it is gated on (what the model is for: ranking cold items, ratings).
GATE_MODELS = {"content": "ndcg@10", "ridge": "rmse"}
GATE_SPLIT = "item-cold"
# Ten thousand interactions. Measured on Musical Instruments (MiniLM review vectors): at
# 3,000 (251 cold-start test users) random noise at cosine 0.9999 moved NDCG@10 by up to 3%
# and two int8 exports read -8.9% and -1.7%, while on all 10,261 (1,006 users) the same
# exports read +1.3% and +1.4% (better), each within a paired 95% interval narrower than
# +-2%; the gate's rule uses that interval (``judge``), so the sample must make it narrow.
GATE_INTERACTIONS = 10_000

# Cold items are represented by their first review only (see recfeat.bench.accuracy.COLD_REVIEWS).
COLD_REVIEWS = 1


class Scores(dict):
    """``{"content ndcg@10": x, "ridge rmse": y}``, and ``units``: for each metric what it
    was computed from (per-user scores, or true/predicted ratings), so two candidates scored
    on the same split can be compared pairwise (``recfeat.evaluation.paired``)."""

    def __init__(self, values=(), units=None):
        super().__init__(values)
        self.units: dict[str, Any] = dict(units or {})


@dataclasses.dataclass
class TaskGate:
    """What the gate encodes (``texts``) and how it scores vectors of them (``score``:
    vectors -> ``{"content ndcg@10": x, "ridge rmse": y}``)."""

    texts: list[str]
    score: Callable[[np.ndarray], dict[str, float]] | None
    gated: list[str]  # the metrics scored, e.g. ["content ndcg@10", "ridge rmse"]
    notes: list[str]
    fingerprint: dict[str, Any]

    @property
    def active(self) -> bool:
        return self.score is not None and bool(self.gated)


def check_settings(min_cosine: float, max_drop: float) -> None:
    if not 0 < min_cosine <= 1:
        raise OptionError(f"--min-cosine must be within (0, 1], got {min_cosine}")
    if not 0 <= max_drop < 1:
        raise OptionError(f"--max-drop must be between 0% and 100%, got {max_drop}")


def parse_drop(text: str | float) -> float:
    """``'1%'`` or ``'0.01'`` -> 0.01 (the spelling of ``--max-drop``), or OptionError."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise OptionError(f"--max-drop must look like 1% or 0.01, got {text!r}") from None
    if not 0 <= value < 1:
        raise OptionError(f"--max-drop must be between 0% and 100%, got {text!r}")
    return value


# -- the user's data -----------------------------------------------------------------------
def texts_and_builder(data, level: str = "review"):
    """The texts to encode and how to turn their vectors into evaluation features: review
    vectors (leakage-safe per-split aggregation), or item vectors from item texts when
    ``level`` is item and the data has them (or has no reviews)."""
    from recfeat.data.features import Features, ReviewVectors

    use_items = data.items is not None and (level == "item" or data.reviews is None)
    if data.reviews is not None and not use_items:
        reviews = data.reviews
        texts = reviews["text"].fillna("").astype(str).tolist()
        users = reviews["user"].astype(str).to_numpy(dtype=object)
        items = reviews["item"].astype(str).to_numpy(dtype=object)
        return texts, lambda v, man: ReviewVectors(users, items, v, {**man, "level": "review"})
    if data.items is not None:
        ids = data.items["item"].astype(str).tolist()
        texts = data.items["text"].fillna("").astype(str).tolist()
        return texts, lambda v, man: Features(ids, v, {**man, "level": "item"})
    raise UsageError(f"dataset {data.name} has no review or item texts to encode")


def subset(data, limit: int | None, seed: int = 0):
    """A seeded random subset of ``limit`` interactions (and their reviews and items)."""
    if limit is None or limit >= len(data.interactions):
        return data
    rng = np.random.default_rng(seed)
    keep = data.interactions.iloc[np.sort(rng.choice(len(data.interactions), limit, replace=False))]
    pairs = set(zip(keep["user"].astype(str), keep["item"].astype(str), strict=True))
    reviews = data.reviews
    if reviews is not None:
        mask = [(u, i) in pairs for u, i in zip(reviews["user"].astype(str), reviews["item"].astype(str), strict=True)]
        reviews = reviews[mask].reset_index(drop=True)
    items = data.items
    if items is not None:
        items = items[items["item"].astype(str).isin(keep["item"].astype(str))].reset_index(drop=True)
    return dataclasses.replace(data, interactions=keep.reset_index(drop=True), reviews=reviews,
                               items=items)  # fmt: skip


def has_ratings(data) -> bool:
    import pandas as pd

    return bool(pd.to_numeric(data.interactions["rating"], errors="coerce").notna().any())


def task_gate(
    data,
    *,
    level: str = "review",
    clean: Callable[[list[str]], list[str]] | None = None,
    limit: int | None = None,
    seed: int = 0,
    split=None,
) -> TaskGate:
    """The gate for ``data`` (a RecData): a seeded sample of ``limit`` interactions, its
    item-cold split, and a scorer of vectors of the sample's texts. ``clean`` is applied to
    the texts as extraction would. ``split``: a split of all of ``data`` to use instead of
    the sample's (a distilled student's, whose test side it never saw). Where the task
    cannot be measured the gate is inactive (cosine only) and its notes say why."""
    from recfeat.evaluation.splits import make_split

    limit = GATE_INTERACTIONS if limit is None else limit  # None: the default size, not all
    rec = data if split is not None else subset(data, limit, seed)
    texts, to_features = texts_and_builder(rec, level)
    if clean is not None:
        texts = list(clean(texts))
    digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
    base = {"dataset": rec.name, "texts_sha256": digest, "n_texts": len(texts),
            "limit": limit, "seed": seed, "split": GATE_SPLIT}  # fmt: skip
    if split is not None:
        base.update(limit=None, split=split.kind,
                    test_rows_sha256=hashlib.sha256(np.asarray(split.test_rows, dtype=np.int64).tobytes()).hexdigest()[:16])  # fmt: skip
    notes: list[str] = []
    models = dict(GATE_MODELS)
    if not has_ratings(rec):
        models.pop("ridge")
        notes.append("the data has no ratings: RMSE (ridge) is not gated")
    try:
        if split is None:
            split = make_split(rec.interactions, GATE_SPLIT, seed=seed)
        if split.test.empty or split.train.empty:
            raise DataError("empty side")
    except (DataError, UsageError, ValueError) as exc:
        notes.append(
            f"{len(rec.interactions)} interactions are too few for an {GATE_SPLIT} split "
            f"({str(exc).split(';')[0]}): gated on mean cosine only"
        )
        return TaskGate(texts, None, [], notes, {**base, "models": []})
    gated = [f"{m} {metric}" for m, metric in models.items()]

    def score(vectors: np.ndarray) -> Scores:
        from recfeat.evaluation.protocol import evaluate

        features = to_features(np.asarray(vectors, dtype=np.float32), {"encoder": "gate"})
        evaluated = evaluate(rec, features, models=list(models), split=split, k=10, seed=seed,
                             metrics=sorted({"rmse", "ndcg@k"}), cold_reviews=COLD_REVIEWS,
                             progress=False)  # fmt: skip
        result = evaluated.to_dict()["models"]
        out = Scores()
        for model, metric in models.items():
            value = result.get(model, {}).get("metrics", {}).get(metric)
            out[f"{model} {metric}"] = float("nan") if value is None else float(value)
            units = evaluated.units.get(model, {}).get(metric)
            if value is not None and units is not None:
                out.units[f"{model} {metric}"] = units
        return out

    # Probe once on random vectors: a sample too small or too sparse for the protocol
    # (no cold item with a warm user, say) is found here, not per candidate.
    probe = np.random.default_rng(seed).normal(size=(len(texts), 8)).astype(np.float32)
    try:
        measurable = [m for m, v in score(probe).items() if math.isfinite(v)]
    except (DataError, UsageError, ValueError) as exc:
        notes.append(f"the sample cannot be evaluated ({str(exc).split(';')[0]}): gated on "
                     "mean cosine only")  # fmt: skip
        return TaskGate(texts, None, [], notes, {**base, "models": []})
    for m in [g for g in gated if g not in measurable]:
        notes.append(f"{m} cannot be measured on this sample: not gated")
    gated = [g for g in gated if g in measurable]
    if not gated:
        notes.append("no downstream metric can be measured: gated on mean cosine only")
        return TaskGate(texts, None, [], notes, {**base, "models": []})
    kind = "item" if rec.items is not None and (level == "item" or rec.reviews is None) else "review"
    notes.insert(0, f"downstream gate: {', '.join(gated)} on a seeded {GATE_SPLIT} split of "
                    f"{len(rec.interactions)} interactions ({len(texts)} {kind} texts)")  # fmt: skip
    return TaskGate(texts, score, gated, notes, {**base, "models": gated})


# -- the rule ------------------------------------------------------------------------------
def relative_drop(reference: float | None, value: float | None, metric: str) -> float:
    """``compare.relative_drop`` for a gate metric named ``"MODEL METRIC"`` (RMSE worse when
    higher; NaN when either value is missing)."""
    return compare.relative_drop(reference, value, metric.split()[-1])


def judge(rows: Sequence[dict[str, Any]], reference: str, *, min_cosine: float,
          max_drop: float) -> None:  # fmt: skip
    """Set ``passes``, ``why`` (reasons it fails) and ``drops`` on every measured row (one
    with ``seq_per_s``): mean cosine >= ``min_cosine`` (or the row's own ``min_cosine``: a
    distilled student, a different model, is judged on the metrics) and every metric in
    ``metrics`` within ``max_drop`` of the ``reference`` row's."""
    ref = next((r for r in rows if r["backend"] == reference), None)
    ref_metrics = (ref or {}).get("metrics") or {}
    for row in rows:
        if "seq_per_s" not in row:
            continue
        why: list[str] = []
        cos = row.get("cosine_mean")
        floor = row.get("min_cosine", min_cosine)  # a distilled student's own floor
        if cos is None or not cos >= floor:
            why.append(f"mean cosine {cos if cos is None else format(cos, '.5f')} < {floor} (floor)")
        drops, intervals = {}, {}
        for metric, value in (row.get("metrics") or {}).items():
            ref_value = ref_metrics.get(metric)
            if ref_value is None or not math.isfinite(ref_value):
                continue  # not measurable on this data: the gate's notes say so
            drop = relative_drop(ref_value, value, metric)
            drops[metric] = drop
            interval = _interval(metric, ref_metrics, row.get("metrics"), ref is row)
            if interval is not None:
                intervals[metric] = interval.as_dict()
            if math.isnan(drop):
                why.append(f"{metric} could not be measured")
                continue
            reason = _fails(metric, drop, interval, max_drop, value, ref_value)
            if reason:
                why.append(reason)
        row["drops"] = drops
        row["intervals"] = intervals
        row["why"] = why
        row["passes"] = not why


def _lower_is_better(metric: str) -> bool:
    return metric.split()[-1].lower() in compare.LOWER_IS_BETTER


def _interval(metric, ref_metrics, metrics, is_reference):
    """The paired-bootstrap interval of the drop, where both sides kept their units."""
    ref_units = getattr(ref_metrics, "units", {}).get(metric)
    units = getattr(metrics, "units", {}).get(metric)
    if is_reference or ref_units is None or units is None:
        return None
    return drop_interval(metric, ref_units, units, lower_is_better=_lower_is_better(metric))


def _fails(metric, drop, interval, max_drop, value, ref_value) -> str | None:
    """Why ``metric`` fails the gate, or None. With an interval the drop must be *shown* to
    stay within ``max_drop``: the interval's upper end, not the point estimate alone, since
    on a sample of a few hundred test users the point moves by more than 1% with noise (a
    candidate within noise of fp32 would otherwise pass or fail by chance)."""
    verb = "rose" if _lower_is_better(metric) else "dropped"
    values = f"{value:.4f} vs {ref_value:.4f}"
    if interval is None:
        if drop > max_drop:
            return f"{metric} {verb} {drop * 100:.2f}% > max-drop {max_drop * 100:g}% ({values})"
        return None
    if interval.high <= max_drop:
        return None
    ci = (f"{interval.level * 100:g}% CI {interval.low * 100:+.2f}% .. {interval.high * 100:+.2f}% "
          f"over {interval.units} test units")  # fmt: skip
    if interval.low > max_drop:
        return f"{metric} {verb} {drop * 100:.2f}% > max-drop {max_drop * 100:g}% ({values}; {ci})"
    return (f"{metric} not shown within max-drop {max_drop * 100:g}%: {drop * 100:+.2f}% ({values}) "
            f"but the {ci} reaches past it; a larger gate sample narrows it")  # fmt: skip


def pick(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest candidate row that passes (``judge`` first), or None."""
    eligible = [r for r in rows if r.get("passes") and r.get("candidate", True)]
    return max(eligible, key=lambda r: r["seq_per_s"]) if eligible else None


def verdicts(best: dict[str, Any] | None, rows: Sequence[dict[str, Any]]) -> None:
    """One ``verdict`` line per row: chosen, passes but slower, rejected (why), skipped."""
    for r in rows:
        if "seq_per_s" not in r:
            r["verdict"] = f"skipped: {r.get('skipped')}"
        elif r is best:
            r["verdict"] = "chosen"
        elif not r.get("candidate", True):
            r["verdict"] = "reference only"
        elif r.get("unscored"):
            r["verdict"] = "not gated: slower than a candidate that passes"
        elif r.get("passes"):
            r["verdict"] = "passes, slower"
        else:
            r["verdict"] = "rejected: " + "; ".join(r.get("why") or ["fails the gate"])


def rejections(best: dict[str, Any] | None, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Why each other measured candidate was not chosen (faster ones marked)."""
    out = []
    for r in rows:
        if r is best or "seq_per_s" not in r or not r.get("candidate", True):
            continue
        faster = best is not None and r["seq_per_s"] > best["seq_per_s"]
        label = f"{'faster ' if faster else ''}{r['backend']} ({r['seq_per_s']:.1f} seq/s)"
        if r.get("unscored"):
            out.append(f"{label} is slower, so it was not gated")
        elif r.get("passes"):
            out.append(f"{label} passes but is slower")
        else:
            out.append(f"rejected {label}: {'; '.join(r.get('why') or ['fails the gate'])}")
    return out


# -- recfeat export --gate -------------------------------------------------------------------
def export_check(
    data,
    reference_encoder,
    *,
    min_cosine: float = DEFAULT_MIN_COSINE,
    max_drop: float = DEFAULT_MAX_DROP,
    say: Callable[[str], None] | None = None,
    interactions: int | None = None,
) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
    """A ``check`` for ``run_export``: the finished folder's default model (int8 when the
    export quantised) against ``reference_encoder`` (the torch encoder it was exported from,
    fp32) on ``data``'s task; fails (nothing is committed) with the reasons."""
    check_settings(min_cosine, max_drop)
    task = task_gate(data, limit=interactions)  # None: GATE_INTERACTIONS, read at call time
    say = say or (lambda msg: None)

    def check(folder, manifest: dict[str, Any]) -> dict[str, Any]:
        runtime = manifest["runtime"]
        last = next(s for s in reversed(manifest["steps"]) if s["file"] == manifest["default_file"])
        if runtime == "openvino":
            mode = last["settings"].get("mode", "")
            precision = "int8" if "int8" in mode else last["settings"].get("inference_precision", "bf16")
            candidate = get_registry("encoder").create("openvino", path=str(folder), precision=precision)
        else:
            candidate = get_registry("encoder").create("onnx", path=str(folder), file=manifest["default_file"])
        for note in task.notes:
            say(f"gate: {note}")
        ref_vectors = reference_encoder.encode(task.texts)
        cand_vectors = candidate.encode(task.texts)
        rows = [
            {"backend": "torch-fp32", "seq_per_s": 0.0, "cosine_mean": 1.0,
             "metrics": task.score(ref_vectors) if task.active else {}},
            {"backend": manifest["default_file"], "seq_per_s": 0.0,
             "cosine_mean": float(cosine_rows(ref_vectors, cand_vectors).mean()),
             "metrics": task.score(cand_vectors) if task.active else {}},
        ]  # fmt: skip
        judge(rows, "torch-fp32", min_cosine=min_cosine, max_drop=max_drop)
        ref, cand = rows
        result = {"file": manifest["default_file"], "min_cosine": min_cosine, "max_drop": max_drop,
                  "gated": task.gated, "notes": task.notes, "cosine_mean": cand["cosine_mean"],
                  "reference_metrics": ref["metrics"], "metrics": cand["metrics"],
                  "drops": cand["drops"], "intervals": cand["intervals"], "passed": cand["passes"],
                  "data": task.fingerprint}  # fmt: skip
        if not cand["passes"]:
            raise ValidationFailedError(
                f"downstream gate failed for {manifest['default_file']}: {'; '.join(cand['why'])}; "
                "nothing was written. Raise --max-drop, or export with a higher --min-cosine and "
                "--auto-exclude (more layers in float)"
            )
        shown = ", ".join(f"{m} {cand['metrics'][m]:.4f} (fp32 {ref['metrics'][m]:.4f})" for m in task.gated)
        say(f"gate: {manifest['default_file']} passes: mean cosine {cand['cosine_mean']:.5f}"
            + (f", {shown}" if shown else ""))  # fmt: skip
        return result

    return check
