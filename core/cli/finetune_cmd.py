"""``recfeat finetune DATA --out DIR``: fine-tune the encoder on DATA's interactions.

The command parses flags and prints; ``recfeat.api.finetune`` does the work (settings and
their checks in ``recfeat.finetuning.settings``).
"""

from __future__ import annotations

import click

import recfeat.api as api
import recfeat.progress as progress
from recfeat.cli.params import training_split_options


@click.command("finetune")
@click.argument("data")
@click.option("--format", "fmt", default="auto", show_default=True, help="Dataset format.")
@click.option("--encoder", "encoder_name", default=None,
              help="Base model: a registry name (minilm), a Hugging Face folder or hub id "
                   "[default: minilm].")  # fmt: skip
@click.option("--out", required=True,
              help="Output folder: the fine-tuned model (a Hugging Face model folder) with "
                   "finetune.json, split.json, lineage.json and loss.png; never an input.")  # fmt: skip
@training_split_options("the pairs come from", "Use this saved split (evaluate --save-split, or a model's split.json).")
@click.option("--pairs", "pair_kinds", default=None,
              help="Pair kinds, comma-separated: next-item, same-item, review-item, or auto "
                   "(every kind the data has texts for) [default: auto].")  # fmt: skip
@click.option("--max-pairs", default=None,
              help="At most this many pairs of each kind (a seeded sample), or 'all' "
                   "[default: 20000].")  # fmt: skip
@click.option("--pairs-per-item", type=click.IntRange(min=1), default=None,
              help="same-item pairs per item at most [default: 4].")
@click.option("--steps", "max_steps", type=click.IntRange(min=1), default=None,
              help="Optimizer steps at most [default: 1000].")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Passes over the pairs at most; the run stops at --steps or --epochs, "
                   "whichever comes first [default: 1].")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=2), default=None,
              help="Pairs per batch; each anchor is scored against every positive in its "
                   "batch [default: 32].")  # fmt: skip
@click.option("--max-length", type=click.IntRange(min=8), default=None,
              help="Tokens kept per text while training [default: 64].")
@click.option("--learning-rate", type=click.FloatRange(min=0, max=1, min_open=True), default=None,
              help="Peak learning rate [default: 2e-5].")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Write a checkpoint every N steps [default: 100].")
@click.option("--checkpoint-dir", default=None,
              help="Where checkpoints go [default: OUT.checkpoints beside --out]; removed after "
                   "success unless --keep-checkpoints.")  # fmt: skip
@click.option("--restart", is_flag=True,
              help="Discard the checkpoints of an earlier run instead of resuming it.")
@click.option("--keep-checkpoints", is_flag=True, help="Keep the checkpoint folder after success.")
@click.option("--force", is_flag=True, help="Replace --out if it exists (only once the new model is whole).")
def finetune_command(data, fmt, encoder_name, out, split_kind, seed, test_fraction, load_split,
                     pair_kinds, max_pairs, pairs_per_item, max_steps, epochs, batch_size,
                     max_length, learning_rate, checkpoint_every, checkpoint_dir, restart,
                     keep_checkpoints, force) -> None:  # fmt: skip
    """Fine-tune the encoder on pairs from the training part of a split of DATA (in-batch
    negatives contrastive loss) and write the model to --out. Run the same command again after
    an interruption and it resumes from the last checkpoint."""
    from recfeat.cli.terminal import clean, echo

    say = lambda msg: progress.say(clean(msg))  # noqa: E731 - names from the data
    result = api.finetune(
        data, out=out, encoder=encoder_name, format=fmt, split=split_kind, seed=seed,
        test_fraction=test_fraction, load_split=load_split, pairs=pair_kinds,
        max_pairs=max_pairs, pairs_per_item=pairs_per_item, max_steps=max_steps, epochs=epochs,
        batch_size=batch_size, max_length=max_length, learning_rate=learning_rate,
        checkpoint_every=checkpoint_every, checkpoint_dir=checkpoint_dir, restart=restart,
        keep_checkpoints=keep_checkpoints, force=force, echo=say,
    )  # fmt: skip
    m = result.manifest
    counts = ", ".join(f"{n:,} {kind}" for kind, n in m["pairs"]["counts"].items())
    curve = m["loss_curve"]
    loss = f"; loss {curve[0][1]:.4f} -> {curve[-1][1]:.4f}" if curve else ""
    resumed = m["training"]["resumed_from_step"]
    echo(f"fine-tuned {m['base']['name']} on {m['pairs']['total']:,} pairs ({counts}) from the "
         f"training part of a {m['split']['kind']} split: {m['training']['steps']} steps"
         f"{f' (resumed at {resumed})' if resumed else ''}{loss}; wrote {result.out} "
         f"(use it as --encoder {result.out}; evaluate with --load-split "
         f"{result.out / m['split']['file']})")  # fmt: skip


def register(cli: click.Group) -> None:
    cli.add_command(finetune_command)
