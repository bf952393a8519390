"""The settings of one fine-tuning run, resolved once: built-in defaults < keyword arguments
(the ``recfeat finetune`` command's flags, None: not given). Like ``recfeat train``, fine-tuning
reads no config file: ``recfeat.config.SCHEMA`` has no ``[finetune]`` section yet.

Every check that does not need the data happens here, before anything loads, and names the
setting with its flag, so the CLI and the Python API fail the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recfeat.errors import OptionError, UsageError, closest
from recfeat.evaluation.splits import KINDS as SPLIT_KINDS

#: Pair kinds, in the order they are built (docs/finetune.md):
#: ``next-item``: the text of a user's item -> the text of their next item (time order);
#: ``same-item``: two reviews of one item by different users;
#: ``review-item``: a review -> its item's text (data with item texts only).
PAIR_KINDS = ("next-item", "same-item", "review-item")

DEFAULT_ENCODER = "minilm"
DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_LENGTH = 64
DEFAULT_MAX_STEPS = 1000
DEFAULT_CHECKPOINT_EVERY = 100
DEFAULT_PAIRS_PER_ITEM = 4
DEFAULT_MAX_PAIRS = 20_000
# All-MiniLM-L6-v2 was itself trained with MNRL at 2e-5..1e-4; a small rate with warm-up keeps a
# few hundred steps from washing out what it learned from a billion pairs.
DEFAULT_LEARNING_RATE = 2e-5
DEFAULT_WARMUP_RATIO = 0.1
DEFAULT_SCALE = 20.0  # MNRL's inverse temperature, sentence-transformers' default


@dataclasses.dataclass
class FinetuneSettings:
    """What ``recfeat finetune`` does.

    ``data`` (a path read as ``format``, or a RecData); ``encoder``: the base model (a
    registry name such as ``minilm``, a Hugging Face folder or hub id); the split the pairs
    come from (``split``, ``seed``, ``test_fraction``, or ``load_split``: a split file saved
    by ``evaluate --save-split`` or a fine-tuned model's ``split.json``); which pairs
    (``pairs``: kinds; ``max_pairs``: at most this many of each kind, a seeded sample;
    ``pairs_per_item``: same-item pairs per item); how long (``max_steps``, ``epochs``: the
    run stops at whichever comes first); ``batch_size`` (in-batch negatives: each anchor is
    scored against every positive in its batch), ``max_length`` (tokens per text),
    ``learning_rate``, ``warmup_ratio``, ``scale``; ``seed`` seeds the split (unless
    loaded), the pair sample and training; checkpoints every ``checkpoint_every``
    steps into ``checkpoint_dir`` (None: ``<out>.checkpoints`` beside the output), resumed
    from when the same run is started again unless ``restart``; ``keep_checkpoints`` keeps
    that folder after success; ``force`` replaces an existing output folder; ``inputs``: the
    files read, by label, which no output may overwrite."""

    data: Any
    encoder: str = DEFAULT_ENCODER
    format: str = "auto"
    split: str = "random"
    seed: int = 0
    test_fraction: float = 0.2
    load_split: str | Path | None = None
    pairs: tuple[str, ...] | None = None  # None: every kind the data supports
    max_pairs: int | None = DEFAULT_MAX_PAIRS
    pairs_per_item: int = DEFAULT_PAIRS_PER_ITEM
    max_steps: int = DEFAULT_MAX_STEPS
    epochs: float = 1.0
    batch_size: int = DEFAULT_BATCH_SIZE
    max_length: int = DEFAULT_MAX_LENGTH
    learning_rate: float = DEFAULT_LEARNING_RATE
    warmup_ratio: float = DEFAULT_WARMUP_RATIO
    scale: float = DEFAULT_SCALE
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    checkpoint_dir: str | Path | None = None
    restart: bool = False
    keep_checkpoints: bool = False
    force: bool = False
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def checkpoints_for(self, out: str | Path) -> Path:
        """The checkpoint folder of a run writing ``out``."""
        if self.checkpoint_dir is not None:
            return Path(self.checkpoint_dir).expanduser()
        out = Path(out).expanduser()
        return out.with_name(out.name + ".checkpoints")

    def training_key(self) -> dict[str, Any]:
        """The settings that change the trained weights (a checkpoint is resumed only by a
        run with the same ones)."""
        keys = ("pairs", "max_pairs", "pairs_per_item", "max_steps", "epochs", "batch_size",
                "max_length", "learning_rate", "warmup_ratio", "scale", "seed")  # fmt: skip
        return {k: (list(v) if isinstance(v, tuple) else v) for k in keys
                for v in [getattr(self, k)]}  # fmt: skip


def parse_pair_kinds(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"next-item,same-item"`` or a list -> kinds in PAIR_KINDS order; None or "auto":
    every kind the data supports (decided when the data is read)."""
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names if str(n).strip()]
    if names in ([], ["auto"]):
        return None
    for name in names:
        if name not in PAIR_KINDS:
            raise OptionError(f"--pairs: unknown pair kind {name!r}.{closest(name, PAIR_KINDS)} "
                              f"Kinds: {', '.join(PAIR_KINDS)} (or auto)")  # fmt: skip
    return tuple(k for k in PAIR_KINDS if k in names)


def _check(flag: str, value: Any, low: float, *, high: float | None = None,
           open_low: bool = False, integer: bool = False) -> None:  # fmt: skip
    """A number in range, for keyword arguments as the command line's click types check it."""
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise OptionError(f"{flag} must be a whole number, got {value!r}")
    if not integer and (isinstance(value, bool) or not isinstance(value, (int, float))
                        or not math.isfinite(value)):  # fmt: skip
        raise OptionError(f"{flag} must be a finite number, got {value!r}")
    below = value <= low if open_low else value < low
    if below or (high is not None and value > high):
        bound = f"> {low}" if open_low else f">= {low}"
        where = f"between {low} and {high}" if high is not None else bound
        raise OptionError(f"{flag} must be {where}, got {value!r}")


def parse_cap(flag: str, value: int | str | None, default: int | None) -> int | None:
    """A "at most this many" setting: a whole number, or "all" / 0 for no cap (None);
    None: ``default``. Shared by fine-tuning's --max-pairs and distillation's --max-texts."""
    if isinstance(value, str):
        if value.strip().lower() in ("all", "none", "0"):
            value = 0
        else:
            try:
                value = int(value)
            except ValueError:
                raise OptionError(f"{flag} must be a whole number or 'all', got {value!r}") from None
    if value is None:
        return default
    _check(flag, value, 0, integer=True)
    return value or None


def finetune_settings(
    *, data: Any = None, encoder: str | None = None, format: str | None = None,
    split: str | None = None, seed: int | None = None, test_fraction: float | None = None,
    load_split: str | Path | None = None, pairs: str | Sequence[str] | None = None,
    max_pairs: int | str | None = None, pairs_per_item: int | None = None,
    max_steps: int | None = None, epochs: float | None = None, batch_size: int | None = None,
    max_length: int | None = None, learning_rate: float | None = None,
    warmup_ratio: float | None = None, scale: float | None = None,
    checkpoint_every: int | None = None, checkpoint_dir: str | Path | None = None,
    restart: bool = False, keep_checkpoints: bool = False, force: bool = False,
) -> FinetuneSettings:  # fmt: skip
    """Defaults < these arguments (None: not given), named as ``recfeat finetune``'s flags.
    ``max_pairs``: a number, or "all" / 0 for no cap. Checked here, before anything loads."""
    if data is None:
        raise UsageError("finetune: give data (a dataset path or RecData)")
    base = FinetuneSettings(data=data)
    chosen = {
        "encoder": encoder or base.encoder, "format": format or "auto",
        "split": split or base.split, "seed": base.seed if seed is None else seed,
        "test_fraction": base.test_fraction if test_fraction is None else test_fraction,
        "pairs_per_item": base.pairs_per_item if pairs_per_item is None else pairs_per_item,
        "max_steps": base.max_steps if max_steps is None else max_steps,
        "epochs": base.epochs if epochs is None else epochs,
        "batch_size": base.batch_size if batch_size is None else batch_size,
        "max_length": base.max_length if max_length is None else max_length,
        "learning_rate": base.learning_rate if learning_rate is None else learning_rate,
        "warmup_ratio": base.warmup_ratio if warmup_ratio is None else warmup_ratio,
        "scale": base.scale if scale is None else scale,
        "checkpoint_every": base.checkpoint_every if checkpoint_every is None else checkpoint_every,
    }  # fmt: skip
    if chosen["split"] not in SPLIT_KINDS:
        raise OptionError(f"--split: unknown split {chosen['split']!r}."
                          f"{closest(chosen['split'], SPLIT_KINDS)} Splits: {', '.join(SPLIT_KINDS)}")  # fmt: skip
    if load_split is not None and (split is not None or test_fraction is not None):
        # --seed still seeds the pair sample and training; the split's own is in its file
        raise UsageError("--load-split fixes the split; drop --split and --test-fraction")
    _check("--seed", chosen["seed"], 0, integer=True)
    _check("--test-fraction", chosen["test_fraction"], 0, high=1, open_low=True)
    if chosen["test_fraction"] >= 1:
        raise OptionError(f"--test-fraction must be below 1, got {chosen['test_fraction']!r}")
    cap = parse_cap("--max-pairs", max_pairs, base.max_pairs)
    for flag, key, low in (("--pairs-per-item", "pairs_per_item", 1), ("--steps", "max_steps", 1),
                           ("--batch-size", "batch_size", 2), ("--max-length", "max_length", 8),
                           ("--checkpoint-every", "checkpoint_every", 1)):  # fmt: skip
        _check(flag, chosen[key], low, integer=True)
    _check("--epochs", chosen["epochs"], 0, open_low=True)
    _check("--learning-rate", chosen["learning_rate"], 0, high=1, open_low=True)
    _check("--warmup-ratio", chosen["warmup_ratio"], 0, high=1)
    _check("--scale", chosen["scale"], 0, open_low=True)
    inputs = {label: value for label, value in (("DATA", data), ("--load-split", load_split))
              if isinstance(value, (str, Path))}  # fmt: skip
    if Path(str(chosen["encoder"])).expanduser().exists():
        inputs["--encoder"] = chosen["encoder"]
    return FinetuneSettings(
        data=data, load_split=load_split, pairs=parse_pair_kinds(pairs), max_pairs=cap,
        checkpoint_dir=checkpoint_dir, restart=bool(restart),
        keep_checkpoints=bool(keep_checkpoints), force=bool(force), inputs=inputs, **chosen,
    )  # fmt: skip
