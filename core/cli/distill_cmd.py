"""``recfeat distill DATA --out DIR``: a smaller student of the encoder, trained on DATA's texts.

The command parses flags and prints; ``recfeat.api.distill`` does the work (settings, checks
and the run in ``recfeat.finetuning.distill``).
"""

from __future__ import annotations

import click

import recfeat.api as api
import recfeat.progress as progress
from recfeat.cli.params import training_split_options


@click.command("distill")
@click.argument("data")
@click.option("--format", "fmt", default="auto", show_default=True, help="Dataset format.")
@click.option("--encoder", "encoder_name", default=None,
              help="The encoder to distil: a registry name (minilm), a Hugging Face folder or "
                   "hub id [default: minilm].")  # fmt: skip
@click.option("--out", required=True,
              help="Output folder: the student (a Hugging Face model folder) with distill.json, "
                   "split.json, lineage.json and loss.png; never an input.")  # fmt: skip
@training_split_options("the texts come from", "Use this saved split (evaluate --save-split, or a model's split.json).",
                        default_split="item-cold")  # fmt: skip
@click.option("--layers", type=click.IntRange(min=1), default=None,
              help="Teacher layers the student keeps, spread from first to last [default: half].")
@click.option("--max-texts", default=None,
              help="At most this many training texts (a seeded sample), or 'all' [default: 10000].")
@click.option("--steps", "max_steps", type=click.IntRange(min=1), default=None,
              help="Optimizer steps at most [default: 400].")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Passes over the texts at most; the run stops at --steps or --epochs, "
                   "whichever comes first [default: 3].")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="Texts per batch [default: 32].")
@click.option("--max-length", type=click.IntRange(min=8), default=None,
              help="Tokens kept per text while training [default: 64].")
@click.option("--learning-rate", type=click.FloatRange(min=0, max=1, min_open=True), default=None,
              help="Peak learning rate [default: 2e-4].")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Write a checkpoint every N steps [default: 100].")
@click.option("--checkpoint-dir", default=None,
              help="Where checkpoints go [default: OUT.checkpoints beside --out]; removed after "
                   "success unless --keep-checkpoints.")  # fmt: skip
@click.option("--restart", is_flag=True, help="Discard the checkpoints of an earlier run instead of resuming it.")
@click.option("--keep-checkpoints", is_flag=True, help="Keep the checkpoint folder after success.")
@click.option("--gate/--no-gate", default=True, show_default=True,
              help="Judge the student against the teacher on the downstream gate over the split's "
                   "test side (content NDCG@10, ridge RMSE).")  # fmt: skip
@click.option("--max-drop", default=None,
              help="--gate: largest relative loss of a gated metric, e.g. 1% [default: 1%].")
@click.option("--force", is_flag=True, help="Replace --out if it exists (only once the new student is whole).")
def distill_command(data, fmt, encoder_name, out, split_kind, seed, test_fraction, load_split, layers,
                    max_texts, max_steps, epochs, batch_size, max_length, learning_rate,
                    checkpoint_every, checkpoint_dir, restart, keep_checkpoints, gate, max_drop,
                    force) -> None:  # fmt: skip
    """Distil the encoder into a student with fewer layers, trained to reproduce the teacher's
    vectors on texts from the training part of a split of DATA, judge it on the downstream
    gate and write it to --out. Run the same command again after an interruption and it
    resumes from the last checkpoint."""
    from recfeat.cli.terminal import clean, echo

    say = lambda msg: progress.say(clean(msg))  # noqa: E731 - names from the data
    result = api.distill(
        data, out=out, encoder=encoder_name, format=fmt, split=split_kind, seed=seed,
        test_fraction=test_fraction, load_split=load_split, layers=layers, max_texts=max_texts,
        max_steps=max_steps, epochs=epochs, batch_size=batch_size, max_length=max_length,
        learning_rate=learning_rate, checkpoint_every=checkpoint_every,
        checkpoint_dir=checkpoint_dir, restart=restart, keep_checkpoints=keep_checkpoints,
        gate=gate, max_drop=max_drop, force=force, echo=say,
    )  # fmt: skip
    m = result.manifest
    fid = m["fidelity"]["held_out_training_texts"]
    fid_text = (f"; mean cosine to the teacher {fid['cosine_mean']:.4f} on {fid['texts']} held-out "
                f"training texts at {fid.get('max_length', '?')} tokens") if fid else ""  # fmt: skip
    resumed = m["training"]["resumed_from_step"]
    echo(f"distilled {m['teacher']['name']} ({m['teacher']['layers']} layers) into "
         f"{m['student']['layers']} layers (teacher layers {m['student']['kept_teacher_layers']}) "
         f"on {m['texts']['trained_on']:,} training texts of a {m['split']['kind']} split: "
         f"{m['training']['steps']} steps{f' (resumed at {resumed})' if resumed else ''}{fid_text}")  # fmt: skip
    verdict = m.get("gate")
    if verdict:
        drops = ", ".join(f"{k} {v * 100:+.2f}%" for k, v in verdict["drops"].items())
        state = "PASSES" if verdict["passes"] else "FAILS"
        why = "" if verdict["passes"] else f" ({'; '.join(verdict['why'])})"
        echo(f"downstream gate: the student {state}{why}; drop vs teacher: {drops or 'n/a'}")
    echo(f"wrote {result.out} (use it as --encoder {result.out}, or with --backend auto "
         f"--student {result.out}; evaluate with --load-split {result.out / m['split']['file']})")


def register(cli: click.Group) -> None:
    cli.add_command(distill_command)
