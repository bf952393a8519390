"""Atomic writes: results appear whole or not at all, and earlier results stay intact.

One file: :func:`atomic_path` / :func:`atomic_open` / :func:`write_text` write a temporary
sibling and rename it over the target. Several files (or folders) that belong together:
:func:`atomic_files` commits them as one unit. A folder: :func:`atomic_dir`.

Every temporary name starts with a recfeat prefix, the writer's pid and a tag of its host
(``.recfeat-tmp.<pid>.<host>-<random>.<name>``; ``.recfeat-old.`` for a folder moved aside,
``.recfeat-commit.`` for a commit journal), so :func:`clean_stale` can tell what recfeat
left behind when a run was killed, and whether its owner is gone. It only ever touches
names with those prefixes, made on this machine, whose pid is no longer a running process
(a recycled pid keeps its files: the safe side), and it runs before every atomic write into
a folder and when a command checks its outputs, so the next run tidies up after a killed
one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from .errors import RecfeatError

TMP_PREFIX = ".recfeat-tmp."
OLD_PREFIX = ".recfeat-old."
JOURNAL_PREFIX = ".recfeat-commit."
_PREFIXES = (TMP_PREFIX, OLD_PREFIX, JOURNAL_PREFIX)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def host_tag() -> str:
    """Six hex digits of this machine's host name: a pid means nothing on another machine
    (or in another container) sharing the folder, so only names made here are judged."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _marker() -> str:
    """``<pid>.<host tag>-<random>``: who made a temporary name, unique per call."""
    return f"{os.getpid()}.{host_tag()}-{secrets.token_hex(4)}"


def temp_sibling(path: str | Path, prefix: str = TMP_PREFIX, marker: str | None = None) -> Path:
    """A recfeat temporary name beside ``path`` that keeps its name (and so its extension,
    which matplotlib, pyarrow and numpy go by)."""
    path = Path(path)
    return path.with_name(f"{prefix}{marker or _marker()}.{path.name}")


def owner_pid(name: str) -> int | None:
    """The pid in a recfeat temporary name, or None when ``name`` is not one."""
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            head = name[len(prefix) :].split(".", 1)[0]
            return int(head) if head.isdigit() else None
    return None


def _made_here(name: str) -> bool:
    """False when the name carries another machine's host tag."""
    parts = name.split(".", 4)
    tag = parts[3].split("-", 1)[0] if len(parts) > 3 and "-" in parts[3] else None
    return tag is None or tag == host_tag()


def _stale(name: str) -> bool:
    pid = owner_pid(name)
    return pid is not None and _made_here(name) and not pid_alive(pid)


def final_name(name: str) -> str:
    """The name a recfeat temporary stands for (``.recfeat-tmp.12.ab12cd34.out.json`` ->
    ``out.json``), for messages; other names are returned unchanged."""
    if owner_pid(name) is None:
        return name
    parts = name.split(".", 4)  # "", "recfeat-tmp", pid, random, name
    return parts[4] if len(parts) == 5 else name


def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a running process here (or one we may not signal)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return True
    # A zombie has exited but still answers signal 0; its files are stale too.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def clean_stale(folder: str | Path) -> list[Path]:
    """Finish or undo the commits of dead recfeat runs in ``folder``, then remove their
    temporary files and folders; return what was removed. Names of live processes (and
    anything without a recfeat prefix) are never touched."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    stale = [e for e in entries if _stale(e.name)]
    removed: list[Path] = []
    for entry in stale:  # journals first: they say whether temporaries are a committed set
        if entry.name.startswith(JOURNAL_PREFIX) and entry.name.endswith(".json"):
            _recover(Path(entry.path))
    for entry in stale:
        path = Path(entry.path)
        if os.path.lexists(path):
            _remove(path)
            removed.append(path)
    return removed


# -- one file ------------------------------------------------------------------------------


def fsync_path(path: str | Path) -> None:
    """Flush a file, or every file and folder under a folder, to disk."""
    path = Path(path)
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            for name in files:
                fsync_path(Path(root) / name)
            _fsync_dir(Path(root))
        return
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(fd)


def write_file(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (a temporary of a commit) and flush it to disk."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}.{host_tag()}-",
                               suffix=f".{path.name}", dir=path.parent)  # fmt: skip
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the mode a plain open() would have.
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Like ``open(path, mode)`` but the file only replaces ``path`` once fully written."""
    binary = "b" in mode
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


# -- several files as one unit ---------------------------------------------------------------


@contextlib.contextmanager
def atomic_files(
    paths: Sequence[str | Path], *, dirs: Sequence[str | Path] = ()
) -> Iterator[dict[Path, Path]]:
    """Yield ``{final path: temporary path}``; write each temporary (a file for ``paths``,
    an empty folder is made for ``dirs``); on success all replace their targets as one unit.

    Guarantee: a run leaves either the complete new set or the complete old set, also when
    it is killed or the disk fills up at any point:

    1. every temporary is written in its destination folder and flushed to disk; a failure
       here (ENOSPC, an exception, SIGKILL) renames nothing: the old set stays and the
       temporaries are removed now or, after SIGKILL, by the next run (:func:`clean_stale`);
    2. a journal listing every (temporary, target) pair is written, flushed and renamed into
       place in each destination folder; the commit point is the moment the last journal
       exists. Killed before it, the next run undoes the commit (removes the temporaries);
    3. the temporaries are renamed over their targets (a folder target is first moved
       aside), then the journals are removed. Killed in between, the next run in any of
       those folders finds a complete journal set and finishes the renames.

    Between a kill in step 3 and the next run a reader can see a mix of old and new files;
    no file is ever half-written. Renames need no free space, so a full disk stops a run in
    step 1 or 2, never in 3.
    """
    finals = [Path(p) for p in paths]
    folders = [Path(p) for p in dirs]
    everything = finals + folders
    if len({p.resolve() for p in everything}) != len(everything):
        raise RecfeatError(
            f"one commit names the same output twice: {', '.join(map(str, everything))}"
        )
    for p in finals:
        if p.is_dir() and not p.is_symlink():
            raise RecfeatError(f"{p} is a folder; give a file path for this output")
    for parent in dict.fromkeys(p.parent for p in everything):
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale(parent)
    marker = _marker()
    temps = {p: temp_sibling(p, TMP_PREFIX, marker) for p in everything}
    journals: list[Path] = []
    try:
        for folder in folders:
            temps[folder].mkdir()
            os.chmod(temps[folder], 0o777 & ~_umask())
        yield dict(temps)
        missing = [str(p) for p in finals if not temps[p].is_file()]
        if missing:
            raise RecfeatError(f"internal error: no file was written for {', '.join(missing)}")
        for p in everything:
            if p in finals:
                os.chmod(temps[p], 0o666 & ~_umask())
            fsync_path(temps[p])
        parents = list(dict.fromkeys(p.parent for p in everything))
        journals = [parent / f"{JOURNAL_PREFIX}{marker}.json" for parent in parents]
        record = {
            "format": "recfeat-commit/1",
            "entries": [
                {
                    "tmp": str(temps[p]),
                    "final": str(p),
                    "old": str(temp_sibling(p, OLD_PREFIX, marker)),
                }
                for p in everything
            ],
            "journals": [str(j) for j in journals],
        }
        data = (json.dumps(record, indent=1) + "\n").encode()
        for journal in journals:
            tmp_journal = temp_sibling(journal, TMP_PREFIX, marker)
            write_file(tmp_journal, data)
            os.replace(tmp_journal, journal)
            _fsync_dir(journal.parent)
        # committed: from here on the new set is what a crash recovers to
        _apply(record)
    except BaseException:
        # Committed once every journal exists: then the renames are finished (by the next
        # run, if they failed here), never undone. Before that, the old set is untouched.
        if not (journals and all(j.exists() for j in journals)):
            for j in journals:
                _remove(j)
                _remove(temp_sibling(j, TMP_PREFIX, marker))
            for p in everything:
                _remove(temps[p])
        raise


def write_together(writers: Mapping[str | Path | None, Callable[[Path], object]]) -> list[Path]:
    """Write several output files as one unit (:func:`atomic_files`): ``{path: writer}``
    where ``writer(temporary path)`` writes the file; a None path (an output not asked
    for) is skipped. Returns the paths written."""
    todo = {Path(p).expanduser(): w for p, w in writers.items() if p is not None and str(p) != ""}
    if not todo:
        return []
    with atomic_files(list(todo)) as temps:
        for final, write in todo.items():
            write(temps[final])
    return list(todo)


def _apply(record: dict) -> None:
    """Rename every temporary over its target (idempotent), then drop moved-aside folders
    and the journals."""
    for entry in record["entries"]:
        tmp, final, old = Path(entry["tmp"]), Path(entry["final"]), Path(entry["old"])
        if not os.path.lexists(tmp):
            continue  # done before a crash
        try:
            if tmp.is_dir() and not tmp.is_symlink():
                if os.path.lexists(final):
                    os.rename(final, old)
                os.rename(tmp, final)
            else:
                os.replace(tmp, final)
        except FileNotFoundError:
            continue  # another process finishing the same commit got there first
    for parent in dict.fromkeys(Path(e["final"]).parent for e in record["entries"]):
        _fsync_dir(parent)
    for entry in record["entries"]:
        old = Path(entry["old"])
        if os.path.lexists(old):
            _remove(old)
    for journal in record["journals"]:
        _remove(Path(journal))


def _recover(journal: Path) -> None:
    """Finish a dead run's commit when all its journals exist, else undo it."""
    try:
        record = json.loads(journal.read_text())
        entries, journals = record["entries"], [Path(j) for j in record["journals"]]
    except (OSError, ValueError, KeyError, TypeError):
        return  # cannot be acted on: clean_stale removes it with the other stale names
    if all(j.exists() for j in journals):
        try:
            _apply(record)
        except OSError:
            pass  # a target that cannot be replaced: the caller's own write reports it
        return
    for entry in entries:
        _remove(Path(entry["tmp"]))
    for j in journals:
        _remove(j)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling, then move it into place (see
    :func:`atomic_files` for the guarantee).

    Refuses an existing ``path`` unless ``force``; with ``force`` the old folder is
    replaced only after the new one is complete, so a failure leaves it untouched.
    """
    path = Path(path)
    if path.exists() and not force:
        raise RecfeatError(f"output folder {path} already exists; pass --force to replace it")
    with atomic_files([], dirs=[path]) as temps:
        yield temps[path]
