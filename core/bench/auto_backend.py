"""``--backend auto``: pick the fastest backend that keeps the vectors, for this machine.

Each available candidate encodes a sample of the user's own corpus (tokenisation included);
its vectors are compared with torch fp32's; the fastest one whose mean cosine reaches
``min_cosine`` wins. The choice is cached per machine (CPU model and flags, GPU) and model
fingerprint in ``$RECFEAT_CACHE_DIR/auto_backend.json``, so later runs pay nothing.
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
from recfeat.bench import backends as bb
from recfeat.bench.measure import cpu_identity, time_calls
from recfeat.errors import OptionError, RecfeatError, UsageError
from recfeat.jsonable import jsonable
from recfeat.machine import check_cuda

DEFAULT_CANDIDATES = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-fp32-o2", "onnx-int8",
                      "openvino-bf16", "openvino-fp32")
GPU_CANDIDATES = ("torch-fp32", "torch-bf16", "torch-fp16")
REFERENCE = "torch-fp32"
SAMPLE_SIZE = 256
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
        from recfeat.bench.measure import gpu_name

        ident["gpu"] = gpu_name()
    return ident


def _cache_key(encoder_fingerprint: Mapping[str, Any], device: str, candidates, min_cosine) -> str:
    payload = json.dumps(
        jsonable({"machine": machine_identity(device), "model": dict(encoder_fingerprint),
                  "candidates": list(candidates), "min_cosine": min_cosine}),
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _cache_path(cache_dir: str | Path | None) -> Path:
    if cache_dir is None:
        from recfeat.encode.hf_models import cache_root

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
    min_cosine: float = 0.999,
    cache_dir: str | Path | None = None,
    ctx: bb.BuildContext | None = None,
    backends: Mapping[str, bb.BackendSpec] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    repeats: int = 2,
    refresh: bool = False,
    clock: Callable[[], float] = time.perf_counter,
    say: Callable[[str], None] | None = None,
) -> Choice:
    """Benchmark the available ``candidates`` on ``sample_texts_`` and keep the fastest one
    whose mean cosine to torch fp32 is at least ``min_cosine``.

    Unavailable candidates (missing packages, wrong device) are skipped with the reason in
    ``table``. ``backends``, ``fingerprint`` and ``clock`` exist for tests.
    """
    if not 0 < min_cosine <= 1:
        raise OptionError(f"min_cosine must be within (0, 1], got {min_cosine}")
    ctx = ctx or bb.BuildContext(encoder=encoder_name)
    ctx.encoder = encoder_name
    say = say or (lambda msg: None)
    if ctx.device.startswith("cuda"):
        try:
            check_cuda(ctx.device)
        except OptionError as exc:
            reason = str(exc).split(";")[0]  # the fix it suggests is what happens here
            say(f"backend auto: {reason}; choosing among the CPU backends instead")
            ctx.device = "cpu"
    backends = dict(bb.BACKENDS if backends is None else backends)
    if candidates is None:
        candidates = GPU_CANDIDATES if ctx.device.startswith("cuda") else DEFAULT_CANDIDATES
    candidates = [c for c in dict.fromkeys(candidates)]
    for name in candidates:
        bb.get_backend(name, backends)  # unknown names fail before any work
    texts = sample_texts(sample_texts_)
    if not texts:
        raise RecfeatError("backend auto needs some non-empty texts to measure on")
    if fingerprint is None:
        from recfeat.plugin.registry import get_registry

        fingerprint = get_registry("encoder").create(encoder_name, **ctx.encoder_options()).fingerprint()
        fingerprint = {k: v for k, v in fingerprint.items() if k not in ("backend", "precision")}
    key = _cache_key(fingerprint, ctx.device, candidates, min_cosine)
    path = _cache_path(cache_dir)
    cache = _read_cache(path)
    if not refresh and key in cache:
        hit = cache[key]
        return Choice(
            backend=hit["backend"],
            reason=f"cached choice from {hit['date']} for this machine and model ({hit['reason']})",
            table=hit["table"], cached=True, key=key,
        )

    # The reference always runs (first), even if it is not a candidate: it defines accuracy.
    order = [REFERENCE, *[c for c in candidates if c != REFERENCE]]
    table: list[dict[str, Any]] = []
    reference_vectors = None
    from recfeat.bench.suite import parity

    for name in order:
        spec = backends.get(name) or bb.get_backend(name, backends)
        row: dict[str, Any] = {"backend": name, "candidate": name in candidates}
        table.append(row)
        if ctx.device.split(":")[0] not in spec.devices:
            row["skipped"] = f"runs on {', '.join(spec.devices)} only"
            continue
        missing = spec.missing()
        if missing:
            row["skipped"] = f"not installed ({spec.install})"
            continue
        say(f"auto: measuring {name}")
        try:
            runner = spec.build(ctx)
            runner.encode(texts[:16])  # warm-up: lazy loading and first-call costs
            latencies, vectors = time_calls(lambda r=runner: r.encode(texts), warmup=0,
                                            repeats=repeats, clock=clock, sync=runner.sync)
        except Exception as exc:  # one broken backend must not stop the choice
            row["skipped"] = f"failed: {type(exc).__name__}: {exc}"
            continue
        best = min(latencies)
        row["seq_per_s"] = len(texts) / best if best > 0 else float("inf")
        if name == REFERENCE:
            reference_vectors = vectors
        row.update(parity(reference_vectors, vectors))
    if reference_vectors is None:
        raise RecfeatError(
            f"backend auto could not run the reference {REFERENCE}: "
            f"{table[0].get('skipped', 'unknown reason')}"
        )
    for row in table:
        if "seq_per_s" not in row:
            continue
        row["passes"] = row["cosine_mean"] is not None and row["cosine_mean"] >= min_cosine
    eligible = [r for r in table if r.get("passes") and r["candidate"]]
    if not eligible:
        raise RecfeatError(
            f"no candidate backend reached mean cosine {min_cosine} to {REFERENCE}; lower "
            "--min-cosine or use --backend torch"
        )
    best = max(eligible, key=lambda r: r["seq_per_s"])
    reason = _reason(best, table, min_cosine)
    date = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    cache[key] = {"backend": best["backend"], "reason": reason, "table": table, "date": date,
                  "machine": machine_identity(ctx.device), "model": dict(fingerprint)}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(jsonable(cache), indent=2) + "\n")
    return Choice(backend=best["backend"], reason=reason, table=table, cached=False, key=key)


def _reason(best: dict[str, Any], table: list[dict[str, Any]], min_cosine: float) -> str:
    ref = next(r for r in table if r["backend"] == REFERENCE)
    parts = [
        f"fastest passing the accuracy gate: {best['seq_per_s']:.1f} seq/s "
        f"({best['seq_per_s'] / ref['seq_per_s']:.2f}x {REFERENCE}), mean cosine "
        f"{best['cosine_mean']:.5f} >= {min_cosine}"
    ]
    rejected = [
        r for r in table
        if r.get("passes") is False and r["candidate"] and r["seq_per_s"] > best["seq_per_s"]
    ]
    for r in rejected:
        parts.append(
            f"rejected faster {r['backend']} ({r['seq_per_s']:.1f} seq/s): mean cosine "
            f"{r['cosine_mean']:.5f} < {min_cosine}"
        )
    return "; ".join(parts)


def format_table(choice: Choice) -> str:
    """A plain-text table of the measurements behind a choice (for the CLI)."""
    lines = [f"{'backend':<16}{'seq/s':>10}{'cos mean':>11}  verdict"]
    for r in choice.table:
        if "seq_per_s" in r:
            verdict = ("chosen" if r["backend"] == choice.backend else
                       "passes" if r.get("passes") else "fails accuracy gate")
            if not r["candidate"]:
                verdict = "reference only"
            lines.append(f"{r['backend']:<16}{r['seq_per_s']:>10.1f}{r['cosine_mean']:>11.5f}  {verdict}")
        else:
            lines.append(f"{r['backend']:<16}{'-':>10}{'-':>11}  skipped: {r.get('skipped')}")
    return "\n".join(lines)


def encoder_for_choice(choice: Choice | str, ctx: bb.BuildContext) -> Any:
    """Build the encoder that ``choice`` names, with ``ctx``'s options (for ``extract``)."""
    name = choice.backend if isinstance(choice, Choice) else choice
    spec = bb.get_backend(name)
    runner = spec.build(ctx)
    encoder = getattr(runner, "encoder", None)
    if encoder is None:
        raise RecfeatError(f"backend {name} is a peer, not a recfeat encoder")
    return encoder


def auto_encoder(name: str, options: dict[str, Any], dataset, level: str, cleaner,
                 say: Callable[[str], None] | None = None):  # fmt: skip
    """``--backend auto`` for a dataset: measure the candidate backends on a sample of the
    texts ``level`` would encode (cleaned), say the table and the choice, and return the
    encoder of the fastest backend that passes the accuracy gate."""
    table = dataset.texts("item" if level == "item" and dataset.items is not None else "review")
    if table is None:
        table = dataset.texts("item")
    if table is None or not len(table):
        raise UsageError("--backend auto needs texts in DATA to measure on; pass --backend torch")
    texts = [t for t in cleaner.clean(table["text"].astype(str).tolist()) if t.strip()]
    ctx = bb.BuildContext(
        encoder=name, max_length=options.get("max_length"), batch_tokens=options.get("batch_tokens")
    )
    choice = choose_backend(name, sample_texts(texts), ctx=ctx, say=say)
    if say is not None:
        say(format_table(choice))
        say(choice.summary())
    return encoder_for_choice(choice, ctx)
