"""Cheap adaptors on frozen vectors: fitted maps applied to every vector of a features file,
and the safe files that carry them (``recfeat adapt``, ``recfeat.adapt``).

Kinds (``KINDS``), all ``transform(x)`` of float32 rows:

- ``whiten``: BERT-whitening, the baseline of UniSRec and of "Do We Really Need
  Specialization?": ``(x - mean) @ U diag(1/sqrt(var))``, from the principal directions of
  the fit rows; the whitened fit rows have identity covariance. ``dim`` keeps the first
  ``dim`` directions.
- ``pca``: ``(x - mean) @ U``, the same directions without the rescaling (a dimension cut).
- ``linear``: ``normalize(x @ W + b)``, trained with InfoNCE (in-batch negatives, cosine,
  ``scale``) on pairs of frozen vectors (AlphaRec's recipe on a linear map).
- ``mlp``: ``normalize(relu(x @ W1 + b1) @ W2 + b2)``, the same loss.

Why numpy for ``transform`` (torch only trains): serve applies the adaptor to each query
vector, and the vectors written at fit time come from this same function, so what serve
computes and what evaluate measured are the same numbers.

The files beside an adapted features file ``A.parquet`` (``adaptor_files``):
``A.adaptor.safetensors`` (the arrays, named per kind: no pickle, no code),
``A.adaptor.json`` (kind, dimensions, settings, the fit's split and the lineage: the ids of
every vector the fit read) and ``A.adaptor-split.json`` (the split it was fitted on, in
``evaluate --load-split``'s format). The features manifest repeats the sha256 of the first
two, so an edited or swapped sidecar is refused (:func:`load_adaptor`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.errors import ArtifactError, DataError

from .lineage import Lineage, lineage_digest

KINDS = ("whiten", "pca", "linear", "mlp")
TRAINED_KINDS = ("linear", "mlp")
INFO_FORMAT = "recfeat-adaptor"
INFO_VERSION = 1
# array name -> shape as (dimension names); "in", "out", "hidden" are the adaptor's dims
LAYOUT = {
    "whiten": {"mean": ("in",), "weight": ("in", "out")},
    "pca": {"mean": ("in",), "weight": ("in", "out")},
    "linear": {"weight": ("in", "out"), "bias": ("out",)},
    "mlp": {"weight1": ("in", "hidden"), "bias1": ("hidden",), "weight2": ("hidden", "out"),
            "bias2": ("out",)},
}  # fmt: skip
NORMALIZED = {"whiten": False, "pca": False, "linear": True, "mlp": True}
# Bounds on what a file may declare before anything is allocated from it: 16k-wide vectors
# and a 16k hidden layer are beyond any text encoder recfeat runs.
MAX_DIM = 16_384
MAX_PARAMS_BYTES = 2 * MAX_DIM * MAX_DIM * 4 + (1 << 20)
MAX_INFO_BYTES = 1 << 30  # the lineage lists ids: a million reviews is ~40 MB
# A principal direction whose variance is below this share of the largest is numerical noise
# (fewer fit rows than dimensions): whitening it would blow noise up to unit variance.
RANK_TOL = 1e-6


def _stem(path: Path) -> str:
    return path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.name


def adaptor_files(features_path: str | Path) -> dict[str, Path]:
    """The sidecars of an adapted features file: ``params``, ``info`` and ``split``."""
    path = Path(features_path)
    stem = _stem(path)
    return {"params": path.with_name(stem + ".adaptor.safetensors"),
            "info": path.with_name(stem + ".adaptor.json"),
            "split": path.with_name(stem + ".adaptor-split.json")}  # fmt: skip


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass
class Adaptor:
    """A fitted adaptor: ``kind``, its float32 ``arrays`` (``LAYOUT[kind]``) and ``info``
    (the ``.adaptor.json`` content once saved). ``transform(vectors)`` maps (n, in_dim)
    vectors to (n, out_dim) float32; the same call serves queries one at a time."""

    kind: str
    arrays: dict[str, np.ndarray]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    lineage: Lineage | None = None

    def __post_init__(self) -> None:
        check_arrays(self.kind, self.arrays, where="adaptor")

    @property
    def in_dim(self) -> int:
        return int(self.arrays["mean" if "mean" in self.arrays else
                               "weight" if "weight" in self.arrays else "weight1"].shape[0])  # fmt: skip

    @property
    def out_dim(self) -> int:
        key = "weight" if "weight" in self.arrays else "weight2"
        return int(self.arrays[key].shape[1])

    @property
    def normalize(self) -> bool:
        return NORMALIZED[self.kind]

    def identity(self) -> dict[str, Any]:
        """What makes this adaptor's outputs what they are: kind, widths and the sha256 of its
        arrays (serve keys its vector cache on it and reports it)."""
        digest = hashlib.sha256()
        for name in sorted(self.arrays):
            digest.update(name.encode() + b"\0" + np.ascontiguousarray(self.arrays[name]).tobytes())
        return {"kind": self.kind, "in_dim": self.in_dim, "out_dim": self.out_dim,
                "arrays_sha256": digest.hexdigest()}  # fmt: skip

    def transform(self, vectors) -> np.ndarray:
        """``vectors`` (n, in_dim), or one vector (in_dim,) -> float32 (n, out_dim) (or
        (out_dim,)). Refuses a wrong width and non-finite values (DataError)."""
        x = np.asarray(vectors, dtype=np.float32)
        one = x.ndim == 1
        if one:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise DataError(f"adaptor ({self.kind}) takes vectors of dimension {self.in_dim}, got "
                            f"shape {tuple(np.shape(vectors))}; encode with the model the adaptor "
                            "was fitted on")  # fmt: skip
        if not np.isfinite(x).all():
            raise DataError("adaptor input holds NaN or infinite values; check the encoder's output")
        a = self.arrays
        if self.kind in ("whiten", "pca"):
            out = (x - a["mean"]) @ a["weight"]
        elif self.kind == "linear":
            out = x @ a["weight"] + a["bias"]
        else:
            out = np.maximum(x @ a["weight1"] + a["bias1"], 0) @ a["weight2"] + a["bias2"]
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(norms > 0, norms, 1)  # a zero row stays zero (as torch's eps)
        out = np.ascontiguousarray(out, dtype=np.float32)
        return out[0] if one else out


def check_arrays(kind: str, arrays: dict[str, Any], *, where: str) -> None:
    """The arrays an adaptor of ``kind`` needs, float32, with consistent shapes and finite
    values; anything else is an ArtifactError naming ``where`` and the array."""
    if kind not in LAYOUT:
        raise ArtifactError(f"{where}: unknown adaptor kind {kind!r} (kinds: {', '.join(KINDS)}); "
                            "refit it with recfeat adapt")  # fmt: skip
    layout = LAYOUT[kind]
    fix = "refit it with recfeat adapt"
    if set(arrays) != set(layout):
        raise ArtifactError(f"{where}: a {kind} adaptor holds arrays {', '.join(sorted(layout))}, "
                            f"this one {', '.join(sorted(arrays)) or 'none'}; {fix}")  # fmt: skip
    dims: dict[str, int] = {}
    for name, axes in layout.items():
        arr = arrays[name]
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
            raise ArtifactError(f"{where}: array {name} must be float32, got "
                                f"{getattr(arr, 'dtype', type(arr).__name__)}; {fix}")  # fmt: skip
        if arr.ndim != len(axes):
            raise ArtifactError(f"{where}: array {name} has shape {arr.shape}, expected "
                                f"{len(axes)} dimension(s) ({', '.join(axes)}); {fix}")  # fmt: skip
        for axis, size in zip(axes, arr.shape, strict=True):
            if not 1 <= size <= MAX_DIM:
                raise ArtifactError(f"{where}: array {name} has shape {arr.shape}; sizes must be "
                                    f"1..{MAX_DIM}; {fix}")  # fmt: skip
            if dims.setdefault(axis, size) != size:
                raise ArtifactError(f"{where}: array {name} has shape {arr.shape}, which does not "
                                    f"fit the others ({axis} = {dims[axis]}); {fix}")  # fmt: skip
        if not np.isfinite(arr).all():
            raise ArtifactError(f"{where}: array {name} holds NaN or infinite values; {fix}")


# -- fitting ------------------------------------------------------------------------------------
def fit_pca(vectors: np.ndarray, *, whiten: bool, dim: int | None = None) -> Adaptor:
    """A ``whiten`` or ``pca`` adaptor from the principal directions of ``vectors`` (the fit
    rows only). ``dim`` None keeps every direction the rows span (their numerical rank);
    more than that is a DataError naming the largest ``dim`` possible."""
    from sklearn.decomposition import PCA

    x = np.asarray(vectors, dtype=np.float64)
    n, d = x.shape
    if n < 2:
        raise DataError(f"cannot fit a {'whiten' if whiten else 'pca'} adaptor on {n} vector(s); "
                        "it needs at least 2 training vectors: use more data or another split")  # fmt: skip
    full = PCA(n_components=min(n, d), svd_solver="full").fit(x)
    variance = full.explained_variance_
    rank = int((variance > RANK_TOL * max(float(variance[0]), 1e-30)).sum())
    if rank == 0:
        raise DataError(f"the {n} training vectors are all identical; nothing to "
                        f"{'whiten' if whiten else 'project'}: check the features")  # fmt: skip
    if dim is not None and dim > rank:
        raise DataError(f"--dim {dim} exceeds the {rank} directions the {n} training vectors span; "
                        f"use --dim {rank} or less, or fit on more vectors")  # fmt: skip
    k = rank if dim is None else dim
    weight = full.components_[:k].T  # (d, k): rows of components_ are unit directions
    if whiten:
        weight = weight / np.sqrt(variance[:k])
    arrays = {"mean": full.mean_.astype(np.float32), "weight": np.ascontiguousarray(weight, dtype=np.float32)}
    return Adaptor("whiten" if whiten else "pca", arrays)


@dataclasses.dataclass
class TrainedFit:
    """A trained ``linear``/``mlp`` adaptor with its loss: ``frozen`` (the vectors as they
    are), ``initial`` (the untrained map), ``final`` (all over the same fixed batches) and
    the ``curve`` (step, loss of that step's batch)."""

    adaptor: Adaptor
    frozen: float
    initial: float
    final: float
    curve: list[tuple[int, float]]


def _module(kind: str, in_dim: int, out_dim: int, hidden: int):
    import torch

    if kind == "linear":
        layer = torch.nn.Linear(in_dim, out_dim)
        # Start from the frozen space (identity, or a seeded semi-orthogonal cut): training
        # then moves away from the baseline only as far as the pairs ask.
        with torch.no_grad():
            if in_dim == out_dim:
                layer.weight.copy_(torch.eye(in_dim))
            else:
                torch.nn.init.orthogonal_(layer.weight)
            layer.bias.zero_()
        return layer
    return torch.nn.Sequential(torch.nn.Linear(in_dim, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, out_dim))  # fmt: skip


def _arrays_of(kind: str, module) -> dict[str, np.ndarray]:
    def np32(t):
        return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))

    if kind == "linear":
        return {"weight": np32(module.weight.T), "bias": np32(module.bias)}
    first, second = module[0], module[2]
    return {"weight1": np32(first.weight.T), "bias1": np32(first.bias),
            "weight2": np32(second.weight.T), "bias2": np32(second.bias)}  # fmt: skip


def _batch_loss(a, p, anchor_rows, positive_rows, scale: float):
    """InfoNCE of normalised ``a`` against in-batch ``p``. A positive that is the same
    vector as the true one (a popular item twice in a batch), or the anchor's own vector,
    is no negative: masked out rather than pushed away."""
    import torch
    import torch.nn.functional as F

    a, p = F.normalize(a, dim=1), F.normalize(p, dim=1)
    logits = scale * a @ p.T
    same = (positive_rows[None, :] == positive_rows[:, None]) | (positive_rows[None, :] == anchor_rows[:, None])
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(a)))


def pair_loss(transform, anchors: np.ndarray, positives: np.ndarray, anchor_rows: np.ndarray,
              positive_rows: np.ndarray, *, batch_size: int, scale: float) -> float:  # fmt: skip
    """Mean InfoNCE over consecutive batches of the pairs in their order (a fixed yardstick:
    the same batches before and after training). ``transform``: a torch module, or None for
    the frozen vectors."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(anchors), batch_size):
            sl = slice(start, start + batch_size)
            if len(anchors[sl]) < 2:
                continue
            a, p = torch.from_numpy(anchors[sl]), torch.from_numpy(positives[sl])
            if transform is not None:
                a, p = transform(a), transform(p)
            loss = _batch_loss(a, p, torch.from_numpy(anchor_rows[sl]), torch.from_numpy(positive_rows[sl]), scale)
            total += float(loss) * len(a)
            count += len(a)
    return total / max(count, 1)


def fit_trained(kind: str, vectors: np.ndarray, anchor_rows: np.ndarray, positive_rows: np.ndarray,
                *, dim: int | None, hidden: int | None, steps: int, batch_size: int,
                learning_rate: float, scale: float, seed: int, progress: bool | None = None) -> TrainedFit:  # fmt: skip
    """Train a ``linear`` or ``mlp`` adaptor on pairs ``(vectors[anchor_rows[i]],
    vectors[positive_rows[i]])`` for ``steps`` AdamW steps of ``batch_size`` pairs (each an
    epoch-wise seeded shuffle), seeded: the same inputs and seed give the same arrays."""
    import torch

    from recfeat.progress import progress_bar

    if len(anchor_rows) < 2:
        raise DataError(f"{len(anchor_rows)} training pair(s) have vectors on both sides; a {kind} "
                        "adaptor needs at least 2: use more data, another split or --kind whiten")  # fmt: skip
    x = np.array(vectors, dtype=np.float32, copy=True)  # torch wants a writable buffer
    in_dim = x.shape[1]
    out_dim = dim or in_dim
    hidden = hidden or in_dim
    anchor_rows = np.asarray(anchor_rows, dtype=np.int64)
    positive_rows = np.asarray(positive_rows, dtype=np.int64)
    anchors, positives = x[anchor_rows], x[positive_rows]
    batch = min(batch_size, len(anchor_rows))
    measure = dict(batch_size=batch, scale=scale)
    with torch.random.fork_rng(devices=[]):  # seed our run without moving the caller's RNG
        torch.manual_seed(seed)
        module = _module(kind, in_dim, out_dim, hidden)
        frozen = pair_loss(None, anchors, positives, anchor_rows, positive_rows, **measure) \
            if out_dim == in_dim else float("nan")  # a cut space has no "frozen" loss to compare
        initial = pair_loss(module, anchors, positives, anchor_rows, positive_rows, **measure)
        opt = torch.optim.AdamW(module.parameters(), lr=learning_rate, weight_decay=0.0)
        gen = torch.Generator().manual_seed(seed)
        xs = torch.from_numpy(x)
        a_rows, p_rows = torch.from_numpy(anchor_rows), torch.from_numpy(positive_rows)
        order, at, curve = torch.randperm(len(a_rows), generator=gen), 0, []
        with progress_bar(steps, f"fitting {kind} adaptor", enabled=progress, unit="step") as bar:
            for step in range(1, steps + 1):
                if at + batch > len(order):
                    order, at = torch.randperm(len(a_rows), generator=gen), 0
                idx = order[at : at + batch]
                at += batch
                ar, pr = a_rows[idx], p_rows[idx]
                loss = _batch_loss(module(xs[ar]), module(xs[pr]), ar, pr, scale)
                opt.zero_grad()
                loss.backward()
                opt.step()
                curve.append((step, round(float(loss.detach()), 6)))
                bar.advance(1)
        final = pair_loss(module, anchors, positives, anchor_rows, positive_rows, **measure)
    return TrainedFit(Adaptor(kind, _arrays_of(kind, module)), frozen, initial, final, curve)


# -- files --------------------------------------------------------------------------------------
def params_bytes(adaptor: Adaptor) -> bytes:
    """The safetensors bytes of ``adaptor.arrays``: the same arrays give the same bytes (and
    sha256). The kind goes in metadata alone: safetensors writes a metadata map of several
    keys in no fixed order, which would change the sha256 from run to run."""
    from safetensors.numpy import save

    return save({k: adaptor.arrays[k] for k in sorted(adaptor.arrays)}, metadata={"kind": adaptor.kind})


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
    except OSError:
        raise ArtifactError(f"{what} {path} is missing; keep it beside the adapted features or "
                            "refit with recfeat adapt") from None  # fmt: skip
    if size > cap:
        raise ArtifactError(f"{what} {path} is {size:,} bytes, over the {cap:,} an adaptor can "
                            "need; refit it with recfeat adapt")  # fmt: skip
    return path.read_bytes()


def _load_arrays(data: bytes, kind: str, path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        arrays = load(data)
    except (SafetensorError, ValueError, OSError) as exc:
        raise ArtifactError(f"adaptor file {path} is not a readable safetensors file ({exc}); "
                            "refit it with recfeat adapt") from None  # fmt: skip
    check_arrays(kind, arrays, where=f"adaptor file {path}")
    return arrays


def _lineage_of(info: dict[str, Any], path: Path) -> Lineage:
    fix = "refit it with recfeat adapt"
    try:
        block = info["lineage"]
        rows = {(str(u), str(i)) for u, i in block["rows"]}
        items = {str(i) for i in block["items"]}
        users = {str(u) for u in block.get("users", [])}
        recorded = str(block["digest"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"adaptor info {path} has no readable lineage ({type(exc).__name__}: "
                            f"{exc}); {fix}") from None  # fmt: skip
    import pandas as pd

    frame = pd.DataFrame(sorted(rows), columns=["user", "item"]) if rows else pd.DataFrame(columns=["user", "item"])
    digest = lineage_digest(frame, sorted(items), sorted(users))
    if digest != recorded:
        raise ArtifactError(f"the lineage in {path} does not match its digest (the file was edited); {fix}")
    return Lineage(path, rows, items, digest, users)


def adaptor_of_features(path: str | Path) -> Adaptor | None:
    """The adaptor behind the features file ``path`` (checked as ``load_adaptor`` checks it),
    or None when its manifest names none (plain extracted features). Only the Parquet
    schema's metadata is read to find out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = (pq.read_schema(Path(path).expanduser()).metadata or {}).get(b"recfeat")
        manifest = json.loads(meta) if meta else {}
    except (OSError, ValueError, pa.ArrowInvalid):
        return None  # not readable here: the features loader says why, in its own words
    if not isinstance(manifest, dict) or not isinstance(manifest.get("adaptor"), dict):
        return None
    return load_adaptor(path)


def load_adaptor(path: str | Path) -> Adaptor:
    """The adaptor saved with adapted features: ``path`` is the adapted ``.parquet`` (its
    manifest's sha256 of both sidecars is then checked too), its ``.adaptor.json`` or its
    ``.adaptor.safetensors``. Everything read is checked (format, kind, sha256 of the arrays,
    names, shapes, float32, finite, the lineage's digest); a mismatch is an ArtifactError
    naming the file. ``.transform(vectors)`` applies it (serve: to query vectors)."""
    path = Path(path).expanduser()
    expected: dict[str, Any] = {}
    if path.name.endswith(".adaptor.json"):
        info_path = path
    elif path.name.endswith(".adaptor.safetensors"):
        info_path = path.with_name(path.name[: -len(".safetensors")] + ".json")
    else:
        from recfeat.data.features import read_features

        _, _, manifest = read_features(path)
        expected = manifest.get("adaptor") if isinstance(manifest.get("adaptor"), dict) else {}
        if not expected:
            raise ArtifactError(f"{path} was not adapted (its manifest names no adaptor); give "
                                "the features recfeat adapt wrote")  # fmt: skip
        info_path = adaptor_files(path)["info"]
    fix = "refit it with recfeat adapt"
    raw = _read_capped(info_path, MAX_INFO_BYTES, "adaptor info")
    if expected and sha256_bytes(raw) != expected.get("info_sha256"):
        raise ArtifactError(f"adaptor info {info_path} does not match the sha256 in {path}'s "
                            f"manifest (edited or swapped); {fix}")  # fmt: skip
    try:
        info = json.loads(raw)
    except ValueError:
        raise ArtifactError(f"adaptor info {info_path} is not valid JSON; {fix}") from None
    if not isinstance(info, dict) or info.get("format") != INFO_FORMAT or info.get("version") != INFO_VERSION:
        raise ArtifactError(f"{info_path} is not a recfeat adaptor (format {INFO_FORMAT} version "
                            f"{INFO_VERSION}); {fix}")  # fmt: skip
    kind = info.get("kind")
    if kind not in KINDS:
        raise ArtifactError(f"adaptor info {info_path}: unknown kind {kind!r}; {fix}")
    name = info.get("params_file")
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".adaptor.safetensors"):
        raise ArtifactError(f"adaptor info {info_path}: params_file must name a .adaptor.safetensors "
                            f"file beside it, got {name!r}; {fix}")  # fmt: skip
    params_path = info_path.with_name(name)
    data = _read_capped(params_path, MAX_PARAMS_BYTES, "adaptor file")
    digest = sha256_bytes(data)
    if digest != info.get("params_sha256") or (expected and digest != expected.get("params_sha256")):
        raise ArtifactError(f"adaptor file {params_path} does not match its recorded sha256 (edited "
                            f"or swapped); {fix}")  # fmt: skip
    arrays = _load_arrays(data, kind, params_path)
    adaptor = Adaptor(kind, arrays, info, _lineage_of(info, info_path))
    for key, actual in (("in_dim", adaptor.in_dim), ("out_dim", adaptor.out_dim)):
        if info.get(key) != actual:
            raise ArtifactError(f"adaptor info {info_path} says {key} {info.get(key)!r} but its "
                                f"arrays have {actual}; {fix}")  # fmt: skip
    return adaptor
