"""``recfeat bench``: throughput and accuracy of recfeat's backends against the peers."""

from __future__ import annotations

import shlex
import sys

import click

import recfeat.api as api
import recfeat.progress as progress
from recfeat.cli.params import gate_interactions_option
from recfeat.cli.tables import wide_option


def _command_line() -> str:
    return "recfeat " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _say(msg: str) -> None:
    progress.say(f"bench: {msg}")  # above the bar, not into it


def _show(path, results, wide: bool = False) -> None:
    """The report (results.md's text, its tables and lines fitted to the terminal unless
    --wide), then what could not run."""
    import textwrap

    from recfeat.cli import tables

    width = tables.output_width(wide)

    def table(header, rows) -> str:
        return tables.fit(header, rows, width=width, na={"-"},
                          hint="--wide or results.md shows all").text()  # fmt: skip

    for line in api.bench_report_text(results, table=table).splitlines():
        indent = "  " if line.startswith(("- ", "> ")) else ""
        wrapped = textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False,
                                break_long_words=False) if width and len(line) > width else [line]  # fmt: skip
        for part in wrapped:
            click.echo(part)
    for f in results["failed"]:
        _say(f"could not run {f['backend']}: {f['error']}")
    click.echo(f"report written to {path}")


_common = [
    click.option("--encoder", default="minilm", show_default=True, help="Encoder name."),
    click.option("--backends", default=None,
                 help=f"Comma-separated recfeat backends [default: every recfeat path that can "
                      f"run here: {api.DEFAULT_CPU_BACKENDS} on CPU (bf16 ones where the CPU has "
                      f"bf16 units, openvino-int8 with a corpus to calibrate on; onnx-int8-static "
                      f"only when named: slow), {api.DEFAULT_GPU_BACKENDS} on CUDA; the installed "
                      f"ones]."),
    click.option("--threads", type=int, default=None, help="Threads for every backend."),
    click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N."),
    click.option("--init", type=click.Choice(["pretrained", "random"]), default="pretrained",
                 show_default=True, help="random: the model's shape with random weights."),
    click.option("--max-length", type=int, default=None, help="Token limit (encoder default)."),
    click.option("--batch-tokens", type=int, default=None,
                 help="recfeat's token budget per batch (encoder default)."),
    click.option("--peer-batch-size", type=int, default=32, show_default=True,
                 help="Batch size given to the peers' encode."),
    click.option("--out", required=True,
                 help="Report folder (results.json, results.md, PNGs)."),
    click.option("--force", is_flag=True, help="Replace an earlier benchmark report in --out."),
    wide_option,
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
@click.option("--limit", type=int, default=None,
              help="Encode a seeded random subset of this many corpus texts.")
@click.option("--no-fixed", is_flag=True, help="Skip the fixed-shape grid (corpus only).")
@click.option("--repeats", type=int, default=3, show_default=True, help="Timed calls per row.")
@click.option("--warmup", type=int, default=1, show_default=True,
              help="Untimed warm-up calls per row.")
@click.option("--ceiling-size", type=int, default=4096, show_default=True,
              help="Square GEMM size of the fp32/bf16/int8 ceilings measured first (0: skip).")
@click.option("--gate/--no-gate", default=True, show_default=True,
              help="With --data: score recfeat's paths on the downstream gate (content NDCG@10, "
                   "ridge RMSE on a seeded item-cold split of the data).")
@gate_interactions_option("--gate")
def throughput_cmd(encoder, backends, threads, device, init, max_length, batch_tokens,
                   peer_batch_size, out, force, peers, batch_sizes, seq_lens, data, fmt, limit,
                   no_fixed, repeats, warmup, ceiling_size, gate, gate_interactions, wide):
    """Sequences/s, tokens/s, latency and memory per backend: fixed shapes and a real corpus."""
    path, results = api.bench_throughput_report(
        out, encoder=encoder, backends=backends, peers=peers, threads=threads, device=device,
        init=init, max_length=max_length, batch_tokens=batch_tokens,
        peer_batch_size=peer_batch_size, batch_sizes=batch_sizes, seq_lens=seq_lens, data=data,
        format=fmt, limit=limit, fixed=not no_fixed, repeats=repeats, warmup=warmup,
        ceiling_size=ceiling_size, gate=gate, gate_interactions=gate_interactions, force=force,
        command=_command_line(), say=_say,
    )  # fmt: skip
    _show(path, results, wide)


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
@click.option("--min-cosine", type=float, default=0.99,
              show_default=True, help="Gate floor of the mean cosine to torch fp32.")
@click.option("--limit", type=int, default=None,
              help="Use a seeded random subset of this many interactions.")
def accuracy_cmd(data, encoder, backends, threads, device, init, max_length, batch_tokens,
                 peer_batch_size, out, force, wide, fmt, models, split_kind, max_drop, min_cosine,
                 limit):
    """Per backend: embedding parity to torch fp32 and downstream metrics; Pareto plot; the
    downstream gate's verdict per backend and the fastest that passes (as --backend auto)."""
    path, results = api.bench_accuracy_report(
        data, out, encoder=encoder, backends=backends, threads=threads, device=device, init=init,
        max_length=max_length, batch_tokens=batch_tokens, peer_batch_size=peer_batch_size,
        format=fmt, models=models, split=split_kind, max_drop=max_drop, min_cosine=min_cosine,
        limit=limit, force=force, command=_command_line(), say=_say,
    )  # fmt: skip
    _show(path, results, wide)


@bench.command("backends")
def backends_cmd():
    """List the backends and peers the harness knows, and whether each is installed here."""
    for spec in api.bench_backends():
        state = "ok" if spec.available else f"missing: {spec.install}"
        click.echo(f"{spec.name:<15} {spec.kind:<8} {', '.join(spec.devices):<9} {state:<10} "
                   f"{spec.description}")


def register(cli: click.Group) -> None:
    cli.add_command(bench)
