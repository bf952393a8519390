"""Run the attack table (issue 11's round and issue 21's) against one recfeat tree and
count what went wrong.

    python benchmarks/attack/run_attack.py --label after                   # the current tree
    python benchmarks/attack/run_attack.py --label before --pythonpath /work/before-site

Each case runs as a real process, ``python -c "from recfeat.cli.main import cli; cli()"``
(core/cli/main.py has no ``__main__`` block, so ``python -m recfeat.cli.main`` would exit
without running anything), in a fresh folder, with a per-case timeout. Writes
benchmarks/results/attack_<label>.json (every case, every problem) and attack_<label>.md
(the counts and the failing cases).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.attack.cases import MARKER, REPO, Case, is_fast, steps_for, write_data_files
from benchmarks.attack.round2 import _STALLED
from benchmarks.attack.table import CASES, CLASSES

RESULTS = REPO / "benchmarks" / "results"
CLI_CODE = "from recfeat.cli.main import cli; cli(prog_name='recfeat')"
# mode "python": the case's code with ``recfeat`` imported; a RecfeatError becomes one Error
# line and its exit code (what the CLI does); anything else escapes with its traceback.
PY_CODE = ("import sys\nimport recfeat\nfrom recfeat.errors import RecfeatError\n"
           "try:\n    exec(compile(sys.argv[1], '<case>', 'exec'), {'recfeat': recfeat, '__name__': '__case__'})\n"
           "except RecfeatError as exc:\n    print(f'Error: {exc}', file=sys.stderr)\n"
           "    sys.exit(getattr(exc, 'exit_code', 1))\n")  # fmt: skip
READY = re.compile(r"ready on (http://\S+)")
RAY_TOKEN = Path.home() / ".ray" / "auth_token"  # the harness's own HOME; cases get another
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # C0 controls and DEL, except \t and \n
# Temporary names of either tree: ".NAME.XXXX.tmp" (before) and ".recfeat-tmp.<pid>..." /
# ".recfeat-old." / ".recfeat-commit." (core/atomic.py after issue 11).
TEMP_NAME = re.compile(r"((^|/)\.recfeat-(tmp|old|commit)\.|\.tmp$|\.tmp[./]|\.old$|\.partial$|(^|/)\.[^/]+\.tmp)")
# The CLI's last-resort message for an exception nobody turned into a RecfeatError: before,
# "unexpected X: ... (rerun with --debug ...; please report it)"; after, "internal error X:
# ...; this is a bug ...: rerun with --debug and report the traceback".
FALLBACK = ("please report", "rerun with --debug", "internal error")
IGNORED = ("cache", ".cache", ".config")  # the vector cache a case's runs share; checked by the cases that need it
COUNTS = ("tracebacks", "poor_messages", "partial_outputs", "inputs_lost", "silent_corruptions",
          "code_executed", "terminal_escapes", "hung", "server_degraded")  # fmt: skip


class Target:
    """Which recfeat tree runs: an interpreter plus an optional PYTHONPATH in front."""

    def __init__(self, python: str = sys.executable, pythonpath: str | None = None):
        self.python = python
        self.pythonpath = pythonpath

    def env(self, folder: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECFEAT_", "PYTEST"))}
        env.pop("PYTHONPATH", None)
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", RECFEAT_LOAD_PLUGINS="",
                   RECFEAT_PROGRESS="0", RECFEAT_CACHE_DIR=str(folder / "cache"), TERM="dumb",
                   COLUMNS="120", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   HOME=str(folder.parent / ".home"), MPLCONFIGDIR=str(folder.parent / ".home" / "mpl"))  # fmt: skip
        return env

    def argv(self, args) -> list[str]:
        return [self.python, "-c", CLI_CODE, *args]

    def case_argv(self, case: Case, args) -> list[str]:
        if case.mode == "python":
            return [self.python, "-c", PY_CODE, *args]
        if case.mode == "http":
            return self.argv(("serve", "--port", "0", *args))
        return self.argv(args)

    def case_env(self, case: Case, folder: Path) -> dict[str, str]:
        env = self.env(folder)
        env.update(dict(case.env))
        if any("{RAY}" in a for a in case.argv):
            # the test cluster runs in token mode; the case's HOME is not the one holding it
            env["RAY_AUTH_MODE"] = os.environ.get("RAY_AUTH_MODE", "token")
            if RAY_TOKEN.is_file():
                env["RAY_AUTH_TOKEN_PATH"] = str(RAY_TOKEN)
        return env

    def where(self) -> str:
        out = subprocess.run([self.python, "-c", "import recfeat; print(recfeat.__file__)"],
                             env=self.env(Path(tempfile.gettempdir())), capture_output=True, text=True)  # fmt: skip
        return out.stdout.strip()

    def digest(self) -> str:
        """A hash of the tree's Python sources: the base folder is rebuilt when they change."""
        code = ("import recfeat, recfeat.plugins, recfeat.exporters, pathlib, hashlib\n"
                "h = hashlib.sha256()\n"
                "for m in (recfeat, recfeat.plugins, recfeat.exporters):\n"
                "    for p in sorted(pathlib.Path(m.__file__).parent.rglob('*.py')):\n"
                "        h.update(p.read_bytes())\n"
                "print(h.hexdigest()[:16])")  # fmt: skip
        out = subprocess.run([self.python, "-c", code], env=self.env(Path(tempfile.gettempdir())),
                             capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout.strip()


# -- base ---------------------------------------------------------------------------------------


def build_base(target: Target, cases=CASES, root: Path | None = None, say=print) -> Path:
    """The shared inputs and earlier outputs ``cases`` use, made by ``target`` itself; kept
    (per step) while the tree's sources do not change."""
    root = root or Path(os.environ.get("RECFEAT_ATTACK_BASE", Path(tempfile.gettempdir()) / "recfeat-attack-base"))
    base = root / target.digest()
    if not (base / "DATA_DONE").exists():
        if base.exists():
            shutil.rmtree(base)
        write_data_files(base)
        (base / "DATA_DONE").write_text("ok\n")
    for outputs, args in steps_for(cases):
        done = base / f"DONE-{outputs[0]}"
        if done.exists():
            continue
        start = time.monotonic()
        proc = subprocess.run(target.argv(args), cwd=base, env=target.env(base), capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"base step failed: recfeat {' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
        done.write_text("ok\n")
        say(f"base: recfeat {' '.join(args)} ({time.monotonic() - start:.1f} s)")
    return base


# -- one case -----------------------------------------------------------------------------------


def _snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (symlinks by their target's content), cache aside."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if rel.split("/")[0] in IGNORED or not (p.is_file() or p.is_symlink()):
            continue
        try:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "dangling"
        except PermissionError:
            out[rel] = "unreadable"
    return out


def _dirs(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_dir() and not p.is_symlink() and p.relative_to(folder).parts[0] not in IGNORED}  # fmt: skip


def _match(fragment, output: str) -> bool:
    alts = fragment if isinstance(fragment, tuple) else (fragment,)
    low = output.lower()
    return any(a.lower() in low for a in alts)


def _prepare(case: Case, base: Path, root: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"{case.name}.", dir=root))
    for name in case.files:
        src = base / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, folder / name)
    return folder


def _mount_tmpfs(folder: Path, kb: int) -> bool:
    (folder / "full").mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kb}k", "tmpfs", str(folder / "full")],
                          capture_output=True, text=True)  # fmt: skip
    return proc.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder / "full")], capture_output=True)


class _NotRay:
    """A loopback port that accepts connections and answers garbage: not a Ray head."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            finally:
                conn.close()


_NOT_RAY: list[_NotRay] = []
_NOT_RAY_LOCK = threading.Lock()


def placeholders(args) -> tuple[list[str], str | None]:
    """``args`` with {RAY} / {NOT_RAY} filled in, or a reason to skip the case."""
    out = []
    for a in args:
        if "{RAY}" in a:
            ray = os.environ.get("RECFEAT_TEST_RAY_ADDRESS")
            if not ray:
                return [], "needs a Ray cluster: set RECFEAT_TEST_RAY_ADDRESS (.ci/run starts one)"
            a = a.replace("{RAY}", ray)
        if "{NOT_RAY}" in a:
            with _NOT_RAY_LOCK:
                if not _NOT_RAY:
                    _NOT_RAY.append(_NotRay())
            a = a.replace("{NOT_RAY}", _NOT_RAY[0].address)
        out.append(a)
    return out, None


def _run_http(case: Case, target: Target, folder: Path, args) -> tuple[int | None, str, dict]:
    """Start the server, wait for "ready", run the client, SIGTERM, wait for the exit."""
    proc = subprocess.Popen(target.case_argv(case, args), cwd=folder, env=target.case_env(case, folder),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    lines: list[str] = []
    url: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            m = READY.search(line)
            if m and not url:
                url.append(m.group(1).rstrip(";,."))
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + case.limit
    while not ready.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            break
    extra: dict[str, list[str]] = {}
    if not ready.is_set():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            reader.join(5)
            return None, "".join(lines) + "\nnever said ready", extra
        reader.join(5)
        return proc.returncode, "".join(lines), extra
    try:
        extra = case.client(url[0], folder) or {}
    except Exception as exc:  # a client that breaks is reported, the server still stopped
        extra = {"poor_messages": [f"harness client: {type(exc).__name__}: {exc}"]}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(case.shutdown_s)
    except subprocess.TimeoutExpired:
        extra.setdefault("hung", []).append(f"the server did not stop within {case.shutdown_s} s of SIGTERM")
        proc.kill()
        proc.wait()
    for s in _STALLED.pop(str(folder), []):
        s.close()
    reader.join(5)
    return proc.returncode, "".join(lines), extra


def _run(case: Case, target: Target, folder: Path, args=None) -> tuple[int | None, str]:
    argv = target.case_argv(case, case.argv if args is None else args)
    env = target.case_env(case, folder)
    if case.as_nobody:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    try:
        if case.mode == "pipe_head":
            proc = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            first = proc.stdout.readline()
            proc.stdout.close()  # the reader goes away, as `| head -1` does
            try:
                err = proc.communicate(timeout=case.limit)[1]
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return None, "timed out"
            return proc.returncode, first.decode("utf-8", "replace") + err.decode("utf-8", "replace")
        if case.mode == "concurrent":
            procs = [subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                     for _ in range(2)]  # fmt: skip
            outs, codes = [], []
            for p in procs:
                try:
                    outs.append(p.communicate(timeout=case.limit)[0].decode("utf-8", "replace"))
                    codes.append(p.returncode)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    return None, "timed out"
            bad = [c for c in codes if c not in case.expected]
            return (bad[0] if bad else max(codes)), "\n".join(outs)
        stdout = open(case.stdout_to, "wb") if case.stdout_to else subprocess.PIPE
        try:
            proc = subprocess.run(argv, cwd=folder, env=env, stdout=stdout, stderr=subprocess.PIPE,
                                  timeout=case.limit)  # fmt: skip
        finally:
            if case.stdout_to:
                stdout.close()
        out = (proc.stdout or b"").decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        return None, "timed out"


def run_case(case: Case, target: Target, base: Path, root: Path) -> dict:
    """Run one case; return its record: exit, output and the problems found by kind."""
    start = time.monotonic()
    folder = _prepare(case, base, root)
    record = {"name": case.name, "class": case.cls, "argv": list(case.argv), "expected_exit": list(case.expected)}
    if case.tmpfs_kb and not _mount_tmpfs(folder, case.tmpfs_kb):
        record.update(skipped="cannot mount a tmpfs here (needs root or a user namespace)")
        shutil.rmtree(folder, ignore_errors=True)
        return record
    args, skip = placeholders(case.argv)
    if skip:
        record.update(skipped=skip)
        shutil.rmtree(folder, ignore_errors=True)
        return record
    try:
        if case.setup:
            case.setup(folder)
        for pre in case.pre:
            subprocess.run(target.argv(pre), cwd=folder, env=target.env(folder), capture_output=True, timeout=300)
        if case.as_nobody:
            for p in [folder, *folder.rglob("*")]:
                if not p.is_symlink() and p.name != "ro" and p.name != "secret.csv":
                    os.chmod(p, os.stat(p).st_mode | 0o777 if p.is_dir() else os.stat(p).st_mode | 0o666)
        before = _snapshot(folder)
        dirs_before = _dirs(folder)
        extra: dict[str, list[str]] = {}
        if case.mode == "http":
            code, output, extra = _run_http(case, target, folder, args)
        else:
            code, output = _run(case, target, folder, args)
        after = _snapshot(folder)
        problems: dict[str, list[str]] = {k: [] for k in COUNTS}
        for kind, found in extra.items():
            problems.setdefault(kind, []).extend(found)
        if code is None:
            problems["hung"].append(f"no exit within {case.limit} s")
        if "Traceback (most recent call last)" in output:
            problems["tracebacks"].append("a traceback was printed")
        if code is not None and code not in case.expected:
            problems["poor_messages"].append(f"exit {code}, expected {'/'.join(map(str, case.expected))}")
        missing = [f if isinstance(f, str) else "|".join(f) for f in case.fragments if not _match(f, output)]
        if missing:
            problems["poor_messages"].append(f"message lacks {missing}")
        fallback = [f for f in FALLBACK if f in output.lower()]
        if fallback:
            problems["poor_messages"].append(f"fell through to the catch-all bug message ({fallback[0]!r})")
        if code not in (0, None) and case.mode in ("run", "python") and 0 not in case.expected:
            errors = [ln for ln in output.splitlines() if ln.startswith("Error")]
            if len(errors) != 1:
                problems["poor_messages"].append(f"{len(errors)} 'Error' lines, expected one")
        for rel, digest in before.items():
            if rel in case.may_change or rel.split("/")[0] in case.may_change:
                continue
            if rel not in after:
                problems["inputs_lost"].append(f"{rel} was deleted")
            elif after[rel] != digest:
                problems["inputs_lost"].append(f"{rel} was changed")
        new = sorted(set(after) - set(before))
        stray = [r for r in new if TEMP_NAME.search(r)]
        stray += [d + "/" for d in sorted(_dirs(folder) - dirs_before)
                  if TEMP_NAME.search(d.rsplit("/", 1)[-1]) and d.split("/")[0] not in case.may_change]  # fmt: skip
        if stray:
            problems["partial_outputs"].append(f"temporary files left: {sorted(set(stray))[:5]}")
        if code not in (0, None) and case.mode in ("run", "python"):
            made = [r for r in new if r not in stray and r != MARKER]  # the marker is counted below
            made += [d + "/" for d in sorted(_dirs(folder) - dirs_before) if not TEMP_NAME.search(d)]
            if made:
                problems["partial_outputs"].append(f"failed but wrote {made[:5]}")
        if (folder / MARKER).exists():
            problems["code_executed"].append("the hostile pickle ran code")
        if CONTROL.search(output):
            shown = sorted({repr(c) for c in CONTROL.findall(output)})
            problems["terminal_escapes"].append(f"control characters in the output: {', '.join(shown)}")
        if case.silent and code == 0 and 0 not in case.expected:
            problems["silent_corruptions"].append("wrong input accepted with exit 0")
        if case.post and code is not None:
            record.update(exit=code, output=output)  # what the post check may look at
            problems["silent_corruptions"].extend(case.post(folder, record))
        record.update(exit=code, output=output[-3000:], seconds=round(time.monotonic() - start, 1),
                      problems={k: v for k, v in problems.items() if v})  # fmt: skip
        return record
    finally:
        if case.tmpfs_kb:
            _umount(folder)
        shutil.rmtree(folder, ignore_errors=True)


# -- the whole table ----------------------------------------------------------------------------


def summarise(records: list[dict]) -> dict:
    ran = [r for r in records if "skipped" not in r]
    counts = {"cases": len(records), "ran": len(ran), "skipped": len(records) - len(ran)}
    for k in COUNTS:
        counts[k] = sum(1 for r in ran if r["problems"].get(k))
    counts["failing_cases"] = sum(1 for r in ran if r["problems"])
    return counts


def run_all(target: Target, cases=CASES, workers: int = 2, say=print, journal: Path | None = None,
            redo=()) -> tuple[list[dict], Path]:  # fmt: skip
    """Run ``cases``; with ``journal`` (JSON lines), records already there are reused and
    each new one is appended as it finishes, so an interrupted run continues where it was."""
    done: dict[str, dict] = {}
    report = journal.with_suffix(".json") if journal is not None else None
    if report is not None and report.exists():  # a finished run: add new or renamed cases to it
        done.update({r["name"]: r for r in json.loads(report.read_text())["cases"]})
    if journal is not None and journal.exists():
        for line in journal.read_text().splitlines():
            rec = json.loads(line)
            done[rec["name"]] = rec
    for name in redo:
        done.pop(name, None)
    todo = [c for c in cases if c.name not in done]
    base = build_base(target, todo, say=say)
    root = Path(tempfile.mkdtemp(prefix="recfeat-attack-"))
    os.chmod(root, 0o755)
    os.symlink(base, root / "_base")
    (root / ".home").mkdir()
    os.chmod(root / ".home", 0o777)  # HOME for the cases (matplotlib's font cache), nobody's too
    records: dict[str, dict] = {c.name: done[c.name] for c in cases if c.name in done}
    # The HTTP cases measure how long an innocent client waits: they run one at a time after
    # the others, so no other case's model load competes with the server for the two cores.
    waves = [[c for c in todo if c.mode != "http"], [c for c in todo if c.mode == "http"]]
    try:
        for wave, size in zip(waves, (workers, 1), strict=True):
            if wave:
                _run_wave(wave, size, target, base, root, records, journal, say)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [records[c.name] for c in cases], base


def _run_wave(cases, workers, target, base, root, records, journal, say) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_case, c, target, base, root): c for c in cases}
        for fut in concurrent.futures.as_completed(futures):
            case = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # a broken setup is reported, not fatal to the run
                rec = {"name": case.name, "class": case.cls, "exit": None, "output": "",
                       "problems": {"poor_messages": [f"harness: {type(exc).__name__}: {exc}"]}}  # fmt: skip
            records[case.name] = rec
            if journal is not None:
                with open(journal, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
            status = "skip" if "skipped" in rec else ("ok" if not rec["problems"] else "FAIL")
            say(f"{status:4} {case.name} ({rec.get('seconds', 0)} s) {'; '.join(sum(rec.get('problems', {}).values(), []))[:200]}")


def write_report(label: str, target: Target, records: list[dict], seconds: float) -> dict:
    counts = summarise(records)
    tree = _tree_state(target)
    payload = {"label": label, "tree": tree, "seconds": round(seconds, 1), "counts": counts, "cases": records}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"attack_{label}.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [f"# Attack table: {label}", "", f"Tree: {tree}", f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{seconds:.0f} s wall, 2 workers", "", "| count | value |", "| --- | --- |"]  # fmt: skip
    lines += [f"| {k} | {v} |" for k, v in counts.items()]
    lines += ["", "## Failing cases", "", "| case | class | exit | problems |", "| --- | --- | --- | --- |"]
    for r in records:
        if r.get("problems"):
            probs = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["problems"].items()).replace("|", "/")
            lines.append(f"| {r['name']} | {r['class']} {CLASSES[r['class']]} | {r.get('exit')} | {probs[:300]} |")
    skipped = [r for r in records if "skipped" in r]
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- {r['name']}: {r['skipped']}" for r in skipped]
    (RESULTS / f"attack_{label}.md").write_text("\n".join(lines) + "\n")
    return counts


def _tree_state(target: Target) -> str:
    where = target.where()
    repo = Path(where).resolve().parents[1]
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    if target.pythonpath:
        return f"recfeat imported from {where} (a frozen install; see docs/reliability.md for its commit)"
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "core", "plugins", "exporters"],
                           capture_output=True, text=True).stdout.splitlines()  # fmt: skip
    return (f"working tree {repo} at HEAD {head}" + (f" plus {len(dirty)} uncommitted changed/new files in "
            "core/, plugins/, exporters/" if dirty else ""))  # fmt: skip


def compare_table(before: Path = RESULTS / "attack_before.json", after: Path = RESULTS / "attack_after.json") -> str:
    """Markdown: the counts side by side, then each case that fails in either run."""
    b, a = (json.loads(p.read_text()) for p in (before, after))
    lines = ["| count | before | after |", "| --- | --- | --- |"]
    lines += [f"| {k} | {b['counts'].get(k)} | {a['counts'].get(k)} |" for k in a["counts"]]
    lines += ["", f"before: {b['tree']}; {b['seconds']:.0f} s", f"after: {a['tree']}; {a['seconds']:.0f} s", ""]
    by_b = {r["name"]: r for r in b["cases"]}
    lines += ["| class | cases | failing before | failing after |", "| --- | --- | --- | --- |"]
    for cls, what in CLASSES.items():
        rows = [r for r in a["cases"] if r["class"] == cls]
        if not rows:  # a round's own classes only
            continue
        fail_b = sum(1 for r in rows if by_b.get(r["name"], {}).get("problems"))
        fail_a = sum(1 for r in rows if r.get("problems"))
        lines.append(f"| {cls}. {what} | {len(rows)} | {fail_b} | {fail_a} |")
    lines += ["", "| case | class | before | after |", "| --- | --- | --- | --- |"]
    for r in a["cases"]:
        rb = by_b.get(r["name"], {})
        if r.get("problems") or rb.get("problems"):
            show = lambda x: "skipped" if "skipped" in x else (", ".join(sorted(x.get("problems", {}))) or "ok")  # noqa: E731
            lines.append(f"| {r['name']} | {r['class']} | {show(rb) if rb else 'n/a'} | {show(r)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True,
                    help="before / after: names the result files; 'compare': print the before/after table")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--pythonpath", default=None, help="put this first on PYTHONPATH (a frozen install)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated case names")
    ap.add_argument("--redo", default="", help="with --resume: comma-separated cases to run again")
    ap.add_argument("--fast", action="store_true", help="only the cases that load no language model")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the records of attack_<label>.json/.jsonl (a finished or interrupted run); "
                         "run only the cases they lack")
    args = ap.parse_args(argv)
    if args.label == "compare":
        print(compare_table())
        return 0
    target = Target(args.python, args.pythonpath)
    cases = CASES
    if args.only:
        names = set(args.only.split(","))
        cases = [c for c in CASES if c.name in names]
    if args.fast:
        cases = [c for c in cases if is_fast(c)]
    journal = RESULTS / f"attack_{args.label}.jsonl"
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.resume and journal.exists():
        journal.unlink()
    print(f"recfeat under attack: {target.where()}; {len(cases)} cases")
    start = time.monotonic()
    if not args.resume:
        (RESULTS / f"attack_{args.label}.json").unlink(missing_ok=True)
    records, _ = run_all(target, cases, workers=args.workers, journal=journal,
                         redo=[n for n in args.redo.split(",") if n])  # fmt: skip
    journal.unlink()  # complete: the .json below holds every record
    counts = write_report(args.label, target, records, time.monotonic() - start)
    print(json.dumps(counts, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
