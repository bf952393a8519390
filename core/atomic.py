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

Files found on disk are untrusted input: a commit journal is only acted on when every path it
names is a recfeat temporary of its own commit or an output in its own folder (or in another
folder holding an identical journal of the same commit), checked as a whole before anything
is renamed or deleted; any other journal is refused with :class:`UnsafeJournalError` and left
in place, with everything it names (docs/reliability.md, "Files on disk are untrusted input").
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from .errors import DataError, RecfeatError

TMP_PREFIX = ".recfeat-tmp."
OLD_PREFIX = ".recfeat-old."
JOURNAL_PREFIX = ".recfeat-commit."
_PREFIXES = (TMP_PREFIX, OLD_PREFIX, JOURNAL_PREFIX)
JOURNAL_FORMAT = "recfeat-commit/1"
# A journal lists a few paths per output; anything near this size was not written by recfeat.
MAX_JOURNAL_BYTES = 1 << 20


class UnsafeJournalError(DataError):
    """A commit journal found in an output folder that recfeat will not act on: it names a
    path outside its folder or one recfeat did not make, or it is not a journal recfeat
    writes (malformed, huge, a link). The journal and everything it names are left as they
    are."""


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
    """Remove a file, a link (never what it points to) or a folder (rmtree follows no link)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def clean_stale(folder: str | Path) -> list[Path]:
    """Finish or undo the commits of dead recfeat runs in ``folder``, then remove their
    temporary files and folders; return what was removed. Names of live processes (and
    anything without a recfeat prefix) are never touched; links are removed, not followed.

    Every stale journal is checked first (:func:`_check_journal`); one that names anything
    but its own commit's temporaries and outputs raises :class:`UnsafeJournalError` before
    anything in the folder is renamed or removed."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    stale = [e for e in entries if _stale(e.name)]
    removed: list[Path] = []
    # Journals first: they say whether temporaries are a committed set. All are checked
    # before any is acted on, so a refused one leaves the whole folder as it was.
    plans = [
        _check_journal(Path(entry.path))
        for entry in stale
        if entry.name.startswith(JOURNAL_PREFIX) and entry.name.endswith(".json")
    ]
    for plan in plans:
        if plan is not None:
            _recover(plan)
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
    _prepare_targets(finals, everything)
    marker = _marker()
    temps = {p: temp_sibling(p, TMP_PREFIX, marker) for p in everything}
    journals: list[Path] = []
    try:
        for folder in folders:
            temps[folder].mkdir()
            os.chmod(temps[folder], 0o777 & ~_umask())
        yield dict(temps)
        _flush_temps(finals, everything, temps)
        # The journal names are known before any is written, so a failure while writing them
        # removes the ones already in place (below).
        parents = list(dict.fromkeys(p.parent for p in everything))
        journals = [parent / f"{JOURNAL_PREFIX}{marker}.json" for parent in parents]
        olds = {p: temp_sibling(p, OLD_PREFIX, marker) for p in everything}
        _write_journals(journals, _journal_record(everything, temps, olds, journals), marker)
        # committed: from here on the new set is what a crash recovers to
        _apply([(temps[p], p, olds[p]) for p in everything], journals)
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


def _prepare_targets(finals: list[Path], everything: list[Path]) -> None:
    """Refuse a commit naming one output twice or a folder as a file output, then make each
    destination folder and tidy what dead runs left in it (before any temporary exists)."""
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


def _flush_temps(finals: list[Path], everything: list[Path], temps: Mapping[Path, Path]) -> None:
    """Step 1's end: every file output was written; give each the mode a plain open() would
    have and flush every temporary to disk before any journal can commit it."""
    missing = [str(p) for p in finals if not temps[p].is_file()]
    if missing:
        raise RecfeatError(f"internal error: no file was written for {', '.join(missing)}")
    for p in everything:
        if p in finals:
            os.chmod(temps[p], 0o666 & ~_umask())
        fsync_path(temps[p])


def _journal_record(everything: list[Path], temps: Mapping[Path, Path],
                    olds: Mapping[Path, Path], journals: list[Path]) -> bytes:  # fmt: skip
    """The bytes of every journal of one commit (each folder's journal is identical)."""
    # Absolute, with each folder resolved: a later run (any working folder) checks that
    # every path sits beside the journal naming it (``_check_journal``).
    record = {
        "format": JOURNAL_FORMAT,
        "entries": [
            {"tmp": _journal_path(temps[p]), "final": _journal_path(p),
             "old": _journal_path(olds[p])}
            for p in everything
        ],  # fmt: skip
        "journals": [_journal_path(j) for j in journals],
    }
    return (json.dumps(record, indent=1) + "\n").encode()


def _write_journals(journals: list[Path], data: bytes, marker: str) -> None:
    """Step 2: each journal is written whole under a temporary name, flushed, then renamed
    into place; the commit point is the last rename."""
    for journal in journals:
        tmp_journal = temp_sibling(journal, TMP_PREFIX, marker)
        write_file(tmp_journal, data)
        os.replace(tmp_journal, journal)
        _fsync_dir(journal.parent)


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


def _apply(entries: Sequence[tuple[Path, Path, Path]], journals: Sequence[Path]) -> None:
    """Rename every temporary over its target (idempotent), then drop moved-aside folders
    and the journals. ``entries``: (temporary, final, moved-aside name) triples."""
    for tmp, final, old in entries:
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
    for parent in dict.fromkeys(final.parent for _tmp, final, _old in entries):
        _fsync_dir(parent)
    for _tmp, _final, old in entries:
        if os.path.lexists(old):
            _remove(old)
    for journal in journals:
        _remove(journal)


# -- journals found on disk: untrusted input ---------------------------------------------------


def _journal_path(path: Path) -> str:
    """``path`` as a journal records it: absolute, its folder resolved, its name kept."""
    path = Path(path)
    return str(path.parent.resolve() / path.name)


class _Refused(Exception):
    """Why a journal is refused: a clause following 'refusing the commit journal X: '."""


def _one_line(text: str, limit: int = 200) -> str:
    """A path from the disk shown on one line (control characters escaped), shortened."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_journal(path: Path, subject: str) -> dict | None:
    """The record in journal ``path`` (None when it is gone: another run finished it);
    ``_Refused`` when it is not a journal recfeat writes: a link, not a regular file,
    bigger than :data:`MAX_JOURNAL_BYTES`, not JSON, or not the journal's shape."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        what = "is a symbolic link" if os.path.islink(path) else f"cannot be read ({exc.strerror})"
        raise _Refused(f"{subject} {what}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Refused(f"{subject} is not a regular file")
        data = b""
        while len(data) <= MAX_JOURNAL_BYTES:  # read at most one byte past the cap
            chunk = os.read(fd, MAX_JOURNAL_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_JOURNAL_BYTES:
        raise _Refused(f"{subject} is over {MAX_JOURNAL_BYTES} bytes, far more than recfeat writes")
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Refused(f"{subject} is not valid JSON") from None
    if not isinstance(record, dict):
        raise _Refused(f"{subject} is not a JSON object")
    if record.get("format", JOURNAL_FORMAT) != JOURNAL_FORMAT:
        got = _one_line(repr(record.get("format")), 60)
        raise _Refused(f"{subject} has format {got}, not {JOURNAL_FORMAT!r}")
    entries, journals = record.get("entries"), record.get("journals")
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("tmp", "final", "old"))
        for e in entries
    ):
        raise _Refused(f"{subject} has no 'entries' list of tmp/final/old paths")
    if not isinstance(journals, list) or not journals or not all(isinstance(j, str) for j in journals):
        raise _Refused(f"{subject} has no 'journals' list of paths")
    return record


def _place(text: str) -> tuple[Path, str]:
    """(resolved folder, name) of a path a journal names; ``_Refused`` for one with a ``..``
    part or no plain name. The folder is resolved, so a link in it cannot lead elsewhere."""
    shown = _one_line(repr(text))
    if not text or "\0" in text:
        raise _Refused(f"it names an empty or invalid path {shown}")
    path = Path(text)
    if ".." in path.parts:
        raise _Refused(f"it names {shown}, which climbs out with '..'")
    if path.name in ("", ".", ".."):
        raise _Refused(f"it names {shown}, which is not a file name")
    try:
        return path.parent.resolve(), path.name
    except (OSError, RuntimeError):
        raise _Refused(f"it names {shown}, whose folder cannot be resolved") from None


class _Plan:
    """A checked journal: what recovering it may rename and remove (nothing else)."""

    def __init__(self, journal: Path, entries: list[tuple[Path, Path, Path]],
                 journals: list[Path], commit: bool):  # fmt: skip
        self.journal, self.entries, self.journals, self.commit = journal, entries, journals, commit


def _check_journal(journal: Path) -> _Plan | None:
    """Check a dead run's journal as a whole before anything is renamed or removed.

    Accepted only when it is a journal recfeat writes (a regular file under
    :data:`MAX_JOURNAL_BYTES` of the right JSON shape) that lists itself, and every entry is
    a triple ``.recfeat-tmp.<marker>.NAME`` / ``NAME`` / ``.recfeat-old.<marker>.NAME`` in one
    folder (``<marker>`` from the journal's own name; ``NAME`` a plain name, no ``..``,
    folders compared resolved). An entry in another folder (one commit can span folders)
    counts only when that folder holds this commit's journal with the same record: that
    folder's own journal vouches for it. Otherwise :class:`UnsafeJournalError`, naming the
    journal, and the journal and everything it names are left untouched.

    The plan rolls the commit forward when every listed journal exists (as before); when
    one is missing the commit never completed and it is undone, in the folders whose journal
    vouches for it: their temporaries and journals are removed, the old outputs stay.
    """
    try:
        return _checked_plan(journal)
    except _Refused as refused:
        raise UnsafeJournalError(
            f"refusing the commit journal {_one_line(journal, 400)}: {refused}; recfeat changed "
            "nothing and left it in place: remove it if you did not put it there (a journal "
            "recfeat writes names only its own temporaries and outputs in its folder)"
        ) from None


def _checked_plan(journal: Path) -> _Plan | None:
    home = journal.parent.resolve()
    marker = journal.name[len(JOURNAL_PREFIX) : -len(".json")]
    record = _load_journal(journal, "it")
    if record is None:
        return None
    folders: list[Path] = []
    for text in record["journals"]:
        folder, name = _place(text)
        if name != journal.name:
            raise _Refused(
                f"it lists {_one_line(repr(text))} as a journal of its commit, whose journals "
                f"are all named {_one_line(journal.name)}"
            )
        folders.append(folder)
    if home not in folders:
        raise _Refused("it does not list itself among its commit's journals")
    entries: list[tuple[Path, Path, Path]] = []
    for entry in record["entries"]:
        (tmp_dir, tmp), (folder, final), (old_dir, old) = (
            _place(entry[key]) for key in ("tmp", "final", "old")
        )
        shown = _one_line(repr(entry["final"]))
        if not tmp_dir == folder == old_dir:
            raise _Refused(f"its entry for {shown} names paths in different folders")
        if folder != home and folder not in folders:
            raise _Refused(f"it names {shown}, outside its folder {_one_line(home)}")
        if final.startswith(_PREFIXES):
            raise _Refused(f"it names the recfeat temporary {shown} as an output")
        for key, name, prefix in (("tmp", tmp, TMP_PREFIX), ("old", old, OLD_PREFIX)):
            if name != f"{prefix}{marker}.{final}":
                raise _Refused(
                    f"it names {_one_line(repr(entry[key]))}, which is not a temporary of its "
                    f"commit (those are named {prefix}{_one_line(marker, 60)}.<output name>)"
                )
        if os.path.islink(folder / tmp):
            raise _Refused(f"the temporary it names for {shown} is a symbolic link")
        entries.append((folder / tmp, folder / final, folder / old))
    vouched, missing = {home}, False
    for folder in dict.fromkeys(folders):
        if folder == home:
            continue
        partner = folder / journal.name
        other = _load_journal(partner, f"its partner journal {_one_line(partner)}")
        if other is None:
            missing = True
        elif other != record:
            raise _Refused(f"it differs from its partner journal {_one_line(partner)}")
        else:
            vouched.add(folder)
    if missing:  # never committed: undo, only where this commit's own journal says so
        entries = [e for e in entries if e[1].parent in vouched]
    return _Plan(journal, entries, [f / journal.name for f in vouched], commit=not missing)


def _recover(plan: _Plan) -> None:
    """Finish a dead run's commit when all its journals exist, else undo it (``plan`` comes
    from :func:`_check_journal`, so it names only the commit's own paths)."""
    if plan.commit:
        try:
            _apply(plan.entries, plan.journals)
        except OSError:
            pass  # a target that cannot be replaced: the caller's own write reports it
        return
    for tmp, _final, _old in plan.entries:
        _remove(tmp)
    for j in plan.journals:
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
