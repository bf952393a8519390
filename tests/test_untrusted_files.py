"""Files recfeat finds on disk are untrusted input (issue 21).

- a commit journal left in an output folder is acted on only when everything it names is a
  temporary of its own commit or an output beside it; any other journal (naming a path
  outside its folder, by an absolute path, ``..`` or a symlink; naming a file that is not a
  recfeat temporary; malformed, huge, a link) is refused in one line, left in place, and
  nothing in the folder or outside it is renamed or removed;
- a genuine journal of a killed run is still finished (or undone) as before;
- an export manifest may only name files inside its folder: ``../x.onnx``, an absolute
  path or a symlink leading out is refused in one line before the file is opened.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

from recfeat.atomic import (
    JOURNAL_PREFIX,
    MAX_JOURNAL_BYTES,
    OLD_PREFIX,
    TMP_PREFIX,
    UnsafeJournalError,
    clean_stale,
    host_tag,
    temp_sibling,
    write_text,
)
from recfeat.cli.main import cli
from recfeat.errors import ArtifactError, DataError, RecfeatError

REFUSED = "remove it if you did not put it there"


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def snapshot(*roots: Path) -> dict[str, bytes | str]:
    """Every path under ``roots`` (links not followed) with its content, to compare."""
    out: dict[str, bytes | str] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                if p.is_symlink():
                    out[str(p)] = "link -> " + os.readlink(p)
                elif p.is_dir():
                    out[str(p)] = "dir"
                else:
                    out[str(p)] = p.read_bytes()
    return out


# -- planted journals ---------------------------------------------------------------------------


class Planted:
    """An output folder ``out`` with a planted journal of a dead pid, a user's file and
    folder ``elsewhere`` (outside ``out``) that the journal tries to overwrite and delete,
    and a stale recfeat temporary in ``out`` that a refused journal must leave alone too."""

    def __init__(self, root: Path):
        self.root = root
        self.out = root / "outdir"
        self.elsewhere = root / "elsewhere"
        self.out.mkdir()
        self.elsewhere.mkdir()
        self.precious = self.elsewhere / "precious.txt"
        self.precious.write_text("precious")
        self.keep = self.elsewhere / "keep"
        self.keep.mkdir()
        (self.keep / "inner.txt").write_text("inner")
        self.marker = f"{dead_pid()}.{host_tag()}-01234567"
        self.journal = self.out / f"{JOURNAL_PREFIX}{self.marker}.json"
        self.stale_tmp = self.out / f"{TMP_PREFIX}{self.marker}.leftover.bin"
        self.stale_tmp.write_bytes(b"left by a killed run")

    def plant(self, entries: list[dict], journals: list[str] | None = None) -> None:
        record = {"format": "recfeat-commit/1", "entries": entries,
                  "journals": journals if journals is not None else [str(self.journal)]}  # fmt: skip
        self.journal.write_text(json.dumps(record))

    def names(self, where: str, name: str) -> dict:
        """An entry in ``where`` whose names follow recfeat's pattern for ``name``."""
        return {"tmp": f"{where}/{TMP_PREFIX}{self.marker}.{name}", "final": f"{where}/{name}",
                "old": f"{where}/{OLD_PREFIX}{self.marker}.{name}"}  # fmt: skip

    def snapshot(self):
        return snapshot(self.root / "outdir", self.root / "elsewhere")


def _outside_location(p: Planted, how: str) -> str:
    if how == "absolute":
        return str(p.elsewhere)
    if how == "dotdot":
        return f"{p.out}/../elsewhere"
    if how == "relative-dotdot":  # relative to the working folder, which the test sets
        return "outdir/../elsewhere"
    assert how == "symlink"
    (p.out / "link").symlink_to(p.elsewhere, target_is_directory=True)
    return f"{p.out}/link"


@pytest.fixture(params=["absolute", "dotdot", "relative-dotdot", "symlink", "issue"])
def planted_outside(request, tmp_path, monkeypatch):
    """A journal that, acted on, overwrites ``precious.txt`` and empties or deletes ``keep``
    outside the output folder (names following recfeat's pattern, or any names at all)."""
    monkeypatch.chdir(tmp_path)
    p = Planted(tmp_path)
    if request.param == "issue":  # any names: overwrite with a payload, rm -rf via "old"
        payload = p.elsewhere / "payload"
        payload.write_text("EVIL")
        p.plant([{"tmp": str(payload), "final": str(p.precious), "old": str(p.keep)}])
    else:
        where = _outside_location(p, request.param)
        (p.elsewhere / f"{TMP_PREFIX}{p.marker}.precious.txt").write_text("EVIL")
        (p.elsewhere / f"{TMP_PREFIX}{p.marker}.keep").mkdir()  # replaces keep, then rm -rf
        p.plant([p.names(where, "precious.txt"), p.names(where, "keep")])
    return p


def assert_untouched(p: Planted, before) -> None:
    assert p.precious.read_text() == "precious"
    assert (p.keep / "inner.txt").read_text() == "inner"
    assert p.journal.is_file() and p.stale_tmp.is_file()
    assert p.snapshot() == before


def test_a_journal_naming_paths_outside_its_folder_is_refused_by_clean_stale(planted_outside):
    p = planted_outside
    before = p.snapshot()
    with pytest.raises(UnsafeJournalError, match=REFUSED) as info:
        clean_stale(p.out)
    message = str(info.value)
    assert "\n" not in message and str(p.journal) in message
    assert isinstance(info.value, DataError) and isinstance(info.value, RecfeatError)
    assert_untouched(p, before)


def test_a_planted_journal_stops_every_atomic_write_into_the_folder(planted_outside):
    from recfeat.atomic import atomic_dir, write_together

    p = planted_outside
    before = p.snapshot()
    with pytest.raises(UnsafeJournalError):
        write_text(p.out / "res.json", "{}")
    with pytest.raises(UnsafeJournalError):
        write_together({p.out / "a.txt": lambda t: t.write_text("a")})
    with pytest.raises(UnsafeJournalError), atomic_dir(p.out / "folder"):
        pass
    assert not (p.out / "res.json").exists() and not (p.out / "a.txt").exists()
    assert_untouched(p, before)


def test_cli_evaluate_and_clean_refuse_a_planted_journal_in_one_line(planted_outside, tmp_path):
    p = planted_outside
    before = p.snapshot()
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}", int(rng.integers(1, 6)))
            for u in range(60) for i in rng.choice(25, size=8, replace=False)]  # fmt: skip
    ratings = tmp_path / "ratings.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating"]).to_csv(ratings, index=False)
    texts = tmp_path / "texts.txt"
    texts.write_text("<i>a</i>\n")

    result = run("evaluate", ratings, "--models", "popularity", "--out", p.out / "res.json")
    assert_one_line_error(result, 1, str(p.journal), REFUSED)
    assert not (p.out / "res.json").exists()
    result = run("clean", texts, "--out", p.out / "clean.txt")
    assert_one_line_error(result, 1, str(p.journal), REFUSED)
    assert not (p.out / "clean.txt").exists()
    assert_untouched(p, before)


def _inside(p: Planted, kind: str) -> None:
    """Journals naming paths inside the folder that are not its commit's temporaries."""
    (p.out / "notes.txt").write_text("my notes")  # a user's file beside the outputs
    (p.out / "mydir").mkdir()
    (p.out / "mydir" / "data.csv").write_text("a,b\n")
    (p.out / "res.json").write_text('{"old": true}')
    good = p.names(str(p.out), "res.json")
    if kind == "tmp-is-a-user-file":  # would rename notes.txt over res.json
        p.plant([{**good, "tmp": str(p.out / "notes.txt")}])
    elif kind == "old-is-a-user-folder":  # would rm -rf mydir
        p.plant([{**good, "old": str(p.out / "mydir")}])
    elif kind == "other-commits-temporary":
        p.plant([{**good, "tmp": str(p.out / f"{TMP_PREFIX}1.aaaaaa-00000000.res.json")}])
    elif kind == "final-is-a-temporary":
        p.plant([p.names(str(p.out), f"{TMP_PREFIX}1.x.y")])
    elif kind == "journal-of-another-name":  # would remove notes.txt as "a journal"
        p.plant([good], journals=[str(p.journal), str(p.out / "notes.txt")])
    elif kind == "does-not-list-itself":
        p.plant([good], journals=[str(p.out / f"{JOURNAL_PREFIX}{p.marker}x.json")])
    elif kind == "partner-folder-without-journal":  # "another folder of the commit"
        p.plant([p.names(str(p.elsewhere), "precious.txt")],
                journals=[str(p.journal)])  # fmt: skip
    else:
        raise AssertionError(kind)
    (p.out / f"{TMP_PREFIX}{p.marker}.res.json").write_text("planted")


@pytest.mark.parametrize("kind", [
    "tmp-is-a-user-file", "old-is-a-user-folder", "other-commits-temporary",
    "final-is-a-temporary", "journal-of-another-name", "does-not-list-itself",
    "partner-folder-without-journal",
])  # fmt: skip
def test_a_journal_naming_what_recfeat_did_not_make_is_refused_and_left(tmp_path, kind):
    p = Planted(tmp_path)
    _inside(p, kind)
    before = p.snapshot()
    with pytest.raises(UnsafeJournalError, match=REFUSED):
        clean_stale(p.out)
    assert p.snapshot() == before
    assert (p.out / "notes.txt").read_text() == "my notes"
    assert (p.out / "mydir" / "data.csv").is_file()
    assert (p.out / "res.json").read_text() == '{"old": true}'


def _malformed(p: Planted, kind: str) -> None:
    if kind == "not-json":
        p.journal.write_text("{ this is not json")
    elif kind == "not-utf8":
        p.journal.write_bytes(b"\xff\xfe\x00")
    elif kind == "a-list":
        p.journal.write_text("[]")
    elif kind == "wrong-format":
        p.journal.write_text(json.dumps({"format": "other/9", "entries": [], "journals": []}))
    elif kind == "entries-not-paths":
        p.journal.write_text(json.dumps({"entries": [{"tmp": 1}], "journals": [str(p.journal)]}))
    elif kind == "no-journals":
        p.journal.write_text(json.dumps({"entries": []}))
    elif kind == "huge":
        p.journal.write_text(json.dumps({"entries": [], "journals": [str(p.journal)],
                                         "pad": "x" * MAX_JOURNAL_BYTES}))  # fmt: skip
    elif kind == "deeply-nested":
        p.journal.write_text("[" * 200_000 + "]" * 200_000)
    elif kind == "symlink":  # to a user's file outside: never read as a journal, nor removed
        p.journal.symlink_to(p.precious)
    elif kind == "folder":
        p.journal.mkdir()
        (p.journal / "x").write_text("x")
    elif kind == "null-byte-path":
        p.plant([{"tmp": "a\0b", "final": "c", "old": "d"}])
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "not-json", "not-utf8", "a-list", "wrong-format", "entries-not-paths", "no-journals",
    "huge", "deeply-nested", "symlink", "folder", "null-byte-path",
])  # fmt: skip
def test_a_malformed_journal_is_refused_in_one_line_and_left(tmp_path, kind):
    p = Planted(tmp_path)
    _malformed(p, kind)
    before = p.snapshot()
    with pytest.raises(UnsafeJournalError, match=REFUSED) as info:
        clean_stale(p.out)
    assert "\n" not in str(info.value)
    assert p.snapshot() == before and os.path.lexists(p.journal)
    assert p.precious.read_text() == "precious"


def test_cli_refuses_a_malformed_journal_in_one_line(tmp_path):
    p = Planted(tmp_path)
    p.journal.write_text("\x00garbage\n" * 10)
    texts = tmp_path / "texts.txt"
    texts.write_text("a\n")
    result = run("clean", texts, "--out", p.out / "clean.txt")
    assert_one_line_error(result, 1, str(p.journal), "not valid JSON", REFUSED)
    assert p.journal.is_file() and not (p.out / "clean.txt").exists()


def test_the_sweep_removes_only_dead_recfeat_names_and_follows_no_link(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    pid = dead_pid()
    link = out / f"{TMP_PREFIX}{pid}.{host_tag()}-1.link"  # a stale name that is a link out
    link.symlink_to(elsewhere, target_is_directory=True)
    inner_link_dir = out / f"{TMP_PREFIX}{pid}.{host_tag()}-2.dir"
    inner_link_dir.mkdir()
    (inner_link_dir / "to-elsewhere").symlink_to(elsewhere, target_is_directory=True)
    (out / "user.txt").write_text("mine")
    (out / ".recfeat-tmpfoo").write_text("not a recfeat name")  # no pid: not recfeat's
    (out / f"{TMP_PREFIX}{os.getpid()}.abcdef-3.live").write_text("live")  # this process
    removed = clean_stale(out)
    assert sorted(p.name for p in removed) == sorted([link.name, inner_link_dir.name])
    assert (elsewhere / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".recfeat-tmpfoo", f"{TMP_PREFIX}{os.getpid()}.abcdef-3.live", "user.txt"]
    )


# -- genuine journals of killed runs ------------------------------------------------------------


def killed_commit(tmp_path: Path, files: dict[Path, str], dirs: list[Path], *, kill_at: str) -> None:
    """Run ``atomic_files`` in a child process that is killed (``os._exit``) at ``kill_at``:
    ``"apply"`` once every journal is written (step 3), ``"first-journal"`` once only the
    first journal is. The journals and temporaries it leaves are genuine, of a dead pid."""
    script = textwrap.dedent(f"""
        import os, sys
        import recfeat.atomic as atomic
        files = {{{", ".join(f"{str(k)!r}: {v!r}" for k, v in files.items())}}}
        dirs = {[str(d) for d in dirs]!r}
        if {kill_at!r} == "apply":
            atomic._apply = lambda *a, **k: os._exit(9)
        else:
            atomic._fsync_dir = lambda *a, **k: os._exit(9)
        with atomic.atomic_files(list(files), dirs=dirs) as temps:
            for path, text in files.items():
                with open(temps[atomic.Path(path)], "w") as fh:
                    fh.write(text)
            for d in dirs:
                with open(temps[atomic.Path(d)] / "new.txt", "w") as fh:
                    fh.write("new folder")
        sys.exit(3)  # not reached
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 9, proc.stderr


def recfeat_names(*folders: Path) -> list[str]:
    return sorted(p.name for f in folders for p in f.iterdir() if p.name.startswith(".recfeat"))


def test_a_genuine_journal_of_a_killed_run_is_finished(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "r.json").write_text("old r")
    (b / "p.txt").write_text("old p")
    (a / "model").mkdir()
    (a / "model" / "old.txt").write_text("old folder")
    killed_commit(tmp_path, {a / "r.json": "new r", b / "p.txt": "new p"}, [a / "model"],
                  kill_at="apply")  # fmt: skip
    assert (a / "r.json").read_text() == "old r"  # killed before any rename
    assert any(n.startswith(JOURNAL_PREFIX) for n in recfeat_names(a))
    assert any(n.startswith(JOURNAL_PREFIX) for n in recfeat_names(b))
    clean_stale(a)  # the next run in one of the folders finishes the whole commit
    assert (a / "r.json").read_text() == "new r" and (b / "p.txt").read_text() == "new p"
    assert [p.name for p in (a / "model").iterdir()] == ["new.txt"]
    assert recfeat_names(a, b) == []


def test_a_genuine_journal_is_finished_by_a_cli_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "r.json").write_text("old r")
    killed_commit(tmp_path, {out / "r.json": "new r", out / "s.json": "new s"}, [],
                  kill_at="apply")  # fmt: skip
    texts = tmp_path / "texts.txt"
    texts.write_text("<b>x</b>\n")
    result = run("clean", texts, "--out", out / "clean.txt")
    assert result.exit_code == 0, result.output
    assert (out / "r.json").read_text() == "new r" and (out / "s.json").read_text() == "new s"
    assert (out / "clean.txt").read_text() == "x\n" and recfeat_names(out) == []


def test_a_genuine_commit_killed_while_writing_its_journals_is_undone(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "r.json").write_text("old r")
    (b / "p.txt").write_text("old p")
    killed_commit(tmp_path, {a / "r.json": "new r", b / "p.txt": "new p"}, [],
                  kill_at="first-journal")  # fmt: skip
    assert [n for n in recfeat_names(a) if n.startswith(JOURNAL_PREFIX)]
    assert not [n for n in recfeat_names(b) if n.startswith(JOURNAL_PREFIX)]
    clean_stale(a)
    assert (a / "r.json").read_text() == "old r" and (b / "p.txt").read_text() == "old p"
    assert recfeat_names(a) == []
    clean_stale(b)  # b's own temporary goes with the next run there
    assert recfeat_names(b) == [] and (b / "p.txt").read_text() == "old p"


def test_a_relative_journal_of_an_earlier_release_is_finished(tmp_path, monkeypatch):
    """Earlier releases wrote the paths as given (relative to the working folder)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    a = out / "a.txt"
    a.write_text("old a")
    marker = f"{dead_pid()}.deadbeef"
    tmp = temp_sibling(a, marker=marker)
    tmp.write_text("new a")
    journal = out / f"{JOURNAL_PREFIX}{marker}.json"
    entries = [{"tmp": f"out/{tmp.name}", "final": "out/a.txt",
                "old": f"out/{OLD_PREFIX}{marker}.a.txt"}]  # fmt: skip
    journal.write_text(json.dumps({"entries": entries, "journals": [f"out/{journal.name}"]}))
    clean_stale(out)
    assert a.read_text() == "new a" and recfeat_names(out) == []


def test_a_partner_journal_that_differs_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (b / "p.txt").write_text("old p")
    marker = f"{dead_pid()}.{host_tag()}-00000001"
    name = f"{JOURNAL_PREFIX}{marker}.json"
    (b / f"{TMP_PREFIX}{marker}.p.txt").write_text("planted")
    entries = [{"tmp": str(b / f"{TMP_PREFIX}{marker}.p.txt"), "final": str(b / "p.txt"),
                "old": str(b / f"{OLD_PREFIX}{marker}.p.txt")}]  # fmt: skip
    record = {"entries": entries, "journals": [str(a / name), str(b / name)]}
    (a / name).write_text(json.dumps(record))
    (b / name).write_text(json.dumps({**record, "entries": []}))
    before = snapshot(a, b)
    with pytest.raises(UnsafeJournalError, match="differs from its partner journal"):
        clean_stale(a)
    assert snapshot(a, b) == before


# -- export manifests ---------------------------------------------------------------------------

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _OPENED is not None and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # every Python-level open() / os.open() while a test records


@pytest.fixture()
def opened():
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def _pointing_out(tiny_export: Path, tmp_path: Path, how: str) -> tuple[Path, Path]:
    """A copy of the export whose manifest runs a model outside the folder (a working copy
    of its own model: without the check it loads, verifies and runs)."""
    folder = tmp_path / "export"
    shutil.copytree(tiny_export, folder)
    other = tmp_path / "other"
    other.mkdir()
    outside = other / "model.onnx"
    manifest = json.loads((folder / "manifest.json").read_text())
    default = manifest["default_file"]
    shutil.copy(folder / default, outside)
    if how == "dotdot":
        name = "../other/model.onnx"
    elif how == "absolute":
        name = str(outside)
    else:
        assert how == "symlink"
        name = "linked.onnx"
        (folder / name).symlink_to(outside)
    manifest["files"][name] = manifest["files"][default]
    for step in manifest["steps"]:
        if step["file"] == default:
            step["file"] = name
    manifest["default_file"] = name
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, outside


def _opened_outside(opened: list[str], outside: Path) -> list[str]:
    target = os.path.realpath(outside)
    return [p for p in opened if os.path.realpath(p) == target]


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_an_export_manifest_naming_a_file_outside_its_folder_is_refused(tiny_export, tmp_path,
                                                                        how, opened):  # fmt: skip
    from recfeat.api import verify_export
    from recfeat.exporters.manifest import read_manifest
    from recfeat.plugin.registry import get_registry

    folder, outside = _pointing_out(tiny_export, tmp_path, how)
    opened.clear()  # only what loading opens counts
    for load in (
        lambda: read_manifest(folder),
        lambda: verify_export(folder),
        lambda: get_registry("encoder").create("onnx", path=str(folder)).encode(["a text"]),
    ):
        with pytest.raises(ArtifactError, match="is not a relative path inside") as info:
            load()
        assert "\n" not in str(info.value) and "re-run `recfeat export`" in str(info.value)
    assert _opened_outside(opened, outside) == []


@pytest.mark.parametrize("how", ["dotdot", "absolute"])
def test_extract_with_a_manifest_pointing_out_fails_in_one_line(tiny_export, tmp_path, how,
                                                                opened):  # fmt: skip
    folder, outside = _pointing_out(tiny_export, tmp_path, how)
    opened.clear()  # only what loading opens counts
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("user,item,rating,review\nann,b1,5,Great strings.\nbob,b2,3,ok\n")
    out = tmp_path / "f.parquet"
    result = run("extract", reviews, "--encoder", folder, "--out", out)
    assert_one_line_error(result, 1, "is not a relative path inside", "re-run `recfeat export`")
    assert not out.exists()
    assert _opened_outside(opened, outside) == []


def test_a_genuine_export_still_loads_with_nested_and_linked_inside_files(tiny_export, tmp_path):
    """A link that stays inside the folder is fine; the genuine folder loads as before."""
    from recfeat.exporters.manifest import check_file_names, read_manifest
    from recfeat.plugin.registry import get_registry

    manifest = read_manifest(tiny_export)
    vectors = get_registry("encoder").create("onnx", path=str(tiny_export)).encode(["a text"])
    assert vectors.shape[0] == 1 and np.isfinite(vectors).all()
    folder = tmp_path / "export"
    shutil.copytree(tiny_export, folder)
    (folder / "sub").mkdir()
    (folder / "sub" / "inner.onnx").symlink_to(folder / manifest["default_file"])
    check_file_names({**manifest, "files": {**manifest["files"], "sub/inner.onnx": {}}},
                     folder, folder / "manifest.json")  # fmt: skip


@pytest.mark.parametrize("text", ["{bad", "[1]", '{"runtime": 5}'])
def test_extract_with_a_malformed_manifest_fails_in_one_line(tmp_path, text):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "manifest.json").write_text(text)
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("user,item,rating,review\nann,b1,5,Great strings.\n")
    result = run("extract", reviews, "--encoder", folder, "--out", tmp_path / "f.parquet")
    assert_one_line_error(result, 1, "manifest.json", "re-run `recfeat export`")
    assert "internal error" not in result.output
