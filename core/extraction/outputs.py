"""Where an extraction's result goes: the --out file is checked before any work is done,
and written with a one-line error (never a traceback) when the disk refuses it."""

from __future__ import annotations

import os
from pathlib import Path


def check_out_path(out: str | Path) -> Path:
    """Refuse an --out that cannot be written, before any work is done."""
    from recfeat.errors import RecfeatError, UsageError

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


def save(result, out_path: Path) -> None:
    """``result.save(out_path)``; an OSError becomes a one-line RecfeatError."""
    from recfeat.errors import RecfeatError

    try:
        result.save(out_path)
    except OSError as exc:
        raise RecfeatError(
            f"cannot write {out_path}: {exc.strerror or exc}; choose another --out"
        ) from None


def summary_line(result, out_path: Path) -> str:
    """What was written: counts from the manifest, one line."""
    m = result.manifest
    dim = result.vectors.shape[1]
    return (
        f"wrote {out_path}: {len(result.ids):,} {m['level']} vectors x {dim} dims; "
        f"{m['encoded_texts']:,} texts encoded, {m['cached_texts']:,} from cache, "
        f"{m['empty_texts']:,} empty, {m['truncated_texts']:,} truncated; {m['elapsed_s']:.1f} s"
    )
