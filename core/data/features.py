"""Feature files: Parquet with id columns plus one fixed-size-list float32 ``vector`` column,
and a ``<name>.manifest.json`` beside it describing how the vectors were made.

Every stage that writes or reads features goes through here, so the layout has one owner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat.atomic import atomic_path, write_text
from recfeat.errors import DataError
from recfeat.jsonable import jsonable

VECTOR_COLUMN = "vector"


def manifest_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix == ".parquet":
        return path.with_suffix(".manifest.json")
    return path.with_name(path.name + ".manifest.json")


def write_features(
    path: str | Path, ids: pd.DataFrame, vectors: np.ndarray, manifest: dict[str, Any]
) -> Path:
    """Write ``ids`` (one row per vector) and ``vectors`` (n, dim) atomically, then the manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(ids) != vectors.shape[0]:
        raise DataError(
            f"features: {len(ids)} ids but vectors of shape {vectors.shape}; they must match row for row"
        )
    dim = int(vectors.shape[1])
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, dim)
    table = pa.Table.from_pandas(ids.reset_index(drop=True), preserve_index=False)
    table = table.append_column(VECTOR_COLUMN, column)
    meta = {**manifest, "rows": int(len(ids)), "dim": dim, "id_columns": list(ids.columns)}
    table = table.replace_schema_metadata({b"recfeat": json.dumps(jsonable(meta)).encode()})
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    write_text(manifest_path(path), json.dumps(jsonable(meta), indent=2) + "\n")
    return path


def read_features(path: str | Path) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Return ``(ids, vectors float32 (n, dim), manifest)``; the manifest comes from the
    Parquet metadata, so a file copied without its sidecar still describes itself."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DataError(f"features file {path} does not exist; create it with `recfeat extract`")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read features file {path}: {exc}") from None
    if VECTOR_COLUMN not in table.column_names:
        raise DataError(
            f"{path} has no {VECTOR_COLUMN!r} column (columns: {', '.join(table.column_names)}); "
            "is it a recfeat features file?"
        )
    raw_meta = (table.schema.metadata or {}).get(b"recfeat")
    manifest = json.loads(raw_meta) if raw_meta else {}
    col = table.column(VECTOR_COLUMN).combine_chunks()
    dim = col.type.list_size if pa.types.is_fixed_size_list(col.type) else None
    if dim is None:
        vectors = np.asarray(col.to_pylist(), dtype=np.float32)
    else:
        vectors = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    ids = table.drop([VECTOR_COLUMN]).to_pandas()
    return ids, vectors, manifest


class Features:
    """Vectors keyed by id (item or user ids as strings), for models to look up.

    ``lookup(ids)`` returns the matrix for ``ids`` and a mask of which ids had a vector;
    missing rows are zeros, so callers decide the policy (and report the count).
    """

    def __init__(self, ids, vectors: np.ndarray, manifest: dict[str, Any] | None = None):
        self.ids = np.asarray([str(i) for i in ids], dtype=object)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.ids) != len(self.vectors):
            raise DataError(f"features: {len(self.ids)} ids but vectors of shape {self.vectors.shape}")
        self.manifest = manifest or {}
        self._index = {k: i for i, k in enumerate(self.ids)}

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, key) -> bool:
        return str(key) in self._index

    def lookup(self, ids) -> tuple[np.ndarray, np.ndarray]:
        rows = np.fromiter((self._index.get(str(i), -1) for i in ids), dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        out[found] = self.vectors[rows[found]]
        return out, found

    @classmethod
    def from_file(cls, path: str | Path, id_column: str | None = None) -> Features:
        """Load a features file; ``id_column`` defaults to the first id column in it."""
        ids, vectors, manifest = read_features(path)
        col = id_column or (list(ids.columns)[0] if len(ids.columns) else None)
        if col is None or col not in ids.columns:
            raise DataError(
                f"{path}: no id column {id_column!r} (columns: {', '.join(ids.columns)})"
            )
        return cls(ids[col].astype(str).to_numpy(), vectors, manifest)
