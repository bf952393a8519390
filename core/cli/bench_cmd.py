"""``recfeat bench``: throughput and accuracy of recfeat's backends against the peers."""

from __future__ import annotations

import functools
import shlex
import sys

import click

from recfeat.cli.params import gate_interactions_option

DEFAULT_CPU_BACKENDS = "torch-fp32,torch-bf16,onnx-fp32,onnx-int8"
DEFAULT_GPU_BACKENDS = "torch-fp32,torch-bf16,torch-fp16"


def _command_line() -> str:
    return "recfeat " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _say(msg: str) -> None:
    click.echo(f"bench: {msg}", err=True)


def _context(encoder, device, threads, init, max_length, batch_tokens, peer_batch_size, calibration=None):
    from recfeat.selection.backends import BuildContext

    return BuildContext(
        encoder=encoder, init=init, device=device, threads=threads, max_length=max_length,
        batch_tokens=batch_tokens, peer_batch_size=peer_batch_size,
        calibration_texts=calibration,
    )


def _default_backends(device: str) -> str:
    from recfeat.bench.backends import BACKENDS

    wanted = DEFAULT_GPU_BACKENDS if device.startswith("cuda") else DEFAULT_CPU_BACKENDS
    return ",".join(n for n in wanted.split(",") if BACKENDS[n].available)


_common = [
    click.option("--encoder", default="minilm", show_default=True, help="Encoder name."),
    click.option("--backends", default=None,
                 help=f"Comma-separated recfeat backends [default: {DEFAULT_CPU_BACKENDS} on CPU, "
                      f"{DEFAULT_GPU_BACKENDS} on CUDA]."),
    click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads for every backend."),
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N."),
    click.option("--init", type=click.Choice(["pretrained", "random"]), default="pretrained",
                 show_default=True, help="random: the model's shape with random weights."),
    click.option("--max-length", type=click.IntRange(min=2), default=None, help="Token limit (encoder default)."),
    click.option("--batch-tokens", type=click.IntRange(min=1), default=None,
                 help="recfeat's token budget per batch (encoder default)."),
    click.option("--peer-batch-size", type=click.IntRange(min=1), default=32, show_default=True,
                 help="Batch size given to the peers' encode."),
    click.option("--out", required=True, type=click.Path(file_okay=False),
                 help="Report folder (results.json, results.md, PNGs)."),
    click.option("--force", is_flag=True, help="Replace an earlier benchmark report in --out."),
]


def _apply(options):
    def deco(f):
        for opt in reversed(options):
            f = opt(f)
        return f

    return deco


@click.group("bench")
def bench() -> None:
    """Measure recfeat's backends (and the peers) for speed and accuracy."""


@bench.command("throughput")
@_apply(_common)
@click.option("--peers", default=None,
              help="Comma-separated peers in the same run ('none' for none) [default: every "
                   "peer for the device; those not installed are listed in the report].")
@click.option("--batch-sizes", default="1,8,32,128", show_default=True)
@click.option("--seq-lens", default="32,128,256", show_default=True)
@click.option("--data", default=None, help="Dataset for the real-corpus mode.")
@click.option("--format", "fmt", default="auto", show_default=True, help="Dataset format.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Encode a seeded random subset of this many corpus texts.")
@click.option("--no-fixed", is_flag=True, help="Skip the fixed-shape grid (corpus only).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Timed calls per row.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Untimed warm-up calls per row.")
@click.option("--ceiling-size", type=click.IntRange(min=0), default=4096, show_default=True,
              help="Square GEMM size of the fp32/bf16/int8 ceilings measured first (0: skip).")
@click.option("--gate/--no-gate", default=True, show_default=True,
              help="With --data: score recfeat's paths on the downstream gate (content NDCG@10, "
                   "ridge RMSE on a seeded item-cold split of the data).")
@gate_interactions_option("--gate")
def throughput_cmd(encoder, backends, threads, device, init, max_length, batch_tokens,
                   peer_batch_size, out, force, peers, batch_sizes, seq_lens, data, fmt, limit,
                   no_fixed, repeats, warmup, ceiling_size, gate, gate_interactions):
    """Sequences/s, tokens/s, latency and memory per backend: fixed shapes and a real corpus."""
    from recfeat.bench import backends as bb
    from recfeat.bench import report as bench_report
    from recfeat.bench import suite as bench_suite
    from recfeat.errors import UsageError
    from recfeat.outputs_guard import guard_outputs
    from recfeat.selection import backends as sb

    guard_outputs({"--out": out}, {"--data": data, "--encoder": encoder})
    bench_report.check_out_dir(out, force=force)  # before any work
    bb.check_device(device)
    specs = bb.parse_backends(backends or _default_backends(device), kind=sb.RECFEAT, device=device)
    not_installed: list[dict[str, str]] = []
    if peers is None:
        peer_specs, not_installed = bb.default_peers(device)
    elif peers.strip().lower() in ("", "none"):
        peer_specs = []
    else:
        peer_specs = bb.parse_backends(peers, kind=sb.PEER, device=device)
    if not specs and not peer_specs:
        raise UsageError(f"no backends to measure; {sb.availability(bb.BACKENDS)}")
    batch_list = bench_suite.parse_int_list(batch_sizes, "--batch-sizes")
    seq_list = bench_suite.parse_int_list(seq_lens, "--seq-lens")
    if no_fixed and not data:
        raise UsageError("--no-fixed leaves nothing to measure without --data")
    texts = name = task = rule = None
    if data:
        from recfeat.components.dataset import load_dataset

        rec = load_dataset(data, fmt)
        name, texts = bench_suite.corpus_texts(rec, fmt, limit)
        _say(f"corpus {name}: {len(texts)} texts")
        if gate:
            from recfeat.selection import gate as bench_gate

            task = bench_gate.task_gate(rec, limit=gate_interactions)
            rule = functools.partial(bench_gate.judge, min_cosine=bench_gate.DEFAULT_MIN_COSINE,
                                     max_drop=bench_gate.DEFAULT_MAX_DROP)
            for note in task.notes:
                _say(note)
    ctx = _context(encoder, device, threads, init, max_length, batch_tokens, peer_batch_size,
                   calibration=texts[:512] if texts else None)
    results = bench_suite.run_throughput(
        encoder=encoder, backends=specs, peers=peer_specs, batch_sizes=batch_list,
        seq_lens=seq_list, texts=texts, corpus_name=name, fixed=not no_fixed, ctx=ctx,
        repeats=repeats, warmup=warmup, command=_command_line(), progress=_say,
        ceiling_size=ceiling_size or None, gate=task, gate_rule=rule,
        not_installed=not_installed,
    )
    path = bench_report.write_report(out, results, force=force)
    click.echo((path / "results.md").read_text())
    for f in results["failed"]:
        _say(f"could not run {f['backend']}: {f['error']}")
    click.echo(f"report written to {path}")


@bench.command("accuracy")
@click.argument("data")
@_apply(_common)
@click.option("--format", "fmt", default="auto", show_default=True, help="Dataset format.")
@click.option("--models", default="content,ridge", show_default=True,
              help="Comma-separated recommendation models to evaluate on each backend's vectors.")
@click.option("--split", "split_kind", default="item-cold", show_default=True,
              help="Evaluation split: item-cold or random.")
@click.option("--max-drop", default="1%", show_default=True,
              help="Mark backends whose downstream metric falls more than this.")
@click.option("--min-cosine", type=click.FloatRange(0, 1, min_open=True), default=0.99,
              show_default=True, help="Gate floor of the mean cosine to torch fp32.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use a seeded random subset of this many interactions.")
def accuracy_cmd(data, encoder, backends, threads, device, init, max_length, batch_tokens,
                 peer_batch_size, out, force, fmt, models, split_kind, max_drop, min_cosine, limit):
    """Per backend: embedding parity to torch fp32 and downstream metrics; Pareto plot; the
    downstream gate's verdict per backend and the fastest that passes (as --backend auto)."""
    from recfeat.bench import accuracy as bench_accuracy
    from recfeat.bench import backends as bb
    from recfeat.bench import report as bench_report
    from recfeat.outputs_guard import guard_outputs

    guard_outputs({"--out": out}, {"DATA": data, "--encoder": encoder})
    bench_report.check_out_dir(out, force=force)
    bb.check_device(device)
    from recfeat.selection.gate import parse_drop

    drop = parse_drop(max_drop)
    specs = bb.parse_backends(backends or _default_backends(device), device=device)
    model_list = [m.strip() for m in models.split(",") if m.strip()]
    ctx = _context(encoder, device, threads, init, max_length, batch_tokens, peer_batch_size)
    results = bench_accuracy.run_accuracy(
        data=data, fmt=fmt, encoder=encoder, backends=specs, models=model_list,
        split=split_kind, max_drop=drop, min_cosine=min_cosine, ctx=ctx, limit=limit,
        command=_command_line(),
        progress=_say,
    )
    path = bench_report.write_report(out, results, force=force)
    click.echo((path / "results.md").read_text())
    for f in results["failed"]:
        _say(f"could not run {f['backend']}: {f['error']}")
    click.echo(f"report written to {path}")


@bench.command("backends")
def backends_cmd():
    """List the backends and peers the harness knows, and whether each is installed here."""
    from recfeat.bench.backends import BACKENDS

    for spec in BACKENDS.values():
        state = "ok" if spec.available else f"missing: {spec.install}"
        click.echo(f"{spec.name:<15} {spec.kind:<8} {', '.join(spec.devices):<9} {state:<10} "
                   f"{spec.description}")


def register(cli: click.Group) -> None:
    cli.add_command(bench)
