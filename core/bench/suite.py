"""The benchmark workloads: a fixed-shape grid, a real corpus, and downstream accuracy.

Each function builds the backends once, times them with ``recfeat.bench.measure.measure``
and returns a results dict that ``recfeat.bench.report.write_report`` turns into files.
A backend that fails to build or run is reported under ``failed`` and the others go on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recfeat.bench import ceilings
from recfeat.bench import summary as bench_summary
from recfeat.bench.measure import capture_environment, check_fits, estimate_memory_bytes, measure
from recfeat.encode.hf_models import load_config, local_model_dir
from recfeat.encode.similarity import cosine_rows  # noqa: F401  (re-exported: bench_suite.cosine_rows)
from recfeat.errors import OptionError, RecfeatError, UsageError
from recfeat.plugin.registry import get_registry
from recfeat.progress import progress_bar
from recfeat.selection import backends as sb
from recfeat.selection.compare import parity, relative_drop

DEFAULT_BATCH_SIZES = (1, 8, 32, 128)
DEFAULT_SEQ_LENS = (32, 128, 256)
REFERENCE = "torch-fp32"
WARMUP_TEXTS = 64  # corpus mode warms each backend up on this many texts, not the corpus


def parse_int_list(text: str | Sequence[int], what: str) -> list[int]:
    if not isinstance(text, str):
        values = [int(v) for v in text]
    else:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise OptionError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise OptionError(f"{what} must be positive integers, got {text!r}")
    return sorted(dict.fromkeys(values))


# -- model shape and memory ----------------------------------------------------------------
def model_shape(encoder: str, init: str) -> dict[str, Any]:
    """Hidden size, layers, heads, vocab, positions and parameter estimate (config only)."""
    defaults = sb.encoder_class_defaults(encoder)
    model = defaults["model"]
    config = load_config(str(local_model_dir(model)) if init != "random" else model, init)
    hidden = int(getattr(config, "hidden_size", getattr(config, "n_embd", 768)))
    layers = int(getattr(config, "num_hidden_layers", getattr(config, "n_layer", 12)))
    heads = int(getattr(config, "num_attention_heads", getattr(config, "n_head", 12)))
    vocab = int(getattr(config, "vocab_size", 30522))
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    inter = int(getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None)
                or 4 * hidden)
    shape = {
        "model": model, "hidden": hidden, "layers": layers, "heads": heads, "vocab": vocab,
        "intermediate": inter, "max_positions": positions,
    }
    shape["matmul_params"] = ceilings.matmul_params(shape)
    shape["params_estimate"] = shape["matmul_params"] + vocab * hidden
    shape["gflop_per_128_tokens"] = ceilings.flops_per_sequence(shape, 128) / 1e9
    return shape


def check_grid(shape: dict[str, Any], batch_sizes, seq_lens, *, device: str, available=None) -> None:
    """Refuse sequence lengths past the model's positions and grids that cannot fit in memory."""
    if shape.get("max_positions") and max(seq_lens) > shape["max_positions"]:
        raise OptionError(
            f"--seq-lens {max(seq_lens)} exceeds the model's {shape['max_positions']} positions; "
            f"use lengths <= {shape['max_positions']}"
        )
    batch, seq = max(batch_sizes), max(seq_lens)
    estimate = estimate_memory_bytes(
        batch=batch, seq=seq, hidden=shape["hidden"], layers=shape["layers"],
        heads=shape["heads"], bytes_per_value=4, weights_bytes=4 * shape["params_estimate"],
    )
    check_fits(estimate, device=device, available=available,
               what=f"batch {batch} x seq {seq} ({shape['layers']} layers x {shape['hidden']} hidden)")


def synthetic_batch(batch: int, seq: int, vocab: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of exactly ``seq`` tokens per row (no padding), deterministic per shape."""
    rng = np.random.default_rng([seed, batch, seq])
    low = min(1000, max(vocab // 2, 1))  # skip special / unused ids at the start of BERT vocabs
    ids = rng.integers(low, vocab, size=(batch, seq), dtype=np.int64)
    return ids, np.ones((batch, seq), dtype=np.int64)


# -- corpus --------------------------------------------------------------------------------
def corpus_texts(data, fmt: str = "auto", limit: int | None = None, seed: int = 0) -> tuple[str, list[str]]:
    """Review texts of a dataset (item texts when it has none), non-empty, optionally a
    seeded random subset of ``limit`` texts. ``data`` is a path or a loaded RecData."""
    from recfeat.components.dataset import load_dataset

    rec = load_dataset(data, fmt) if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__") else data
    table = rec.reviews if rec.reviews is not None else rec.items
    if table is None:
        raise UsageError(f"dataset {data} has no review or item texts to encode")
    texts = [t for t in table["text"].astype(str).tolist() if t.strip()]
    if not texts:
        raise UsageError(f"dataset {data} has only empty texts")
    if limit is not None and limit < len(texts):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(texts), size=limit, replace=False))
        texts = [texts[i] for i in keep]
    return rec.name, texts


# -- throughput ----------------------------------------------------------------------------
def _order(specs: list[sb.BackendSpec]) -> list[sb.BackendSpec]:
    # The reference runs first so every later row can be compared with it.
    return sorted(specs, key=lambda s: (s.name != REFERENCE, s.kind != sb.RECFEAT))


def run_throughput(
    *,
    encoder: str,
    backends: Sequence[sb.BackendSpec],
    peers: Sequence[sb.BackendSpec] = (),
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
    texts: Sequence[str] | None = None,
    corpus_name: str | None = None,
    fixed: bool = True,
    ctx: sb.BuildContext | None = None,
    repeats: int = 3,
    warmup: int = 1,
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
    ceiling_size: int | None = ceilings.GEMM_SIZE,
    gate=None,
    gate_rule: Callable[[list[dict[str, Any]], str], None] | None = None,
    not_installed: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    """Time every backend and peer on the fixed grid and/or the corpus ``texts``.

    ``ceiling_size``: measure the GEMM ceilings at that size first (None: skip); ``gate``: a
    ``recfeat.selection.gate.TaskGate`` each recfeat path (and the reference) is scored on, and
    ``gate_rule(table, reference)`` its verdict (``functools.partial(gate.judge, ...)``: passed
    in, as the gate module itself builds on this one);
    ``not_installed``: peers left out, listed in the report with the reason."""
    ctx = ctx or sb.BuildContext(encoder=encoder)
    say = progress or (lambda msg: None)
    shape = model_shape(encoder, ctx.init)
    if fixed:  # before the ceilings: a refused grid costs nothing (minutes on slow CPUs)
        check_grid(shape, batch_sizes, seq_lens, device=ctx.device)
    gemm = (ceilings.measure_ceilings(threads=ctx.threads, size=ceiling_size, progress=say)
            if ceiling_size and ctx.device == "cpu" else None)  # fmt: skip
    specs = _order([*backends, *peers])
    run = _Throughput(
        encoder=encoder, ctx=ctx, shape=shape, say=say, device=ctx.device,
        reference=specs[0].name if specs else None, fixed=fixed, batch_sizes=batch_sizes,
        seq_lens=seq_lens, texts=list(texts) if texts is not None else None,
        corpus_name=corpus_name, repeats=repeats, warmup=warmup, gate=gate,
        random_weights=ctx.init == "random",
    )  # fmt: skip
    # one unit per grid point and one for the corpus, per backend
    per_spec = (len(seq_lens) * len(batch_sizes) if fixed else 0) + (texts is not None)
    with progress_bar(len(specs) * per_spec, "benchmarking", unit="measurement") as bar:
        run.bar = bar
        for n, spec in enumerate(specs, 1):
            bar.describe(f"benchmarking {spec.name}")
            _run_backend(run, spec)
            bar.advance(n * per_spec - run.measured)  # what a backend that failed left
            run.measured = n * per_spec
    if not run.rows:
        reasons = "; ".join(f"{f['backend']}: {f['error']}" for f in run.failed)
        raise RecfeatError(f"no backend could run: {reasons}")
    if gemm is not None:  # again after the paths: the faster of the two counts (combine)
        gemm = ceilings.combine(gemm, ceilings.measure_ceilings(
            threads=ctx.threads, size=ceiling_size, progress=say))  # fmt: skip
    add_peer_ratios(run.rows)
    gate_info = (_apply_gate(run.rows, gate, gate_rule, run.gate_vectors, run.reference)
                 if gate is not None and gate_rule is not None else None)  # fmt: skip
    return _throughput_results(run, gemm=gemm, gate_info=gate_info, command=command,
                               not_installed=not_installed)  # fmt: skip


@dataclasses.dataclass
class _Throughput:
    """One ``run_throughput``: its settings, and what the backends measured so far (the
    reference's outputs every later row is compared with, the corpus's token counts)."""

    encoder: str
    ctx: sb.BuildContext
    shape: dict[str, Any]
    say: Callable[[str], None]
    device: str  # as it was when the run started: rows are synchronised on that device
    reference: str | None
    fixed: bool
    batch_sizes: Sequence[int]
    seq_lens: Sequence[int]
    texts: list[str] | None
    corpus_name: str | None
    repeats: int
    warmup: int
    gate: Any
    random_weights: bool
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)
    refs: dict[Any, np.ndarray] = dataclasses.field(default_factory=dict)
    gate_vectors: dict[str, Any] = dataclasses.field(default_factory=dict)
    token_counts: np.ndarray | None = None
    corpus_info: dict[str, Any] | None = None
    bar: Any = None  # the progress bar over measurements, set by run_throughput
    measured: int = 0  # the measurements it counted

    def measured_one(self) -> None:
        self.measured += 1
        if self.bar is not None:
            self.bar.advance()


def _failure(spec: sb.BackendSpec, exc: Exception) -> dict[str, str]:
    # recfeat's own errors are written for the user; anything else needs its type to make sense
    error = str(exc) if isinstance(exc, RecfeatError) else f"{type(exc).__name__}: {exc}"
    return {"backend": spec.name, "error": error}


def _run_backend(run: _Throughput, spec: sb.BackendSpec) -> None:
    """Build one backend and add its rows (or its failure) to ``run``. A function of its own
    so the runner, and its model, is freed on return, before the next backend is built."""
    run.say(f"building {spec.name}")
    try:
        runner = spec.build(run.ctx)
    except Exception as exc:  # a broken optional stack must not sink the other rows
        run.failed.append(_failure(spec, exc))
        return
    run.random_weights = run.random_weights or runner.random_weights
    try:
        if run.fixed:
            _measure_grid(run, spec, runner)
        if run.texts is not None:
            _measure_corpus(run, spec, runner)
        gate = run.gate
        if gate is not None and gate.active and (spec.kind == sb.RECFEAT or spec.name == run.reference):
            run.say(f"{spec.name}: downstream gate on {len(gate.texts)} texts")
            run.gate_vectors[spec.name] = runner.encode(gate.texts)
        _describe(run.rows, spec, runner)
    except Exception as exc:
        run.failed.append(_failure(spec, exc))


def _measure_grid(run: _Throughput, spec: sb.BackendSpec, runner) -> None:
    """One row per (batch, seq) of the fixed grid, on synthetic token ids."""
    for seq in run.seq_lens:
        for batch in run.batch_sizes:
            run.say(f"{spec.name}: batch {batch} x seq {seq}")
            ids, mask = synthetic_batch(batch, seq, run.shape["vocab"])
            m = measure(lambda r=runner, i=ids, k=mask: r.forward(i, k), sequences=batch,
                        tokens=batch * seq, warmup=run.warmup, repeats=run.repeats,
                        device=run.device, sync=runner.sync)
            key = ("fixed", batch, seq)
            if spec.name == run.reference:
                run.refs[key] = m.result
            run.rows.append({"backend": spec.name, "kind": spec.kind,
                             "workload": "fixed", "batch": batch, "seq": seq,
                             **m.as_row(), **parity(run.refs.get(key), m.result),
                             "gflops_per_s": batch * ceilings.flops_per_sequence(run.shape, seq)
                             / m.stats.median_s / 1e9})  # fmt: skip
            run.measured_one()


def _measure_corpus(run: _Throughput, spec: sb.BackendSpec, runner) -> None:
    """One row for encoding the whole corpus, tokenisation included."""
    texts, ctx = run.texts, run.ctx
    if run.token_counts is None:
        run.token_counts = _count_tokens(runner, texts, ctx)
        run.corpus_info = {
            "name": run.corpus_name or "corpus", "texts": len(texts),
            "tokens": int(run.token_counts.sum()),
            "mean_tokens": float(run.token_counts.mean()),
            "max_length": ctx.max_length or sb.encoder_class_defaults(run.encoder).get("max_length"),
        }
    run.say(f"{spec.name}: corpus of {len(texts)} texts")
    warm = texts[:WARMUP_TEXTS]
    m = _measure_with_warmup(runner, texts, warm, run.token_counts, run.repeats,
                             run.device, run.warmup)
    if spec.name == run.reference:
        run.refs["corpus"] = m.result
    batching = (
        f"token budget {getattr(getattr(runner, 'encoder', None), 'batch_tokens', '?')}"
        if spec.kind == sb.RECFEAT
        else f"fixed batch {getattr(runner, 'batch_size', ctx.peer_batch_size)}"
    )
    run.rows.append({"backend": spec.name, "kind": spec.kind, "workload": "corpus",
                     "batching": batching, **m.as_row(),
                     **parity(run.refs.get("corpus"), m.result),
                     "gflops_per_s": ceilings.corpus_flops(run.shape, run.token_counts)
                     / m.stats.median_s / 1e9})  # fmt: skip
    run.measured_one()


def _throughput_results(run: _Throughput, *, gemm, gate_info, command,
                        not_installed) -> dict[str, Any]:  # fmt: skip
    """The results dict ``recfeat.bench.report.write_report`` takes."""
    ctx = run.ctx
    targets = bench_summary.summarise(run.rows, (gemm or {}).get("ceilings") or {})
    notes = []
    if run.random_weights:
        notes.append("RANDOM WEIGHTS: a standard shape with seeded random weights; figures "
                     "measure speed only, the vectors mean nothing.")
    return {
        "mode": "throughput",
        "command": command,
        "encoder": run.encoder,
        "init": ctx.init,
        "random_weights": run.random_weights,
        "model_shape": run.shape,
        "reference": run.reference,
        "repeats": run.repeats,
        "warmup": run.warmup,
        "environment": capture_environment(threads=ctx.threads, device=ctx.device),
        "corpus": run.corpus_info,
        "ceilings": gemm,
        "gate": gate_info,
        "targets": targets,
        "rows": run.rows,
        "failed": run.failed,
        "not_installed": list(not_installed),
        "notes": notes,
    }


def _describe(rows, spec, runner) -> None:
    """Runtime, precision actually run and the runner's settings on this backend's rows."""
    try:
        config = runner.describe() or {}
    except Exception as exc:  # describing must never cost the measurement
        config = {"describe_error": f"{type(exc).__name__}: {exc}"}
    precision = config.pop("effective_precision", None) or spec.precision
    for row in rows:
        if row["backend"] == spec.name and "precision" not in row:
            row.update(runtime=spec.runtime, precision=precision, config=config)


def _apply_gate(rows, gate, rule, vectors, reference) -> dict[str, Any]:
    """Score each gated backend's vectors on the task and judge them with ``rule``:
    ``gate_metrics``, ``gate_passed``, ``gate_why`` and one column per metric
    (``gate_ndcg10``, ``gate_rmse``) on the backend's rows."""
    info: dict[str, Any] = {"notes": list(gate.notes), "gated": list(gate.gated),
                            **getattr(rule, "keywords", {})}  # fmt: skip
    if not gate.active or reference not in vectors:
        return info
    ref_vec = vectors[reference]
    table = []
    for name, vec in vectors.items():
        cos = parity(ref_vec, vec)
        table.append({"backend": name, "seq_per_s": 0.0, "cosine_mean": cos["cosine_mean"],
                      "metrics": gate.score(vec)})  # fmt: skip
    rule(table, reference)
    for t in table:
        columns = {f"gate_{k.split()[-1].replace('@', '')}": v for k, v in t["metrics"].items()}
        for row in rows:
            if row["backend"] == t["backend"]:
                row.update(gate_metrics=dict(t["metrics"]), gate_passed=t["passes"],
                           gate_why=t["why"], gate_cosine=t["cosine_mean"],
                           gate_intervals=t.get("intervals") or {}, **columns)  # fmt: skip
    info["backends"] = {t["backend"]: {"passes": t["passes"], "why": t["why"],
                                       "metrics": dict(t["metrics"]),
                                       "intervals": t.get("intervals") or {}} for t in table}  # fmt: skip
    return info


def _measure_with_warmup(runner, texts, warm, token_counts, repeats, device, warmup):
    # Warm-up on a small slice: loads lazy weights / graphs without doubling the run time.
    for _ in range(warmup):
        runner.encode(warm)
    return measure(lambda: runner.encode(texts), sequences=len(texts),
                   tokens=int(token_counts.sum()), warmup=0, repeats=repeats,
                   device=device, sync=runner.sync)


def _count_tokens(runner, texts, ctx) -> np.ndarray:
    """Real (truncated) token counts per text with recfeat's tokenizer for the model."""
    encoder = getattr(runner, "encoder", None)
    if encoder is None or not hasattr(encoder, "tokenize"):
        encoder = get_registry("encoder").create(ctx.encoder, **ctx.encoder_options())
    return encoder.tokenize(texts).lengths


def add_peer_ratios(rows: list[dict[str, Any]]) -> None:
    """Give every recfeat row ``vs_peers``: its seq/s over each peer's on the same workload."""
    def key(r):
        return (r["workload"], r.get("batch"), r.get("seq"))

    peers = [r for r in rows if r["kind"] == sb.PEER]
    for row in rows:
        if row["kind"] != sb.RECFEAT:
            continue
        ratios = {}
        for p in peers:
            if key(p) == key(row) and p.get("seq_per_s"):
                ratios[p["backend"]] = row["seq_per_s"] / p["seq_per_s"]
        if ratios:
            row["vs_peers"] = ratios


# -- accuracy ------------------------------------------------------------------------------
def flag_drops(rows: list[dict[str, Any]], reference: str, max_drop: float) -> None:
    """Mark rows whose metrics fall more than ``max_drop`` below the reference backend's
    (same model); ``worst_drop`` holds the largest relative drop."""
    refs = {r.get("model"): r for r in rows if r["backend"] == reference}
    for row in rows:
        ref = refs.get(row.get("model"))
        if ref is None or row is ref:
            row["worst_drop"] = 0.0 if row is ref else None
            row["flagged"] = False
            continue
        drops = {
            m: relative_drop(ref["metrics"].get(m), v, m)
            for m, v in (row.get("metrics") or {}).items()
            if m in (ref.get("metrics") or {})
        }
        finite = [d for d in drops.values() if not math.isnan(d)]
        row["drops"] = drops
        row["worst_drop"] = max(finite) if finite else None
        row["flagged"] = bool(finite) and max(finite) > max_drop
