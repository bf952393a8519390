"""The training run: sentence-transformers' trainer with its in-batch-negatives loss.

Why sentence-transformers' ``SentenceTransformerTrainer`` and ``MultipleNegativesRankingLoss``
rather than a loop of our own: the loss (InfoNCE over in-batch negatives, scaled cosine) is
the one all-MiniLM-L6-v2 was trained with; the ``NO_DUPLICATES`` batch sampler keeps a text
from appearing twice in a batch, where it would be a false negative (item texts repeat across
review-item pairs); and the Hugging Face ``Trainer`` beneath it already does what a long run
needs and a hand-written loop gets subtly wrong: seeded data order (``seed + epoch``),
warm-up and linear decay, gradient clipping, and checkpoints holding the model, optimizer,
scheduler and every RNG state, from which a resumed run skips the batches already seen and
ends with the same weights, bit for bit, as an uninterrupted one (tests/test_finetune.py).

The model is the base transformer, the pooling recfeat's ``hf`` encoder applies to it by
default (``recfeat.encode.hf_models.default_pooling_for``), and L2 normalisation, so the
vectors trained are the vectors ``recfeat extract --encoder DIR`` computes; the saved folder
is a Hugging Face model folder at its root (what recfeat loads) and a sentence-transformers
folder (modules.json) for anyone else.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recfeat.atomic import write_text
from recfeat.errors import UsageError, require
from recfeat.progress import progress_bar

RUN_FILE = "run.json"
RUN_FORMAT = "recfeat-finetune-run"
# recfeat pooling names -> sentence-transformers Pooling modes
ST_POOLING = {"mean": "mean", "cls": "cls", "max": "max", "last-token": "lasttoken"}
# A checkpoint is whole when its trainer state (written last) reads back: a kill while one
# is being written leaves a folder without it, and the one before is used.
_CHECKPOINT_NEEDS = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth")


@dataclasses.dataclass
class TrainResult:
    """What the run did: the trained ``model`` (a SentenceTransformer), ``steps`` taken in
    all, ``resumed_from`` (the step a checkpoint gave, 0 for a fresh run), the ``loss_curve``
    as (step, mean loss since the previous point) and ``seconds`` spent in this process."""

    model: Any
    steps: int
    resumed_from: int
    loss_curve: list[tuple[int, float]]
    seconds: float
    epochs: float


def planned_steps(n_pairs: int, batch_size: int, epochs: float, max_steps: int) -> int:
    """Optimizer steps of a run: ``epochs`` passes over the pairs, at most ``max_steps``."""
    per_epoch = max(1, n_pairs // batch_size)
    return max(1, min(max_steps, math.ceil(per_epoch * epochs)))


def build_model(base_folder: str, pooling: str, max_length: int):
    """A SentenceTransformer of the base transformer + ``pooling`` + L2 normalisation."""
    require("sentence_transformers", "finetune", "recfeat finetune")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    if pooling not in ST_POOLING:
        raise UsageError(f"finetune: pooling {pooling!r} has no sentence-transformers counterpart; "
                         f"valid: {', '.join(ST_POOLING)}")  # fmt: skip
    body = Transformer(base_folder, max_seq_length=max_length)
    modules = [body, Pooling(body.get_embedding_dimension(), ST_POOLING[pooling]), Normalize()]
    return SentenceTransformer(modules=modules, device="cpu")


# -- checkpoints -------------------------------------------------------------------------------
def _whole(checkpoint: Path) -> int | None:
    """The step of a complete checkpoint folder, or None."""
    if not all((checkpoint / name).is_file() for name in _CHECKPOINT_NEEDS):
        return None
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        return int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def latest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    """The newest complete ``checkpoint-N`` in ``folder``, with its step."""
    found = []
    for child in folder.glob("checkpoint-*"):
        step = _whole(child) if child.is_dir() else None
        if step is not None:
            found.append((step, child))
    if not found:
        return None
    step, path = max(found)
    return path, step


def prepare_checkpoints(folder: Path, key: dict[str, Any], *, restart: bool) -> tuple[Path, int] | None:
    """Make ``folder`` ready for a run identified by ``key`` and return the checkpoint to
    resume from (None: start fresh). A folder recfeat did not make is refused, never
    emptied; one of a run with other settings is refused unless ``restart``, which removes
    its checkpoints."""
    marker = folder / RUN_FILE
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"checkpoint folder {folder} is a file; remove it or choose --checkpoint-dir")
    if folder.is_dir():
        entries = list(folder.iterdir())
        if entries and not marker.is_file():
            raise UsageError(
                f"checkpoint folder {folder} holds files recfeat finetune did not write; empty it "
                "or choose another --checkpoint-dir"
            )
        if marker.is_file():
            try:
                recorded = json.loads(marker.read_text()).get("key", {})
            except (OSError, ValueError, AttributeError):
                recorded = None
            if restart:
                clear_checkpoints(folder)
            elif recorded != key:
                differ = sorted(k for k in set(key) | set(recorded or {})
                                if (recorded or {}).get(k) != key.get(k))  # fmt: skip
                raise UsageError(
                    f"checkpoint folder {folder} holds a run with other settings or data "
                    f"(differs: {', '.join(differ) or 'unreadable run.json'}); run with the same "
                    "settings to resume it, or pass --restart to start over"
                )
    folder.mkdir(parents=True, exist_ok=True)
    write_text(marker, json.dumps({"format": RUN_FORMAT, "key": key}, indent=1, sort_keys=True) + "\n")
    return latest_checkpoint(folder)


def clear_checkpoints(folder: Path) -> None:
    """Remove what ``prepare_checkpoints`` and the trainer wrote in ``folder`` (only that),
    and the folder when nothing else is left."""
    if not (folder / RUN_FILE).is_file():
        return
    for child in folder.iterdir():
        if child.is_dir() and child.name.startswith("checkpoint-"):
            shutil.rmtree(child)
    (folder / RUN_FILE).unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


# -- the run -----------------------------------------------------------------------------------
def _callbacks(bar, label: str):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """recfeat's progress bar (steps, rate, ETA) with the latest loss in its label."""

        def on_train_begin(self, args, state, control, **kwargs):
            if state.global_step:  # resumed: those steps are done, not part of the rate
                bar.start_at(state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            bar.advance(1)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                bar.describe(f"{label} (loss {logs['loss']:.4f})")

    return [Progress()]


def contrastive(scale: float) -> Callable[[Any], Any]:
    """``MultipleNegativesRankingLoss`` at ``scale`` for (anchor, positive) columns:
    fine-tuning's loss. Batches hold no text twice (a repeat would be a false negative)."""

    def build(model):
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        return MultipleNegativesRankingLoss(model, scale=scale)

    build.no_duplicates = True  # type: ignore[attr-defined]
    return build


def train(model, columns: Mapping[str, Sequence[Any]], *, loss: Callable[[Any], Any],
          checkpoints: Path, resume_from: Path | None, steps: int, batch_size: int,
          learning_rate: float, warmup_ratio: float, seed: int, checkpoint_every: int,
          label: str = "fine-tuning", progress: bool | None = None,
          echo: Callable[[str], None] | None = None) -> TrainResult:  # fmt: skip
    """Train ``model`` on the dataset ``columns`` (name -> values, in the order the loss
    reads them: fine-tuning's anchor/positive texts, distillation's text/label) with the
    loss ``loss(model)`` builds, for ``steps`` optimizer steps, writing a checkpoint every
    ``checkpoint_every`` steps (and at the end) into ``checkpoints``; ``resume_from``: a
    checkpoint of the same run to continue. ``label`` names the progress bar."""
    import time
    import warnings

    require("datasets", "finetune", "recfeat finetune's trainer")
    require("accelerate", "finetune", "recfeat finetune's trainer")
    import datasets
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers.trainer_callback import PrinterCallback

    dataset = datasets.Dataset.from_dict({name: list(values) for name, values in columns.items()})
    sampler = (BatchSamplers.NO_DUPLICATES if getattr(loss, "no_duplicates", False)
               else BatchSamplers.BATCH_SAMPLER)  # fmt: skip
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints), max_steps=steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, warmup_ratio=warmup_ratio, seed=seed, data_seed=seed,
        batch_sampler=sampler, save_strategy="steps",
        save_steps=checkpoint_every, save_total_limit=2,  # the last two: one is always whole
        logging_steps=max(1, steps // 100), report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, use_cpu=True,  # build_model puts the model on the CPU
    )  # fmt: skip

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict):
            # recfeat writes no model card (it would quote users' reviews), so nothing needs
            # tracking for one; the tracker would also draw a progress bar of its own.
            return None

    bars_were_on = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()  # its map bars would cut through ours
    try:
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          loss=loss(model))  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
        # read now: the trainer's rotation may delete this checkpoint once newer ones exist
        resumed_at = (_whole(resume_from) or 0) if resume_from is not None else 0
        if resume_from is not None and echo:
            echo(f"resuming from {resume_from} (step {resumed_at} of {steps})")
        start = time.perf_counter()
        with progress_bar(steps, label, enabled=progress, unit="step") as bar, warnings.catch_warnings():
            # Checkpoints are rotated by step number when mtimes tie, which is what we want.
            warnings.filterwarnings("ignore", message="mtime may not be reliable")
            for callback in _callbacks(bar, label):
                trainer.add_callback(callback)
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        seconds = time.perf_counter() - start
    finally:
        if bars_were_on:
            datasets.utils.logging.enable_progress_bar()
    state = trainer.state
    curve = [(int(h["step"]), float(h["loss"])) for h in state.log_history if "loss" in h and "step" in h]
    return TrainResult(model=model, steps=int(state.global_step),
                       resumed_from=resumed_at,
                       loss_curve=curve, seconds=seconds, epochs=float(state.epoch or 0.0))  # fmt: skip
