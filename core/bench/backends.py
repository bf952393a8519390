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


def _folder_key(folder_name: str, ctx: BuildContext) -> str:
    """A calibrated (static int8) folder depends on its options and on the corpus it was
    calibrated on, so another corpus gets its own folder; the others on the weights only."""
    options = EXPORT_FOLDERS[folder_name]
    if options.get("quantize") != "static-int8":
        return folder_name
    payload = repr(sorted(options.items())) + "\x1f" + "\x1f".join(ctx.calibration_texts or ())
    return f"{folder_name}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def export_artifact(folder_name: str, ctx: BuildContext) -> Path:
    """Export (once, then cached by weights hash) a folder with recfeat's own exporter."""
    folder = ctx.cache_dir("export", _weights_key(ctx)) / _folder_key(folder_name, ctx)
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
    """sentence-transformers ``encode`` with each backend its efficiency docs give: torch
    (fp32, or the model in bf16), ONNX (plain, O3-optimised, dynamic int8 with the preset for
    this CPU) and OpenVINO (optimum-intel; plain, or static int8 via NNCF). Its ``encode``
    sorts texts by length and runs batches of ``peer_batch_size`` (its default 32)."""

    def __init__(self, spec: BackendSpec, ctx: BuildContext):
        import torch
        from sentence_transformers import SentenceTransformer

        self.spec = spec
        self.ctx = ctx
        self.random_weights = ctx.init == "random"
        if ctx.threads:
            torch.set_num_threads(ctx.threads)
        folder = st_model_folder(ctx)
        self.config: dict[str, Any] = {"batch_size": ctx.peer_batch_size, "sorted_by_length": True}
        if spec.runtime == "sentence-transformers/torch":
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
            self.model = SentenceTransformer(
                str(folder), device=ctx.device, model_kwargs={"dtype": dtype[spec.precision]}
            )
            self.config["dtype"] = spec.precision
        elif spec.runtime == "sentence-transformers/onnx":
            file_name = st_onnx_file(folder, ST_ONNX_VARIANT[spec.name])
            self.model = SentenceTransformer(str(folder), device=ctx.device, backend="onnx",
                                             model_kwargs={"file_name": file_name})  # fmt: skip
            self.config["file_name"] = file_name
        else:  # sentence-transformers/openvino
            file_name = st_openvino_file(folder, spec.precision, ctx)
            ov_config = openvino_peer_config("LATENCY", ctx.threads)  # ST encodes synchronously
            self.model = SentenceTransformer(
                str(folder), device="cpu", backend="openvino",
                model_kwargs={"file_name": file_name, "ov_config": ov_config},
            )  # fmt: skip
            self.config.update(file_name=file_name, ov_config=ov_config)
        if ctx.max_length:
            self.model.max_seq_length = ctx.max_length
        self.config["max_seq_length"] = self.model.max_seq_length
        self.folder = folder
        self._torch = torch

    def encode(self, texts):
        return np.asarray(self.model.encode(
            list(texts), batch_size=self.ctx.peer_batch_size, convert_to_numpy=True,
            show_progress_bar=False,
        ), dtype=np.float32)  # fmt: skip

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
        out = {"model_folder": str(self.folder), **self.config}
        # optimum-intel compiles on the first call; what the CPU then runs (bf16 by default
        # on CPUs with bf16 units) is the row's precision.
        compiled = getattr(self.model[0].auto_model, "request", None)
        if compiled is not None and hasattr(compiled, "get_property"):
            hint = str(compiled.get_property("INFERENCE_PRECISION_HINT"))  # "<Type: 'bfloat16'>"
            out["inference_precision"] = hint
            if self.spec.precision == "auto":
                out["effective_precision"] = (
                    "bf16" if "bf16" in hint or "bfloat16" in hint
                    else "fp16" if "f16" in hint or "float16" in hint else "fp32"
                )  # fmt: skip
        return out


# Which ONNX file of sentence-transformers' each ONNX peer runs (its efficiency docs: the
# plain export, export_optimized_onnx_model "O3" for CPUs, export_dynamic_quantized_onnx_model
# with the preset of this CPU).
ST_ONNX_VARIANT = {"st-onnx": "plain", "st-onnx-o3": "O3", "st-onnx-qint8": "qint8",
                   "fastembed": "plain", "fastembed-qint8": "qint8"}  # fmt: skip


def st_onnx_file(folder: Path, variant: str) -> str:
    """Export (once) and name, relative to ``folder``, the sentence-transformers ONNX file."""
    from sentence_transformers import SentenceTransformer

    onnx_dir = folder / "onnx"
    if not (onnx_dir / "model.onnx").exists():
        SentenceTransformer(str(folder), device="cpu", backend="onnx").save_pretrained(str(folder))
    if variant == "plain":
        return "onnx/model.onnx"
    name = f"model_{variant}.onnx" if variant == "O3" else f"model_qint8_{int8_preset()}.onnx"
    if not (onnx_dir / name).exists():
        import sentence_transformers as st

        base = SentenceTransformer(str(folder), device="cpu", backend="onnx")
        if variant == "O3":
            st.export_optimized_onnx_model(base, "O3", str(folder))
        else:
            st.export_dynamic_quantized_onnx_model(base, int8_preset(), str(folder))
    return f"onnx/{name}"


def st_openvino_file(folder: Path, precision: str, ctx: BuildContext) -> str:
    """Export (once) the sentence-transformers OpenVINO model; for ``int8`` also its static
    int8 copy the way ``export_static_quantized_openvino_model`` makes it (optimum-intel's
    OVQuantizer, default OVQuantizationConfig, 300 samples), calibrated on the run's corpus
    instead of GLUE SST-2 from the Hub: no download, and the same texts recfeat calibrates on."""
    from sentence_transformers import SentenceTransformer

    ov_dir = folder / "openvino"
    if not (ov_dir / "openvino_model.xml").exists():
        SentenceTransformer(str(folder), device="cpu", backend="openvino").save_pretrained(str(folder))
    if precision != "int8":
        return "openvino/openvino_model.xml"
    name = "openvino_model_qint8_quantized"
    if not (ov_dir / f"{name}.xml").exists():
        import tempfile

        import nncf
        from optimum.intel import OVConfig, OVQuantizationConfig, OVQuantizer

        texts = list(ctx.calibration_texts or [])
        if not texts:
            raise UsageError(
                "st-openvino-qint8 calibrates on the corpus: give --data (its texts calibrate) "
                "or drop st-openvino-qint8 from --peers"
            )
        base = SentenceTransformer(str(folder), device="cpu", backend="openvino")
        config = OVQuantizationConfig()
        tok = base.tokenizer
        feeds = [dict(tok(t, truncation=True, max_length=base.max_seq_length, return_tensors="np"))
                 for t in texts[: config.num_samples or 300]]  # fmt: skip
        quantizer = OVQuantizer.from_pretrained(base[0].auto_model)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            quantizer.quantize(calibration_dataset={"model": nncf.Dataset(feeds)},
                               save_directory=tmp, ov_config=OVConfig(quantization_config=config))
            xml = next(Path(tmp).rglob("*.xml"))  # save_pretrained keeps the loaded file's name
            for ext in (".xml", ".bin"):  # the name export_static_quantized_... gives the file
                shutil.move(str(xml.with_suffix(ext)), str(ov_dir / f"{name}{ext}"))
    return f"openvino/{name}.xml"


# -- peer: fastembed -----------------------------------------------------------------------
class FastEmbedRunner(Runner):
    """fastembed's ``TextEmbedding`` on the same model's sentence-transformers ONNX file, from
    local files (``add_custom_model`` + ``specific_model_path``; no download), mean pooled
    and normalised like the model, truncated at the same length, its default batch of 256."""

    def __init__(self, spec: BackendSpec, ctx: BuildContext):
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        self.spec = spec
        self.ctx = ctx
        self.random_weights = ctx.init == "random"
        folder = st_model_folder(ctx)
        file_name = st_onnx_file(folder, ST_ONNX_VARIANT[spec.name])
        defaults = _encoder_class_defaults(ctx.encoder)
        if (defaults.get("pooling") or "mean") != "mean":
            raise UsageError(f"{spec.name} is set up for mean pooling; drop it for {ctx.encoder}")
        name = f"recfeat-bench/{folder.name}-{Path(file_name).stem}"
        if not any(m["model"] == name for m in TextEmbedding.list_supported_models()):
            from recfeat.encode.hf_models import load_config

            dim = int(load_config(str(folder), "pretrained").hidden_size)
            TextEmbedding.add_custom_model(
                model=name, pooling=PoolingType.MEAN, normalization=bool(defaults.get("normalize")),
                sources=ModelSource(hf=name), dim=dim, model_file=file_name,
            )  # fmt: skip
        self.model = TextEmbedding(model_name=name, specific_model_path=str(folder),
                                   threads=ctx.threads, local_files_only=True)  # fmt: skip
        # fastembed truncates at the tokenizer config's 512; the model was trained (and every
        # other path here runs) at max_seq_length
        self.max_length = ctx.max_length or int(defaults.get("max_length") or 256)
        self.model.model.tokenizer.enable_truncation(max_length=self.max_length)
        self.batch_size = 256  # TextEmbedding.embed's default
        self.config = {"model_file": file_name, "batch_size": self.batch_size,
                       "max_length": self.max_length, "sorted_by_length": False}  # fmt: skip

    def encode(self, texts):
        rows = list(self.model.embed(list(texts), batch_size=self.batch_size))
        return np.asarray(rows, dtype=np.float32)

    def forward(self, input_ids, attention_mask):
        # Model only: fastembed's own ONNX Runtime session, then its mean pooling.
        session = self.model.model.model
        names = {i.name for i in session.get_inputs()}
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        hidden = session.run(None, feed)[0]
        return _mean_pool(hidden, attention_mask, normalize=True)

    def describe(self):
        return dict(self.config)


# -- peer: plain OpenVINO ------------------------------------------------------------------
def openvino_peer_config(hint: str, threads: int | None, precision: str | None = None) -> dict[str, Any]:
    """compile_model options: the performance hint (and, where asked, threads / precision)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if precision:
        config["INFERENCE_PRECISION_HINT"] = "bf16" if precision == "bf16" else "f32"
    return config


def _mean_pool(hidden: np.ndarray, attention_mask: np.ndarray, *, normalize: bool) -> np.ndarray:
    mask = attention_mask[..., None].astype(np.float32)
    vectors = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    if normalize:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.astype(np.float32)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices of batches of ``batch_size`` texts, longest first (sentence-transformers'
    ``encode`` order: each batch pads to similar lengths)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class OpenVINOPeerRunner(Runner):
    """Plain OpenVINO on the sentence-transformers ONNX export, as OpenVINO's docs configure
    it: the THROUGHPUT hint with an ``AsyncInferQueue`` of the device's optimal number of
    requests (``openvino-peer``), or the LATENCY hint with synchronous calls
    (``openvino-peer-latency``); bf16 inference where the CPU has bf16 units; batches of
    ``peer_batch_size`` sorted by length as sentence-transformers does; mean pooling and
    normalisation in numpy."""

    def __init__(self, spec: BackendSpec, ctx: BuildContext):
        import openvino as ov
        from transformers import AutoTokenizer

        self.spec = spec
        self.ctx = ctx
        self.random_weights = ctx.init == "random"
        folder = st_model_folder(ctx)
        onnx_path = folder / st_onnx_file(folder, "plain")
        self.hint = "LATENCY" if spec.name.endswith("-latency") else "THROUGHPUT"
        config = openvino_peer_config(self.hint, ctx.threads, spec.precision)
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
        self.input_names = {p.get_any_name() for p in self.compiled.inputs}
        self.requests = (
            int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            if self.hint == "THROUGHPUT" else 1
        )  # fmt: skip
        self.queue = ov.AsyncInferQueue(self.compiled, self.requests) if self.requests > 1 else None
        self.request = self.compiled.create_infer_request()
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.max_length = ctx.max_length or 256
        self.normalize = bool(_encoder_class_defaults(ctx.encoder).get("normalize"))
        self.config = {**config, "infer_requests": self.requests,
                       "streams": int(self.compiled.get_property("NUM_STREAMS")),
                       "batch_size": ctx.peer_batch_size, "sorted_by_length": True}  # fmt: skip

    def _feed(self, input_ids, attention_mask):
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        return feed

    def _run(self, input_ids, attention_mask):
        hidden = self.request.infer(self._feed(input_ids, attention_mask))[0]
        return _mean_pool(hidden, attention_mask, normalize=self.normalize)

    def encode(self, texts):
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), np.float32)
        lengths = [len(ids) for ids in self.tokenizer(
            texts, truncation=True, max_length=self.max_length)["input_ids"]]  # fmt: skip
        batches = length_sorted_batches(lengths, self.ctx.peer_batch_size)
        out: list[np.ndarray | None] = [None] * len(batches)

        def tokens(idx):
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")  # fmt: skip
            return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)

        if self.queue is None:
            for b, idx in enumerate(batches):
                out[b] = self._run(*tokens(idx))
        else:
            def done(request, userdata):
                b, mask = userdata
                hidden = request.get_output_tensor(0).data
                out[b] = _mean_pool(hidden, mask, normalize=self.normalize)

            self.queue.set_callback(done)
            for b, idx in enumerate(batches):
                ids, mask = tokens(idx)
                self.queue.start_async(self._feed(ids, mask), (b, mask))
            self.queue.wait_all()
        vectors = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
        for idx, rows in zip(batches, out, strict=True):
            vectors[idx] = rows
        return vectors

    def forward(self, input_ids, attention_mask):
        if self.queue is None or len(input_ids) < 2 * self.requests:
            return self._run(input_ids, attention_mask)
        # THROUGHPUT: one slice of the batch per request, in flight together (a single
        # synchronous call would run on one stream and leave the other cores idle).
        cuts = np.linspace(0, len(input_ids), self.requests + 1).astype(int)
        out: dict[int, np.ndarray] = {}

        def done(request, userdata):
            s, mask = userdata
            out[s] = _mean_pool(request.get_output_tensor(0).data, mask, normalize=self.normalize)

        self.queue.set_callback(done)
        for s, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
            self.queue.start_async(self._feed(input_ids[a:b], attention_mask[a:b]), (s, attention_mask[a:b]))
        self.queue.wait_all()
        return np.concatenate([out[s] for s in range(self.requests)])

    def describe(self):
        return dict(self.config)


# -- the table -----------------------------------------------------------------------------
_ONNX_MODULES = ("onnx", "onnxruntime")
_ST_INSTALL = "pip install 'recfeat[peers]'"
_ST_ONNX_INSTALL = "pip install 'recfeat[peers,onnx]'"
# peers-embed: optimum-intel < 2 (2.x needs a newer torch and optimum) and fastembed
_ST_OV_INSTALL = "pip install 'recfeat[peers,peers-embed,openvino]'"
_FASTEMBED_INSTALL = "pip install 'recfeat[peers,peers-embed,onnx]'"


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
        _ours("openvino-int8", "recfeat OpenVINO IR, NNCF int8 calibrated on the corpus (bf16 "
              "float parts where the CPU has bf16), sensitive layers float until cosine >= 0.995",
              ("openvino", "nncf", *_ONNX_MODULES), "pip install 'recfeat[onnx,openvino]'",
              ExportedRunner, devices=("cpu",)),
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
        _spec("st-onnx-o3", PEER, "sentence-transformers/onnx", "fp32",
              "peer: sentence-transformers encode, its O3-optimised ONNX (export_optimized_onnx_model)",
              ("sentence_transformers", "optimum.onnxruntime", *_ONNX_MODULES), _ST_ONNX_INSTALL,
              SentenceTransformersRunner, devices=("cpu",)),
        # OpenVINO's CPU default inference precision is bf16 where the CPU has bf16 units:
        # the row records what the compiled model really runs.
        _spec("st-openvino", PEER, "sentence-transformers/openvino", "auto",
              "peer: sentence-transformers encode, backend='openvino' (optimum-intel)",
              ("sentence_transformers", "optimum.intel", "openvino"), _ST_OV_INSTALL,
              SentenceTransformersRunner, devices=("cpu",)),
        _spec("st-openvino-qint8", PEER, "sentence-transformers/openvino", "int8",
              "peer: sentence-transformers encode, its static int8 OpenVINO model (NNCF, "
              "calibrated on the corpus)", ("sentence_transformers", "optimum.intel", "openvino", "nncf"),
              _ST_OV_INSTALL, SentenceTransformersRunner, devices=("cpu",)),
        _spec("fastembed", PEER, "fastembed", "fp32",
              "peer: fastembed TextEmbedding on the model's ONNX export (local files)",
              ("fastembed", "sentence_transformers", "optimum.onnxruntime"), _FASTEMBED_INSTALL,
              FastEmbedRunner, devices=("cpu",)),
        _spec("fastembed-qint8", PEER, "fastembed", "int8",
              "peer: fastembed TextEmbedding on sentence-transformers' dynamic int8 ONNX",
              ("fastembed", "sentence_transformers", "optimum.onnxruntime"), _FASTEMBED_INSTALL,
              FastEmbedRunner, devices=("cpu",)),
        _spec("openvino-peer", PEER, "openvino", "bf16",
              "peer: plain OpenVINO (bf16 hint) on the sentence-transformers ONNX export, "
              "THROUGHPUT hint with an AsyncInferQueue, batches sorted by length",
              ("openvino", "sentence_transformers", "optimum.onnxruntime"),
              "pip install 'recfeat[peers,onnx,openvino]'", OpenVINOPeerRunner, devices=("cpu",)),
        _spec("openvino-peer-latency", PEER, "openvino", "bf16",
              "peer: plain OpenVINO (bf16 hint), LATENCY hint with synchronous calls, batches "
              "sorted by length", ("openvino", "sentence_transformers", "optimum.onnxruntime"),
              "pip install 'recfeat[peers,onnx,openvino]'", OpenVINOPeerRunner, devices=("cpu",)),
    )
}

#: ``bench throughput``'s peers when --peers is not given: every peer for the device; those
#: not installed are listed in the report with the install command instead of a row.
DEFAULT_PEERS = tuple(s.name for s in BACKENDS.values() if s.kind == PEER)


def default_peers(device: str = "cpu", backends: dict[str, BackendSpec] | None = None,
                  ) -> tuple[list[BackendSpec], list[dict[str, str]]]:  # fmt: skip
    """(installed peers for ``device``, [{backend, reason}] for the ones that are not)."""
    backends = BACKENDS if backends is None else backends
    dev = device.split(":")[0]
    ok, missing = [], []
    for spec in backends.values():
        if spec.kind != PEER or dev not in spec.devices:
            continue
        lacking = spec.missing()
        if lacking:
            missing.append({"backend": spec.name,
                            "reason": f"needs {', '.join(lacking)}; install: {spec.install}"})
        else:
            ok.append(spec)
    return ok, missing


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
