"""Plain lists of texts from a user's file (``recfeat export --calibration``): the corpus an
export is validated and calibrated on, so it matches the texts the model will really see."""

from __future__ import annotations

from pathlib import Path


def read_texts(path: str | Path, fmt: str = "auto", text_column: str | None = None) -> list[str]:
    """Non-blank texts of a .txt file (one per line) or of any dataset format (its review
    texts, else item texts, else user texts)."""
    from recfeat.errors import DataError

    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"--calibration {path} does not exist; check the path")
    if fmt == "text" or (fmt == "auto" and p.suffix == ".txt"):
        lines = p.read_text(encoding="utf-8", errors="strict").splitlines()
        return [line for line in lines if line.strip()]
    from recfeat.components.dataset import load_dataset

    data = load_dataset(p, fmt)
    for level in ("review", "item", "user"):
        table = data.texts(level)
        if table is not None and "text" in table.columns and len(table):
            return [t for t in table["text"].astype(str).tolist() if t.strip()]
    raise DataError(f"--calibration {path} holds no texts; pass a file with a text column")
