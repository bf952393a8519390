"""Dataset loaders: a path on disk -> ``recfeat.data.recdata.RecData``."""

from __future__ import annotations

from pathlib import Path

from recfeat.data.recdata import RecData

from .base import Component


class Dataset(Component):
    """Subclasses implement ``load``; ``sniff`` lets ``--format auto`` pick a loader."""

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """True when this loader recognises ``path`` (a file or folder)."""
        return False

    def load(self, path: str | Path) -> RecData:
        raise NotImplementedError
