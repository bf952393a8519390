"""The ``openvino`` encoder backend: an exported folder's OpenVINO IR on the CPU.

``precision`` ``bf16`` (default; AMX/AVX-512-bf16 CPUs run it natively) or ``fp32`` is the
inference hint; ``int8`` runs the NNCF-quantised IR when the export made one (its float
parts in bf16 where the CPU has bf16 units, else fp32).
"""

from __future__ import annotations

from typing import Any

from recfeat.encode.backends import OpenVinoBackend, compile_openvino
from recfeat.errors import OptionError
from recfeat.machine import has_bf16

from .runtime_onnx import ExportedEncoder

PRECISIONS = ("bf16", "fp32", "int8")
#: Token budget of one batch. Batches are cut from texts sorted by length and padded to
#: their longest, so a large budget spans a wide range of lengths: at 16384 (the ONNX
#: Runtime default) 500 Musical Instruments reviews made 5 batches with 21% padding, 1.27x
#: the model FLOPs of the texts alone, and too few batches to keep every THROUGHPUT stream
#: busy; plain OpenVINO (32 texts a batch) paid 1.07x and ran faster. At 2048: 28 batches,
#: 4% padding, 1.04x (benchmarks/bench_openvino_gap.py, benchmarks/results/openvino_gap.md).
BATCH_TOKENS = 2048


class OpenVinoEncoder(ExportedEncoder):
    """An exported folder (``recfeat export --backend openvino``) run by OpenVINO on the CPU."""

    name = "openvino"
    backend = "openvino"
    runtime = "openvino"

    def __init__(
        self,
        *,
        path: str,
        file: str | None = None,
        precision: str = "bf16",
        pooling: str | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        batch_tokens: int = BATCH_TOKENS,
        max_batch_size: int = 256,
        verify: bool = True,
        mode: str = "throughput",
    ):
        self.path = path
        self.file = file
        self.precision = precision
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.threads = threads
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.verify = verify
        # OpenVINO performance hint: "throughput" (streams fed asynchronously; extraction)
        # or "latency" (every core on one request; single texts). Same vectors either way.
        self.mode = mode

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise OptionError(
                f"unknown precision {self.precision!r} for openvino; valid: {', '.join(PRECISIONS)}"
            )
        if self.mode not in ("throughput", "latency"):
            raise OptionError(
                f"unknown OpenVINO mode {self.mode!r}; valid: throughput, latency"
            )
        super().validate()

    def _precision_for_choice(self) -> str | None:
        return None if self.file else self.precision

    def _hint(self) -> str:
        if self.precision == "int8":
            # The int8 IR's float parts: bf16 only where this CPU has bf16 units (the folder
            # may have been exported on another machine).
            wanted = self.step["settings"].get("inference_precision", "bf16")
            return wanted if wanted == "fp32" or has_bf16() else "fp32"
        return self.precision

    def _fingerprint_precision(self) -> str:
        return self.precision

    def _make_backend(self):
        compiled = compile_openvino(self.model_file, self._hint(), self.threads, self.mode)
        return OpenVinoBackend(compiled, dim=self.dim)

    def _weights_sha256_of(self, manifest: dict[str, Any], step: dict[str, Any]) -> str:
        # The IR's weights live in the .bin beside the .xml.
        bin_name = step["file"][: -len(".xml")] + ".bin"
        recorded = manifest["files"].get(bin_name)
        return recorded["sha256"] if recorded else super()._weights_sha256_of(manifest, step)
