"""Exporters: turn an encoder (pooling included) into a deployable artifact folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Component


class Exporter(Component):
    """Subclasses implement ``export`` and return the manifest they wrote."""

    def export(self, encoder, out_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError
