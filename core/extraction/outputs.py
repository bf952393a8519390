"""Where an extraction's result goes: the --out file is checked before any work is done
(writable, and never one of the inputs), and written with a one-line error (never a
traceback) when the disk refuses it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recfeat.data.features import manifest_path
from recfeat.errors import RecfeatError, UsageError
from recfeat.extraction.cache import CACHE_FILE, default_cache_dir
from recfeat.extraction.manifest import run_record_path, token_features_path
from recfeat.outputs_guard import guard_outputs


def check_out_path(out: str | Path) -> Path:
    """Refuse an --out that cannot be written, before any work is done."""
    path = Path(out).expanduser()
    if not path.name.endswith(".parquet"):
        raise UsageError(f"--out {out}: give a file name ending in .parquet")
    if path.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name ending in .parquet")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RecfeatError(f"cannot create {path.parent}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RecfeatError(f"cannot write to {ancestor} (permission denied); choose another --out")
    return path


def write_error(path: str | Path, exc: OSError, option: str = "--out") -> RecfeatError:
    """An OSError met writing ``path``, as one line whose fix follows its cause (errno)."""
    import errno

    code, why = exc.errno, exc.strerror or str(exc)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return RecfeatError(f"disk full writing {path} ({why}); free space or choose another "
                            f"{option}")  # fmt: skip
    if code in (errno.EACCES, errno.EPERM):
        return RecfeatError(f"permission denied writing {path}; choose a folder you may write "
                            f"to with {option}")  # fmt: skip
    if code == errno.EROFS:
        return RecfeatError(f"{path} is on a read-only file system; choose another {option}")
    if code == errno.ENAMETOOLONG:
        return RecfeatError(f"file name too long: {path}; choose a shorter {option}")
    return RecfeatError(f"cannot write {path} ({why}); choose another {option}")


def check_outputs(out_path: Path, inputs: dict[str, Any]) -> None:
    """Refuse an --out whose files (Parquet, manifest, run record, token features) would
    overwrite an input, before any work is done (``recfeat.outputs_guard``)."""
    guard_outputs(
        {
            "--out": out_path,
            "--out's manifest": manifest_path(out_path),
            "--out's run record": run_record_path(out_path),
            "--out's token features": token_features_path(out_path),
        },
        inputs,
    )


def cache_files(cache_dir: str | None, no_cache: bool) -> dict[str, Path]:
    """The vector cache's files (inputs that outputs must not overwrite)."""
    if no_cache:
        return {}
    folder = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    db = folder / CACHE_FILE
    return {"the vector cache": db, "the vector cache's WAL": db.with_name(CACHE_FILE + "-wal")}
