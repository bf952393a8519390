"""Feature files: Parquet with id columns plus one fixed-size-list float32 ``vector`` column,
and a ``<name>.manifest.json`` beside it describing how the vectors were made; and what they
become in memory: ``Features`` (vectors keyed by item or user id) or ``ReviewVectors`` (one
vector per (user, item) review, the leakage-safe text input for review-only data).

Every stage that writes or reads features goes through here, so the layout has one owner.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat.atomic import atomic_files, write_file
from recfeat.data import checks
from recfeat.errors import DataError, UsageError
from recfeat.jsonable import jsonable

VECTOR_COLUMN = "vector"


def manifest_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix == ".parquet":
        return path.with_suffix(".manifest.json")
    return path.with_name(path.name + ".manifest.json")


def token_features_path(path: str | Path) -> Path:
    """``<stem>.tokens.npz``: the sparse token features beside a features file."""
    path = Path(path)
    stem = path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.name
    return path.with_name(stem + ".tokens.npz")


def write_features(
    path: str | Path, ids: pd.DataFrame, vectors: np.ndarray, manifest: dict[str, Any],
    *, extra: dict[Path, Any] | None = None,
) -> Path:
    """Write ``ids`` (one row per vector), ``vectors`` (n, dim) and the manifest, plus the
    ``extra`` files (``{path: writer(temporary path)}``), committed as one unit
    (``recfeat.atomic.atomic_files``: the complete new set or the complete old one).

    The Parquet bytes depend only on the table and the manifest (no timestamps), so the
    same features and manifest give a byte-identical file."""
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
    writers = {
        path: lambda tmp: pq.write_table(table, tmp),
        manifest_path(path): lambda tmp: write_file(
            tmp, (json.dumps(jsonable(meta), indent=2) + "\n").encode()
        ),
        **(extra or {}),
    }
    with atomic_files(list(writers)) as temps:
        for final, write in writers.items():
            write(temps[final])
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
    try:
        manifest = json.loads(raw_meta) if raw_meta else {}
    except ValueError:
        raise DataError(
            f"{path}: its recfeat metadata is not valid JSON; re-create it with `recfeat extract`"
        ) from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: its recfeat metadata is not a table; re-create it with `recfeat extract`")
    col = table.column(VECTOR_COLUMN).combine_chunks()
    vectors = _vectors(col, path)
    check_vectors(vectors, manifest, path)
    ids = table.drop([VECTOR_COLUMN]).to_pandas()
    check_ids(ids, manifest, path)
    return ids, vectors, manifest


# level -> the id columns a file of that level is keyed by
LEVEL_KEYS = {"review": ("user", "item"), "item": ("item",), "user": ("user",)}


def check_ids(ids: pd.DataFrame, manifest: dict[str, Any], path) -> None:
    """The manifest must say the level (whether rows are reviews, items or users decides
    what evaluation may do with them: a review-level file passed off as item vectors would
    leak held-out reviews), the id columns must fit it, and no id may appear twice."""
    level = manifest.get("level")
    if level not in LEVEL_KEYS:
        what = "has no recfeat metadata" if not manifest else f"metadata has level {level!r}"
        raise DataError(
            f"{path}: {what}; a features file must say its level (review, item or user) so "
            "evaluation knows what its rows are; re-create it with `recfeat extract`"
        )
    keys = LEVEL_KEYS[level]
    missing = [k for k in keys if k not in ids.columns]
    if missing:
        raise DataError(
            f"{path}: level {level!r} but no {' or '.join(missing)} id column (columns: "
            f"{', '.join(map(str, ids.columns))}); re-create it with `recfeat extract`"
        )
    dup = ids[list(keys)].astype(str).duplicated()
    if dup.any():
        first = tuple(ids.loc[dup.idxmax(), list(keys)].astype(str))
        shown = first[0] if len(first) == 1 else first
        raise DataError(
            f"{path}: {int(dup.sum())} duplicate {'/'.join(keys)} ids (first: {shown!r}, row "
            f"{int(dup.idxmax())}); each {level} needs exactly one vector: re-create the file"
        )


def _vectors(col, path: Path) -> np.ndarray:
    """The vector column as float32 (n, dim); ragged or non-numeric lists are a DataError."""
    import pyarrow as pa

    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
            or pa.types.is_fixed_size_list(col.type)):  # fmt: skip
        raise DataError(
            f"{path}: column {VECTOR_COLUMN!r} holds {col.type}, not lists of numbers; "
            "is it a recfeat features file?"
        )
    if not (pa.types.is_floating(col.type.value_type) or pa.types.is_integer(col.type.value_type)):
        raise DataError(
            f"{path}: vectors hold {col.type.value_type}, not numbers; re-create the file "
            "with `recfeat extract`"
        )
    if col.null_count:
        raise DataError(
            f"{path}: {col.null_count} rows have no vector (null); re-create the file with "
            "`recfeat extract`"
        )
    if pa.types.is_fixed_size_list(col.type):
        dim = col.type.list_size
    else:
        lengths = np.asarray(col.value_lengths(), dtype=np.int64)
        dim = int(lengths[0]) if len(lengths) else 0
        if len(lengths) and (lengths != dim).any():
            row = int(np.flatnonzero(lengths != dim)[0])
            raise DataError(
                f"{path}: vectors differ in length (row 0 has {dim} values, row {row} has "
                f"{int(lengths[row])}); every vector must have the same dimension"
            )
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(-1, dim) if dim else np.zeros((len(col), 0), np.float32)


def check_vectors(vectors: np.ndarray, manifest: dict[str, Any], path) -> None:
    """Vectors must be what their manifest says (dim, rows), non-empty and finite."""
    n, dim = vectors.shape
    if n == 0 or dim == 0:
        raise DataError(f"{path}: holds no vectors ({n} rows of dimension {dim}); re-run `recfeat extract`")
    for key, actual in (("dim", dim), ("rows", n)):
        declared = manifest.get(key)
        if declared is not None and declared != actual:
            raise DataError(
                f"{path}: its manifest says {key} {declared!r} but the file has {actual}; the "
                "file was changed after `recfeat extract` wrote it: re-create it"
            )
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: {int(bad.sum())} of {n} vectors contain NaN or infinite values (first: "
            f"row {first}); re-create them with `recfeat extract` (check the encoder's precision)"
        )


def check_matches_dataset(data, *features, min_share: float = 0.1) -> None:
    """Features keyed by ids the dataset does not have (extracted from another dataset)
    are refused: every model would then see zero vectors and show n/a. ``features`` are
    ``Features`` (item or user ids) or review vectors (``users``/``items`` per row); None
    is skipped. Refused when nothing matches, or when under ``min_share`` of the feature
    ids are in the dataset AND under ``min_share`` of the dataset's ids have a vector (a
    subset either way is fine)."""
    for feats in features:
        if feats is None:
            continue
        manifest = getattr(feats, "manifest", {}) or {}
        where = manifest.get("path") or "the features given"
        if hasattr(feats, "ids"):
            col = manifest.get("id_column", "item")
            col = col if col in ("item", "user") else "item"
            known = set(data.interactions[col].astype(str))
            extra = data.items if col == "item" else data.users
            if extra is not None and col in extra.columns:
                known |= set(extra[col].astype(str))
            ids = set(map(str, feats.ids))
            what = f"{col} ids"
        else:  # one vector per review: (user, item) pairs
            inter = data.interactions
            known = set(zip(inter["user"].astype(str), inter["item"].astype(str), strict=True))
            ids = set(zip(map(str, feats.users), map(str, feats.items), strict=True))
            what = "(user, item) pairs"
        source = manifest.get("dataset") if isinstance(manifest.get("dataset"), dict) else {}
        made_from, rows = source.get("name"), source.get("interactions")
        if made_from and made_from != data.name and rows is not None and rows != len(data.interactions):
            # ids alone can agree by accident (MovieLens 100k and latest both number movies 1, 2...)
            raise DataError(
                f"features {where} were extracted from dataset {made_from} ({rows} interactions), "
                f"not from {data.name} ({len(data.interactions)}); extract features from this one"
            )
        matched = len(ids & known)
        if not ids or not known:
            continue
        if matched == 0 or (matched / len(ids) < min_share and matched / len(known) < min_share):
            example = next(iter(sorted(ids - known, key=str)), None)
            raise DataError(
                f"features {where} match {matched} of their {len(ids)} {what} in dataset "
                f"{data.name} ({len(known)} {what}; e.g. {example!r} is not in it): they were "
                "extracted from another dataset; extract features from this one"
            )



def lookup_rows(index: dict[str, int], vectors: np.ndarray, ids) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``vectors`` for ``ids`` (through ``index``: id -> row), zeros where an id
    is unknown, and a mask of the ids found."""
    rows = np.fromiter((index.get(str(i), -1) for i in ids), dtype=np.int64)
    found = rows >= 0
    out = np.zeros((len(rows), vectors.shape[1]), dtype=np.float32)
    out[found] = vectors[rows[found]]
    return out, found

class Features:
    """Vectors keyed by id (item or user ids as strings), for models to look up.

    ``lookup(ids)`` returns the matrix for ``ids`` and a mask of which ids had a vector;
    missing rows are zeros, so callers decide the policy (and report the count).
    """

    def __init__(self, ids, vectors: np.ndarray, manifest: dict[str, Any] | None = None,
                 tokens: Any = None, token_columns: Any = None):  # fmt: skip
        # a script builds these by hand: wrong types are one line here, not a TypeError later
        if isinstance(ids, (str, bytes, dict)) or not hasattr(ids, "__iter__"):
            raise checks.refuse("Features ids", "a list of ids", ids, "pass one id per row of vectors")
        if manifest is not None and not isinstance(manifest, dict):
            raise checks.refuse("Features manifest", "a dict (or None)", manifest, "pass e.g. {}")
        self.ids = np.asarray([str(i) for i in ids], dtype=object)
        try:
            self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise checks.refuse("Features vectors", "a 2-D array of numbers", vectors,
                                "pass a numpy array of shape (ids, dim)") from None  # fmt: skip
        if self.vectors.ndim != 2 or len(self.ids) != len(self.vectors):
            raise DataError(f"features: {len(self.ids)} ids but vectors of shape {self.vectors.shape}")
        self.manifest = manifest or {}
        self._index = {k: i for i, k in enumerate(self.ids)}
        self.tokens, self.token_columns = check_tokens(tokens, token_columns, len(self.ids))

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def token_model(self) -> str | None:
        """The tokenizer the token columns come from (to decode them), when recorded."""
        return token_model(self.manifest)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, key) -> bool:
        return str(key) in self._index

    def lookup(self, ids) -> tuple[np.ndarray, np.ndarray]:
        return lookup_rows(self._index, self.vectors, ids)

    def lookup_tokens(self, ids):
        """The token-feature rows of ``ids`` (CSR, empty rows where an id is unknown) and the
        found mask; DataError when these features carry no token features."""
        if self.tokens is None:
            raise DataError(NO_TOKENS)
        rows = np.fromiter((self._index.get(str(i), -1) for i in ids), dtype=np.int64)
        return token_rows(self.tokens, rows), rows >= 0

    @classmethod
    def from_file(cls, path: str | Path, id_column: str | None = None) -> Features:
        """Load a features file; ``id_column`` defaults to the first id column in it."""
        ids, vectors, manifest = read_features(path)
        col = id_column or (list(ids.columns)[0] if len(ids.columns) else None)
        if col is None or col not in ids.columns:
            raise DataError(
                f"{path}: no id column {id_column!r} (columns: {', '.join(ids.columns)})"
            )
        tokens, columns = read_token_features(path, len(ids))
        return cls(ids[col].astype(str).to_numpy(), vectors, manifest, tokens, columns)


# -- review-level vectors ------------------------------------------------------------------
# Each evaluation split turns them into item vectors from its TRAINING reviews only
# (``item_means``); ``leave_one_out`` is the old, leaky cold-item rule kept as a named option
# (the evaluation's cold-start rules, in its coldstart module, pick one).
@dataclasses.dataclass
class ReviewVectors:
    """One vector per (user, item) review, the leakage-safe input for review-only data."""

    users: np.ndarray
    items: np.ndarray
    vectors: np.ndarray
    manifest: dict[str, Any]
    #: sparse token features (CSR), one row per review, or None; ``token_columns``: the
    #: tokenizer id of each column when the columns decode to tokens (tfidf), else None.
    tokens: Any = None
    token_columns: Any = None

    def __post_init__(self) -> None:
        self.tokens, self.token_columns = check_tokens(
            self.tokens, self.token_columns, len(self.vectors)
        )

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def token_model(self) -> str | None:
        return token_model(self.manifest)

    def subset(self, keep: np.ndarray) -> ReviewVectors:
        """The reviews where ``keep`` (a boolean mask) is true, tokens included."""
        return ReviewVectors(
            self.users[keep], self.items[keep], self.vectors[keep], self.manifest,
            None if self.tokens is None else self.tokens[np.flatnonzero(keep)],
            self.token_columns,
        )  # fmt: skip

    def item_means(self, pairs: pd.DataFrame) -> Features:
        """Item vectors = mean of the reviews whose (user, item) is in ``pairs`` (training);
        token features, when present, are averaged the same way."""
        import scipy.sparse as sp

        keep = self._rows_in(pairs)
        items = self.items[keep]
        labels, inverse = np.unique(items, return_inverse=True)
        sums = np.zeros((len(labels), self.dim))
        np.add.at(sums, inverse, self.vectors[keep])
        counts = np.bincount(inverse, minlength=len(labels))
        manifest = {**self.manifest, "level": "item", "source": "training reviews (evaluation)"}
        tokens = None
        if self.tokens is not None:
            # one averaging matrix (items x kept reviews, rows sum to 1), as extraction does
            mean = sp.csr_matrix(
                (1.0 / counts[inverse], (inverse, np.arange(len(inverse)))),
                shape=(len(labels), len(inverse)),
            )
            tokens = (mean @ self.tokens[np.flatnonzero(keep)]).astype(np.float32).tocsr()
        return Features(labels, sums / counts[:, None], manifest, tokens, self.token_columns)

    def leave_one_out(self, items) -> _LeaveOneOut:
        """Per-user vectors of ``items`` built from every review except that user's own."""
        return _LeaveOneOut(self, items)

    def _rows_in(self, pairs: pd.DataFrame) -> np.ndarray:
        keys = pd.MultiIndex.from_arrays([pairs["user"].astype(str), pairs["item"].astype(str)])
        mine = pd.MultiIndex.from_arrays([self.users, self.items])
        return np.asarray(mine.isin(keys))


class _LeaveOneOut:
    def __init__(self, reviews: ReviewVectors, items):
        self.items = np.asarray(sorted(str(x) for x in items), dtype=object)
        index = {k: n for n, k in enumerate(self.items)}
        rows = np.fromiter((index.get(k, -1) for k in reviews.items), dtype=np.int64)
        keep = rows >= 0
        self.sums = np.zeros((len(self.items), reviews.dim))
        np.add.at(self.sums, rows[keep], reviews.vectors[keep])
        self.counts = np.bincount(rows[keep], minlength=len(self.items)).astype(float)
        self.own: dict[str, list[tuple[int, np.ndarray]]] = {}
        for user, row, vec in zip(
            reviews.users[keep], rows[keep], reviews.vectors[keep], strict=False
        ):
            self.own.setdefault(user, []).append((row, vec))
        self.manifest = {**reviews.manifest, "level": "item", "source": "other users' reviews"}

    def for_user(self, user: str) -> Features:
        sums, counts = self.sums.copy(), self.counts.copy()
        for row, vec in self.own.get(user, ()):
            sums[row] -= vec
            counts[row] -= 1
        ok = counts > 0
        return Features(self.items[ok], sums[ok] / counts[ok, None], self.manifest)


# -- a features file as Features or ReviewVectors -------------------------------------------
def load_optional_features(path: str | Path | None) -> Features | ReviewVectors | None:
    """``load_features(path)``, or None when no path was given (an optional --features)."""
    return load_features(path) if path else None


def load_features(path: str | Path) -> Features | ReviewVectors:
    """A features file as item/user ``Features``, or ``ReviewVectors`` when rows are reviews."""
    ids, vectors, manifest = read_features(path)
    tokens, columns = read_token_features(path, len(ids))
    return features_from_table(ids, vectors, {**manifest, "path": str(path)}, where=str(path),
                               tokens=tokens, token_columns=columns)  # fmt: skip


#: What a features argument of the Python API may be, for its messages.
FEATURES_WANTED = ("a feature file path, Features, an extract() result or a DataFrame of an id "
                   "column and a 'vector' column")  # fmt: skip


def frame_level(frame, name: str = "features") -> str:
    """The level of a DataFrame of features, by its columns (a features file's, as
    ``pandas.read_parquet`` reads it: ``item`` or ``user`` ids, both for reviews, and a
    ``vector`` column), or one UsageError naming the columns it needs: cheap, before any work."""
    columns = [str(c) for c in frame.columns]
    level = ("review" if {"user", "item"} <= set(columns) else "item" if "item" in columns
             else "user" if "user" in columns else None)  # fmt: skip
    if level is None or VECTOR_COLUMN not in columns or len(set(columns)) != len(columns):
        raise UsageError(
            f"{name}: a DataFrame of features needs one item (or user; both for reviews) id "
            f"column and one {VECTOR_COLUMN!r} column of equal-length number lists, got columns "
            f"{', '.join(columns) or 'none'}; build it as pandas.read_parquet reads a features file"
        )
    return level


def features_from_frame(frame, name: str = "features") -> Features | ReviewVectors:
    """A DataFrame of features (see ``frame_level``) as Features or ReviewVectors, through a
    features file's own checks (numbers, one length, finite, one vector per id). It has no
    manifest: nothing says which encoder made it, so the checks that compare encoders (a
    model's later --features, a fine-tuned encoder's lineage) have nothing to compare."""
    import pyarrow as pa

    level = frame_level(frame, name)
    table = frame.reset_index(drop=True)
    where = f"{name} (a DataFrame)"
    try:
        column = pa.array(table[VECTOR_COLUMN], from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: column {VECTOR_COLUMN!r} is not lists of numbers ({exc})") from None
    manifest = {"level": level}
    vectors = _vectors(column, where)
    check_vectors(vectors, manifest, where)
    ids = table[list(LEVEL_KEYS[level])]
    check_ids(ids, manifest, where)
    return features_from_table(ids, vectors, manifest, where=where)


def as_features(value: Any, name: str = "features") -> Features | ReviewVectors | None:
    """A features argument loaded: None or "" (none given) -> None; a feature file path ->
    ``load_features``; an ``extract()`` result -> its features; a DataFrame ->
    ``features_from_frame``; Features or ReviewVectors as they are; anything else is one
    UsageError naming what to pass."""
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, (str, Path)) or hasattr(value, "__fspath__"):
        return load_features(value)
    if hasattr(value, "to_features"):  # straight from extract()
        return value.to_features()
    if checks.is_frame(value):
        return features_from_frame(value, name)
    if isinstance(value, (Features, ReviewVectors)):
        return value
    raise checks.refuse(name, FEATURES_WANTED, value,
                        "pass the .parquet file recfeat extract wrote, or recfeat.read_features(path)")  # fmt: skip


def features_from_table(ids: pd.DataFrame, vectors: np.ndarray, manifest: dict[str, Any],
                        where: str = "features", tokens: Any = None,
                        token_columns: Any = None) -> Features | ReviewVectors:  # fmt: skip
    """Id columns + vectors (and token features, rows aligned) as item/user ``Features``, or
    ``ReviewVectors`` for reviews."""
    cols = list(ids.columns)
    if "user" in cols and "item" in cols:
        return ReviewVectors(
            ids["user"].astype(str).to_numpy(dtype=object),
            ids["item"].astype(str).to_numpy(dtype=object),
            vectors,
            manifest,
            tokens,
            token_columns,
        )
    col = "item" if "item" in cols else "user" if "user" in cols else (cols[0] if cols else None)
    if col is None:
        raise DataError(f"{where}: features file has no id column")
    return Features(ids[col].astype(str).to_numpy(), vectors, {**manifest, "id_column": col},
                    tokens, token_columns)  # fmt: skip


# -- token features beside a features file ---------------------------------------------------
NO_TOKENS = (
    "these features carry no token features; extract them with --token-features tfidf "
    "(or set token_weight=0)"
)
#: keys of ``<stem>.tokens.npz``: scipy's CSR layout plus, optionally, ``columns`` (the
#: tokenizer id of each column, so explanations can decode them to words)
TOKEN_KEYS = ("data", "indices", "indptr", "shape")


def token_model(manifest: dict[str, Any]) -> str | None:
    spec = manifest.get("token_features")
    model = spec.get("model") if isinstance(spec, dict) else None
    return model if isinstance(model, str) else None


def token_rows(tokens, rows: np.ndarray):
    """Rows ``rows`` of a CSR matrix, an empty row where ``rows`` is -1 (one sparse selection
    matrix, so unknown ids cost nothing)."""
    import scipy.sparse as sp

    found = np.flatnonzero(rows >= 0)
    pick = sp.csr_matrix((np.ones(len(found), dtype=np.float32), (found, rows[found])),
                         shape=(len(rows), tokens.shape[0]))  # fmt: skip
    return (pick @ tokens).tocsr()


def check_tokens(tokens: Any, columns: Any, n_rows: int):
    """``(tokens as float32 CSR, columns as int64 or None)``, or DataError when they do not
    fit ``n_rows`` vectors (a script or a file pairs them; a mismatch would mis-align rows)."""
    if tokens is None:
        return None, None
    import scipy.sparse as sp

    if not sp.issparse(tokens):
        raise checks.refuse("token features", "a scipy sparse matrix", tokens,
                            "pass e.g. scipy.sparse.csr_matrix(rows)")  # fmt: skip
    tokens = sp.csr_matrix(tokens, dtype=np.float32)
    if tokens.shape[0] != n_rows:
        raise DataError(
            f"token features have {tokens.shape[0]} rows but there are {n_rows} vectors; "
            "they must match row for row (re-create both with one `recfeat extract` run)"
        )
    if columns is not None:
        columns = np.asarray(columns)
        if columns.ndim != 1 or len(columns) != tokens.shape[1] or columns.dtype.kind not in "iu":
            raise DataError(
                f"token features: {tokens.shape[1]} columns but a column list of shape "
                f"{columns.shape}; re-create them with `recfeat extract --token-features`"
            )
        columns = columns.astype(np.int64)
    return tokens, columns


def write_token_features(fh, tokens, columns=None) -> None:
    """Save CSR ``tokens`` (and the token id of each column) as a plain .npz: arrays only,
    no pickles, so reading it back never runs code."""
    tokens = tokens.tocsr()
    arrays = {"format": np.array("csr"), "data": tokens.data.astype(np.float32),
              "indices": tokens.indices, "indptr": tokens.indptr,
              "shape": np.array(tokens.shape, dtype=np.int64)}  # fmt: skip
    if columns is not None:
        arrays["columns"] = np.asarray(columns, dtype=np.int64)
    np.savez_compressed(fh, **arrays)


def read_token_features(path: str | Path, n_rows: int):
    """The token features beside features file ``path`` (``<stem>.tokens.npz``) as
    ``(CSR, columns or None)``, or ``(None, None)`` when there is none. The file is
    untrusted: loaded without pickles, and its arrays are checked before use."""
    import scipy.sparse as sp

    tpath = token_features_path(path)
    if not tpath.is_file():
        return None, None
    fix = "re-create it with `recfeat extract --token-features tfidf`"
    try:
        with np.load(tpath, allow_pickle=False) as npz:
            missing = [k for k in TOKEN_KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{tpath}: not a token-features file (no {', '.join(missing)}); {fix}")
            data, indices, indptr, shape = (npz[k] for k in TOKEN_KEYS)
            columns = npz["columns"] if "columns" in npz.files else None
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: one line, not a traceback
        raise DataError(f"{tpath}: cannot read token features ({type(exc).__name__}: {exc}); {fix}") from None
    try:
        shape = tuple(int(x) for x in np.asarray(shape).reshape(-1))
        if len(shape) != 2 or min(shape) < 0 or data.dtype.kind != "f" or indices.dtype.kind not in "iu" \
                or indptr.dtype.kind not in "iu":  # fmt: skip
            raise ValueError("bad shape or dtypes")
        tokens = sp.csr_matrix((data, indices, indptr), shape=shape)
        tokens.check_format(full_check=True)  # indices in range, indptr monotone
    except (TypeError, ValueError) as exc:
        raise DataError(f"{tpath}: damaged token features ({exc}); {fix}") from None
    return check_tokens(tokens, columns, n_rows)
