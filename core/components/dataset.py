"""Dataset loaders: a path on disk -> ``recfeat.data.recdata.RecData``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recfeat.data.recdata import RecData
from recfeat.errors import DataError

from .base import Component


class Dataset(Component):
    """Subclasses implement ``load``; ``sniff`` lets ``--format auto`` pick a loader."""

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """True when this loader recognises ``path`` (a file or folder)."""
        return False

    def load(self, path: str | Path) -> RecData:
        raise NotImplementedError


def load_dataset(path: str | Path | None, format: str = "auto", **options: Any) -> RecData:
    """Load ``path`` as ``recfeat.data.recdata.RecData`` through the dataset registry.

    ``format`` is a registered dataset name or alias, or ``"auto"``
    (``recfeat.data.formats.detect_format``). ``options`` go to the loader (validated; unknown
    ones are rejected with the valid list); options whose value is None are dropped, so
    callers can pass "not given" through. ``path`` may be None only for the synthetic sample
    (``format="sample"``). Core code calls this one, never ``recfeat.plugins.datasets``.
    """
    from recfeat.data.formats import detect_format
    from recfeat.plugin.registry import get_registry

    options = {k: val for k, val in options.items() if val is not None}
    reg = get_registry("dataset")
    if format in (None, "", "auto"):
        if path is None:
            raise DataError(
                "no input path given; pass a path, or format='sample' for the synthetic sample"
            )
        format = detect_format(path)
    loader = reg.create(format, **options)
    if path is None and reg.entry(format).name != "synthetic-books":
        raise DataError(f"format {format!r} needs an input path")
    return loader.load(path)
