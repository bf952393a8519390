"""One ``recfeat adapt`` job: fit an adaptor (``recfeat.finetuning.adaptors``) on the
TRAINING part of a split and write the adapted features with it, as one unit.

What the fit reads (the leak rule: never a vector of a test row, a cold item or a cold user):

- ``whiten``/``pca``: item-level features -> the vectors of items with a training
  interaction; review-level -> the vectors of training reviews; user-level -> the vectors of
  users with a training interaction.
- ``linear``/``mlp``: phase 1's pairs (``recfeat.finetuning.pairs.build_pairs``, from the
  training part only), each side replaced by its vector in the features: an item's vector
  (item level) or the (user, item) review's (review level). Sides without a vector, and
  pairs whose two sides are one vector (same-item pairs at item level), are left out.

``fit_on="all"`` fits on every vector instead: for a deployed model, never for a figure:
``evaluate`` refuses it on any split whose test rows or cold items it read.

The adapted file keeps the ids, level and provenance of the source and adds an ``adaptor``
block to its manifest (kind, sha256 of both sidecars, the lineage digest, the fit's split,
the encoder folder the source came from), so ``evaluate``, ``train`` and ``serve`` take it
as any features file and ``evaluate`` checks it against its own split.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat.data import checks
from recfeat.errors import DataError, UsageError

from .adaptors import (
    INFO_FORMAT,
    INFO_VERSION,
    KINDS,
    TRAINED_KINDS,
    Adaptor,
    adaptor_files,
    fit_pca,
    fit_trained,
    params_bytes,
    sha256_bytes,
)
from .lineage import lineage_digest
from .settings import PAIR_KINDS, parse_pair_kinds

FIT_ON = ("train", "all")
DEFAULT_STEPS = 300
DEFAULT_BATCH_SIZE = 128
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_SCALE = 20.0  # the inverse temperature finetune's loss uses
DEFAULT_MAX_PAIRS = 20_000


@dataclasses.dataclass
class AdaptSettings:
    """What ``recfeat adapt`` does: ``features`` (the source file) and ``data`` (its dataset,
    read as ``format``); ``kind``; ``dim`` (output dimension; None: every direction for
    whiten/pca, the input's for linear/mlp); ``hidden`` (mlp); the split the fit comes from
    (``split``, ``seed``, ``test_fraction`` as ``evaluate`` makes it, or ``load_split``);
    ``fit_on`` (``train`` or ``all``: deployment only); linear/mlp: ``pairs`` (kinds; None:
    every kind the data and level support), ``max_pairs`` per kind, ``steps``,
    ``batch_size``, ``learning_rate``, ``scale``; ``force`` replaces an existing output."""

    features: Path
    data: Any
    kind: str
    format: str = "auto"
    dim: int | None = None
    hidden: int | None = None
    split: str = "random"
    seed: int = 0
    test_fraction: float = 0.2
    load_split: Path | None = None
    fit_on: str = "train"
    pairs: tuple[str, ...] | None = None
    max_pairs: int | None = DEFAULT_MAX_PAIRS
    steps: int = DEFAULT_STEPS
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float = DEFAULT_LEARNING_RATE
    scale: float = DEFAULT_SCALE
    force: bool = False

    def inputs(self) -> dict[str, Any]:
        found = {"FEATURES": self.features, "--load-split": self.load_split}
        if isinstance(self.data, (str, Path)):
            found["--data"] = self.data
        return found


def adapt_settings(
    features: Any = None, *, data: Any = None, kind: Any = None, format: str | None = None,
    dim: Any = None, hidden: Any = None, split: Any = None, seed: Any = None,
    test_fraction: Any = None, load_split: Any = None, fit_on: Any = None, pairs: Any = None,
    max_pairs: Any = None, steps: Any = None, batch_size: Any = None, learning_rate: Any = None,
    scale: Any = None, force: Any = False,
) -> AdaptSettings:  # fmt: skip
    """Every check that needs no file, named by flag, before anything loads."""
    from recfeat.evaluation.splits import KINDS as SPLIT_KINDS

    feats = checks.path(features, "FEATURES", what="a features file path",
                        fix="pass the .parquet file recfeat extract wrote")  # fmt: skip
    if kind is None:
        raise UsageError(f"--kind is required: one of {', '.join(KINDS)}")
    checks.choice(kind, "--kind", KINDS)
    if data is None:
        raise UsageError("--data is required: the dataset the features were extracted from (the fit "
                         "uses only its training part)")  # fmt: skip
    if isinstance(data, (str, Path)) or hasattr(data, "__fspath__"):
        data = checks.path(data, "--data")
    checks.text(format, "--format", none=True, example="auto")
    dim = checks.optional_integer(dim, "--dim", low=1, high=16_384, example=64)
    hidden = checks.optional_integer(hidden, "--hidden", low=1, high=16_384, example=256)
    if hidden is not None and kind != "mlp":
        raise UsageError(f"--hidden applies to --kind mlp, not {kind}; drop it")
    checks.choice(split, "--split", SPLIT_KINDS, none=True)
    seed = checks.seed(0 if seed is None else seed, "--seed")
    test_fraction = checks.fraction(0.2 if test_fraction is None else test_fraction, "--test-fraction")
    loaded = checks.path(load_split, "--load-split", none=True, what="a split file path")
    if loaded is not None and split is not None:
        raise UsageError("--load-split fixes the split; drop --split")
    checks.choice(fit_on, "--fit-on", FIT_ON, none=True)
    fit_on = fit_on or "train"
    if fit_on == "all" and (loaded is not None or split is not None):
        raise UsageError("--fit-on all reads every vector, so no split applies; drop --split/--load-split")
    trained_only = {"--pairs": pairs, "--max-pairs": max_pairs, "--steps": steps,
                    "--batch-size": batch_size, "--learning-rate": learning_rate, "--scale": scale}  # fmt: skip
    if kind not in TRAINED_KINDS:
        given = [flag for flag, value in trained_only.items() if value is not None]
        if given:
            raise UsageError(f"{given[0]} applies to --kind linear or mlp, not {kind}; drop it")
    pair_kinds = parse_pair_kinds(pairs) if pairs is not None else None
    if isinstance(max_pairs, str):
        max_pairs = 0 if max_pairs.strip().lower() in ("all", "0") else _whole(max_pairs, "--max-pairs")
    max_pairs = DEFAULT_MAX_PAIRS if max_pairs is None else checks.integer(max_pairs, "--max-pairs", low=0)
    return AdaptSettings(
        features=feats, data=data, kind=kind, format=format or "auto", dim=dim, hidden=hidden,
        split=split or "random", seed=seed, test_fraction=test_fraction, load_split=loaded,
        fit_on=fit_on, pairs=pair_kinds, max_pairs=max_pairs or None,
        steps=checks.integer(DEFAULT_STEPS if steps is None else steps, "--steps", low=1, high=100_000),
        batch_size=checks.integer(DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
                                  "--batch-size", low=2, high=65_536),
        learning_rate=checks.number(DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate,
                                    "--learning-rate", low=0, high=1, low_open=True, example=0.001),
        scale=checks.number(DEFAULT_SCALE if scale is None else scale, "--scale", low=0, high=1000,
                            low_open=True, example=20),
        force=bool(checks.flag(force, "--force")),
    )  # fmt: skip


def _whole(text: str, flag: str) -> int:
    from recfeat.errors import OptionError

    try:
        return int(text)
    except ValueError:
        raise OptionError(f"{flag} must be a whole number or 'all', got {text!r}") from None


@dataclasses.dataclass
class AdaptResult:
    """A finished adapt: ``out`` (the adapted features), ``adaptor`` (fitted), ``manifest``
    (the adapted file's), ``info`` (the ``.adaptor.json`` content), ``split`` (None with
    ``fit_on="all"``) and ``files`` (every path written)."""

    out: Path
    adaptor: Adaptor
    manifest: dict[str, Any]
    info: dict[str, Any]
    split: Any
    files: list[Path]


def encoder_folder_of(features_path: Path) -> str | None:
    """The model folder a features file was extracted with, from its run record
    (``<stem>.run.json``, written by ``recfeat extract``), or None when there is none. The
    record is untrusted: anything but a string path is ignored."""
    from recfeat.extraction.manifest import run_record_path

    record = run_record_path(features_path)
    try:
        if not record.is_file() or record.stat().st_size > (1 << 20):
            return None
        payload = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    encoder = payload.get("encoder") if isinstance(payload, dict) else None
    if not isinstance(encoder, dict):
        return None
    for key in ("source", "model", "path"):
        value = encoder.get(key)
        if isinstance(value, str) and value and not value.startswith("random:"):
            return value
    return None


def _level(manifest: dict[str, Any]) -> str:
    return str(manifest.get("level"))


def _fit_ids(ids: pd.DataFrame, level: str, train: pd.DataFrame | None) -> np.ndarray:
    """Rows of the features a whiten/pca fit reads: those of the training part (all rows
    when ``train`` is None: ``fit_on="all"``)."""
    if train is None:
        return np.arange(len(ids))
    if level == "review":
        keys = pd.MultiIndex.from_arrays([train["user"].astype(str), train["item"].astype(str)])
        mine = pd.MultiIndex.from_arrays([ids["user"].astype(str), ids["item"].astype(str)])
        return np.flatnonzero(mine.isin(keys))
    column = "item" if level == "item" else "user"
    return np.flatnonzero(ids[column].astype(str).isin(set(train[column].astype(str))).to_numpy())


def _touched_by_rows(ids: pd.DataFrame, level: str, rows: np.ndarray) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The lineage of a fit that read feature rows ``rows``: (user, item) reviews, items, users."""
    picked = ids.iloc[rows]
    empty = pd.DataFrame({"user": [], "item": []})
    if level == "review":
        frame = pd.DataFrame({"user": picked["user"].astype(str).to_numpy(),
                              "item": picked["item"].astype(str).to_numpy()})  # fmt: skip
        return frame, sorted(set(frame["item"])), []
    if level == "item":
        return empty, sorted(set(picked["item"].astype(str))), []
    return empty, [], sorted(set(picked["user"].astype(str)))


def _pair_rows(data, train: pd.DataFrame, ids: pd.DataFrame, level: str,
               settings: AdaptSettings) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict[str, int]]:  # fmt: skip
    """Phase 1's pairs as rows of the features: (anchor rows, positive rows, the kept pairs'
    frame, counts per kind)."""
    from .pairs import build_pairs, supported_kinds

    if level == "user":
        raise UsageError("--kind linear/mlp trains on item or review pairs, and user-level features "
                         "have none; use --kind whiten or pca, or adapt item/review features")  # fmt: skip
    usable = ("next-item",) if level == "item" else ("next-item", "same-item")
    wanted = settings.pairs or tuple(k for k in supported_kinds(data) if k in usable)
    bad = [k for k in wanted if k not in usable]
    if bad:
        raise UsageError(f"--pairs {bad[0]} has no vector on one side in {level}-level features "
                         f"(usable: {', '.join(usable)}); choose from those")  # fmt: skip
    if not wanted:
        raise DataError(f"{data.name} has no texts for pairs of kind {', '.join(usable)}; use "
                        "--kind whiten or pca")  # fmt: skip
    pairs = build_pairs(data, train, kinds=wanted, max_pairs=settings.max_pairs, seed=settings.seed)
    frame = pairs.frame
    if level == "item":
        index = {k: n for n, k in enumerate(ids["item"].astype(str))}
        anchor = frame["anchor_item"].astype(str).map(index)
        positive = frame["positive_item"].astype(str).map(index)
    else:
        index = {k: n for n, k in enumerate(zip(ids["user"].astype(str), ids["item"].astype(str), strict=True))}
        anchor = pd.Series([index.get(k) for k in zip(frame["anchor_user"], frame["anchor_item"], strict=True)])
        positive = pd.Series([index.get(k) for k in zip(frame["positive_user"], frame["positive_item"], strict=True)])
    keep = (anchor.notna() & positive.notna()).to_numpy()
    a, p = anchor.to_numpy()[keep].astype(np.int64), positive.to_numpy()[keep].astype(np.int64)
    distinct = a != p
    kept = frame[keep][distinct].reset_index(drop=True)
    counts = {str(k): int(n) for k, n in kept["kind"].value_counts().sort_index().items()}
    return a[distinct], p[distinct], kept, counts


def _split_info(split, fp: str) -> dict[str, Any]:
    import hashlib

    rows = json.dumps([int(r) for r in split.test_rows]).encode()
    return {"kind": split.kind, "seed": split.seed, "test_fraction": split.test_fraction,
            "fingerprint": fp, "test_rows_sha256": hashlib.sha256(rows).hexdigest(),
            "test_interactions": int(len(split.test)), "cold_items": len(split.cold_items),
            "cold_users": len(split.cold_users)}  # fmt: skip


def run_adapt(data, settings: AdaptSettings, out: str | Path, *, progress: bool | None = None,
              echo: Callable[[str], None] | None = None) -> AdaptResult:  # fmt: skip
    """Fit ``settings.kind`` on ``data``'s training part and write ``out`` (+ sidecars)."""
    from recfeat.data.features import (
        check_matches_dataset,
        features_from_table,
        read_features,
        write_features,
    )
    from recfeat.data.split_files import check_interactions, fingerprint
    from recfeat.evaluation.splits import load_split, make_split, save_split

    out = Path(out).expanduser()
    files = adaptor_files(out)
    ids, vectors, source = read_features(settings.features)
    if isinstance(source.get("adaptor"), dict):
        raise UsageError(f"{settings.features} is already adapted (a {source['adaptor'].get('kind')} "
                         "adaptor); adapt the features recfeat extract wrote")  # fmt: skip
    level = _level(source)
    check_matches_dataset(data, features_from_table(ids, vectors, {**source, "path": str(settings.features)}))
    if settings.dim is not None and settings.dim > vectors.shape[1] and settings.kind in ("whiten", "pca"):
        raise UsageError(f"--dim {settings.dim} is wider than the {vectors.shape[1]}-dimensional "
                         "input; whiten/pca can only keep or cut dimensions")  # fmt: skip
    inter = check_interactions(data.interactions)
    fp = fingerprint(inter)
    split = None
    if settings.fit_on == "train":
        split = (load_split(settings.load_split, data.interactions) if settings.load_split is not None
                 else make_split(data.interactions, settings.split, seed=settings.seed,
                                 test_fraction=settings.test_fraction))  # fmt: skip
    train = split.train if split is not None else inter
    loss: dict[str, Any] = {}
    pair_counts: dict[str, int] = {}
    if settings.kind in ("whiten", "pca"):
        rows = _fit_ids(ids, level, None if split is None else split.train)
        adaptor = fit_pca(vectors[rows], whiten=settings.kind == "whiten", dim=settings.dim)
        touched_rows, touched_items, touched_users = _touched_by_rows(ids, level, rows)
        n_fit = int(len(rows))
    else:
        from .pairs import _touched

        a, p, kept, pair_counts = _pair_rows(data, train, ids, level, settings)
        fit = fit_trained(settings.kind, vectors, a, p, dim=settings.dim, hidden=settings.hidden,
                          steps=settings.steps, batch_size=settings.batch_size,
                          learning_rate=settings.learning_rate, scale=settings.scale,
                          seed=settings.seed, progress=progress)  # fmt: skip
        adaptor = fit.adaptor
        touched_rows, touched_items = _touched(kept)
        touched_users = []
        n_fit = int(len(a))
        loss = {"frozen": None if np.isnan(fit.frozen) else round(fit.frozen, 6),
                "initial": round(fit.initial, 6), "final": round(fit.final, 6), "curve": fit.curve}  # fmt: skip
    adapted = adaptor.transform(vectors)
    digest = lineage_digest(touched_rows, touched_items, touched_users)
    params = params_bytes(adaptor)
    encoder_folder = encoder_folder_of(Path(settings.features))
    split_block = None if split is None else {**_split_info(split, fp), "file": files["split"].name}
    info = {
        "format": INFO_FORMAT, "version": INFO_VERSION, "kind": adaptor.kind,
        "in_dim": adaptor.in_dim, "out_dim": adaptor.out_dim, "normalize": adaptor.normalize,
        "params_file": files["params"].name, "params_sha256": sha256_bytes(params),
        "settings": {"dim": settings.dim, "hidden": settings.hidden if settings.kind == "mlp" else None,
                     **({"pairs": pair_counts, "max_pairs": settings.max_pairs, "steps": settings.steps,
                         "batch_size": settings.batch_size, "learning_rate": settings.learning_rate,
                         "scale": settings.scale, "loss": "InfoNCE, in-batch negatives, cosine"}
                        if settings.kind in TRAINED_KINDS else {}),
                     "seed": settings.seed},
        "fit": {"on": settings.fit_on, "level": level, "vectors" if settings.kind in ("whiten", "pca")
                else "pairs": n_fit, "data": {"name": data.name, "fingerprint": fp},
                "split": split_block, "loss": loss or None},
        "source": {"features": str(settings.features), "dim": int(vectors.shape[1]),
                   "weights_sha256": source.get("weights_sha256"), "encoder_folder": encoder_folder},
        "lineage": {"digest": digest, "rows": [[u, i] for u, i in zip(touched_rows["user"], touched_rows["item"], strict=True)],
                    "items": list(touched_items), "users": list(touched_users)},
    }  # fmt: skip
    info_raw = (json.dumps(info) + "\n").encode()
    keep = {k: v for k, v in source.items() if k not in ("rows", "dim", "id_columns", "path")}
    manifest = {
        **keep,
        "adaptor": {"kind": adaptor.kind, "in_dim": adaptor.in_dim, "out_dim": adaptor.out_dim,
                    "params_file": files["params"].name, "params_sha256": info["params_sha256"],
                    "info_file": files["info"].name, "info_sha256": sha256_bytes(info_raw),
                    "split_file": None if split is None else files["split"].name,
                    "fit_on": settings.fit_on, "fitted_on": n_fit, "lineage_digest": digest,
                    "split": split_block, "encoder_folder": encoder_folder},
    }  # fmt: skip
    from recfeat.atomic import write_file

    extra = {files["params"]: lambda tmp: write_file(tmp, params),
             files["info"]: lambda tmp: write_file(tmp, info_raw)}  # fmt: skip
    if split is not None:
        extra[files["split"]] = lambda tmp: save_split(split, tmp, data.interactions)
    write_features(out, ids, adapted, manifest, extra=extra)
    adaptor.info = info
    if echo:
        echo(f"fitted a {adaptor.kind} adaptor on {n_fit:,} training {'pairs' if loss else 'vectors'}")
    return AdaptResult(out=out, adaptor=adaptor, manifest=manifest, info=info, split=split,
                       files=[out, *[p for k, p in files.items() if k != "split" or split is not None]])  # fmt: skip


__all__ = ["FIT_ON", "PAIR_KINDS", "AdaptResult", "AdaptSettings", "adapt_settings", "run_adapt"]
