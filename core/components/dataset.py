"""Dataset loaders: a path on disk -> ``recfeat.data.recdata.RecData``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recfeat.data.formats import detect_format
from recfeat.data.recdata import RecData
from recfeat.data.validation import check_regular
from recfeat.errors import DataError
from recfeat.plugin.registry import get_registry

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


def read_texts(path: str | Path, fmt: str = "auto", text_column: str | None = None) -> list[str]:
    """Non-blank texts of a .txt file (one per line) or of any dataset format (its review
    texts, else item texts, else user texts): the corpus ``recfeat export --calibration``
    validates and calibrates on, so it matches the texts the model will really see."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"--calibration {path} does not exist; check the path")
    check_regular(p, "--calibration")  # a FIFO would block the read below
    if fmt == "text" or (fmt == "auto" and p.suffix == ".txt"):
        lines = p.read_text(encoding="utf-8", errors="strict").splitlines()
        return [line for line in lines if line.strip()]
    data = load_dataset(p, fmt)
    for level in ("review", "item", "user"):
        table = data.texts(level)
        if table is not None and "text" in table.columns and len(table):
            return [t for t in table["text"].astype(str).tolist() if t.strip()]
    raise DataError(f"--calibration {path} holds no texts; pass a file with a text column")
