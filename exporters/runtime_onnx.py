"""The ``onnx`` encoder backend: an exported folder run by ONNX Runtime.

Same contract as the torch encoders: ``encode(texts) -> float32 [n, dim]`` in input order,
token-budget batches (``recfeat.encode.batching``), a ``fingerprint()`` the feature cache
keys on (backend ``onnx`` and the sha256 of the model file actually run). Loading verifies
the folder against its manifest first (tokenizer, sizes, hashes).

Batches run through the one encode loop (``recfeat.encode.engine``) on an ONNX Runtime
backend (``recfeat.encode.backends.OnnxRuntimeBackend``): CUDA with IO binding when
onnxruntime-gpu sees a GPU (``provider="auto"`` or ``"cuda"``), the CPU otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.components import Encoder
from recfeat.encode import engine
from recfeat.encode.backends import ORT_PROVIDERS as PROVIDERS
from recfeat.encode.backends import OnnxRuntimeBackend
from recfeat.encode.engine import BatchPlan
from recfeat.errors import OptionError

from .manifest import read_manifest, support_files_sha256, verify_folder

#: Token budget of one batch. Batches are cut from texts sorted by length and padded to
#: their longest: 300 Musical Instruments reviews at 16384 made 3 batches with 34% padding;
#: at 4096, 7 batches, 14% padding, 1.35x the seq/s of 16384 for the int8 export and 1.29x
#: for fp32, 1 thread (benchmarks/results/export_int8_batch_tokens.md). 2048 measured ~5%
#: faster still on that CPU; it is OpenVINO's budget (runtime_openvino.BATCH_TOKENS).
BATCH_TOKENS = 4096

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
            f"use --backend {manifest.get('runtime')} or re-export with `recfeat export --backend {runtime}`"
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
    """Shared by the ONNX Runtime and OpenVINO backends: folder, manifest, tokenizer; the
    batches go through the one encode loop (``recfeat.encode.engine``)."""

    runtime = "onnx"
    # Read lazily (validate, load) and dropped by set_params.
    _manifest = None
    _step = None
    _tokenizer = None
    _backend = None
    weights_options = ("path", "file", "precision")

    def validate(self) -> None:
        """Read the manifest and check the options against what is built into the graph."""
        m = read_manifest(self.path)
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
        step = choose_file(m, self.file, self._precision_for_choice(), self.runtime)
        self._check_weights(self._weights_sha256_of(m, step), f"{self.path} ({step['file']})")
        self._step, self._manifest = step, m

    def _weights_sha256_of(self, manifest: dict[str, Any], step: dict[str, Any]) -> str:
        """The recorded sha256 of the weights ``step`` runs (the fingerprint's weights_sha256)."""
        return manifest["files"][step["file"]]["sha256"]

    def _precision_for_choice(self) -> str | None:
        return self.precision

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            self.validate()
        return self._manifest

    @property
    def step(self) -> dict[str, Any]:
        """The manifest step whose file this encoder runs."""
        self.manifest  # noqa: B018  (reads and checks the folder once)
        return self._step

    @property
    def model_file(self) -> Path:
        return Path(self.path) / self.step["file"]

    @property
    def dim(self) -> int:
        return int(self.manifest["hidden_size"])

    @property
    def effective_max_length(self) -> int:
        return int(self.max_length or self.manifest["max_length"])

    @property
    def plan(self):
        return BatchPlan(self.batch_tokens, self.max_batch_size, 1, self.effective_max_length)

    def _files_to_verify(self) -> list[str]:
        name = self.step["file"]
        files = [name]
        recorded = self.manifest.get("files", {})
        for extra in (
            name + ".data",
            name[: -len(".xml")] + ".bin" if name.endswith(".xml") else None,
        ):
            if extra and extra in recorded:
                files.append(extra)
        return files

    _verified = False

    def verify_files(self) -> None:
        """Check the files this encoder reads against the manifest, once per instance: the
        model file run, its weights, every tokenizer file and config (``verify=False``
        skips it). Run before the first fingerprint too, so a run served entirely from the
        cache still refuses an edited folder."""
        if self.verify and not self._verified:
            verify_folder(self.path, self._files_to_verify())
            self._verified = True

    def load(self):
        """Verify the folder, load tokenizer and runtime backend (done by the first encode)."""
        if self._backend is None:
            import transformers

            self.verify_files()
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, use_fast=True)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            if self.manifest["source"].get("random_init"):
                print(
                    f"recfeat: warning: {self.path} was exported from RANDOM weights "
                    f"({self.manifest['source']['model']}); its vectors measure speed, not meaning",
                    file=sys.stderr,
                )
            self._tokenizer = tokenizer
            self._backend = self._make_backend()
        return self._backend

    def open_backend(self):
        """The runtime backend that runs this encoder's batches."""
        return self.load()

    @property
    def tokenizer(self):
        self.load()
        return self._tokenizer

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the vectors, from the verified manifest: the model file
        run (and its external weights), every tokenizer file and config
        (``tokenizer_files_sha256``), the tokenizer's settings, pooling, normalisation,
        max_length and precision. The cache keys on it, so an edited folder never gets the
        genuine folder's cached vectors (and an edited one is refused on load anyway)."""
        self.verify_files()
        m = self.manifest
        files = m["files"]
        companions = {rel: files[rel]["sha256"] for rel in self._files_to_verify()[1:]}
        return {
            "encoder": self.name,
            "backend": self.backend,
            "path": str(self.path),
            "weights_sha256": self._weights_sha256_of(m, self.step),
            "weights_data_sha256": companions or None,
            "tokenizer_files_sha256": support_files_sha256(m, None if self.verify else self.path),
            "padding_side": (m.get("tokenizer") or {}).get("padding_side"),
            "source_weights_sha256": m["source"]["weights_sha256"],
            "family": m["family"],
            "pooling": m["pooling"],
            "normalize": m["normalize"],
            "max_length": self.effective_max_length,
            "precision": self._fingerprint_precision(),
            "random_init": bool(m["source"].get("random_init")),
        }

    def _fingerprint_precision(self) -> str:
        return step_precision(self.step)

    def tokenize(self, texts: Sequence[str]):
        """Token ids of every text, truncated to the effective ``max_length``, with each
        text's untruncated length and the tokens truncation dropped (``TokenBatch``)."""
        return engine.tokenize(self.tokenizer, engine.check_texts(texts), self.effective_max_length)

    def encode(self, texts: Sequence[str], progress: bool = False, per_text: bool = False) -> np.ndarray:
        """float32 [len(texts), dim], rows in input order; stats in ``last_stats`` (with
        ``per_text``: also ``n_kept`` / ``n_dropped`` per text, see ``engine.encode``)."""
        texts = engine.check_texts(texts)
        if not texts:
            out, self.last_stats = engine.empty(self.dim)
            return out
        backend = self.open_backend()
        out, self.last_stats = engine.encode(
            texts, tokenizer=self._tokenizer, backend=backend, plan=self.plan, progress=progress,
            per_text=per_text,
        )
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
        batch_tokens: int = BATCH_TOKENS,
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

    def validate(self) -> None:
        if self.provider not in PROVIDERS:
            raise OptionError(
                f"unknown provider {self.provider!r}; valid providers: {', '.join(PROVIDERS)}"
            )
        if self.precision is not None and self.precision not in ("fp32", "fp16", "int8"):
            raise OptionError(
                f"precision {self.precision!r} is not available with ONNX Runtime; valid: fp32, "
                "fp16, int8 (for bf16 use the openvino backend)"
            )
        super().validate()

    def _make_backend(self):
        return OnnxRuntimeBackend(
            self.model_file, dim=self.dim, output=self.manifest["output"],
            threads=self.threads, provider=self.provider,
        )  # fmt: skip
