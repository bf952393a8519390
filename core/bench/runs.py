"""``recfeat bench throughput`` and ``bench accuracy`` as functions: every check before any
work (the report folder, the device, the backend names, the lists), the default backends and
peers for the device, the corpus and the downstream gate, the run, and the report folder.
``recfeat.api.bench_throughput_report`` / ``bench_accuracy_report`` are these; the CLI parses
its flags, calls them and prints the report.

Nothing heavy is imported at module level: ``recfeat.api`` re-exports the defaults below,
and ``recfeat --help`` shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recfeat.errors import UsageError

# Every recfeat path for the device (the paths ``--backend auto`` chooses among), as the
# peers default to every peer: a run shows recfeat's best next to theirs. onnx-int8-static
# is left out (name it in --backends): its calibrated export with sensitive layers searched
# cost ~7 min on 2 loaded cores, and its unfused QDQ graph ran at 0.24x openvino-bf16 (Xeon,
# interleaved, 2026-12-01).
DEFAULT_CPU_BACKENDS = ("torch-fp32,torch-bf16,onnx-fp32,onnx-fp32-o2,onnx-int8,"
                        "openvino-fp32,openvino-bf16,openvino-int8")  # fmt: skip
DEFAULT_GPU_BACKENDS = "torch-fp32,torch-bf16,torch-fp16"


def default_backends(device: str, *, corpus: bool = True) -> str:
    """The default backends for ``device`` (cpu, cuda, cuda:N) that can run here: installed;
    on the CPU, the bf16 ones only where it has bf16 units (without them torch emulates bf16,
    slower than fp32, and OpenVINO runs its bf16 hint as f32: a copy of openvino-fp32); the
    ones calibrated on the corpus (openvino-int8) only with one (``corpus``)."""
    from recfeat.bench.backends import BACKENDS
    from recfeat.machine import has_bf16

    if device.startswith("cuda"):
        wanted = DEFAULT_GPU_BACKENDS.split(",")
    else:
        bf16 = has_bf16()
        wanted = [n for n in DEFAULT_CPU_BACKENDS.split(",")
                  if (bf16 or BACKENDS[n].precision != "bf16")
                  and (corpus or not _calibrated(n))]  # fmt: skip
    return ",".join(n for n in wanted if BACKENDS[n].available)


def _calibrated(name: str) -> bool:
    """Whether recfeat path ``name`` is exported with static int8 calibrated on the corpus
    (without texts to calibrate on it cannot be built)."""
    from recfeat.selection.backends import EXPORT_FOLDERS, EXPORT_VARIANTS

    folder = EXPORT_VARIANTS.get(name, (None,))[0]
    return EXPORT_FOLDERS.get(folder, {}).get("quantize") == "static-int8"


def backend_table() -> list[Any]:
    """Every backend and peer the harness knows (``BackendSpec``: name, kind, devices,
    available, install, description)."""
    from recfeat.bench.backends import BACKENDS

    return list(BACKENDS.values())


def _context(encoder, device, threads, init, max_length, batch_tokens, peer_batch_size,
             calibration=None):  # fmt: skip
    from recfeat.selection.backends import BuildContext

    return BuildContext(
        encoder=encoder, init=init, device=device, threads=threads, max_length=max_length,
        batch_tokens=batch_tokens, peer_batch_size=peer_batch_size,
        calibration_texts=calibration,
    )  # fmt: skip


def _check_out(out, force: bool, inputs: dict[str, Any], device: str) -> None:
    from recfeat.bench import backends as bb
    from recfeat.bench import report as bench_report
    from recfeat.outputs_guard import guard_outputs

    guard_outputs({"--out": out}, inputs)
    bench_report.check_out_dir(out, force=force)  # before any work
    bb.check_device(device)


def throughput_report(
    out: str | Path, *, encoder: str = "minilm", backends: str | Sequence[str] | None = None,
    peers: str | Sequence[str] | None = None, threads: int | None = None, device: str = "cpu",
    init: str = "pretrained", max_length: int | None = None, batch_tokens: int | None = None,
    peer_batch_size: int = 32, batch_sizes: str | Sequence[int] = "1,8,32,128",
    seq_lens: str | Sequence[int] = "32,128,256", data: str | Path | None = None,
    format: str = "auto", limit: int | None = None, fixed: bool = True, repeats: int = 3,
    warmup: int = 1, ceiling_size: int | None = 4096, gate: bool = True,
    gate_interactions: int | None = None, force: bool = False, command: str | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """``(report folder, results)``: sequences/s, tokens/s, latency and memory of recfeat's
    ``backends`` (None: every recfeat path for ``device`` that can run here, see
    ``default_backends``; openvino-int8 with ``data``) and ``peers`` (None: every peer for the
    device, those not installed listed in the report; "none" or []: none) on the fixed
    ``batch_sizes`` x ``seq_lens`` grid (``fixed``) and on ``data``'s texts, scored on the
    downstream gate with ``gate`` (and ``data``); written to ``out`` (an earlier report
    there is replaced only with ``force``)."""
    import functools

    from recfeat.bench import backends as bb
    from recfeat.bench import report as bench_report
    from recfeat.bench import suite as bench_suite
    from recfeat.selection import backends as sb

    say = say or (lambda msg: None)
    _check_out(out, force, {"--data": data, "--encoder": encoder}, device)
    specs = bb.parse_backends(backends or default_backends(device, corpus=bool(data)),
                              kind=sb.RECFEAT, device=device)  # fmt: skip
    not_installed: list[dict[str, str]] = []
    if peers is None:
        peer_specs, not_installed = bb.default_peers(device)
    elif not peers or (isinstance(peers, str) and peers.strip().lower() in ("", "none")):
        peer_specs = []
    else:
        peer_specs = bb.parse_backends(peers, kind=sb.PEER, device=device)
    if not specs and not peer_specs:
        raise UsageError(f"no backends to measure; {sb.availability(bb.BACKENDS)}")
    batch_list = bench_suite.parse_int_list(batch_sizes, "--batch-sizes")
    seq_list = bench_suite.parse_int_list(seq_lens, "--seq-lens")
    if not fixed and not data:
        raise UsageError("--no-fixed leaves nothing to measure without --data")
    texts = name = task = rule = None
    if data:
        from recfeat.components.dataset import load_dataset

        rec = load_dataset(str(data), format)
        name, texts = bench_suite.corpus_texts(rec, format, limit)
        say(f"corpus {name}: {len(texts)} texts")
        if gate:
            from recfeat.selection import gate as bench_gate

            task = bench_gate.task_gate(rec, limit=gate_interactions)
            rule = functools.partial(bench_gate.judge, min_cosine=bench_gate.DEFAULT_MIN_COSINE,
                                     max_drop=bench_gate.DEFAULT_MAX_DROP)  # fmt: skip
            for note in task.notes:
                say(note)
    ctx = _context(encoder, device, threads, init, max_length, batch_tokens, peer_batch_size,
                   calibration=texts[:512] if texts else None)  # fmt: skip
    results = bench_suite.run_throughput(
        encoder=encoder, backends=specs, peers=peer_specs, batch_sizes=batch_list,
        seq_lens=seq_list, texts=texts, corpus_name=name, fixed=fixed, ctx=ctx,
        repeats=repeats, warmup=warmup, command=command, progress=say,
        ceiling_size=ceiling_size or None, gate=task, gate_rule=rule,
        not_installed=not_installed,
    )  # fmt: skip
    return bench_report.write_report(out, results, force=force), results


def accuracy_report(
    data: str | Path, out: str | Path, *, encoder: str = "minilm",
    backends: str | Sequence[str] | None = None, threads: int | None = None,
    device: str = "cpu", init: str = "pretrained", max_length: int | None = None,
    batch_tokens: int | None = None, peer_batch_size: int = 32, format: str = "auto",
    models: str | Sequence[str] = "content,ridge", split: str = "item-cold",
    max_drop: float | str = "1%", min_cosine: float = 0.99, limit: int | None = None,
    force: bool = False, command: str | None = None, say: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """``(report folder, results)``: per backend (None: the defaults for ``device``), the
    embedding parity to torch fp32 and the downstream metrics of ``models`` on a ``split`` of
    ``data``; the gate's verdict per backend (``min_cosine``, ``max_drop``: a fraction or
    text such as "1%") and the fastest that passes; written to ``out`` (``force``: replace an
    earlier report)."""
    from recfeat.bench import accuracy as bench_accuracy
    from recfeat.bench import backends as bb
    from recfeat.bench import report as bench_report
    from recfeat.selection.gate import parse_drop

    _check_out(out, force, {"DATA": data, "--encoder": encoder}, device)
    drop = parse_drop(max_drop)
    specs = bb.parse_backends(backends or default_backends(device), device=device)
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    ctx = _context(encoder, device, threads, init, max_length, batch_tokens, peer_batch_size)
    results = bench_accuracy.run_accuracy(
        data=str(data), fmt=format, encoder=encoder, backends=specs, models=list(models),
        split=split, max_drop=drop, min_cosine=min_cosine, ctx=ctx, limit=limit,
        command=command, progress=say,
    )  # fmt: skip
    return bench_report.write_report(out, results, force=force), results
