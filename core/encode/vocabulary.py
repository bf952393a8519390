"""One backend vocabulary for Python, ``extract``, ``export``, ``bench``, ``--backend auto``
and config files.

A way to run an encoder is a **backend** (``torch``, ``onnx`` = ONNX Runtime, ``openvino``)
plus a **precision** (``fp32``, ``bf16``, ``fp16``, ``int8``) and, for int8 ONNX, a
**quantization** (``dynamic`` or ``static``); fp32 ONNX may also name an optimisation level
(``o2``). The model is a registry name or Hugging Face model for ``torch``, and an exported
folder (``recfeat export``; it holds ``manifest.json``) for ``onnx`` and ``openvino``.

In lists (``bench --backends``) a choice is spelled ``BACKEND-PRECISION[-VARIANT]``:
``torch-fp32``, ``torch-bf16``, ``onnx-int8``, ``onnx-int8-static``, ``onnx-fp32-o2``,
``openvino-bf16``, ``openvino-int8`` (NNCF, calibrated on the user's corpus; its float parts
run in bf16 where the CPU has bf16 units). Each backend and label has exactly this one spelling.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from recfeat.errors import OptionError, UsageError, closest
from recfeat.plugin.registry import get_registry

BACKENDS = ("torch", "onnx", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
QUANTIZATIONS = ("dynamic", "static")
#: What each backend can run; int8 ONNX is dynamic unless ``static`` is named.
PRECISIONS_OF = {
    "torch": ("fp32", "bf16", "fp16"),
    "onnx": ("fp32", "fp16", "int8"),
    "openvino": ("fp32", "bf16", "int8"),
}
VARIANTS = ("o1", "o2", "o3", *QUANTIZATIONS)


def check_backend(name: str) -> str:
    """The canonical backend name for ``name`` (any letter case), or OptionError."""
    key = name.strip().lower()
    if key not in BACKENDS:
        raise OptionError(
            f"unknown backend {name!r}.{closest(key, BACKENDS)} Valid backends: {', '.join(BACKENDS)}"
        )
    return key


def check_precision(backend: str, precision: str | None) -> str | None:
    if precision is None:
        return None
    if precision not in PRECISIONS_OF[backend]:
        raise OptionError(
            f"precision {precision!r} is not available with {backend}; valid: "
            f"{', '.join(PRECISIONS_OF[backend])}"
        )
    return precision


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    """backend + precision (+ variant: an ORT optimisation level or int8 quantization)."""

    backend: str
    precision: str
    variant: str | None = None

    @property
    def label(self) -> str:
        return "-".join(p for p in (self.backend, self.precision, self.variant) if p)

    @property
    def quantization(self) -> str | None:
        if self.precision != "int8":
            return None
        return self.variant if self.variant in QUANTIZATIONS else "dynamic"


def parse_choice(label: str) -> BackendChoice:
    """``'onnx-int8-static'`` -> BackendChoice('onnx', 'int8', 'static')."""
    text = label.strip().lower()
    parts = text.split("-")
    if len(parts) < 2 or len(parts) > 3:
        raise OptionError(
            f"{label!r} is not BACKEND-PRECISION[-VARIANT] (e.g. torch-bf16, onnx-int8-static)"
        )
    backend = check_backend(parts[0])
    precision = check_precision(backend, parts[1])
    variant = parts[2] if len(parts) == 3 else None
    if variant is not None and variant not in VARIANTS:
        raise OptionError(
            f"unknown variant {variant!r} in {label!r}; valid: {', '.join(VARIANTS)}"
        )
    return BackendChoice(backend, precision, variant)


def is_export_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder written by ``recfeat export``."""
    p = Path(str(path)).expanduser()
    return p.is_dir() and (p / "manifest.json").is_file()


def resolve_encoder(
    model: str | None = None, /, *, backend: str | None = None, precision: str | None = None,
    **options: Any,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """``(registry name, options)`` for an encoder given in the backend vocabulary.

    ``model`` is a registry encoder name (``minilm``, ``gpt2``), a Hugging Face model (hub
    name or folder) or an export folder. An export folder runs on the backend its manifest
    names unless ``backend`` says otherwise; anything else runs on torch.
    """
    model = model or "minilm"
    backend = check_backend(backend) if backend else None
    if "model" in options:  # a registry encoder with its model option (a config's [encoder])
        if backend not in (None, "torch"):
            raise UsageError(
                f"backend {backend!r} runs an exported model; give the export folder as the "
                "model, not an encoder's model option"
            )
        if precision is not None:
            options["precision"] = precision
        return model, options
    if precision is not None:
        options["precision"] = precision
    if is_export_folder(model):
        if backend is None:
            import json

            # Untrusted input: an unreadable or foreign manifest picks onnx here, and the
            # encoder's own manifest check (read_manifest) then says what is wrong in one line.
            try:
                manifest = json.loads((Path(model).expanduser() / "manifest.json").read_bytes())
            except (OSError, ValueError, RecursionError):
                manifest = None
            runtime = manifest.get("runtime") if isinstance(manifest, dict) else None
            backend = runtime if isinstance(runtime, str) else "onnx"
        if backend == "torch":
            raise UsageError(
                f"{model} is an export folder (ONNX/OpenVINO); for torch give the model it was "
                "exported from, or use backend='onnx' / 'openvino'"
            )
        check_precision(backend, precision)
        return backend, {"path": str(model), **options}
    if backend not in (None, "torch"):
        raise UsageError(
            f"backend {backend!r} runs an exported model: make one with `recfeat export "
            f"--encoder {model} --out DIR` (or recfeat.export) and pass that folder as the model"
        )
    # A hub id ("org/name") or an existing folder is a Hugging Face model; any other word is
    # a registry name, so a typo gets "unknown encoder ... did you mean" instead of a download.
    if model not in get_registry("encoder") and ("/" in model or Path(model).expanduser().exists()):
        return "hf", {"model": model, **options}
    return model, options
