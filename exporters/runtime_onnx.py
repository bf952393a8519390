"""The ``onnx`` encoder backend: an exported folder run by ONNX Runtime.

Same contract as the torch encoders: ``encode(texts) -> float32 [n, dim]`` in input order,
token-budget batches (``recfeat.encode.batching``), a ``fingerprint()`` the feature cache
keys on (backend ``onnx`` and the sha256 of the model file actually run). Loading verifies
the folder against its manifest first (tokenizer, sizes, hashes).

Providers: CUDA with IO binding when onnxruntime-gpu sees a GPU (``provider="auto"`` or
``"cuda"``), the CPU otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.components import Encoder
from recfeat.errors import DataError, OptionError

PROVIDERS = ("auto", "cpu", "cuda")
# What --precision selects among the files of an export folder.
_PRECISION_OF_STEP = {"export": "fp32", "optimize": "fp32"}


def step_precision(step: dict[str, Any]) -> str:
    if step["step"] in _PRECISION_OF_STEP:
        return "fp32"
    mode = step["settings"].get("mode", "")
    return (
        "fp16" if mode == "fp16" else "int8" if "int8" in mode else step["validation"]["precision"]
    )


def choose_file(
    manifest: dict[str, Any], file: str | None, precision: str | None, runtime: str
) -> dict[str, Any]:
    """The manifest step whose file to run: ``file`` by name, else the last step of
    ``precision``, else the manifest's default (the last step written)."""
    steps = [
        s for s in manifest["steps"] if s["file"].endswith(".onnx" if runtime == "onnx" else ".xml")
    ]
    if not steps:
        raise OptionError(
            f"this export folder holds no {runtime} model (runtime {manifest.get('runtime')!r}); "
            f"use --backend {manifest.get('runtime')} or re-export with --format {runtime}"
        )
    if file is not None:
        for s in steps:
            if s["file"] == file:
                return s
        raise OptionError(
            f"file {file!r} is not in this export; files: {', '.join(s['file'] for s in steps)}"
        )
    if precision is not None:
        matching = [s for s in steps if step_precision(s) == precision]
        if not matching:
            have = sorted({step_precision(s) for s in steps})
            raise OptionError(
                f"this export has no {precision} model (it has {', '.join(have)}); pick one of "
                "those or re-export with --quantize"
            )
        return matching[-1]
    default = [s for s in steps if s["file"] == manifest.get("default_file")]
    return default[0] if default else steps[-1]


class ExportedEncoder(Encoder):
    """Shared by the ONNX Runtime and OpenVINO backends: folder, tokenizer, batching."""

    runtime = "onnx"

    def _setup(self) -> None:
        from .manifest import read_manifest

        self._manifest = read_manifest(self.path)
        m = self._manifest
        if self.pooling is not None and self.pooling != m["pooling"]:
            raise OptionError(
                f"pooling {m['pooling']!r} is built into {self.path}; asked for {self.pooling!r}: "
                f"re-export with `recfeat export --pooling {self.pooling}`"
            )
        if self.normalize is not None and bool(self.normalize) != bool(m["normalize"]):
            raise OptionError(
                f"normalisation is {'on' if m['normalize'] else 'off'} in {self.path}; re-export "
                "with --normalize/--no-normalize to change it"
            )
        if self.max_length is not None and self.max_length < 2:
            raise OptionError(f"max_length must be at least 2 (got {self.max_length})")
        if self.batch_tokens < 1 or self.max_batch_size < 1:
            raise OptionError("batch_tokens and max_batch_size must be at least 1")
        self._step = choose_file(m, self.file, self._precision_for_choice(), self.runtime)
        self._tokenizer = None
        self._session = None
        self.last_stats: dict[str, Any] = {}

    def _precision_for_choice(self) -> str | None:
        return self.precision

    @property
    def manifest(self) -> dict[str, Any]:
        return self._manifest

    @property
    def model_file(self) -> Path:
        return Path(self.path) / self._step["file"]

    @property
    def dim(self) -> int:
        return int(self._manifest["hidden_size"])

    @property
    def effective_max_length(self) -> int:
        return int(self.max_length or self._manifest["max_length"])

    def _files_to_verify(self) -> list[str]:
        name = self._step["file"]
        files = [name]
        recorded = self._manifest.get("files", {})
        for extra in (
            name + ".data",
            name[: -len(".xml")] + ".bin" if name.endswith(".xml") else None,
        ):
            if extra and extra in recorded:
                files.append(extra)
        return files

    def load(self):
        """Verify the folder, load tokenizer and runtime session (done by the first encode)."""
        if self._session is None:
            import transformers

            from .manifest import verify_folder

            if self.verify:
                verify_folder(self.path, self._files_to_verify())
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, use_fast=True)
            if self._tokenizer.pad_token is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token
            if self._manifest["source"].get("random_init"):
                print(
                    f"recfeat: warning: {self.path} was exported from RANDOM weights "
                    f"({self._manifest['source']['model']}); its vectors measure speed, not meaning",
                    file=sys.stderr,
                )
            self._session = self._make_session()
        return self._session

    def fingerprint(self) -> dict[str, Any]:
        m = self._manifest
        return {
            "encoder": self.name,
            "backend": self.backend,
            "path": str(self.path),
            "weights_sha256": m["files"][self._step["file"]]["sha256"],
            "source_weights_sha256": m["source"]["weights_sha256"],
            "family": m["family"],
            "pooling": m["pooling"],
            "normalize": m["normalize"],
            "max_length": self.effective_max_length,
            "precision": self._fingerprint_precision(),
            "random_init": bool(m["source"].get("random_init")),
        }

    def _fingerprint_precision(self) -> str:
        return step_precision(self._step)

    def tokenize_lengths(self, texts: list[str]):
        ids = self._tokenizer(
            texts,
            truncation=True,
            max_length=self.effective_max_length,
            add_special_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )["input_ids"]
        return ids, np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """float32 [len(texts), dim], rows in input order."""
        from recfeat.encode.batching import pad_batch, padding_ratio, plan_batches
        from recfeat.progress import progress_bar

        if isinstance(texts, str):
            raise DataError("encode() takes a list of texts, not one string; wrap it in a list")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise DataError(
                    f"text {i} is {type(t).__name__}, not str; convert or drop missing texts first"
                )
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        self.load()
        ids, lengths = self.tokenize_lengths(texts)
        batches = plan_batches(lengths, self.batch_tokens, self.max_batch_size)
        pad_id = int(self._tokenizer.pad_token_id)
        with progress_bar(len(texts), "encoding", enabled=None if progress else False) as bar:
            for idx in batches:
                feed = pad_batch(ids, idx, int(lengths[idx].max()), pad_id)
                out[idx] = self._run(feed)
                bar.advance(len(idx))
        self.last_stats = {
            "texts": len(texts),
            "tokens": int(lengths.sum()),
            "batches": len(batches),
            "padding_ratio": round(padding_ratio(lengths, batches), 6),
        }
        return out


class OnnxEncoder(ExportedEncoder):
    """An exported folder (``recfeat export``) run by ONNX Runtime (CPU, or CUDA with IO binding)."""

    name = "onnx"
    backend = "onnx"
    runtime = "onnx"

    def __init__(
        self,
        *,
        path: str,
        file: str | None = None,
        precision: str | None = None,
        pooling: str | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        provider: str = "auto",
        batch_tokens: int = 16384,
        max_batch_size: int = 256,
        verify: bool = True,
    ):
        self.path = path
        self.file = file
        self.precision = precision
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.threads = threads
        self.provider = provider
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.verify = verify
        if provider not in PROVIDERS:
            raise OptionError(
                f"unknown provider {provider!r}; valid providers: {', '.join(PROVIDERS)}"
            )
        if precision is not None and precision not in ("fp32", "fp16", "int8"):
            raise OptionError(
                f"precision {precision!r} is not available with ONNX Runtime; valid: fp32, fp16, "
                "int8 (for bf16 use the openvino backend)"
            )
        self._setup()

    def _make_session(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        options.log_severity_level = 3
        available = ort.get_available_providers()
        use_cuda = self.provider in ("auto", "cuda") and "CUDAExecutionProvider" in available
        if self.provider == "cuda" and not use_cuda:
            raise OptionError(
                "provider 'cuda' needs onnxruntime-gpu and a visible GPU (install: pip install "
                "'recfeat[gpu]'); use provider='cpu'"
            )
        providers = (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if use_cuda
            else ["CPUExecutionProvider"]
        )
        try:
            session = ort.InferenceSession(str(self.model_file), options, providers=providers)
        except Exception as exc:  # a file that passed no verification (verify=False)
            from .manifest import ArtifactError

            raise ArtifactError(f"ONNX Runtime cannot load {self.model_file}: {exc}") from None
        self._use_cuda = use_cuda and "CUDAExecutionProvider" in session.get_providers()
        self._inputs = [i.name for i in session.get_inputs()]
        return session

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        session = self._session
        if not self._use_cuda:
            return session.run(None, {k: feed[k] for k in self._inputs})[0]
        # IO binding: inputs copied to the GPU once, the output produced there and copied back
        # once, instead of ORT staging every tensor through host buffers per call.
        import onnxruntime as ort

        binding = session.io_binding()
        for name in self._inputs:
            binding.bind_ortvalue_input(
                name, ort.OrtValue.ortvalue_from_numpy(feed[name], "cuda", 0)
            )
        binding.bind_output(self._manifest["output"], "cuda", 0)
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]
