"""One fine-tuning job, end to end: split, pairs, checkpointed training, and the output folder
(model + ``finetune.json`` + ``split.json`` + ``lineage.json`` + ``loss.png``) committed as one
unit.

The caller (``recfeat.api.finetune``) loads the dataset and checks the output paths; this
module never reads a file it was not handed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recfeat.atomic import atomic_dir, atomic_path, write_text
from recfeat.data.recdata import RecData
from recfeat.data.split_files import check_interactions, fingerprint
from recfeat.errors import UsageError
from recfeat.evaluation.splits import Split, load_split, make_split, save_split

from .lineage import LINEAGE_FILE, MANIFEST_FILE, SPLIT_FILE, lineage_payload
from .pairs import Pairs, build_pairs
from .settings import FinetuneSettings
from .trainer import (
    build_model,
    clear_checkpoints,
    contrastive,
    planned_steps,
    prepare_checkpoints,
    train,
)

MANIFEST_FORMAT = "recfeat-finetune"
MANIFEST_VERSION = 1
LOSS_PLOT = "loss.png"


@dataclasses.dataclass
class BaseModel:
    """The encoder fine-tuning starts from: its registry name or model as given, the local
    folder, its weights' sha256, family and the pooling recfeat applies to it."""

    name: str
    folder: str
    weights_sha256: str
    family: str
    pooling: str


@dataclasses.dataclass
class FinetuneResult:
    """A finished run: ``out`` (the model folder), its ``manifest`` (finetune.json), the
    ``pairs`` and the ``split`` they came from."""

    out: Path
    manifest: dict[str, Any]
    pairs: Pairs
    split: Split


def resolve_base(name: str) -> BaseModel:
    """The torch model behind ``name`` (registry name, Hugging Face folder or hub id); an
    export folder (ONNX/OpenVINO) cannot be trained."""
    from recfeat.encode.hf_models import describe_model
    from recfeat.encode.vocabulary import is_export_folder, resolve_encoder
    from recfeat.plugin.registry import get_registry

    if is_export_folder(name):
        raise UsageError(f"--encoder {name} is an export folder (ONNX/OpenVINO), which cannot be "
                         "trained; fine-tune the torch model it was exported from")  # fmt: skip
    registry_name, options = resolve_encoder(name)
    encoder = get_registry("encoder").create(registry_name, **options)
    model = getattr(encoder, "model", None)
    if not isinstance(model, str) or getattr(encoder, "backend", "torch") != "torch":
        raise UsageError(f"--encoder {name} is not a Hugging Face transformer; give minilm, a "
                         "model folder or a hub id")  # fmt: skip
    info = describe_model(model)
    return BaseModel(name=name, folder=info.source, weights_sha256=info.weights_sha256,
                     family=info.family, pooling=getattr(encoder, "pooling", None) or info.default_pooling)  # fmt: skip


def choose_split(data: RecData, settings: FinetuneSettings) -> Split:
    """The split whose training part the pairs come from: loaded, or made as ``evaluate``
    makes it (same function, same defaults), so ``evaluate --load-split`` reproduces it."""
    if settings.load_split is not None:
        return load_split(settings.load_split, data.interactions)
    return make_split(data.interactions, settings.split, seed=settings.seed,
                      test_fraction=settings.test_fraction)  # fmt: skip


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("torch", "transformers", "sentence-transformers", "datasets", "accelerate"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found


def plot_loss(curve: list[tuple[int, float]], path: str | Path, title: str, *,
              ylabel: str = "in-batch contrastive loss") -> Path:
    """The loss curve as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    if curve:
        steps, losses = zip(*curve, strict=True)
        ax.plot(steps, losses, color="#3b75af", linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def run_finetune(data: RecData, settings: FinetuneSettings, out: str | Path, *,
                 data_path: str | None = None, progress: bool | None = None,
                 echo: Callable[[str], None] | None = None) -> FinetuneResult:  # fmt: skip
    """Fine-tune ``settings.encoder`` on pairs from ``data``'s training part and write the
    model folder ``out`` (refused before any work when it exists, unless ``settings.force``).
    Rerun with the same settings after a kill, it resumes from the last checkpoint."""
    out = Path(out).expanduser()
    if out.exists() and not settings.force:
        raise UsageError(f"output folder {out} already exists; pass --force to replace it")
    base = resolve_base(settings.encoder)
    split = choose_split(data, settings)
    pairs = build_pairs(data, split.train, kinds=settings.pairs, max_pairs=settings.max_pairs,
                        pairs_per_item=settings.pairs_per_item, seed=settings.seed)  # fmt: skip
    inter = check_interactions(data.interactions)
    data_fp = fingerprint(inter)
    steps = planned_steps(len(pairs), settings.batch_size, settings.epochs, settings.max_steps)
    split_info = {"kind": split.kind, "seed": split.seed, "test_fraction": split.test_fraction,
                  "test_rows_sha256": _sha([int(r) for r in split.test_rows]),
                  "loaded_from": str(settings.load_split) if settings.load_split else None}  # fmt: skip
    key = {"base_weights_sha256": base.weights_sha256, "data_fingerprint": data_fp,
           "split": _sha({k: v for k, v in split_info.items() if k != "loaded_from"}),
           "pairs_sha256": pairs.digest(), "steps": steps, **settings.training_key()}  # fmt: skip
    checkpoints = settings.checkpoints_for(out)
    resume = prepare_checkpoints(checkpoints, key, restart=settings.restart)
    model = build_model(base.folder, base.pooling, settings.max_length)
    started = time.time()
    columns = {"anchor": [str(t) for t in pairs.frame["anchor"]],
               "positive": [str(t) for t in pairs.frame["positive"]]}  # fmt: skip
    result = train(model, columns, loss=contrastive(settings.scale), checkpoints=checkpoints,
                   resume_from=resume[0] if resume else None, steps=steps,
                   batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                   warmup_ratio=settings.warmup_ratio, seed=settings.seed,
                   checkpoint_every=settings.checkpoint_every, progress=progress, echo=echo)  # fmt: skip
    lineage = lineage_payload(pairs.rows, pairs.items, data_fp)
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "created_unix": int(started),
        "base": dataclasses.asdict(base),
        "encoder": {"pooling": base.pooling, "normalize": True, "max_length": settings.max_length,
                    "load_with": "recfeat extract --encoder DIR (pooling as above)"},  # fmt: skip
        "data": {"name": data.name, "path": data_path, "fingerprint": data_fp,
                 "interactions": int(len(inter))},  # fmt: skip
        "split": {**split_info, "file": SPLIT_FILE, "train_interactions": int(len(split.train)),
                  "test_interactions": int(len(split.test)), "cold_items": len(split.cold_items),
                  "cold_users": len(split.cold_users)},  # fmt: skip
        "pairs": {"kinds": list(pairs.counts), "counts": pairs.counts, "available": pairs.available,
                  "dropped": pairs.dropped, "total": len(pairs), "sha256": pairs.digest(),
                  "next_item_text": pairs.text_source, "max_pairs": settings.max_pairs,
                  "pairs_per_item": settings.pairs_per_item},  # fmt: skip
        "training": {"loss": "MultipleNegativesRankingLoss (in-batch negatives)",
                     "trainer": "sentence-transformers SentenceTransformerTrainer",
                     "batch_sampler": "no_duplicates", "steps": result.steps, "planned_steps": steps,
                     "epochs": round(result.epochs, 4), "batch_size": settings.batch_size,
                     "learning_rate": settings.learning_rate, "warmup_ratio": settings.warmup_ratio,
                     "scale": settings.scale, "seed": settings.seed,
                     "checkpoint_every": settings.checkpoint_every,
                     "resumed_from_step": result.resumed_from,
                     "seconds_this_process": round(result.seconds, 2), "versions": versions()},  # fmt: skip
        "loss_curve": [[s, round(v, 6)] for s, v in result.loss_curve],
        "loss_plot": LOSS_PLOT,
        "lineage": {"file": LINEAGE_FILE, "digest": lineage["digest"], "rows": len(lineage["rows"]),
                    "items": len(lineage["items"])},  # fmt: skip
    }
    with atomic_dir(out, force=settings.force) as tmp:
        # No model card: sentence-transformers' would quote training texts (users' reviews).
        result.model.save(str(tmp), create_model_card=False)
        save_split(split, tmp / SPLIT_FILE, data.interactions)
        write_text(tmp / LINEAGE_FILE, json.dumps(lineage) + "\n")
        plot_loss(result.loss_curve, tmp / LOSS_PLOT,
                  f"{Path(base.name).name} on {data.name}: {len(pairs):,} pairs, {result.steps} steps")  # fmt: skip
        write_text(tmp / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
    if not settings.keep_checkpoints:
        clear_checkpoints(checkpoints)
    return FinetuneResult(out=out, manifest=manifest, pairs=pairs, split=split)
