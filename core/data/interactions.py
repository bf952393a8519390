"""Training interactions given on their own (``recfeat extract --train``): profiles built
from them only, so a user or item vector never sees held-out evaluation rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_train(path: str | Path, interactions) -> Any:
    """Training interactions from a split file saved by recfeat (``.json``, resolved against
    ``interactions``), or a table with user and item columns (.csv, .parquet, .jsonl).

    A table must name (user, item) pairs of ``interactions``: one that matches none (made
    from another dataset, or with other id columns) is a DataError, not an empty result."""
    import pandas as pd

    from recfeat.errors import DataError

    p = Path(path)
    if not p.exists():
        raise DataError(f"--train {path} does not exist; check the path")
    if p.is_dir():
        raise DataError(f"--train {path} is a folder; give a split .json or a .csv/.parquet table")
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
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot read --train {path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read --train {path}: {first}") from None
    missing = [c for c in ("user", "item") if c not in table.columns]
    if missing:
        raise DataError(
            f"--train {path} has no {' or '.join(missing)} column (columns: "
            f"{', '.join(map(str, table.columns))}); it needs user and item columns"
        )
    table = table.assign(user=table["user"].astype(str), item=table["item"].astype(str))
    known = pd.MultiIndex.from_arrays(
        [interactions["user"].astype(str), interactions["item"].astype(str)]
    )
    given = pd.MultiIndex.from_arrays([table["user"], table["item"]])
    matched = int(given.isin(known).sum())
    if matched == 0:
        example = f"({table['user'].iloc[0]!r}, {table['item'].iloc[0]!r})" if len(table) else "none"
        raise DataError(
            f"--train {path}: none of its {len(table)} (user, item) rows is an interaction of "
            f"the dataset (first: {example}); pass the training part of this dataset's split"
        )
    return table
