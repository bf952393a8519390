"""``recfeat distill``: a smaller student encoder trained to reproduce the teacher's vectors on
the user's own texts, judged by the downstream gate.

The student keeps ``layers`` of the teacher's transformer layers (spread from the first to
the last, as sentence-transformers' layer-reduction distillation example keeps them), with
the teacher's embeddings, pooling and normalisation, so it starts close to the teacher and
costs about ``layers / teacher layers`` of its compute. It is trained with a mean-squared
error between its pooled unit vectors and the teacher's on texts from the TRAINING part of a
split only (reviews of training interactions and texts of items with one): the teacher's
vectors are the labels, so no interaction signal enters, and the split's test rows and cold
items stay unseen, which ``evaluate`` checks from the student's ``lineage.json``.

Training is fine-tuning's machinery (``recfeat.finetuning.trainer``): seeded, checkpointed,
resumable bit for bit, with the same progress bar. The output folder is a Hugging Face model
folder (and a sentence-transformers one) that ``extract``, ``export``, ``serve`` and
``--backend auto --student`` take, with ``distill.json`` (teacher, layers kept, texts, steps,
loss curve, fidelity on held-out training texts, the gate's verdict), ``split.json``,
``lineage.json`` and ``loss.png``, committed as one unit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.atomic import atomic_dir, write_text
from recfeat.data.model_folders import DISTILL_FORMAT as MANIFEST_FORMAT
from recfeat.data.model_folders import read_distill_manifest as read_distill_manifest  # its API
from recfeat.data.recdata import RecData
from recfeat.data.split_files import check_interactions, fingerprint
from recfeat.errors import DataError, OptionError, UsageError, closest
from recfeat.evaluation.splits import KINDS as SPLIT_KINDS
from recfeat.evaluation.splits import Split, save_split
from recfeat.selection.gate import STUDENT_MIN_COSINE

from .lineage import DISTILL_MANIFEST_FILE, LINEAGE_FILE, SPLIT_FILE, lineage_payload
from .pairs import training_item_texts, training_reviews
from .settings import _check, parse_cap

MANIFEST_VERSION = 1
LOSS_PLOT = "loss.png"

DEFAULT_TEACHER = "minilm"
# item-cold by default: the split the downstream gate judges content vectors on, so the
# student never saw a cold item's texts and its verdict is leak-free.
DEFAULT_SPLIT = "item-cold"
DEFAULT_MAX_TEXTS = 10_000
DEFAULT_MAX_STEPS = 400
DEFAULT_BATCH_SIZE = 32
# Tokens per training text (teacher targets and student inputs alike). Not fine-tuning's 64:
# the student is used at the teacher's full length (256 for MiniLM) and Musical Instruments
# reviews average ~106 tokens, so 128 trains on most of each text. Measured (defaults, MI):
# the 128-token student follows the teacher at 0.902 both at 128 and at 256 tokens, and its
# gate drop was +2.3% against +3.2% for a 64-token one (0.902 at 64): within the noise, so
# the cost of a step, not the fidelity, is what this length trades.
DEFAULT_MAX_LENGTH = 128
# A regression target, not a contrastive one: a larger rate than fine-tuning's 2e-5 (the
# sentence-transformers distillation examples use 1e-4 over far more steps; a budget of a
# few hundred steps needs a larger one to close the gap the removed layers leave).
DEFAULT_LEARNING_RATE = 2e-4
DEFAULT_WARMUP_RATIO = 0.1
DEFAULT_CHECKPOINT_EVERY = 100
# Texts held out of training to measure how closely the student follows the teacher.
HELD_OUT = 500


@dataclasses.dataclass
class DistillSettings:
    """What ``recfeat distill`` does: ``data`` (a path read as ``format``, or a RecData);
    ``encoder``: the teacher (registry name, Hugging Face folder or hub id); ``layers`` (teacher layers the
    student keeps; None: half, rounded up); the split the texts come from (``split``,
    ``seed``, ``test_fraction``, or ``load_split``); ``max_texts`` (a seeded sample of the
    training texts); how long (``max_steps``, ``epochs``, whichever comes first);
    ``batch_size``, ``max_length``, ``learning_rate``, ``warmup_ratio``; checkpoints every
    ``checkpoint_every`` steps into ``checkpoint_dir`` (None: ``<out>.checkpoints``), resumed
    unless ``restart``; ``gate``: judge the student on the downstream gate over the split
    (``max_drop``: largest relative loss of a gated metric); ``force`` replaces the output;
    ``inputs``: files read, which no output may overwrite."""

    data: Any
    encoder: str = DEFAULT_TEACHER  # the teacher
    format: str = "auto"
    split: str = DEFAULT_SPLIT
    seed: int = 0
    test_fraction: float = 0.2
    load_split: str | Path | None = None
    layers: int | None = None
    max_texts: int | None = DEFAULT_MAX_TEXTS
    max_steps: int = DEFAULT_MAX_STEPS
    epochs: float = 3.0
    batch_size: int = DEFAULT_BATCH_SIZE
    max_length: int = DEFAULT_MAX_LENGTH
    learning_rate: float = DEFAULT_LEARNING_RATE
    warmup_ratio: float = DEFAULT_WARMUP_RATIO
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    checkpoint_dir: str | Path | None = None
    restart: bool = False
    keep_checkpoints: bool = False
    gate: bool = True
    max_drop: float = 0.01
    force: bool = False
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def checkpoints_for(self, out: str | Path) -> Path:
        if self.checkpoint_dir is not None:
            return Path(self.checkpoint_dir).expanduser()
        out = Path(out).expanduser()
        return out.with_name(out.name + ".checkpoints")

    def training_key(self) -> dict[str, Any]:
        """The settings that change the student's weights (a checkpoint is resumed only by a
        run with the same ones)."""
        keys = ("layers", "max_texts", "max_steps", "epochs", "batch_size", "max_length",
                "learning_rate", "warmup_ratio", "seed")  # fmt: skip
        return {k: getattr(self, k) for k in keys}


@dataclasses.dataclass
class DistillResult:
    """A finished run: ``out`` (the student folder), its ``manifest`` (distill.json) and the
    ``split`` its texts came from."""

    out: Path
    manifest: dict[str, Any]
    split: Split


def distill_settings(
    *, data: Any = None, encoder: str | None = None, format: str | None = None,
    split: str | None = None, seed: int | None = None, test_fraction: float | None = None,
    load_split: str | Path | None = None, layers: int | None = None,
    max_texts: int | str | None = None, max_steps: int | None = None,
    epochs: float | None = None, batch_size: int | None = None, max_length: int | None = None,
    learning_rate: float | None = None, warmup_ratio: float | None = None,
    checkpoint_every: int | None = None, checkpoint_dir: str | Path | None = None,
    restart: bool = False, keep_checkpoints: bool = False, gate: bool = True,
    max_drop: float | str | None = None, force: bool = False,
) -> DistillSettings:  # fmt: skip
    """Defaults < these arguments (None: not given), named as ``recfeat distill``'s flags;
    checked here, before anything loads, so the CLI and Python fail alike."""
    from recfeat.selection.gate import parse_drop

    if data is None:
        raise UsageError("distill: give data (a dataset path or RecData)")
    base = DistillSettings(data=data)
    pick = lambda given, default: default if given is None else given  # noqa: E731
    chosen = {
        "encoder": encoder or base.encoder, "format": format or "auto",
        "split": split or base.split, "seed": pick(seed, base.seed),
        "test_fraction": pick(test_fraction, base.test_fraction),
        "max_steps": pick(max_steps, base.max_steps), "epochs": pick(epochs, base.epochs),
        "batch_size": pick(batch_size, base.batch_size),
        "max_length": pick(max_length, base.max_length),
        "learning_rate": pick(learning_rate, base.learning_rate),
        "warmup_ratio": pick(warmup_ratio, base.warmup_ratio),
        "checkpoint_every": pick(checkpoint_every, base.checkpoint_every),
    }  # fmt: skip
    if chosen["split"] not in SPLIT_KINDS:
        raise OptionError(f"--split: unknown split {chosen['split']!r}."
                          f"{closest(chosen['split'], SPLIT_KINDS)} Splits: {', '.join(SPLIT_KINDS)}")  # fmt: skip
    if load_split is not None and (split is not None or test_fraction is not None):
        raise UsageError("--load-split fixes the split; drop --split and --test-fraction")
    _check("--seed", chosen["seed"], 0, integer=True)
    _check("--test-fraction", chosen["test_fraction"], 0, high=1, open_low=True)
    if chosen["test_fraction"] >= 1:
        raise OptionError(f"--test-fraction must be below 1, got {chosen['test_fraction']!r}")
    if layers is not None:
        _check("--layers", layers, 1, integer=True)
    cap = parse_cap("--max-texts", max_texts, base.max_texts)
    for flag, key, low in (("--steps", "max_steps", 1), ("--batch-size", "batch_size", 2),
                           ("--max-length", "max_length", 8),
                           ("--checkpoint-every", "checkpoint_every", 1)):  # fmt: skip
        _check(flag, chosen[key], low, integer=True)
    _check("--epochs", chosen["epochs"], 0, open_low=True)
    _check("--learning-rate", chosen["learning_rate"], 0, high=1, open_low=True)
    _check("--warmup-ratio", chosen["warmup_ratio"], 0, high=1)
    drop = base.max_drop if max_drop is None else parse_drop(max_drop)
    inputs = {label: value for label, value in (("DATA", data), ("--load-split", load_split))
              if isinstance(value, (str, Path))}  # fmt: skip
    if Path(str(chosen["encoder"])).expanduser().exists():
        inputs["--encoder"] = chosen["encoder"]
    return DistillSettings(
        data=data, load_split=load_split, layers=layers, max_texts=cap,
        checkpoint_dir=checkpoint_dir, restart=bool(restart),
        keep_checkpoints=bool(keep_checkpoints), gate=bool(gate), max_drop=drop,
        force=bool(force), inputs=inputs, **chosen,
    )  # fmt: skip


# -- the student ---------------------------------------------------------------------------
def kept_layers(teacher_layers: int, layers: int | None) -> list[int]:
    """Indices of the teacher layers a student of ``layers`` keeps: spread evenly from the
    first to the last (None: half, rounded up). A student as deep as the teacher is refused:
    it would be the teacher again."""
    n = math.ceil(teacher_layers / 2) if layers is None else int(layers)
    if not 1 <= n < teacher_layers:
        raise OptionError(f"--layers must be between 1 and {teacher_layers - 1} (the teacher has "
                          f"{teacher_layers} layers), got {n}")  # fmt: skip
    if n == 1:
        return [teacher_layers - 1]
    picks = np.linspace(0, teacher_layers - 1, n).round().astype(int)
    return [int(i) for i in picks]


# model attribute path to its layer list, and the config field counting them, per family
_LAYER_LISTS = (("encoder.layer", "num_hidden_layers"), ("transformer.layer", "n_layers"),
                ("h", "n_layer"), ("layers", "num_hidden_layers"))  # fmt: skip


def _layer_list(model) -> tuple[Any, str, str]:
    """(parent module, attribute, config field) of ``model``'s transformer layers."""
    for path, field in _LAYER_LISTS:
        *parents, attr = path.split(".")
        owner = model
        for name in parents:
            owner = getattr(owner, name, None)
        if owner is not None and hasattr(owner, attr) and hasattr(model.config, field):
            return owner, attr, field
    raise UsageError(f"distill: cannot find the transformer layers of a {type(model).__name__}; "
                     "use a BERT, DistilBERT, GPT-2 or similar teacher")  # fmt: skip


def build_student(base_folder: str, pooling: str, max_length: int, keep: list[int] | int | None):
    """A SentenceTransformer of the teacher's transformer with only the layers ``keep`` (a
    list of indices, or how many: ``kept_layers``), its pooling and L2 normalisation: the
    teacher's own weights, fewer layers. ``model.distilled_from`` is (teacher depth, kept)."""
    import torch

    from .trainer import build_model

    model = build_model(base_folder, pooling, max_length)
    body = model[0].auto_model
    owner, attr, field = _layer_list(body)
    layers = getattr(owner, attr)
    if not isinstance(keep, list):
        keep = kept_layers(len(layers), keep)
    kept = torch.nn.ModuleList([layers[i] for i in keep])
    for position, layer in enumerate(kept):
        # attention modules index the key/value cache by their layer number (GPT-2 uses one
        # even when encoding): renumber them for the shorter stack
        for module in layer.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = position
    setattr(owner, attr, kept)
    setattr(body.config, field, len(keep))
    model.distilled_from = (len(layers), keep)
    return model


# -- texts and targets -----------------------------------------------------------------------
def training_texts(data: RecData, split: Split, *, max_texts: int | None, seed: int,
                   clean: Callable[[list[str]], list[str]]) -> tuple[list[str], Any, list[str]]:  # fmt: skip
    """The distinct cleaned non-empty texts of ``split``'s training part (its reviews, then
    the texts of items that have a training interaction), a seeded sample of ``max_texts``,
    with the (user, item) rows and the items whose texts they are (for the lineage)."""
    import pandas as pd

    train = pd.DataFrame({"user": split.train["user"].astype(str).to_numpy(),
                          "item": split.train["item"].astype(str).to_numpy()})  # fmt: skip
    reviews = training_reviews(data, train)
    items = training_item_texts(data, train)
    raw = [*reviews["text"].tolist(), *items.tolist()]
    users = [*reviews["user"].tolist(), *[""] * len(items)]
    owners = [*reviews["item"].tolist(), *[str(i) for i in items.index]]
    cleaned = list(clean(raw)) if raw else []
    first: dict[str, int] = {}
    for pos, text in enumerate(cleaned):
        if text.strip() and text not in first:
            first[text] = pos
    if not first:
        raise DataError(f"{data.name} has no review or item texts in the training part of its "
                        "split to distill on; use data with texts")  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(first))
    picked = [list(first.items())[i] for i in order]
    if max_texts is not None:
        picked = picked[:max_texts]
    texts = [t for t, _ in picked]
    positions = [p for _, p in picked]
    # every row whose review text was used and every item whose text (review or own) was
    rows = pd.DataFrame({"user": [users[p] for p in positions], "item": [owners[p] for p in positions]})
    rows = rows[rows["user"] != ""].drop_duplicates().sort_values(["user", "item"], kind="stable")
    touched = sorted({owners[p] for p in positions})
    return texts, rows.reset_index(drop=True), touched


def _teacher_encoder(teacher: str, max_length: int | None = None):
    from recfeat.encode.vocabulary import resolve_encoder
    from recfeat.plugin.registry import get_registry

    name, options = resolve_encoder(teacher)
    if max_length is not None:
        options = {**options, "max_length": max_length}
    return get_registry("encoder").create(name, **options)


def inference_length(teacher: str) -> int:
    """Tokens the teacher keeps per text when extract runs it with its defaults: the length
    the student is saved with and its fidelity is measured at."""
    return int(_teacher_encoder(teacher).fingerprint().get("max_length") or 512)


def teacher_vectors(teacher: str, texts: list[str], *, max_length: int | None,
                    progress: bool | None = None) -> np.ndarray:  # fmt: skip
    """The teacher's unit vectors of ``texts`` at ``max_length`` tokens (None: its default),
    through recfeat's own encode loop (the vectors ``extract`` gives): the student's
    regression targets."""
    from recfeat.encode.similarity import unit_rows

    encoder = _teacher_encoder(teacher, max_length)
    # progress None: a bar when stderr is a terminal or RECFEAT_PROGRESS=1 (the engine decides)
    vectors = np.asarray(encoder.encode(texts, progress=progress is not False), dtype=np.float32)
    return unit_rows(vectors)


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def fidelity(student_vectors: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
    """Mean, 5th percentile and minimum cosine of the student's vectors to the teacher's."""
    from recfeat.encode.similarity import cosine_rows

    cos = cosine_rows(student_vectors, teacher)
    return {"texts": int(len(cos)), "cosine_mean": round(float(np.mean(cos)), 6),
            "cosine_p05": round(float(np.percentile(cos, 5)), 6),
            "cosine_min": round(float(np.min(cos)), 6)}  # fmt: skip


# -- the gate --------------------------------------------------------------------------------
def judge_student(data: RecData, split: Split, teacher: str, student: str | Path, *,
                  max_drop: float, clean: Callable[[list[str]], list[str]],
                  say: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """The downstream gate's verdict on ``student`` against ``teacher`` in torch fp32, on
    ``split`` (the split the student's texts came from, so its test side is unseen): item
    cold-start NDCG@10 of ``content`` and RMSE of ``ridge`` within ``max_drop``, mean cosine
    at least ``STUDENT_MIN_COSINE``. Returns the two measured rows and the verdict."""
    from recfeat.encode.vocabulary import resolve_encoder
    from recfeat.plugin.registry import get_registry
    from recfeat.selection import gate as gt
    from recfeat.selection.compare import parity

    gate = gt.task_gate(data, clean=clean, split=split)
    rows: list[dict[str, Any]] = []
    reference = None
    for label, model in (("teacher", teacher), ("student", str(student))):
        name, options = resolve_encoder(model)
        if say:
            say(f"distill: downstream gate of the {label} on {len(gate.texts):,} texts")
        vectors = get_registry("encoder").create(name, **options).encode(gate.texts)
        reference = vectors if reference is None else reference
        row = {"backend": label, "seq_per_s": 1.0, **parity(reference, vectors)}
        if gate.active:
            row["metrics"] = gate.score(vectors)
        rows.append(row)
    gt.judge(rows, "teacher", min_cosine=STUDENT_MIN_COSINE, max_drop=max_drop)
    student_row = rows[1]
    return {"passes": bool(student_row["passes"]), "why": student_row["why"],
            "min_cosine": STUDENT_MIN_COSINE, "max_drop": max_drop, "notes": gate.notes,
            "cosine_mean": student_row.get("cosine_mean"),
            "metrics": {r["backend"]: dict(r.get("metrics") or {}) for r in rows},
            "drops": student_row.get("drops", {}), "intervals": student_row.get("intervals", {})}  # fmt: skip


# -- the run ---------------------------------------------------------------------------------
def run_distill(data: RecData, settings: DistillSettings, out: str | Path, *,
                data_path: str | None = None, progress: bool | None = None,
                echo: Callable[[str], None] | None = None) -> DistillResult:  # fmt: skip
    """Distil ``settings.encoder`` into a student on texts of ``data``'s training part and
    write the student folder ``out`` (refused when it exists, unless ``settings.force``).
    Rerun with the same settings after a kill, it resumes from the last checkpoint."""
    from recfeat.extraction.cleaning import build_cleaner_chain

    from .run import choose_split, plot_loss, resolve_base, versions
    from .trainer import clear_checkpoints, planned_steps, prepare_checkpoints, train

    say = echo or (lambda msg: None)
    out = Path(out).expanduser()
    if out.exists() and not settings.force:
        raise UsageError(f"output folder {out} already exists; pass --force to replace it")
    base = resolve_base(settings.encoder)
    split = choose_split(data, settings)
    cleaner = build_cleaner_chain(None)  # what extract applies by default
    texts, rows, items = training_texts(data, split, max_texts=settings.max_texts,
                                        seed=settings.seed, clean=cleaner.clean)  # fmt: skip
    held = min(HELD_OUT, len(texts) // 10)
    train_texts, check_texts = texts[held:], texts[:held]
    if len(train_texts) < settings.batch_size:
        raise DataError(f"{len(train_texts)} training texts are fewer than one batch of "
                        f"{settings.batch_size}; use more data or a smaller --batch-size")  # fmt: skip
    say(f"distill: teacher vectors of {len(texts):,} training texts")
    targets = teacher_vectors(settings.encoder, texts, max_length=settings.max_length,
                              progress=progress)  # fmt: skip
    inter = check_interactions(data.interactions)
    data_fp = fingerprint(inter)
    steps = planned_steps(len(train_texts), settings.batch_size, settings.epochs, settings.max_steps)
    split_info = {"kind": split.kind, "seed": split.seed, "test_fraction": split.test_fraction,
                  "test_rows_sha256": _sha([int(r) for r in split.test_rows]),
                  "loaded_from": str(settings.load_split) if settings.load_split else None}  # fmt: skip
    texts_sha = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()
    key = {"teacher_weights_sha256": base.weights_sha256, "data_fingerprint": data_fp,
           "split": _sha({k: v for k, v in split_info.items() if k != "loaded_from"}),
           "texts_sha256": texts_sha, "steps": steps, **settings.training_key()}  # fmt: skip
    checkpoints = settings.checkpoints_for(out)
    resume = prepare_checkpoints(checkpoints, key, restart=settings.restart)
    student = build_student(base.folder, base.pooling, settings.max_length, settings.layers)
    depth, keep = student.distilled_from
    columns = {"text": train_texts, "label": [row.tolist() for row in targets[held:]]}
    started = time.time()
    result = train(student, columns, loss=_mse, checkpoints=checkpoints,
                   resume_from=resume[0] if resume else None, steps=steps,
                   batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                   warmup_ratio=settings.warmup_ratio, seed=settings.seed,
                   checkpoint_every=settings.checkpoint_every, label="distilling",
                   progress=progress, echo=echo)  # fmt: skip
    # the student is saved with, and judged at, the teacher's own length: extract runs it there
    full_length = inference_length(settings.encoder)
    held_out, at_training = {}, {}
    if check_texts:
        at_training = fidelity(_student_vectors(result.model, check_texts), targets[:held])
        result.model.max_seq_length = full_length
        teacher_full = (targets[:held] if full_length == settings.max_length else
                        teacher_vectors(settings.encoder, check_texts, max_length=full_length,
                                        progress=False))  # fmt: skip
        held_out = fidelity(_student_vectors(result.model, check_texts), teacher_full)
        held_out = {**held_out, "max_length": full_length}
        at_training = {**at_training, "max_length": settings.max_length}
    result.model.max_seq_length = full_length
    lineage = lineage_payload(rows, items, data_fp)
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "created_unix": int(started),
        "teacher": dataclasses.asdict(base) | {"layers": depth},
        "student": {"layers": len(keep), "kept_teacher_layers": keep, "pooling": base.pooling,
                    "normalize": True, "max_length": full_length,
                    "trained_max_length": settings.max_length,
                    "load_with": "recfeat extract --encoder DIR"},  # fmt: skip
        "data": {"name": data.name, "path": data_path, "fingerprint": data_fp,
                 "interactions": int(len(inter))},  # fmt: skip
        "split": {**split_info, "file": SPLIT_FILE, "train_interactions": int(len(split.train)),
                  "test_interactions": int(len(split.test)), "cold_items": len(split.cold_items),
                  "cold_users": len(split.cold_users)},  # fmt: skip
        "texts": {"total": len(texts), "trained_on": len(train_texts), "held_out": held,
                  "sha256": texts_sha, "max_texts": settings.max_texts,
                  "source": "reviews of training interactions, then texts of items with one; "
                            "cleaned as extract cleans them"},  # fmt: skip
        "training": {"loss": "MSELoss on unit vectors (student vs teacher)",
                     "trainer": "sentence-transformers SentenceTransformerTrainer",
                     "steps": result.steps, "planned_steps": steps,
                     "epochs": round(result.epochs, 4), "batch_size": settings.batch_size,
                     "learning_rate": settings.learning_rate, "warmup_ratio": settings.warmup_ratio,
                     "seed": settings.seed, "checkpoint_every": settings.checkpoint_every,
                     "resumed_from_step": result.resumed_from,
                     "seconds_this_process": round(result.seconds, 2), "versions": versions()},  # fmt: skip
        # held_out_training_texts: at the length extract uses (the figure that counts);
        # at_training_length: on the prefixes the student was trained on
        "fidelity": {"held_out_training_texts": held_out, "at_training_length": at_training},
        "loss_curve": [[s, round(v, 8)] for s, v in result.loss_curve],
        "loss_plot": LOSS_PLOT,
        "lineage": {"file": LINEAGE_FILE, "digest": lineage["digest"], "rows": len(lineage["rows"]),
                    "items": len(lineage["items"])},  # fmt: skip
        "gate": None,
    }
    with atomic_dir(out, force=settings.force) as tmp:
        result.model.save(str(tmp), create_model_card=False)  # a card would quote reviews
        save_split(split, tmp / SPLIT_FILE, data.interactions)
        write_text(tmp / LINEAGE_FILE, json.dumps(lineage) + "\n")
        plot_loss(result.loss_curve, tmp / LOSS_PLOT,
                  f"{Path(base.name).name} -> {len(keep)} layers on {data.name}: "
                  f"{len(train_texts):,} texts, {result.steps} steps",
                  ylabel="MSE to the teacher's unit vectors")  # fmt: skip
        if settings.gate:
            # judged on the folder as it will be loaded, before it is committed
            manifest["gate"] = judge_student(data, split, settings.encoder, tmp,
                                             max_drop=settings.max_drop, clean=cleaner.clean,
                                             say=say)  # fmt: skip
        write_text(tmp / DISTILL_MANIFEST_FILE, json.dumps(manifest, indent=1, default=float) + "\n")
    if not settings.keep_checkpoints:
        clear_checkpoints(checkpoints)
    return DistillResult(out=out, manifest=manifest, split=split)


def _student_vectors(model, texts: list[str]) -> np.ndarray:
    vectors = model.encode(texts, batch_size=64, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)  # fmt: skip
    return np.asarray(vectors, dtype=np.float32)


def _mse(model):
    from sentence_transformers.sentence_transformer.losses import MSELoss

    return MSELoss(model)
