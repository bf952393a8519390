"""Split files on disk, and training interactions given on their own.

A split is saved as JSON row assignments (``recfeat evaluate --save-split``): the positions
of its test rows in the interactions table, with a fingerprint of the (user, item) sequence
so it is never applied to other data. The evaluation's splits module makes splits and
rebuilds them from these files; ``read_train`` (``recfeat extract --train``) takes the training part
of one, or a table of (user, item) pairs, so profiles are built from training rows only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat.atomic import write_text
from recfeat.data import checks
from recfeat.data.validation import check_regular
from recfeat.errors import DataError

FORMAT = "recfeat-split"
FORMAT_VERSION = 1


def check_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """``interactions`` ready to split: user and item columns as strings, a fresh index, no
    repeated (user, item) pair, at least two rows (a DataError naming the fix otherwise)."""
    missing = [c for c in ("user", "item") if c not in interactions.columns]
    if missing:
        raise DataError(f"split: interactions lack column(s) {', '.join(missing)}")
    if len(interactions) < 2:
        raise DataError(f"split: need at least 2 interactions, got {len(interactions)}")
    inter = interactions.reset_index(drop=True)
    dup = inter.duplicated(["user", "item"])
    if dup.any():
        raise DataError(
            f"split: {int(dup.sum())} repeated (user, item) pairs; de-duplicate the interactions first "
            "(the dataset loaders do)"
        )
    return inter.assign(user=inter["user"].astype(str), item=inter["item"].astype(str))


def divide(inter: pd.DataFrame, test_rows: np.ndarray, kind: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) rows of ``inter`` (from ``check_interactions``) for the ``test_rows``
    positions; a split that leaves either side empty is a DataError."""
    mask = np.zeros(len(inter), dtype=bool)
    mask[test_rows] = True
    train, test = inter[~mask], inter[mask]
    if len(train) == 0 or len(test) == 0:
        raise DataError(
            f"{kind} split left {len(train)} train and {len(test)} test rows; use more data"
        )
    return train, test


def fingerprint(interactions: pd.DataFrame) -> str:
    """Hash of the (user, item) sequence, so a saved split is never applied to other data."""
    h = hashlib.sha256()
    for col in ("user", "item"):
        h.update("\x1f".join(interactions[col].astype(str)).encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def write_split_file(path: str | Path, interactions: pd.DataFrame, *, kind: str, seed: int,
                     test_fraction: float, leave_last: bool, test_rows) -> Path:  # fmt: skip
    """Write a split's row assignments (test row positions) as JSON, atomically."""
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": kind,
        "seed": seed,
        "test_fraction": test_fraction,
        "leave_last": leave_last,
        "rows": int(len(interactions)),
        "fingerprint": fingerprint(interactions.reset_index(drop=True)),
        "test_rows": [int(x) for x in test_rows],
    }
    path = Path(path)
    write_text(path, json.dumps(payload) + "\n")
    return path


# field -> the types it may hold (a hand-edited or truncated file fails here, by name)
_SPLIT_FIELDS = {
    "kind": (str,), "seed": (int,), "test_fraction": (int, float), "leave_last": (bool,),
    "rows": (int,), "fingerprint": (str,), "test_rows": (list,),
}  # fmt: skip


def _check_split_fields(payload: dict, path: Path) -> None:
    for field, types in _SPLIT_FIELDS.items():
        value = payload.get(field)
        ok = field in payload and isinstance(value, types) and (bool in types or not isinstance(value, bool))
        if field == "test_rows" and ok:
            ok = all(isinstance(x, int) and not isinstance(x, bool) for x in value)
        if not ok:
            what = "missing" if field not in payload else f"not {' or '.join(t.__name__ for t in types)}"
            raise DataError(
                f"split file {path}: field {field!r} is {what}; the file was edited or cut "
                "short: make a new split with --save-split"
            )


def read_split_file(path: str | Path, interactions: pd.DataFrame,
                    ) -> tuple[pd.DataFrame, dict[str, Any], np.ndarray]:  # fmt: skip
    """``(interactions checked, the file's fields, test row positions)`` of a split file
    saved over the same ``interactions`` (checked by fingerprint)."""
    path = checks.path(path, "--load-split", what="a split file path")
    check_regular(path, "split file")  # a FIFO would block read_text; a split file is read whole
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read split file {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path} is not a recfeat split file; write one with --save-split")
    _check_split_fields(payload, path)
    inter = check_interactions(interactions)
    if payload["rows"] != len(inter) or payload["fingerprint"] != fingerprint(inter):
        raise DataError(
            f"split file {path} was made for other interactions ({payload['rows']} rows); "
            "make a new split for this data"
        )
    rows = np.asarray(payload["test_rows"], dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(inter)):
        raise DataError(
            f"split file {path}: test_rows hold positions outside 0..{len(inter) - 1}; the file "
            "was edited: make a new split with --save-split"
        )
    return inter, payload, rows


# -- training interactions given on their own ----------------------------------------------
def read_train(path: str | Path, interactions: pd.DataFrame) -> pd.DataFrame:
    """Training interactions given on their own (``recfeat extract --train``: profiles built
    from them only, so a user or item vector never sees held-out evaluation rows): from a
    split file saved by recfeat (``.json``, resolved against ``interactions``), or a table
    with user and item columns (.csv, .parquet, .jsonl).

    A table must name (user, item) pairs of ``interactions``: one that matches none (made
    from another dataset, or with other id columns) is a DataError, not an empty result."""
    p = checks.path(path, "--train", what="a split .json or a user,item table path")
    if not p.exists():
        raise DataError(f"--train {path} does not exist; check the path")
    if p.is_dir():
        raise DataError(f"--train {path} is a folder; give a split .json or a .csv/.parquet table")
    if p.suffix == ".json":
        inter, payload, rows = read_split_file(p, interactions)
        return divide(inter, rows, payload["kind"])[0]
    check_regular(p, "--train")
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
