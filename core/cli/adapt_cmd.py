"""``recfeat adapt FEATURES --data DATA --kind KIND --out ADAPTED.parquet``: fit a cheap
adaptor (whiten, pca, linear, mlp) on the training part of a split and write the adapted
features with the adaptor beside them.

The command parses flags and prints; ``recfeat.api.adapt`` does the work (settings and their
checks in ``recfeat.finetuning.adapt``).
"""

from __future__ import annotations

import click

import recfeat.api as api
from recfeat.cli.params import training_split_options

KINDS = ("whiten", "pca", "linear", "mlp")  # recfeat.finetuning.adaptors.KINDS


@click.command("adapt")
@click.argument("features")
@click.option("--data", required=True,
              help="The dataset FEATURES were extracted from; the fit reads only its training part.")
@click.option("--format", "fmt", default=None, help="Dataset format [default: auto].")
@click.option("--kind", type=click.Choice(KINDS), required=True,
              help="whiten (centre + whiten), pca (centre + rotate, --dim cuts), linear or mlp "
                   "(InfoNCE on the fine-tuning pairs, in-batch negatives).")  # fmt: skip
@click.option("--out", required=True,
              help="Adapted features (.parquet); the adaptor goes beside it "
                   "(.adaptor.safetensors, .adaptor.json, .adaptor-split.json).")  # fmt: skip
@click.option("--dim", type=click.IntRange(min=1), default=None,
              help="Output dimension [default: every direction (whiten/pca), the input's (linear/mlp)].")
@click.option("--hidden", type=click.IntRange(min=1), default=None,
              help="mlp: hidden width [default: the input's dimension].")
@training_split_options("the fit reads", "Fit on this saved split's training part (evaluate --save-split, a model's split.json).")
@click.option("--fit-on", type=click.Choice(("train", "all")), default=None,
              help="train (default), or all: every vector, for deployment only (evaluate refuses it).")
@click.option("--pairs", "pair_kinds", default=None,
              help="linear/mlp: pair kinds (next-item; review level also same-item) [default: auto].")
@click.option("--max-pairs", default=None, help="linear/mlp: at most this many pairs per kind, or 'all' [default: 20000].")
@click.option("--steps", type=click.IntRange(min=1, max=100_000), default=None,
              help="linear/mlp: optimizer steps [default: 300].")
@click.option("--batch-size", type=click.IntRange(min=2), default=None,
              help="linear/mlp: pairs per batch (in-batch negatives) [default: 128].")
@click.option("--learning-rate", type=click.FloatRange(min=0, max=1, min_open=True), default=None,
              help="linear/mlp: AdamW learning rate [default: 0.001].")
@click.option("--force", is_flag=True, help="Replace --out and its adaptor files if they exist.")
def adapt_command(features, data, fmt, kind, out, dim, hidden, split_kind, seed, test_fraction,
                  load_split, fit_on, pair_kinds, max_pairs, steps, batch_size, learning_rate,
                  force) -> None:  # fmt: skip
    """Fit a cheap adaptor on FEATURES' frozen vectors (training part of a split only) and
    write the adapted features; evaluate, train and serve then use them as any features."""
    from recfeat.cli.terminal import echo

    result = api.adapt(
        features, data, kind, out=out, format=fmt, dim=dim, hidden=hidden, split=split_kind,
        seed=seed, test_fraction=test_fraction, load_split=load_split, fit_on=fit_on,
        pairs=pair_kinds, max_pairs=max_pairs, steps=steps, batch_size=batch_size,
        learning_rate=learning_rate, force=force,
    )  # fmt: skip
    a, fit = result.adaptor, result.info["fit"]
    loss = fit.get("loss") or {}
    said = f"; loss {loss['initial']:.4f} -> {loss['final']:.4f}" if loss else ""
    what = f"{fit['pairs']:,} training pairs" if "pairs" in fit else f"{fit['vectors']:,} training vectors"
    split = fit.get("split")
    where = (f"the training part of a {split['kind']} split (evaluate with --load-split "
             f"{result.out.parent / split['file']})" if split else "every vector (deployment only)")  # fmt: skip
    echo(f"fitted a {a.kind} adaptor ({a.in_dim} -> {a.out_dim}) on {what} from {where}{said}; "
         f"wrote {result.out}")  # fmt: skip


def register(cli: click.Group) -> None:
    cli.add_command(adapt_command)
