"""Backends the benchmark harness can time, by name: recfeat's own paths
(``recfeat.selection.backends``, the ones ``--backend auto`` chooses among) and the peers.

Every backend is a ``recfeat.selection.backends.BackendSpec`` whose ``build`` returns a
``Runner`` (``encode(texts)`` end to end, ``forward(input_ids, attention_mask)`` model only).
Peers are the tools a team would otherwise deploy (sentence-transformers' ``encode`` with
its torch, ONNX and dynamic-int8 ONNX backends; plain OpenVINO), run on the same model.
Their model copies are cached under ``$RECFEAT_CACHE_DIR/bench`` keyed by the model's weights
hash, so a second run skips them.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.atomic import atomic_dir
from recfeat.encode.hf_models import load_config, load_transformer, local_model_dir
from recfeat.errors import RecfeatError, UsageError
from recfeat.machine import check_cuda, int8_preset
from recfeat.selection import backends as sb
from recfeat.selection.backends import (
    ONNX_MODULES,
    PEER,
    BackendSpec,
    BuildContext,
    Runner,
    encoder_class_defaults,
    make_spec,
    weights_key,
)


# -- peers: sentence-transformers --------------------------------------------------------------
def st_model_folder(ctx: BuildContext) -> Path:
    """A writable sentence-transformers folder of the benchmarked model (its ONNX exports go
    beside it): a copy of the local model, or the random-weight shape saved with a pooling
    module matching recfeat's."""
    folder = ctx.cache_dir("st", weights_key(ctx))
    if (folder / "modules.json").exists():
        return folder
    defaults = encoder_class_defaults(ctx.encoder)
    with atomic_dir(folder, force=True) as tmp:
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
    # sentence-transformers names a quantised file by its weight type: qint8 for the
    # AVX-512 presets, quint8 for "avx2" (unsigned weights, the preset without VNNI)
    names = ([f"model_{variant}.onnx"] if variant == "O3" else
             [f"model_{kind}_{int8_preset()}.onnx" for kind in ("qint8", "quint8")])  # fmt: skip
    if not any((onnx_dir / n).exists() for n in names):
        import sentence_transformers as st

        base = SentenceTransformer(str(folder), device="cpu", backend="onnx")
        if variant == "O3":
            st.export_optimized_onnx_model(base, "O3", str(folder))
        else:
            st.export_dynamic_quantized_onnx_model(base, int8_preset(), str(folder))
    found = [n for n in names if (onnx_dir / n).exists()]
    if not found:
        raise RecfeatError(f"sentence-transformers wrote none of {names} in {onnx_dir}")
    return f"onnx/{found[0]}"


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
        defaults = encoder_class_defaults(ctx.encoder)
        if (defaults.get("pooling") or "mean") != "mean":
            raise UsageError(f"{spec.name} is set up for mean pooling; drop it for {ctx.encoder}")
        name = f"recfeat-bench/{folder.name}-{Path(file_name).stem}"
        if not any(m["model"] == name for m in TextEmbedding.list_supported_models()):
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
        self.normalize = bool(encoder_class_defaults(ctx.encoder).get("normalize"))
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
_ST_INSTALL = "pip install 'recfeat[peers]'"
_ST_ONNX_INSTALL = "pip install 'recfeat[peers,onnx]'"
# peers-embed: optimum-intel < 2 (2.x needs a newer torch and optimum) and fastembed
_ST_OV_INSTALL = "pip install 'recfeat[peers,peers-embed,openvino]'"
_FASTEMBED_INSTALL = "pip install 'recfeat[peers,peers-embed,onnx]'"

#: Every backend the harness can time: recfeat's own (``recfeat.selection.backends``), then
#: the peers.
BACKENDS: dict[str, BackendSpec] = {
    **sb.BACKENDS,
    **{s.name: s for s in (
        make_spec("st-torch", PEER, "sentence-transformers/torch", "fp32",
                  "peer: sentence-transformers encode, torch fp32", ("sentence_transformers",),
                  _ST_INSTALL, SentenceTransformersRunner),
        make_spec("st-torch-bf16", PEER, "sentence-transformers/torch", "bf16",
                  "peer: sentence-transformers encode, model in bf16", ("sentence_transformers",),
                  _ST_INSTALL, SentenceTransformersRunner),
        make_spec("st-torch-fp16", PEER, "sentence-transformers/torch", "fp16",
                  "peer: sentence-transformers encode, model in fp16 (CUDA)",
                  ("sentence_transformers",), _ST_INSTALL, SentenceTransformersRunner,
                  devices=("cuda",)),
        make_spec("st-onnx", PEER, "sentence-transformers/onnx", "fp32",
                  "peer: sentence-transformers encode, backend='onnx'",
                  ("sentence_transformers", "optimum.onnxruntime", *ONNX_MODULES), _ST_ONNX_INSTALL,
                  SentenceTransformersRunner, devices=("cpu",)),
        make_spec("st-onnx-qint8", PEER, "sentence-transformers/onnx", "int8",
                  "peer: sentence-transformers encode, its dynamic-quantised int8 ONNX",
                  ("sentence_transformers", "optimum.onnxruntime", *ONNX_MODULES), _ST_ONNX_INSTALL,
                  SentenceTransformersRunner, devices=("cpu",)),
        make_spec("st-onnx-o3", PEER, "sentence-transformers/onnx", "fp32",
                  "peer: sentence-transformers encode, its O3-optimised ONNX (export_optimized_onnx_model)",
                  ("sentence_transformers", "optimum.onnxruntime", *ONNX_MODULES), _ST_ONNX_INSTALL,
                  SentenceTransformersRunner, devices=("cpu",)),
        # OpenVINO's CPU default inference precision is bf16 where the CPU has bf16 units:
        # the row records what the compiled model really runs.
        make_spec("st-openvino", PEER, "sentence-transformers/openvino", "auto",
                  "peer: sentence-transformers encode, backend='openvino' (optimum-intel)",
                  ("sentence_transformers", "optimum.intel", "openvino"), _ST_OV_INSTALL,
                  SentenceTransformersRunner, devices=("cpu",)),
        make_spec("st-openvino-qint8", PEER, "sentence-transformers/openvino", "int8",
                  "peer: sentence-transformers encode, its static int8 OpenVINO model (NNCF, "
                  "calibrated on the corpus)", ("sentence_transformers", "optimum.intel", "openvino", "nncf"),
                  _ST_OV_INSTALL, SentenceTransformersRunner, devices=("cpu",)),
        make_spec("fastembed", PEER, "fastembed", "fp32",
                  "peer: fastembed TextEmbedding on the model's ONNX export (local files)",
                  ("fastembed", "sentence_transformers", "optimum.onnxruntime"), _FASTEMBED_INSTALL,
                  FastEmbedRunner, devices=("cpu",)),
        make_spec("fastembed-qint8", PEER, "fastembed", "int8",
                  "peer: fastembed TextEmbedding on sentence-transformers' dynamic int8 ONNX",
                  ("fastembed", "sentence_transformers", "optimum.onnxruntime"), _FASTEMBED_INSTALL,
                  FastEmbedRunner, devices=("cpu",)),
        make_spec("openvino-peer", PEER, "openvino", "bf16",
                  "peer: plain OpenVINO (bf16 hint) on the sentence-transformers ONNX export, "
                  "THROUGHPUT hint with an AsyncInferQueue, batches sorted by length",
                  ("openvino", "sentence_transformers", "optimum.onnxruntime"),
                  "pip install 'recfeat[peers,onnx,openvino]'", OpenVINOPeerRunner, devices=("cpu",)),
        make_spec("openvino-peer-latency", PEER, "openvino", "bf16",
                  "peer: plain OpenVINO (bf16 hint), LATENCY hint with synchronous calls, batches "
                  "sorted by length", ("openvino", "sentence_transformers", "optimum.onnxruntime"),
                  "pip install 'recfeat[peers,onnx,openvino]'", OpenVINOPeerRunner, devices=("cpu",)),
    )},
}  # fmt: skip

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


def parse_backends(
    names: str | Sequence[str], *, kind: str | None = None, device: str = "cpu",
    backends: dict[str, BackendSpec] | None = None,
) -> list[BackendSpec]:
    """Resolve a comma-separated list; each must exist, suit ``device`` and be installed."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    specs = []
    backends = BACKENDS if backends is None else backends
    names = _expand_libraries(names, backends, device)
    for name in dict.fromkeys(names):
        spec = sb.get_backend(name, backends)
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


def _expand_libraries(names: Sequence[str], backends: dict[str, BackendSpec], device: str) -> list[str]:
    """A library's name (``sentence-transformers``, ``fastembed``, ``openvino``: the part of
    a runtime before the ``/``) stands for its peers that run on ``device`` and are installed,
    as users name the tool they compare with; a name that is also a backend stays itself."""
    out: list[str] = []
    dev = device.split(":")[0]
    for name in names:
        group = [s for s in backends.values()
                 if s.kind == PEER and s.runtime.split("/")[0] == name and name not in backends]  # fmt: skip
        usable = [s.name for s in group if dev in s.devices and not s.missing()]
        if group and not usable:
            raise UsageError(f"no {name} peer is installed for {device}; install it with: "
                             f"{group[0].install}")  # fmt: skip
        out += usable if group else [name]
    return out


def check_device(device: str) -> str:
    """Refuse ``cuda`` without a visible GPU (a one-line error with the fix)."""
    return check_cuda(device)


__all__ = ["BACKENDS", "DEFAULT_PEERS", "check_device", "default_peers", "parse_backends"]
