"""Training interactions given on their own (``recfeat extract --train``): profiles built
from them only, so a user or item vector never sees held-out evaluation rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_train(path: str | Path, interactions) -> Any:
    """Training interactions from a split file saved by recfeat (``.json``, resolved against
    ``interactions``), or a table with user and item columns (.csv, .parquet, .jsonl)."""
    import pandas as pd

    from recfeat.errors import DataError

    p = Path(path)
    if p.suffix == ".json":
        from recfeat.evaluation.splits import load_split

        return load_split(p, interactions).train
    try:
        if p.suffix == ".parquet":
            table = pd.read_parquet(p)
        elif p.suffix in (".jsonl", ".ndjson"):
            table = pd.read_json(p, lines=True, dtype=False)
        else:
            table = pd.read_csv(p, dtype=str)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read --train {path}: {exc}") from None
    return table
