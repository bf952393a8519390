"""No output may destroy an input, and none is found unwritable only after the work: every
command checks its output paths against its inputs (and against each other) before doing
any work.

Two paths are the same when they resolve to the same place (``Path.resolve``: symlinks,
``..``, ``~``) or, when both exist, are the same file on disk (same device and inode: hard
links). A folder output (``export --out DIR``) may not contain an input, since replacing
it would delete that input; and no output may be written inside an input folder (a dataset
or export folder), where it could overwrite a file the loader reads or be read back as
data. The check also tidies what killed runs left in the output folders
(``recfeat.atomic.clean_stale``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recfeat.atomic import clean_stale
from recfeat.errors import RecfeatError, UsageError

STDIO = "-"


def _path(value: Any) -> Path | None:
    if value is None or value is False or str(value) in ("", STDIO):
        return None
    return Path(os.path.expanduser(str(value)))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop: compare the absolute spelling
        return Path(os.path.abspath(path))


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file or folder (resolved, or one inode)."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def _inside(child: Path, parent: Path) -> bool:
    rc, rp = _resolved(child), _resolved(parent)
    return rc != rp and rc.is_relative_to(rp)


def check_out_file(path: str | Path | None, flag: str = "--out") -> None:
    """``path`` must name a file that can be created or replaced: not a folder, under a
    folder that exists (or can be made) and is writable. None (not given) passes."""
    if path is None or str(path) == "":
        return
    p = Path(path).expanduser()
    if p.is_dir():
        raise UsageError(
            f"{flag} {p} is a folder; give a file path inside it, e.g. {p / 'out.json'}"
        )
    if str(path).endswith(("/", os.sep)):
        raise UsageError(f"{flag} {path} ends with a slash; give a file path")
    parent = p.parent
    # the nearest existing ancestor decides: atomic writes create the missing folders below it
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {p}: {parent} is a file, not a folder; choose another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):  # the environment, not the command line: exit 1
        raise RecfeatError(
            f"{flag} {p}: permission denied to write in {parent}; choose another {flag}"
        )


def guard_outputs(
    outputs: Mapping[str, Any], inputs: Mapping[str, Any] | None = None, *, clean: bool = True,
    files: bool = False,
) -> dict[str, Path]:
    """Refuse (UsageError, exit 2, one line) an output that is an input, contains one, lies
    inside an input folder, or is another output of the same command.

    ``outputs`` and ``inputs`` map the option that names a path (``"--out"``, ``"DATA"``) to
    the path, or None when it was not given; ``-`` (stdin/stdout) is never a file. Returns
    the outputs given, as expanded paths. With ``clean``, stale temporaries of killed runs
    are removed from each output's folder. With ``files``, every output must also be a file
    that can be written (``check_out_file``), so a folder or an unwritable place given as
    ``--out`` is reported before a long run, not after it."""
    if files:
        for label, value in outputs.items():
            check_out_file(value, label)
    outs = {label: p for label, value in outputs.items() if (p := _path(value)) is not None}
    ins = {label: p for label, value in (inputs or {}).items() if (p := _path(value)) is not None}
    fix = "choose another path"
    for out_label, out in outs.items():
        for in_label, src in ins.items():
            if same_file(out, src):
                raise UsageError(
                    f"{out_label} {out} is the same file as {in_label} {src}: writing it would "
                    f"destroy the input; {fix} for {out_label}"
                )
            if _inside(src, out):
                raise UsageError(
                    f"{out_label} {out} contains {in_label} {src}: replacing it would delete the "
                    f"input; {fix} for {out_label}"
                )
            if src.is_dir() and _inside(out, src):
                raise UsageError(
                    f"{out_label} {out} is inside the input folder {in_label} {src}; write "
                    f"outputs outside it ({fix} for {out_label})"
                )
    labels = list(outs)
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            if (
                same_file(outs[a], outs[b])
                or _inside(outs[a], outs[b])
                or _inside(outs[b], outs[a])
            ):
                raise UsageError(
                    f"{a} {outs[a]} and {b} {outs[b]} name the same output; give each its own path"
                )
    if clean:
        for out in outs.values():
            parent = _resolved(out).parent
            if parent.is_dir():
                clean_stale(parent)
    return outs
