"""Backends the benchmark harness can time, by name: recfeat's own paths and the peers.

A backend is a ``BackendSpec`` (what it is, what it needs installed) whose ``build`` returns
a ``Runner`` with two entry points:

- ``encode(texts)``: end to end, tokenisation and batching included (what users get);
- ``forward(input_ids, attention_mask)``: model only, on token ids of a fixed shape.

Peers are the tools a team would otherwise deploy (sentence-transformers' ``encode`` with
its torch, ONNX and dynamic-int8 ONNX backends; plain OpenVINO), run on the same model.
Exported artifacts (ONNX graphs, the peers' model copies) are cached under
``$RECFEAT_CACHE_DIR/bench`` keyed by the model's weights hash, so a second run skips them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.encode.vocabulary import LABEL_ALIASES, deprecated, parse_choice
from recfeat.errors import RecfeatError, UsageError, closest
from recfeat.machine import check_cuda, int8_preset

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

    def encoder_options(self, **extra: Any) -> dict[str, Any]:
        """Options of a torch encoder built for this run."""
        return {"device": self.device, "init": self.init, **extra, **self.run_options()}

    def run_options(self) -> dict[str, Any]:
        """threads / max_length / batch_tokens where set: shared by every recfeat backend."""
        given = {"threads": self.threads, "max_length": self.max_length,
                 "batch_tokens": self.batch_tokens}  # fmt: skip
        return {k: v for k, v in given.items() if v is not None}

    def cache_dir(self, *parts: str) -> Path:
        if self.work_dir is not None:
            base = Path(self.work_dir)
        else:
            from recfeat.encode.hf_models import cache_root

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

        from recfeat.plugin.registry import get_registry

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
def _weights_key(ctx: BuildContext) -> str:
    from recfeat.encode.hf_models import describe_model

    enc = _encoder_class_defaults(ctx.encoder)
    info = describe_model(enc["model"], ctx.init)
    key = f"{info.weights_sha256}|{enc.get('pooling')}|{enc.get('normalize')}|{ctx.max_length}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _encoder_class_defaults(name: str) -> dict[str, Any]:
    from recfeat.plugin.options import option_specs
    from recfeat.plugin.registry import get_registry

    cls = get_registry("encoder").get(name)
    return {k: v["default"] for k, v in option_specs(cls).items()}


# Which export folder each recfeat ONNX/OpenVINO backend runs, and which of its files.
# One ONNX folder holds the plain export, its O2 optimisation and the dynamic int8 graph
# (recfeat export writes every validated step), so three backends cost one export.
EXPORT_FOLDERS: dict[str, dict[str, Any]] = {
    # auto_exclude: keep sensitive nodes in fp32 until the exporter's accuracy gate holds
    # (what a user does when plain dynamic int8 fails validation).
    "onnx": {"optimize": "O2", "quantize": "dynamic-int8", "auto_exclude": True},
    "onnx-static": {"optimize": "O2", "quantize": "static-int8", "auto_exclude": True},
    "openvino": {"format": "openvino"},
}
EXPORT_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # backend: (export folder, how to pick the file: manifest step name or precision)
    "onnx-fp32": ("onnx", {"step": "export"}),
    "onnx-fp32-o2": ("onnx", {"step": "optimize"}),
    "onnx-int8": ("onnx", {"step": "quantize"}),
    "onnx-int8-static": ("onnx-static", {"step": "quantize"}),
    "openvino-fp32": ("openvino", {"precision": "fp32"}),
    "openvino-bf16": ("openvino", {"precision": "bf16"}),
}


def export_artifact(folder_name: str, ctx: BuildContext) -> Path:
    """Export (once, then cached by weights hash) a folder with recfeat's own exporter."""
    folder = ctx.cache_dir("export", _weights_key(ctx)) / folder_name
    if (folder / "manifest.json").exists():
        return folder
    from recfeat.plugin.registry import get_registry

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

        from recfeat.plugin.registry import get_registry

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


# -- peers: sentence-transformers --------------------------------------------------------------
def st_model_folder(ctx: BuildContext) -> Path:
    """A writable sentence-transformers folder of the benchmarked model (its ONNX exports go
    beside it): a copy of the local model, or the random-weight shape saved with a pooling
    module matching recfeat's."""
    folder = ctx.cache_dir("st", _weights_key(ctx))
    if (folder / "modules.json").exists():
        return folder
    from recfeat.atomic import atomic_dir

    defaults = _encoder_class_defaults(ctx.encoder)
    with atomic_dir(folder, force=True) as tmp:
        from recfeat.encode.hf_models import load_transformer, local_model_dir

        if ctx.init != "random" and (local_model_dir(defaults["model"]) / "modules.json").exists():
            src = local_model_dir(defaults["model"])
            for item in src.iterdir():
                if item.is_dir():
                    shutil.copytree(item, tmp / item.name)
                else:
                    shutil.copy2(item, tmp / item.name)
        else:
            from sentence_transformers import SentenceTransformer, models

            loaded = load_transformer(defaults["model"], init=ctx.init)
            hf_dir = tmp / "_hf"
            loaded.model.save_pretrained(hf_dir)
            loaded.tokenizer.save_pretrained(hf_dir)
            pooling = defaults.get("pooling") or loaded.default_pooling
            mode = {"last-token": "lasttoken", "cls": "cls", "max": "max"}.get(pooling, "mean")
            word = models.Transformer(str(hf_dir), max_seq_length=ctx.max_length or 256)
            dim_of = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
            modules = [word, models.Pooling(dim_of(), pooling_mode=mode)]
            if defaults.get("normalize"):
                modules.append(models.Normalize())
            SentenceTransformer(modules=modules, device="cpu").save(str(tmp))
            shutil.rmtree(hf_dir)
    return folder


class SentenceTransformersRunner(Runner):
    """sentence-transformers ``encode`` with its torch, ONNX or dynamic-int8 ONNX backend."""

    def __init__(self, spec: BackendSpec, ctx: BuildContext):
        import torch
        from sentence_transformers import SentenceTransformer

        self.spec = spec
        self.ctx = ctx
        self.random_weights = ctx.init == "random"
        if ctx.threads:
            torch.set_num_threads(ctx.threads)
        folder = st_model_folder(ctx)
        device = ctx.device
        if spec.runtime == "sentence-transformers/torch":
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
            self.model = SentenceTransformer(
                str(folder), device=device, model_kwargs={"dtype": dtype[spec.precision]}
            )
        else:
            onnx_dir = folder / "onnx"
            if not (onnx_dir / "model.onnx").exists():
                exported = SentenceTransformer(str(folder), device="cpu", backend="onnx")
                exported.save_pretrained(str(folder))
            kwargs: dict[str, Any] = {}
            if spec.precision == "int8":
                preset = int8_preset()
                name = f"model_qint8_{preset}.onnx"
                if not (onnx_dir / name).exists():
                    from sentence_transformers import export_dynamic_quantized_onnx_model

                    base = SentenceTransformer(str(folder), device="cpu", backend="onnx")
                    export_dynamic_quantized_onnx_model(base, preset, str(folder))
                kwargs["file_name"] = f"onnx/{name}"
            self.model = SentenceTransformer(
                str(folder), device=device, backend="onnx", model_kwargs=kwargs or None
            )
        if ctx.max_length:
            self.model.max_seq_length = ctx.max_length
        self.folder = folder
        self._torch = torch

    def encode(self, texts):
        return self.model.encode(
            list(texts), batch_size=self.ctx.peer_batch_size, convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)

    def forward(self, input_ids, attention_mask):
        torch = self._torch
        feats = {
            "input_ids": torch.from_numpy(input_ids).to(self.model.device),
            "attention_mask": torch.from_numpy(attention_mask).to(self.model.device),
            "token_type_ids": torch.zeros_like(torch.from_numpy(input_ids)).to(self.model.device),
        }
        with torch.inference_mode():
            out = self.model.forward(feats)["sentence_embedding"]
        return out.float().cpu().numpy()

    def sync(self):
        if self.ctx.device.startswith("cuda"):
            self._torch.cuda.synchronize()

    def describe(self):
        return {"model_folder": str(self.folder), "batch_size": self.ctx.peer_batch_size}


# -- peer: plain OpenVINO ------------------------------------------------------------------
class OpenVINOPeerRunner(Runner):
    """OpenVINO runtime on the sentence-transformers ONNX export, batched as its docs show:
    fixed batches of 32 in input order, each tokenised and padded to its longest text, bf16
    inference where the CPU has bf16 units, mean pooling and normalisation in numpy."""

    def __init__(self, spec: BackendSpec, ctx: BuildContext):
        import openvino as ov
        from transformers import AutoTokenizer

        self.spec = spec
        self.ctx = ctx
        self.random_weights = ctx.init == "random"
        folder = st_model_folder(ctx)
        onnx_path = folder / "onnx" / "model.onnx"
        if not onnx_path.exists():
            from sentence_transformers import SentenceTransformer

            SentenceTransformer(str(folder), device="cpu", backend="onnx").save_pretrained(
                str(folder)
            )
        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT"}
        if ctx.threads:
            config["INFERENCE_NUM_THREADS"] = ctx.threads
        config["INFERENCE_PRECISION_HINT"] = "bf16" if spec.precision == "bf16" else "f32"
        self.compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
        self.input_names = {p.get_any_name() for p in self.compiled.inputs}
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.max_length = ctx.max_length or 256
        self.normalize = bool(_encoder_class_defaults(ctx.encoder).get("normalize"))

    def _run(self, input_ids, attention_mask):
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self.compiled(feed)[0]
        mask = attention_mask[..., None].astype(np.float32)
        vectors = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
        if self.normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.astype(np.float32)

    def encode(self, texts):
        texts = list(texts)
        out = []
        for i in range(0, len(texts), self.ctx.peer_batch_size):
            enc = self.tokenizer(
                texts[i : i + self.ctx.peer_batch_size], padding=True, truncation=True,
                max_length=self.max_length, return_tensors="np",
            )
            out.append(self._run(enc["input_ids"].astype(np.int64),
                                 enc["attention_mask"].astype(np.int64)))
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def forward(self, input_ids, attention_mask):
        return self._run(input_ids, attention_mask)


# -- the table -----------------------------------------------------------------------------
_ONNX_MODULES = ("onnx", "onnxruntime")
_ST_INSTALL = "pip install 'recfeat[peers]'"
_ST_ONNX_INSTALL = "pip install 'recfeat[peers,onnx]'"


def _spec(name, kind, runtime, precision, description, modules, install, factory, devices=("cpu", "cuda")):
    return BackendSpec(name, kind, runtime, precision, description, tuple(modules), install,
                       factory, tuple(devices))


def _ours(label, description, modules, install, factory, devices=("cpu", "cuda")):
    """A recfeat backend: runtime and precision come from its label in the one vocabulary."""
    choice = parse_choice(label)
    return _spec(label, RECFEAT, choice.backend, choice.precision, description, modules,
                 install, factory, devices)  # fmt: skip


BACKENDS: dict[str, BackendSpec] = {
    s.name: s
    for s in (
        _ours("torch-fp32", "recfeat torch encoder, fp32", ("torch",), "pip install torch",
              TorchRunner),
        _ours("torch-bf16", "recfeat torch encoder, bf16 autocast (AMX / AVX-512-bf16 CPUs, GPUs)",
              ("torch",), "pip install torch", TorchRunner),
        _ours("torch-fp16", "recfeat torch encoder, fp16 (CUDA only)", ("torch",),
              "pip install torch", TorchRunner, devices=("cuda",)),
        _ours("onnx-fp32", "recfeat ONNX export, ONNX Runtime", _ONNX_MODULES,
              "pip install 'recfeat[onnx]'", ExportedRunner, devices=("cpu",)),
        _ours("onnx-fp32-o2", "recfeat ONNX export, transformer-optimised (O2)", _ONNX_MODULES,
              "pip install 'recfeat[onnx]'", ExportedRunner, devices=("cpu",)),
        _ours("onnx-int8", "recfeat ONNX export, optimised + dynamic int8", _ONNX_MODULES,
              "pip install 'recfeat[onnx]'", ExportedRunner, devices=("cpu",)),
        _ours("onnx-int8-static", "recfeat ONNX export, static int8 QDQ calibrated on the corpus",
              _ONNX_MODULES, "pip install 'recfeat[onnx]'", ExportedRunner, devices=("cpu",)),
        _ours("openvino-fp32", "recfeat OpenVINO IR, fp32", ("openvino", *_ONNX_MODULES),
              "pip install 'recfeat[onnx,openvino]'", ExportedRunner, devices=("cpu",)),
        _ours("openvino-bf16", "recfeat OpenVINO IR, bf16 inference", ("openvino", *_ONNX_MODULES),
              "pip install 'recfeat[onnx,openvino]'", ExportedRunner, devices=("cpu",)),
        _spec("st-torch", PEER, "sentence-transformers/torch", "fp32",
              "peer: sentence-transformers encode, torch fp32", ("sentence_transformers",),
              _ST_INSTALL, SentenceTransformersRunner),
        _spec("st-torch-bf16", PEER, "sentence-transformers/torch", "bf16",
              "peer: sentence-transformers encode, model in bf16", ("sentence_transformers",),
              _ST_INSTALL, SentenceTransformersRunner),
        _spec("st-torch-fp16", PEER, "sentence-transformers/torch", "fp16",
              "peer: sentence-transformers encode, model in fp16 (CUDA)",
              ("sentence_transformers",), _ST_INSTALL, SentenceTransformersRunner,
              devices=("cuda",)),
        _spec("st-onnx", PEER, "sentence-transformers/onnx", "fp32",
              "peer: sentence-transformers encode, backend='onnx'",
              ("sentence_transformers", "optimum.onnxruntime", *_ONNX_MODULES), _ST_ONNX_INSTALL,
              SentenceTransformersRunner, devices=("cpu",)),
        _spec("st-onnx-qint8", PEER, "sentence-transformers/onnx", "int8",
              "peer: sentence-transformers encode, its dynamic-quantised int8 ONNX",
              ("sentence_transformers", "optimum.onnxruntime", *_ONNX_MODULES), _ST_ONNX_INSTALL,
              SentenceTransformersRunner, devices=("cpu",)),
        _spec("openvino-peer", PEER, "openvino", "bf16",
              "peer: plain OpenVINO runtime (bf16 hint) on the sentence-transformers ONNX export",
              ("openvino", "sentence_transformers", "optimum.onnxruntime"),
              "pip install 'recfeat[peers,onnx,openvino]'", OpenVINOPeerRunner, devices=("cpu",)),
    )
}


def get_backend(name: str, backends: dict[str, BackendSpec] | None = None) -> BackendSpec:
    """The spec named ``name``; unknown names list what exists and what is installable."""
    backends = BACKENDS if backends is None else backends
    if name in LABEL_ALIASES and LABEL_ALIASES[name] in backends:
        deprecated(name, LABEL_ALIASES[name])
        name = LABEL_ALIASES[name]
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


def parse_backends(
    names: str | Sequence[str], *, kind: str | None = None, device: str = "cpu",
    backends: dict[str, BackendSpec] | None = None,
) -> list[BackendSpec]:
    """Resolve a comma-separated list; each must exist, suit ``device`` and be installed."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    specs = []
    for name in dict.fromkeys(names):
        spec = get_backend(name, backends)
        if kind is not None and spec.kind != kind:
            what = "--peers" if kind == PEER else "--backends"
            raise UsageError(
                f"{name} is a {'peer' if spec.kind == PEER else 'recfeat backend'}, not allowed "
                f"in {what}; {'put it in --peers' if spec.kind == PEER else 'put it in --backends'}"
            )
        dev = device.split(":")[0]
        if dev not in spec.devices:
            raise UsageError(
                f"backend {name} runs on {', '.join(spec.devices)}, not {device}; drop it or "
                "change --device"
            )
        missing = spec.missing()
        if missing:
            raise UsageError(
                f"backend {name} needs {', '.join(missing)}, which is not installed; "
                f"install it with: {spec.install}"
            )
        specs.append(spec)
    return specs


def check_device(device: str) -> str:
    """Refuse ``cuda`` without a visible GPU (a one-line error with the fix)."""
    return check_cuda(device)


__all__ = [
    "BACKENDS", "BackendSpec", "BuildContext", "Runner", "availability",
    "check_device", "get_backend", "parse_backends",
]
