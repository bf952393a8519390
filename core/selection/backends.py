"""recfeat's own backends by name, built from its encoders: the paths ``--backend auto``
chooses among (``recfeat.selection.auto_backend``) and the harness times
(``recfeat.bench``, which adds the peers in ``recfeat.bench.backends``).

A backend is a ``BackendSpec`` (what it is, what it needs installed) whose ``build`` returns
a ``Runner`` with two entry points:

- ``encode(texts)``: end to end, tokenisation and batching included (what users get);
- ``forward(input_ids, attention_mask)``: model only, on token ids of a fixed shape.

Exported artifacts (ONNX graphs, OpenVINO IR) are cached under ``$RECFEAT_CACHE_DIR/bench``
keyed by the model's weights hash, so a second run skips them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.encode.hf_models import cache_root, describe_model
from recfeat.encode.vocabulary import parse_choice
from recfeat.errors import RecfeatError, UsageError, closest
from recfeat.plugin.options import option_specs
from recfeat.plugin.registry import get_registry

RECFEAT = "recfeat"
PEER = "peer"


@dataclasses.dataclass
class BuildContext:
    """What every backend is built from: the same model, device, threads and texts."""

    encoder: str = "minilm"
    init: str = "pretrained"
    device: str = "cpu"
    threads: int | None = None
    max_length: int | None = None  # None: the encoder's default
    batch_tokens: int | None = None  # None: the encoder's default token budget
    work_dir: Path | None = None  # exported artifacts; default cache_root()/bench
    calibration_texts: Sequence[str] | None = None  # static int8 calibration (user corpus)
    peer_batch_size: int = 32  # sentence-transformers' default batch size
    compile: bool = False  # torch.compile the torch backends' model
    # A model folder or hub id the encoder runs instead of its own (a distilled student)
    model: str | None = None

    def encoder_options(self, **extra: Any) -> dict[str, Any]:
        """Options of a torch encoder built for this run."""
        model = {} if self.model is None else {"model": self.model}
        return {"device": self.device, "init": self.init, **model, **extra, **self.run_options()}

    def run_options(self) -> dict[str, Any]:
        """threads / max_length / batch_tokens where set: shared by every recfeat backend."""
        given = {"threads": self.threads, "max_length": self.max_length,
                 "batch_tokens": self.batch_tokens}  # fmt: skip
        return {k: v for k, v in given.items() if v is not None}

    def cache_dir(self, *parts: str) -> Path:
        if self.work_dir is not None:
            base = Path(self.work_dir)
        else:
            base = cache_root() / "bench"
        path = base.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


class Runner:
    """A built backend. Subclasses implement ``encode`` and ``forward``."""

    spec: BackendSpec
    random_weights: bool = False

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work (CUDA); a no-op on CPU."""

    def describe(self) -> dict[str, Any]:
        return {}


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    """A named way to run the encoder: runtime, precision, devices and what it needs installed."""

    name: str
    kind: str  # RECFEAT or PEER
    runtime: str
    precision: str
    description: str
    modules: tuple[str, ...]
    install: str  # the pip command that installs what ``modules`` names
    factory: Callable[[BackendSpec, BuildContext], Runner]
    devices: tuple[str, ...] = ("cpu", "cuda")

    def missing(self) -> list[str]:
        """Modules this backend needs that are not importable here."""
        out = []
        for mod in self.modules:
            try:
                found = importlib.util.find_spec(mod) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(mod)
        return out

    @property
    def available(self) -> bool:
        return not self.missing()

    def build(self, ctx: BuildContext) -> Runner:
        device = ctx.device.split(":")[0]
        if device not in self.devices:
            raise UsageError(
                f"backend {self.name} runs on {', '.join(self.devices)}, not {ctx.device}; "
                f"drop it from --backends or change --device"
            )
        missing = self.missing()
        if missing:
            raise UsageError(
                f"backend {self.name} needs {', '.join(missing)}; install it with: {self.install}"
            )
        return self.factory(self, ctx)


# -- recfeat torch ---------------------------------------------------------------------------
class TorchRunner(Runner):
    """recfeat's torch encoder: fp32, bf16 autocast (AMX / AVX-512-bf16 CPUs, GPUs) or fp16."""

    def __init__(self, spec: BackendSpec, ctx: BuildContext, encoder=None):
        import torch

        self.spec = spec
        self.ctx = ctx
        self.encoder = encoder or get_registry("encoder").create(
            ctx.encoder, **ctx.encoder_options(precision=spec.precision)
        )
        self.loaded = self.encoder.load()
        self.random_weights = bool(self.loaded.random_init)
        if ctx.threads:
            torch.set_num_threads(ctx.threads)
        if ctx.compile:
            self.loaded.model = torch.compile(self.loaded.model, dynamic=True)

    def encode(self, texts):
        return self.encoder.encode(texts)

    def forward(self, input_ids, attention_mask):
        # Model only: the encoder's own backend on a ready batch (no tokenising, batching).
        return self.encoder.open_backend().run(_feed(input_ids, attention_mask))

    def sync(self):
        self.encoder.open_backend().sync()

    def describe(self):
        return {"fingerprint": self.encoder.fingerprint()}


def _feed(input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "token_type_ids": np.zeros_like(input_ids)}  # fmt: skip


# -- recfeat ONNX Runtime / OpenVINO (artifacts from recfeat's own exporter) ---------------
def weights_key(ctx: BuildContext) -> str:
    enc = encoder_class_defaults(ctx.encoder)
    info = describe_model(ctx.model or enc["model"], ctx.init)
    key = f"{info.weights_sha256}|{enc.get('pooling')}|{enc.get('normalize')}|{ctx.max_length}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def encoder_class_defaults(name: str) -> dict[str, Any]:
    cls = get_registry("encoder").get(name)
    return {k: v["default"] for k, v in option_specs(cls).items()}


# Which export folder each recfeat ONNX/OpenVINO backend runs, and which of its files.
# One ONNX folder holds the plain export, its O2 optimisation and the dynamic int8 graph
# (recfeat export writes every validated step), so three backends cost one export.
EXPORT_FOLDERS: dict[str, dict[str, Any]] = {
    # auto_exclude: keep sensitive nodes in fp32 until the exporter's accuracy gate holds
    # (what a user does when plain dynamic int8 fails validation).
    "onnx": {"optimize": "O2", "quantize": "dynamic-int8", "auto_exclude": True},
    "onnx-static": {"optimize": "O2", "quantize": "static-int8", "auto_exclude": True,
                    "min_cosine": 0.995},
    "openvino": {"format": "openvino"},
    # NNCF int8 calibrated on the corpus, float parts bf16 where the CPU has it; the most
    # sensitive MatMul roles stay in float until mean cosine >= 0.995 (vs torch fp32).
    "openvino-int8": {"format": "openvino", "quantize": "static-int8", "auto_exclude": True,
                      "min_cosine": 0.995},
}
EXPORT_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # backend: (export folder, how to pick the file: manifest step name or precision)
    "onnx-fp32": ("onnx", {"step": "export"}),
    "onnx-fp32-o2": ("onnx", {"step": "optimize"}),
    "onnx-int8": ("onnx", {"step": "quantize"}),
    "onnx-int8-static": ("onnx-static", {"step": "quantize"}),
    "openvino-fp32": ("openvino", {"precision": "fp32"}),
    "openvino-bf16": ("openvino", {"precision": "bf16"}),
    "openvino-int8": ("openvino-int8", {"precision": "int8"}),
}


EXPORT_LAYOUT = 2  # 2: dynamic int8 of the plain graph with sensitive layers in float (issue 26)


def _folder_key(folder_name: str, ctx: BuildContext) -> str:
    """A calibrated (static int8) folder depends on its options and on the corpus it was
    calibrated on, so another corpus gets its own folder; the others on the weights only."""
    options = EXPORT_FOLDERS[folder_name]
    if options.get("quantize") != "static-int8":
        # the layout's version: a folder an older recfeat exported (int8 of the O2 graph,
        # no sensitive layers kept in float) is not reused once the export changed
        return f"{folder_name}-v{EXPORT_LAYOUT}"
    payload = (f"v{EXPORT_LAYOUT}" + repr(sorted(options.items())) + "\x1f"
               + "\x1f".join(ctx.calibration_texts or ()))  # fmt: skip
    return f"{folder_name}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def export_artifact(folder_name: str, ctx: BuildContext) -> Path:
    """Export (once, then cached by weights hash) a folder with recfeat's own exporter."""
    folder = ctx.cache_dir("export", weights_key(ctx)) / _folder_key(folder_name, ctx)
    if (folder / "manifest.json").exists():
        return folder
    # Through the exporter registry, like any plugin's exporter: core never imports exporters.
    options = dict(EXPORT_FOLDERS[folder_name])
    exporter = get_registry("exporter").create(options.pop("format", "onnx"), **options)
    encoder = get_registry("encoder").create(ctx.encoder, **ctx.encoder_options())
    exporter.export(encoder, folder, texts=list(ctx.calibration_texts or []) or None, force=True)
    return folder


class ExportedRunner(Runner):
    """recfeat's ONNX Runtime or OpenVINO encoder over a folder from ``recfeat export``."""

    def __init__(self, spec: BackendSpec, ctx: BuildContext):
        import json

        self.spec = spec
        self.ctx = ctx
        folder_name, pick = EXPORT_VARIANTS[spec.name]
        self.folder = export_artifact(folder_name, ctx)
        self.random_weights = ctx.init == "random"
        opts: dict[str, Any] = {"path": str(self.folder)}
        if "step" in pick:
            manifest = json.loads((self.folder / "manifest.json").read_text())
            files = [s["file"] for s in manifest["steps"] if s["step"] == pick["step"]]
            if not files:
                raise RecfeatError(
                    f"export folder {self.folder} has no {pick['step']!r} step; delete it to "
                    "export again"
                )
            opts["file"] = files[-1]
        else:
            opts["precision"] = pick["precision"]
        opts.update(ctx.run_options())
        encoder_name = spec.runtime  # the backend vocabulary's name is the encoder's
        self.encoder = get_registry("encoder").create(encoder_name, **opts)
        self.encoder.load()
        self.batch_tokens = self.encoder.batch_tokens

    def encode(self, texts):
        return self.encoder.encode(texts)

    def forward(self, input_ids, attention_mask):
        # Model only: the encoder's own backend on a ready batch (no tokenising, batching).
        return self.encoder.open_backend().run(_feed(input_ids, attention_mask))

    def describe(self):
        return {"artifact": str(self.folder), "fingerprint": self.encoder.fingerprint()}


# -- the table -----------------------------------------------------------------------------
ONNX_MODULES = ("onnx", "onnxruntime")


def make_spec(name, kind, runtime, precision, description, modules, install, factory, devices=("cpu", "cuda")):
    return BackendSpec(name, kind, runtime, precision, description, tuple(modules), install,
                       factory, tuple(devices))


def _ours(label, description, modules, install, factory, devices=("cpu", "cuda")):
    """A recfeat backend: runtime and precision come from its label in the one vocabulary."""
    choice = parse_choice(label)
    return make_spec(label, RECFEAT, choice.backend, choice.precision, description, modules,
                     install, factory, devices)  # fmt: skip


#: recfeat's own backends (what ``--backend auto`` chooses among); ``recfeat.bench.backends``
#: adds the peers for the harness.
BACKENDS: dict[str, BackendSpec] = {
    s.name: s
    for s in (
        _ours("torch-fp32", "recfeat torch encoder, fp32", ("torch",), "pip install torch",
              TorchRunner),
        _ours("torch-bf16", "recfeat torch encoder, bf16 autocast (AMX / AVX-512-bf16 CPUs, GPUs)",
              ("torch",), "pip install torch", TorchRunner),
        _ours("torch-fp16", "recfeat torch encoder, fp16 (CUDA only)", ("torch",),
              "pip install torch", TorchRunner, devices=("cuda",)),
        _ours("onnx-fp32", "recfeat ONNX export, ONNX Runtime", ONNX_MODULES,
              "pip install 'recfeat[onnx]'", ExportedRunner, devices=("cpu",)),
        _ours("onnx-fp32-o2", "recfeat ONNX export, transformer-optimised (O2)", ONNX_MODULES,
              "pip install 'recfeat[onnx]'", ExportedRunner, devices=("cpu",)),
        _ours("onnx-int8", "recfeat ONNX export, dynamic int8 of the plain graph", ONNX_MODULES,
              "pip install 'recfeat[onnx]'", ExportedRunner, devices=("cpu",)),
        _ours("onnx-int8-static", "recfeat ONNX export, static int8 QDQ calibrated on the corpus",
              ONNX_MODULES, "pip install 'recfeat[onnx]'", ExportedRunner, devices=("cpu",)),
        _ours("openvino-fp32", "recfeat OpenVINO IR, fp32", ("openvino", *ONNX_MODULES),
              "pip install 'recfeat[onnx,openvino]'", ExportedRunner, devices=("cpu",)),
        _ours("openvino-bf16", "recfeat OpenVINO IR, bf16 inference", ("openvino", *ONNX_MODULES),
              "pip install 'recfeat[onnx,openvino]'", ExportedRunner, devices=("cpu",)),
        _ours("openvino-int8", "recfeat OpenVINO IR, NNCF int8 calibrated on the corpus (bf16 "
              "float parts where the CPU has bf16), sensitive layers float until cosine >= 0.995",
              ("openvino", "nncf", *ONNX_MODULES), "pip install 'recfeat[onnx,openvino]'",
              ExportedRunner, devices=("cpu",)),
    )
}


def get_backend(name: str, backends: dict[str, BackendSpec] | None = None) -> BackendSpec:
    """The spec named ``name``; unknown names list what exists and what is installable."""
    backends = BACKENDS if backends is None else backends
    if name in backends:
        return backends[name]
    raise UsageError(f"unknown backend {name!r}.{closest(name, backends)} {availability(backends)}")


def availability(backends: dict[str, BackendSpec] | None = None) -> str:
    """'Available: a, b; not installed: c (pip install ...)' for error messages."""
    backends = BACKENDS if backends is None else backends
    ok = [s.name for s in backends.values() if s.available]
    missing = [f"{s.name} ({s.install})" for s in backends.values() if not s.available]
    text = f"Available backends: {', '.join(ok) or 'none'}"
    if missing:
        text += f"; not installed here: {'; '.join(missing)}"
    return text


__all__ = [
    "BACKENDS", "BackendSpec", "BuildContext", "ONNX_MODULES", "PEER", "RECFEAT", "Runner",
    "availability", "encoder_class_defaults", "export_artifact", "get_backend", "make_spec",
    "weights_key",
]
