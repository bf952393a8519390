"""A full disk: ``extract``, ``evaluate`` and ``train`` writing into a filled tmpfs fail with
exit 1 and one line naming the full disk, and leave the earlier outputs there byte for byte
and no partial or temporary file.

Each run happens in a private mount namespace (``unshare -m``, or ``unshare -rm`` for a
user without root), where a small tmpfs is mounted, seeded with the earlier outputs (made
by a normal run of the same command), filled until only a few KB stay free, and the
command run into it; the tmpfs content is then copied out for the checks. Nothing is
mounted outside the namespace, so a killed test leaves no mount behind.

Where mounting is not permitted (no root and no user namespaces, or a container that
forbids mount), the tests skip and say why, under CI too: a CI machine that cannot mount
cannot produce ENOSPC on demand, and a failure there would test the machine, not recfeat.
The skip reason is printed with ``-ra`` (the project's default) so it is never silent.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = "from recfeat.cli.main import cli; cli(prog_name='recfeat')"
FILL = (
    "import os, sys; d = sys.argv[1]; keep = int(sys.argv[2]) * 1024; st = os.statvfs(d); "
    "n = st.f_bavail * st.f_frsize - keep; open(os.path.join(d, 'filler.bin'), 'wb').write(b'\\0' * max(n, 0))"
)
SCRIPT = """set -u
mount -t tmpfs -o size="$SIZE" tmpfs "$MNT" || exit 97
cp -a "$SEED/." "$MNT/"
"$PY" -c "$FILL" "$MNT" "$KEEP_KB"
"$@" > "$LOG" 2>&1
echo $? > "$RC"
rm -f "$MNT/filler.bin"
cp -a "$MNT/." "$SNAP/"
"""


@functools.cache
def _unshare() -> tuple[list[str] | None, str]:
    """The unshare prefix that lets this process mount a tmpfs, or (None, why not)."""
    if shutil.which("unshare") is None:
        return None, "unshare(1) is not installed"
    probe_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    reasons = []
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        probe = subprocess.run([*prefix, "sh", "-c", f'd=$(mktemp -d -p "{probe_dir}") && mount -t tmpfs -o size=64k tmpfs "$d"'
                                " && umount \"$d\"; r=$?; rmdir \"$d\"; exit $r"],
                               capture_output=True, text=True)  # fmt: skip
        if probe.returncode == 0:
            return prefix, ""
        reasons.append(f"{' '.join(prefix)}: {(probe.stderr.strip() or f'exit {probe.returncode}')[:120]}")
    return None, "cannot mount a tmpfs here (" + "; ".join(reasons) + ")"


@pytest.fixture()
def full_disk(tmp_path):
    """``run(seed_dir, keep_kb, *recfeat_args)`` -> (exit, output, snapshot dir of the tmpfs);
    recfeat_args name the tmpfs as ``{MNT}``."""
    prefix, why = _unshare()
    if prefix is None:
        if os.environ.get("CI"):
            print(f"test_disk_full: skipped under CI: {why}", file=sys.stderr)
        pytest.skip(why)

    def run(seed: Path, keep_kb: int, *args: str, size: str = "2m"):
        mnt, snap = tmp_path / "mnt", tmp_path / "snap"
        for d in (mnt, snap):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0",
               "RECFEAT_CACHE_DIR": str(tmp_path / "cache"), "SIZE": size, "MNT": str(mnt), "SEED": str(seed),
               "SNAP": str(snap), "KEEP_KB": str(keep_kb), "LOG": str(tmp_path / "log"), "RC": str(tmp_path / "rc"),
               "PY": sys.executable, "FILL": FILL}  # fmt: skip
        argv = [sys.executable, "-c", CLI, *(a.replace("{MNT}", str(mnt)) for a in args)]
        proc = subprocess.run([*prefix, "sh", "-c", SCRIPT, "sh", *argv], env=env, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, f"the namespace script failed: {proc.stderr}"
        output = (tmp_path / "log").read_text().replace(str(mnt), "{MNT}")
        return int((tmp_path / "rc").read_text()), output, snap

    return run


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def assert_disk_full_kept_earlier(code: int, output: str, seed: Path, snap: Path) -> None:
    assert code == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, output
    assert any(w in errors[0].lower() for w in ("disk full", "no space")), output
    assert not any(f in output.lower() for f in ("please report", "rerun with --debug", "internal error")), output
    assert digests(snap) == digests(seed), "an earlier output changed, or a partial/temporary file was left"


def ratings_csv(movielens_100k: Path, folder: Path, rows: int = 3000) -> Path:
    lines = (movielens_100k / "u.data").read_text().splitlines()[:rows]
    path = folder / "ratings.csv"
    path.write_text("user,item,rating,timestamp\n" + "".join(",".join(r.split("\t")) + "\n" for r in lines))
    return path


def earlier(tmp_path: Path, *args: str) -> Path:
    """Run recfeat normally with ``{MNT}`` = a seed folder: the earlier outputs."""
    seed = tmp_path / "seed"
    seed.mkdir(exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0",
           "RECFEAT_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", CLI, *(a.replace("{MNT}", str(seed)) for a in args)],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return seed


def test_evaluate_into_a_full_disk_keeps_the_earlier_json_and_png(full_disk, movielens_100k, tmp_path):
    data = ratings_csv(movielens_100k, tmp_path)
    args = ("evaluate", str(data), "--models", "global-mean,bias", "--out", "{MNT}/res.json", "--plot", "{MNT}/res.png",
            "--seed", "3")  # fmt: skip
    seed = earlier(tmp_path, *args[:-1], "1")  # another seed: the new result differs from the earlier one
    code, output, snap = full_disk(seed, 4, *args)
    assert_disk_full_kept_earlier(code, output, seed, snap)


def test_train_into_a_full_disk_keeps_the_earlier_model(full_disk, movielens_100k, tmp_path):
    data = ratings_csv(movielens_100k, tmp_path)
    seed = earlier(tmp_path, "train", str(data), "--model", "bias", "--out", "{MNT}/model.joblib")
    (tmp_path / "big").mkdir()
    bigger = ratings_csv(movielens_100k, tmp_path / "big", 20000)  # the new model differs from the earlier one
    code, output, snap = full_disk(seed, 8, "train", str(bigger), "--model", "bias", "--out", "{MNT}/model.joblib")
    assert_disk_full_kept_earlier(code, output, seed, snap)


@pytest.mark.slow
def test_extract_into_a_full_disk_keeps_the_earlier_features(full_disk, musical_instruments, tmp_path):
    data = tmp_path / "reviews.json"
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as src:
        data.write_text("".join(line for _, line in zip(range(60), src, strict=False)))
    args = ("extract", str(data), "--format", "amazon", "--level", "review", "--max-length", "16",
            "--out", "{MNT}/f.parquet")  # fmt: skip
    seed = earlier(tmp_path, *args[:-1], "{MNT}/f.parquet", "--level", "item")
    # the earlier run was item level (fewer rows); the new review-level file does not fit
    code, output, snap = full_disk(seed, 24, *args)
    assert_disk_full_kept_earlier(code, output, seed, snap)
