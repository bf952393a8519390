"""Text encoders: texts -> float32 matrix, one row per text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Component


class Encoder(Component):
    """Subclasses implement ``encode`` and ``dim`` and set ``backend`` ('torch', 'onnx', ...).

    ``fingerprint()`` identifies everything that changes the vectors (weights hash, pooling,
    max_length, backend, precision); the feature cache and manifests key on it.
    """

    backend: str = "none"

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        return {"encoder": self.name, "backend": self.backend, **self.get_options()}
