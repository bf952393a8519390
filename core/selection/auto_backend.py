"""``--backend auto``: pick the fastest backend that keeps the recommendations, for this
machine.

Each available candidate encodes a sample of the user's own corpus (tokenisation included,
timed); its vectors are compared with torch fp32's and, when the data allows, fed to the
downstream gate (``recfeat.selection.gate``: item cold-start NDCG@10 of ``content`` and RMSE of
``ridge`` on a seeded sample split). The fastest candidate whose mean cosine reaches
``min_cosine`` (default 0.99) and whose metrics stay within ``max_drop`` (default 1%
relative) of fp32's wins; the reason names every rejected candidate and why. The choice is
cached per machine (CPU model and flags, GPU), model fingerprint, candidates and gate
settings (floor, max drop, the data sample) in ``$RECFEAT_CACHE_DIR/auto_backend.json``, so
later runs pay nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recfeat.atomic import write_text
from recfeat.encode.hf_models import cache_root
from recfeat.errors import OptionError, RecfeatError, UsageError
from recfeat.jsonable import jsonable
from recfeat.machine import check_cuda
from recfeat.plugin.registry import get_registry
from recfeat.selection import backends as bb
from recfeat.selection import gate as gt
from recfeat.selection.compare import parity
from recfeat.selection.timing import cpu_identity, gpu_name, time_calls

# onnx-int8-static is left out by default (name it in ``candidates``): its calibrated export
# with sensitive layers searched cost ~7 min on 2 loaded cores, and its unfused QDQ graph ran
# at 0.24x openvino-bf16 (Xeon, interleaved, 2026-12-01).
DEFAULT_CANDIDATES = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-fp32-o2", "onnx-int8",
                      "openvino-bf16", "openvino-fp32", "openvino-int8")
GPU_CANDIDATES = ("torch-fp32", "torch-bf16", "torch-fp16")
# How a distilled student (``--student DIR``) runs as a candidate: each of these backends
# built from the student's folder, named ``student:BACKEND`` (``NAME:BACKEND`` with several).
STUDENT_BACKENDS = ("torch-fp32", "onnx-int8", "openvino-bf16", "openvino-int8")
REFERENCE = "torch-fp32"
SAMPLE_SIZE = 256
# With a gate the timing sample is larger: OpenVINO's THROUGHPUT streams need several
# token-budget batches in flight to be busy, and 256 review-length texts fill only two
# 16,384-token batches, so one stream idles for part of the call.
GATED_SAMPLE_SIZE = 1024
CACHE_FILE = "auto_backend.json"


@dataclasses.dataclass
class Choice:
    """What ``choose_backend`` picked, why, and the measurements behind it."""

    backend: str
    reason: str
    table: list[dict[str, Any]]
    cached: bool = False
    key: str = ""

    def summary(self) -> str:
        return f"backend auto -> {self.backend}: {self.reason}"


def machine_identity(device: str = "cpu") -> dict[str, Any]:
    ident = {**cpu_identity(), "device": device}
    if device.startswith("cuda"):
        ident["gpu"] = gpu_name()
    return ident


def _cache_key(encoder_fingerprint: Mapping[str, Any], device: str, candidates, min_cosine,
               max_drop=None, gate=None) -> str:  # fmt: skip
    payload = json.dumps(
        jsonable({"machine": machine_identity(device), "model": dict(encoder_fingerprint),
                  "candidates": list(candidates), "min_cosine": min_cosine,
                  "max_drop": max_drop, "gate": gate}),
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _cache_path(cache_dir: str | Path | None) -> Path:
    if cache_dir is None:
        cache_dir = cache_root()
    return Path(cache_dir) / CACHE_FILE


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # absent or damaged: measure again (the file is rewritten whole)
    return data if isinstance(data, dict) else {}


def sample_texts(texts: Sequence[str], n: int = SAMPLE_SIZE, seed: int = 0) -> list[str]:
    """Up to ``n`` non-empty texts spread over the corpus by length (short and long ones)."""
    import numpy as np

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(texts) <= n:
        return texts
    order = np.argsort([len(t) for t in texts], kind="stable")
    picks = np.linspace(0, len(texts) - 1, n).round().astype(int)
    rng = np.random.default_rng(seed)
    rng.shuffle(picks)
    return [texts[order[i]] for i in picks]


def choose_backend(
    encoder_name: str,
    sample_texts_: Sequence[str],
    candidates: Sequence[str] | None = None,
    *,
    min_cosine: float = gt.DEFAULT_MIN_COSINE,
    max_drop: float = gt.DEFAULT_MAX_DROP,
    gate: gt.TaskGate | None = None,
    cache_dir: str | Path | None = None,
    ctx: bb.BuildContext | None = None,
    backends: Mapping[str, bb.BackendSpec] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    repeats: int = 2,
    refresh: bool = False,
    clock: Callable[[], float] = time.perf_counter,
    say: Callable[[str], None] | None = None,
    students: Sequence[str | Path] = (),
) -> Choice:
    """Benchmark the available ``candidates`` and keep the fastest one whose mean cosine to
    torch fp32 is at least ``min_cosine`` and, with an active ``gate``, whose downstream
    metrics stay within ``max_drop`` (relative) of torch fp32's.

    Every candidate is timed (``repeats`` calls) on a sample spanning the lengths of
    ``sample_texts_``, or of the gate's texts with a gate; then the gate scores the reference
    and the candidates fastest first until one passes (those slower are not gated: they
    could not be chosen). Unavailable candidates (missing packages, wrong device) are
    skipped with the reason in ``table``. ``students``: folders ``recfeat distill`` wrote
    from this encoder; each adds ``STUDENT_BACKENDS`` as candidates judged by the same
    gate, with the student's cosine floor (``student_backends``).
    ``backends``, ``fingerprint`` and ``clock`` exist for tests.
    """
    gt.check_settings(min_cosine, max_drop)
    ctx = ctx or bb.BuildContext(encoder=encoder_name)
    ctx.encoder = encoder_name
    say = say or (lambda msg: None)
    _fall_back_to_cpu(ctx, say)
    backends = dict(bb.BACKENDS if backends is None else backends)
    candidates = _candidate_names(candidates, ctx.device, backends)
    extra, student_ids = student_backends(encoder_name, students, backends, ctx)
    backends.update(extra)
    candidates += [name for name in extra if name not in candidates]
    scored = gate is not None and gate.active
    # Speed is timed on a sample spanning the lengths; with a gate, of the gate's own texts.
    texts = (sample_texts(list(gate.texts), GATED_SAMPLE_SIZE) if scored
             else sample_texts(sample_texts_))  # fmt: skip
    if not [t for t in texts if t.strip()]:
        raise RecfeatError("backend auto needs some non-empty texts to measure on")
    if ctx.calibration_texts is None:  # static int8 is calibrated on the user's own corpus
        ctx.calibration_texts = [t for t in sample_texts(list(sample_texts_) or texts, 512)]
    if fingerprint is None:
        fingerprint = _model_fingerprint(encoder_name, ctx)
    if student_ids:
        fingerprint = {**fingerprint, "students": student_ids}
    gate_id = gate.fingerprint if gate is not None else None
    key = _cache_key(fingerprint, ctx.device, candidates, min_cosine, max_drop, gate_id)
    path = _cache_path(cache_dir)
    cache = _read_cache(path)
    if not refresh and key in cache:
        return _cached_choice(cache[key], key)

    table = _time_candidates(candidates, texts, backends, ctx, repeats=repeats, clock=clock,
                             say=say, scored=scored)  # fmt: skip
    for row in table:
        if row["backend"] in extra:
            row["min_cosine"] = gt.STUDENT_MIN_COSINE
    if scored:
        _gate_fastest_first(table, gate, backends, ctx, min_cosine, max_drop, say)
    best = _judge(table, min_cosine, max_drop)
    notes = list(gate.notes) if gate is not None else ["no task data: gated on mean cosine only"]
    reason = _reason(best, table, min_cosine, max_drop, gate, notes)
    date = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    cache[key] = {"backend": best["backend"], "reason": reason, "table": table, "date": date,
                  "machine": machine_identity(ctx.device), "model": dict(fingerprint),
                  "gate": {"min_cosine": min_cosine, "max_drop": max_drop, "data": gate_id,
                           "notes": notes}}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(jsonable(cache), indent=2) + "\n")
    return Choice(backend=best["backend"], reason=reason, table=table, cached=False, key=key)


def student_backends(teacher: str, students: Sequence[str | Path],
                     backends: Mapping[str, bb.BackendSpec],
                     ctx: bb.BuildContext) -> tuple[dict[str, bb.BackendSpec], dict[str, str]]:  # fmt: skip
    """For each student folder, ``STUDENT_BACKENDS`` built from it: ``{name: spec}`` and
    ``{student folder: weights sha256}`` (part of the cached choice's key). A folder that is
    not a ``recfeat distill`` student, or one distilled from other weights than
    ``teacher``'s, is refused: its gate would compare it with the wrong reference."""
    from recfeat.data.model_folders import read_distill_manifest
    from recfeat.encode.hf_models import describe_model

    if not students:
        return {}, {}
    teacher_sha = describe_model(ctx.model or bb.encoder_class_defaults(teacher)["model"], ctx.init).weights_sha256
    specs: dict[str, bb.BackendSpec] = {}
    ids: dict[str, str] = {}
    labels = [Path(str(s)).expanduser().name or "student" for s in students]
    for folder, label in zip(students, labels, strict=True):
        folder = Path(str(folder)).expanduser()
        manifest = read_distill_manifest(folder)
        if manifest is None:
            raise UsageError(f"--student {folder} is not a student recfeat distill wrote (no "
                             "distill.json); distill one with: recfeat distill DATA --out DIR")  # fmt: skip
        if manifest["teacher"]["weights_sha256"] != teacher_sha:
            raise UsageError(f"--student {folder} was distilled from other weights than "
                             f"--encoder {teacher}; pass the encoder it was distilled from "
                             f"({manifest['teacher'].get('name')})")  # fmt: skip
        prefix = "student" if len(students) == 1 else label
        ids[str(folder)] = describe_model(str(folder)).weights_sha256
        for backend in STUDENT_BACKENDS:
            base = backends.get(backend)
            if base is None:
                continue
            specs[f"{prefix}:{backend}"] = _on_model(base, f"{prefix}:{backend}", str(folder))
    return specs, ids


def _on_model(spec: bb.BackendSpec, name: str, model: str) -> bb.BackendSpec:
    """``spec`` built from the encoder ``model`` instead of the context's."""

    def factory(_spec: bb.BackendSpec, ctx: bb.BuildContext):
        # the teacher's registry encoder (its pooling, normalisation, lengths) on the student's weights
        return spec.factory(spec, dataclasses.replace(ctx, model=model))

    return dataclasses.replace(spec, name=name, description=f"{spec.description} (distilled student)",
                               factory=factory)  # fmt: skip


def student_split(students: Sequence[str | Path], interactions) -> Any:
    """The split the students' texts came from (their ``split.json``), over
    ``interactions``: the gate must test on what they never saw. Students with different
    splits are refused."""
    from recfeat.data.model_folders import SPLIT_FILE
    from recfeat.evaluation.splits import load_split

    found = None
    for folder in students:
        split = load_split(Path(str(folder)).expanduser() / SPLIT_FILE, interactions)
        if found is not None and list(found.test_rows) != list(split.test_rows):
            raise UsageError("the --student folders were distilled on different splits; gate "
                             "them one run at a time")  # fmt: skip
        found = split
    return found


def _fall_back_to_cpu(ctx: bb.BuildContext, say: Callable[[str], None]) -> None:
    """Move ``ctx`` to the CPU when its CUDA device cannot run, saying why."""
    if not ctx.device.startswith("cuda"):
        return
    try:
        check_cuda(ctx.device)
    except OptionError as exc:
        reason = str(exc).split(";")[0]  # the fix it suggests is what happens here
        say(f"backend auto: {reason}; choosing among the CPU backends instead")
        ctx.device = "cpu"


def _candidate_names(candidates: Sequence[str] | None, device: str,
                     backends: Mapping[str, bb.BackendSpec]) -> list[str]:  # fmt: skip
    """The candidates asked for (the device's defaults when None), once each, all known."""
    if candidates is None:
        candidates = GPU_CANDIDATES if device.startswith("cuda") else DEFAULT_CANDIDATES
    candidates = [c for c in dict.fromkeys(candidates)]
    for name in candidates:
        bb.get_backend(name, backends)  # unknown names fail before any work
    return candidates


def _model_fingerprint(encoder_name: str, ctx: bb.BuildContext) -> dict[str, Any]:
    """The encoder's fingerprint without the backend and precision: those are what is chosen."""
    fingerprint = get_registry("encoder").create(encoder_name, **ctx.encoder_options()).fingerprint()
    return {k: v for k, v in fingerprint.items() if k not in ("backend", "precision")}


def _cached_choice(hit: dict[str, Any], key: str) -> Choice:
    return Choice(
        backend=hit["backend"],
        reason=f"cached choice from {hit['date']} for this machine, model and gate settings "
               f"({hit['reason']})",
        table=hit["table"], cached=True, key=key,
    )  # fmt: skip


def _time_candidates(candidates: list[str], texts: list[str],
                     backends: Mapping[str, bb.BackendSpec], ctx: bb.BuildContext, *,
                     repeats: int, clock: Callable[[], float], say: Callable[[str], None],
                     scored: bool) -> list[dict[str, Any]]:  # fmt: skip
    """One row per backend with its speed on ``texts`` (and, without a gate, its parity to
    the reference), or why it was skipped. The reference always runs (first), even if it is
    not a candidate: it defines accuracy."""
    order = [REFERENCE, *[c for c in candidates if c != REFERENCE]]
    table: list[dict[str, Any]] = []
    reference_vectors = None
    for name in order:
        spec = backends.get(name) or bb.get_backend(name, backends)
        row: dict[str, Any] = {"backend": name, "candidate": name in candidates}
        table.append(row)
        vectors = _time_one(row, spec, texts, ctx, repeats=repeats, clock=clock, say=say)
        if "seq_per_s" not in row:
            continue
        if not scored:
            if name == REFERENCE:
                reference_vectors = vectors
            row.update(parity(reference_vectors, vectors))
    if "seq_per_s" not in table[0]:
        raise RecfeatError(
            f"backend auto could not run the reference {REFERENCE}: "
            f"{table[0].get('skipped', 'unknown reason')}"
        )
    return table


def _time_one(row: dict[str, Any], spec: bb.BackendSpec, texts: list[str],
              ctx: bb.BuildContext, *, repeats: int, clock: Callable[[], float],
              say: Callable[[str], None]) -> Any:  # fmt: skip
    """Set ``row["seq_per_s"]`` from the best of ``repeats`` timed encodes of ``texts`` and
    return the vectors, or set ``row["skipped"]`` (and return None) when it cannot run."""
    if ctx.device.split(":")[0] not in spec.devices:
        row["skipped"] = f"runs on {', '.join(spec.devices)} only"
        return None
    missing = spec.missing()
    if missing:
        row["skipped"] = f"not installed ({spec.install})"
        return None
    say(f"auto: timing {row['backend']}")
    try:
        runner = spec.build(ctx)
        runner.encode(texts[:16])  # warm-up: lazy loading and first-call costs
        latencies, vectors = time_calls(lambda r=runner: r.encode(texts), warmup=0,
                                        repeats=repeats, clock=clock, sync=runner.sync)  # fmt: skip
    except Exception as exc:  # one broken backend must not stop the choice
        row["skipped"] = f"failed: {type(exc).__name__}: {exc}"
        return None
    best = min(latencies)
    row["seq_per_s"] = len(texts) / best if best > 0 else float("inf")
    return vectors


def _judge(table: list[dict[str, Any]], min_cosine: float, max_drop: float) -> dict[str, Any]:
    """Give every row its verdict and return the fastest candidate that passes; with none,
    ``RecfeatError`` naming each candidate's verdict."""
    gt.judge([r for r in table if not r.get("unscored")], REFERENCE, min_cosine=min_cosine,
             max_drop=max_drop)  # fmt: skip
    best = gt.pick(table)
    gt.verdicts(best, table)
    if best is None:
        why = "; ".join(f"{r['backend']}: {r['verdict']}" for r in table
                        if r["candidate"] and "seq_per_s" in r)  # fmt: skip
        raise RecfeatError(
            f"no candidate backend reached mean cosine {min_cosine} to {REFERENCE} within "
            f"max-drop {max_drop * 100:g}% ({why or 'none could run'}); lower --min-cosine, "
            "raise --max-drop or use --backend torch"
        )
    return best


def _gate_fastest_first(table, gate, backends, ctx, min_cosine, max_drop, say) -> None:
    """Score the reference, then the timed candidates fastest first, on the gate's texts
    until one passes: a slower candidate cannot be chosen, so its gate (a full encode of the
    gate's sample, the slow part) is skipped and its row says so (``unscored``)."""

    def run(row):
        runner = (backends.get(row["backend"]) or bb.get_backend(row["backend"], backends)).build(ctx)
        say(f"auto: downstream gate of {row['backend']} on {len(gate.texts)} texts")
        return runner.encode(gate.texts)

    ref = table[0]
    ref_vectors = run(ref)
    ref.update(parity(ref_vectors, ref_vectors), metrics=gate.score(ref_vectors))
    ranked = sorted((r for r in table[1:] if "seq_per_s" in r and r["candidate"]),
                    key=lambda r: -r["seq_per_s"])  # fmt: skip
    found = False
    for row in ranked:
        if found or (ref["candidate"] and row["seq_per_s"] <= ref["seq_per_s"]):
            row["unscored"] = True  # slower than a candidate that passes
            continue
        try:
            vectors = run(row)
            row.update(parity(ref_vectors, vectors), metrics=gate.score(vectors))
        except Exception as exc:  # noqa: BLE001 - one broken backend must not stop the choice
            row.pop("seq_per_s")
            row["skipped"] = f"failed: {type(exc).__name__}: {exc}"
            continue
        gt.judge([ref, row], REFERENCE, min_cosine=min_cosine, max_drop=max_drop)
        found = bool(row["passes"])


def _reason(best: dict[str, Any], table: list[dict[str, Any]], min_cosine: float,
            max_drop: float, gate: gt.TaskGate | None, notes: list[str]) -> str:  # fmt: skip
    ref = next(r for r in table if r["backend"] == REFERENCE)
    within = (
        f", {', '.join(gate.gated)} within {max_drop * 100:g}% of {REFERENCE}"
        if gate is not None and gate.active else ""
    )  # fmt: skip
    parts = [
        f"fastest passing the accuracy gate: {best['seq_per_s']:.1f} seq/s "
        f"({best['seq_per_s'] / ref['seq_per_s']:.2f}x {REFERENCE}), mean cosine "
        f"{best['cosine_mean']:.5f} >= {min_cosine}{within}"
    ]
    parts += gt.rejections(best, table)
    parts += [n for n in notes if not n.startswith("downstream gate:")]
    return "; ".join(parts)


def format_table(choice: Choice) -> str:
    """A plain-text table of the measurements behind a choice (for the CLI): speed, mean
    cosine, each gated metric and the verdict (why a candidate was rejected)."""
    metrics = list(dict.fromkeys(m for r in choice.table for m in (r.get("metrics") or {})))
    w = max([18, *(len(r["backend"]) + 2 for r in choice.table)])  # student:... names are longer
    head = f"{'backend':<{w}}{'seq/s':>9}{'cos mean':>10}" + "".join(f"{m:>18}" for m in metrics)
    lines = [head + "  verdict"]
    for r in choice.table:
        verdict = r.get("verdict") or ("chosen" if r["backend"] == choice.backend else "")
        if "seq_per_s" in r:
            values = "".join(
                f"{(r.get('metrics') or {}).get(m, float('nan')):>18.4f}" for m in metrics
            )
            cos = f"{r['cosine_mean']:>10.5f}" if "cosine_mean" in r else f"{'-':>10}"
            lines.append(f"{r['backend']:<{w}}{r['seq_per_s']:>9.1f}{cos}{values}  {verdict}")
        else:
            lines.append(f"{r['backend']:<{w}}{'-':>9}{'-':>10}{'':>{18 * len(metrics)}}  "
                         f"skipped: {r.get('skipped')}")  # fmt: skip
    return "\n".join(lines)


def encoder_for_choice(choice: Choice | str, ctx: bb.BuildContext,
                       backends: Mapping[str, bb.BackendSpec] | None = None) -> Any:  # fmt: skip
    """Build the encoder that ``choice`` names, with ``ctx``'s options (for ``extract``);
    ``backends``: where to find it (a student's candidates are not in the global table)."""
    name = choice.backend if isinstance(choice, Choice) else choice
    spec = bb.get_backend(name, None if backends is None else dict(backends))
    runner = spec.build(ctx)
    encoder = getattr(runner, "encoder", None)
    if encoder is None:
        raise RecfeatError(f"backend {name} is a peer, not a recfeat encoder")
    return encoder


def auto_encoder(name: str, options: dict[str, Any], dataset, level: str, cleaner,
                 say: Callable[[str], None] | None = None, *,
                 min_cosine: float = gt.DEFAULT_MIN_COSINE,
                 max_drop: float = gt.DEFAULT_MAX_DROP,
                 gate_interactions: int | None = None,
                 students: Sequence[str | Path] = ()):  # fmt: skip
    """``--backend auto`` for a dataset: measure the candidate backends on a sample of the
    texts ``level`` would encode (cleaned), judge them on the dataset's own task (the
    downstream gate, ``recfeat.selection.gate``), say the table and the choice, and return the
    encoder of the fastest backend that passes. ``students``: distilled students of ``name``
    (``recfeat distill`` folders) whose backends are candidates too; the gate then uses
    their split, whose test side they never saw."""
    table = dataset.texts("item" if level == "item" and dataset.items is not None else "review")
    if table is None:
        table = dataset.texts("item")
    if table is None or not len(table):
        raise UsageError("--backend auto needs texts in DATA to measure on; pass --backend torch")
    texts = [t for t in cleaner.clean(table["text"].astype(str).tolist()) if t.strip()]
    split = student_split(students, dataset.interactions) if students else None
    gate = gt.task_gate(dataset, level=level, clean=cleaner.clean, limit=gate_interactions,
                        split=split)  # fmt: skip
    ctx = bb.BuildContext(
        encoder=name, max_length=options.get("max_length"), batch_tokens=options.get("batch_tokens"),
        calibration_texts=sample_texts(texts, 512), model=options.get("model"),
    )  # fmt: skip
    if say is not None:
        for note in gate.notes:
            say(f"backend auto: {note}")
    choice = choose_backend(name, sample_texts(texts), ctx=ctx, say=say, gate=gate,
                            min_cosine=min_cosine, max_drop=max_drop, students=students)  # fmt: skip
    if say is not None:
        say(format_table(choice))
        say(choice.summary())
    extra, _ = student_backends(name, students, bb.BACKENDS, ctx)
    return encoder_for_choice(choice, ctx, {**bb.BACKENDS, **extra})
