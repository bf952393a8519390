"""Content-addressed vector cache: one SQLite file of float32 vectors keyed by what made them.

Each vector's key is ``sha256(fingerprint digest + cleaned text)``, where the fingerprint
digest covers every encoder setting that changes the numbers (weights hash, tokenizer files,
pooling, normalisation, max_length, backend, precision, ...) and the cleaned text covers the
cleaners. Change any of them and the keys change, so stale vectors are never served; keep
them and a re-run encodes only new or changed texts.

Beside each vector the cache keeps its text's token statistics (tokens kept, tokens dropped
by truncation), so a cached or resumed run reports the same truncation counts as a fresh one.

A run whose texts are all cached builds no model: the fingerprint comes from the model
folder's files (``recfeat.encode.hf_models.describe_model``: the weights hash and what
transformers reads from config.json, each memoised by content in ``hashes/`` and
``configs/`` of ``$RECFEAT_CACHE_DIR``, whatever ``--cache`` says), and the encoder loads
its weights on its first ``encode``, which only a miss calls. Such a run imports neither
torch nor transformers (tests/test_cached_startup.py; benchmarks/bench_cache.py measures
the start-up).

The file lives in ``$RECFEAT_CACHE_DIR`` (default ``~/.cache/recfeat``) as ``vectors.sqlite``,
or in the folder given by ``--cache DIR``. SQLite in WAL mode makes each ``put_many`` one
durable transaction: a run killed with SIGKILL keeps every chunk it committed and loses none
half-way, which is what makes extraction resumable. Several processes may share one file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.encode.hub import tokenizer_files_sha256
from recfeat.errors import DataError, RecfeatError
from recfeat.jsonable import jsonable

CACHE_FILE = "vectors.sqlite"
CACHE_ENV = "RECFEAT_CACHE_DIR"

# Fingerprint fields that only change speed, never the vectors. Everything else the encoder
# reports is part of the key: a field wrongly kept costs a cache miss, a field wrongly dropped
# would serve wrong vectors, so the list is short on purpose.
SPEED_ONLY_FIELDS = frozenset(
    {"batch_tokens", "batch_size", "threads", "num_threads", "progress", "intra_op_threads"}
)
# With a content hash of the weights, where they were loaded from no longer matters.
LOCATION_FIELDS = frozenset({"path", "model_path", "local_path", "source", "cache_dir"})

# SQLite's default limit on host parameters is 32766 in recent versions, 999 in old ones.
_IN_BATCH = 900
#: Seconds an operation waits for another process's transaction on the same cache file
#: before the cache is reported in use (processes sharing a cache take turns to commit).
LOCK_WAIT_S = 60.0

# SQLite primary result codes (``sqlite3.Error.sqlite_errorcode & 0xFF``) a user can cause
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    3, 5, 6, 8, 10, 11, 13, 14, 26,
)  # fmt: skip


def cache_error(path: Path, exc: BaseException) -> RecfeatError:
    """An error of the cache file at ``path`` (sqlite3.Error or OSError) as one line whose fix
    follows its cause: in use by another process, disk full, not writable, damaged."""
    import errno

    fix = "pass --cache DIR (another folder; or set RECFEAT_CACHE_DIR) or --no-cache"
    if isinstance(exc, OSError):
        code = exc.errno
        if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return RecfeatError(f"disk full writing the vector cache {path}; free disk space, "
                                f"or {fix}")  # fmt: skip
        if code in (errno.EACCES, errno.EPERM, errno.EROFS):
            return RecfeatError(f"the vector cache folder {path.parent} is not writable "
                                f"({exc.strerror}); {fix}")  # fmt: skip
        return RecfeatError(f"cannot use the vector cache {path} ({exc.strerror or exc}); {fix}")
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    text = str(exc).lower()
    if primary in (_BUSY, _LOCKED) or "locked" in text:
        return RecfeatError(
            f"the vector cache {path} is in use by another process (still locked after "
            f"{LOCK_WAIT_S:g} s); wait for that run to finish, or {fix}"
        )
    if primary == _FULL or "disk is full" in text:
        return RecfeatError(f"disk full writing the vector cache {path}; free disk space, "
                            f"or {fix}")  # fmt: skip
    if primary in (_READONLY, _PERM, _CANTOPEN) or "readonly" in text:
        where = path.parent if os.access(path.parent, os.F_OK) else path.parent.parent
        why = "read-only" if primary == _READONLY else "cannot be opened"
        if not os.access(where, os.W_OK):
            why = "in a folder you may not write (permission or read-only file system)"
        return RecfeatError(f"the vector cache {path} is {why}; {fix}")
    if primary in (_CORRUPT, _NOTADB):
        return RecfeatError(f"the vector cache {path} is damaged ({exc}); delete it (it is "
                            f"rebuilt on the next run), or {fix}")  # fmt: skip
    if primary == _IOERR:
        return RecfeatError(f"input/output error on the vector cache {path} ({exc}); check "
                            f"the disk, or {fix}")  # fmt: skip
    return RecfeatError(f"the vector cache {path} failed ({exc}); {fix}")


def default_cache_dir() -> Path:
    """``$RECFEAT_CACHE_DIR`` or ``~/.cache/recfeat``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "recfeat"


def vector_fingerprint(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an encoder fingerprint that determines its vectors.

    An encoder loaded from a local model folder that reports no tokenizer hash of its own
    gets one here (``recfeat.encode.hub.tokenizer_files_sha256``, over the tokenizer files
    and config.json): the weights hash alone would serve the vectors of an edited
    vocabulary from the cache."""
    drop = set(SPEED_ONLY_FIELDS)
    if fingerprint.get("weights_sha256"):
        drop |= LOCATION_FIELDS
    fields = {k: v for k, v in sorted(fingerprint.items()) if k not in drop}
    if "tokenizer_files_sha256" not in fields:
        for name in ("source", "model", "path"):
            folder = fingerprint.get(name)
            if isinstance(folder, str) and os.path.isdir(os.path.expanduser(folder)):
                fields["tokenizer_files_sha256"] = tokenizer_files_sha256(folder)
                break
    return dict(sorted(fields.items()))


def fingerprint_digest(fingerprint: Mapping[str, Any]) -> bytes:
    """32-byte digest of :func:`vector_fingerprint`, canonical JSON (sorted keys)."""
    canon = json.dumps(jsonable(vector_fingerprint(fingerprint)), sort_keys=True)
    return hashlib.sha256(canon.encode("utf-8")).digest()


def text_keys(texts: Sequence[str], digest: bytes) -> list[bytes]:
    """One 32-byte key per text: sha256(digest + utf-8 text)."""
    keys = []
    for text in texts:
        h = hashlib.sha256(digest)
        h.update(text.encode("utf-8", "surrogatepass"))
        keys.append(h.digest())
    return keys


class VectorCache:
    """float32 vectors by key in one SQLite file (WAL mode); safe to share between processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we open transactions ourselves, one per put_many
            self._db = sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against process death (SIGKILL); FULL adds power-loss safety
            # at a cost per commit that a cache does not need.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                "key BLOB PRIMARY KEY, dim INTEGER NOT NULL, vec BLOB NOT NULL) WITHOUT ROWID"
            )
            # Added later beside ``vectors`` (older cache files gain it on first open): the
            # token statistics of each key's text, written in the same transaction.
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS text_stats ("
                "key BLOB PRIMARY KEY, tokens INTEGER NOT NULL, dropped INTEGER NOT NULL) "
                "WITHOUT ROWID"
            )
        except (OSError, sqlite3.Error) as exc:
            raise cache_error(self.path, exc) from None

    @classmethod
    def in_dir(cls, folder: str | Path | None = None) -> VectorCache:
        """The cache file in ``folder`` (default :func:`default_cache_dir`)."""
        folder = Path(folder).expanduser() if folder is not None else default_cache_dir()
        if folder.exists() and not folder.is_dir():
            raise RecfeatError(f"cache location {folder} is a file, not a folder; pass --cache DIR")
        return cls(folder / CACHE_FILE)

    def _query(self, sql: str, params=()):
        """Rows of one read, its errors as :func:`cache_error`."""
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise cache_error(self.path, exc) from None

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM vectors")[0][0])

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Vectors for the keys present; absent keys are simply missing from the result."""
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _IN_BATCH):
            part = unique[start : start + _IN_BATCH]
            marks = ",".join("?" * len(part))
            rows = self._query(f"SELECT key, dim, vec FROM vectors WHERE key IN ({marks})", part)
            for key, dim, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape[0] != dim:
                    raise DataError(
                        f"vector cache {self.path} holds a corrupt entry; delete the file to rebuild it"
                    )
                found[bytes(key)] = vec
        return found

    def get_stats(self, keys: Sequence[bytes]) -> dict[bytes, tuple[int, int]]:
        """``(tokens kept, tokens dropped)`` of each key's text, where recorded."""
        found: dict[bytes, tuple[int, int]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _IN_BATCH):
            part = unique[start : start + _IN_BATCH]
            marks = ",".join("?" * len(part))
            rows = self._query(
                f"SELECT key, tokens, dropped FROM text_stats WHERE key IN ({marks})", part
            )
            for key, tokens, dropped in rows:
                found[bytes(key)] = (int(tokens), int(dropped))
        return found

    def put_many(
        self, keys: Sequence[bytes], vectors: np.ndarray | None, stats: np.ndarray | None = None
    ) -> None:
        """Store ``vectors[i]`` (and ``stats[i]`` = tokens kept, dropped) under ``keys[i]``
        in one transaction (all or nothing). ``vectors=None`` records statistics only."""
        if vectors is not None:
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if len(keys) != len(vectors):
                raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if stats is not None:
            stats = np.asarray(stats, dtype=np.int64).reshape(-1, 2)
            if len(keys) != len(stats):
                raise ValueError(f"{len(keys)} keys for {len(stats)} statistics")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if vectors is not None:
                dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
                rows = ((k, dim, v.tobytes()) for k, v in zip(keys, vectors, strict=True))
                self._db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)", rows)
            if stats is not None:
                srows = ((k, int(t), int(d)) for k, (t, d) in zip(keys, stats, strict=True))
                self._db.executemany("INSERT OR REPLACE INTO text_stats VALUES (?, ?, ?)", srows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the error to report is the first
                    self._db.execute("ROLLBACK")
            raise cache_error(self.path, exc) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> VectorCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VectorCache({str(self.path)!r})"


class NoCache:
    """Stand-in for ``--no-cache``: finds nothing, keeps nothing."""

    path = None

    def __len__(self) -> int:
        return 0

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        return {}

    def get_stats(self, keys: Sequence[bytes]) -> dict[bytes, tuple[int, int]]:
        return {}

    def put_many(self, keys: Sequence[bytes], vectors, stats=None) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> NoCache:
        return self

    def __exit__(self, *exc) -> None:
        return None


def open_cache(cache: Any = None) -> VectorCache | NoCache:
    """``None``/``True`` -> the default cache; ``False`` -> no cache; a path -> the cache in
    that folder; an existing cache object is returned as is."""
    if cache is None or cache is True:
        return VectorCache.in_dir()
    if cache is False:
        return NoCache()
    if isinstance(cache, (str, os.PathLike)):
        return VectorCache.in_dir(cache)
    return cache


def iter_chunks(n: int, size: int) -> Iterator[range]:
    """``range``s of at most ``size`` covering ``0..n``; fixed boundaries, so a resumed run
    re-encodes exactly the chunks an interrupted one had not committed."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, n, size):
        yield range(start, min(n, start + size))
