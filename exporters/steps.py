"""What one export step produced, and which cosine threshold an fp32-grade step is held to.

Shared by ``pipeline`` (which runs the steps) and ``openvino_export`` (which adds its own),
so neither imports the other's internals.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .validate import StepValidation


@dataclasses.dataclass
class Step:
    name: str
    file: str
    settings: dict[str, Any]
    validation: StepValidation


def fp_threshold(spec: Any) -> float | None:
    """--min-cosine targets the lossy step when there is one (quantisation); fp32 steps then
    keep their strict default. Without quantisation it applies to every step.

    ``spec`` is a ``pipeline.ExportSpec`` (only ``quantize`` and ``min_cosine`` are read)."""
    return None if spec.quantize else spec.min_cosine
