"""SIGKILL at several points, then resume: the result is the file an uninterrupted run writes.

Real processes on real data: ``recfeat extract`` over 300 Musical Instruments reviews
(review level, chunks of 50, bf16 on CPUs with bf16 units else fp32, max_length 32 to keep
it quick) is killed three times:
during start-up (before any chunk is committed), right after the first committed chunk, and
two chunks later; then run to the end. Its Parquet file and manifest must equal, byte for
byte, those of one uninterrupted run into a separate cache, and no temporary file may be
left. ``recfeat export`` killed while it builds must leave no ``--out`` folder, its
half-made build folder must not load as a model, and a rerun must succeed and remove it.

The kill points are chosen by watching the cache (rows committed) and the output folder
(the build folder appearing), not by timing, so they hold on a slow or busy machine.
"""

from __future__ import annotations

import filecmp
import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recfeat.machine import has_bf16

N_REVIEWS = 300
CHUNK = 50
# bf16 is quick only on CPUs with bf16 units (AVX-512 BF16, AMX); elsewhere torch emulates it
QUICK_PRECISION = "bf16" if has_bf16() else "fp32"
CLI = "from recfeat.cli.main import cli; cli(prog_name='recfeat')"
CACHE_FILE = "vectors.sqlite"


def recfeat(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI, *args]


def cached_rows(cache_dir: Path) -> int:
    db_path = cache_dir / CACHE_FILE
    if not db_path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:  # not created yet, or locked for a moment
        return 0


def temporaries(folder: Path, known: set[str] = frozenset()) -> list[str]:
    """Hidden names a writer left in ``folder`` (either naming scheme of core/atomic.py)."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name not in known)


@pytest.fixture()
def env(tmp_path):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0",
            "RECFEAT_CACHE_DIR": str(tmp_path / "unused-default"), "OMP_NUM_THREADS": "2"}  # fmt: skip


def extract_args(data: Path, cache: Path, out: Path) -> list[str]:
    return recfeat("extract", str(data), "--format", "amazon", "--level", "review", "--max-length", "32",
                   "--precision", QUICK_PRECISION, "--chunk-size", str(CHUNK), "--cache", str(cache), "--out", str(out))  # fmt: skip


def kill_when(proc: subprocess.Popen, ready, what: str, limit: float = 300) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()``; False when it finished first."""
    deadline = time.monotonic() + limit
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"{what} not reached within {limit} s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


@pytest.mark.slow
def test_extract_killed_three_times_then_resumed_is_byte_identical(musical_instruments, tmp_path, env):
    data = tmp_path / "reviews.json"
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as src, open(data, "w") as dst:
        for _, line in zip(range(N_REVIEWS), src, strict=False):
            dst.write(line)
    out_dir = tmp_path / "out"
    out = out_dir / "reviews.parquet"
    cache = tmp_path / "cache-a"
    kills = []

    # 1. during start-up: imports and model loading, nothing committed yet
    proc = subprocess.Popen(extract_args(data, cache, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    if kill_when(proc, lambda: time.monotonic() - start > 0.5, "half a second"):
        kills.append(cached_rows(cache))
    # 2. right after the first committed chunk; 3. two chunks later
    for extra in (CHUNK, 2 * CHUNK):
        target = cached_rows(cache) + extra
        proc = subprocess.Popen(extract_args(data, cache, out), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        if kill_when(proc, lambda t=target: cached_rows(cache) >= t, f"{target} cached vectors"):
            kills.append(cached_rows(cache))
            assert proc.returncode == -signal.SIGKILL
        assert not out.exists(), "a killed run left an output file"
        assert cached_rows(cache) % CHUNK == 0 or cached_rows(cache) == N_REVIEWS  # whole chunks only
    assert len(kills) >= 2, f"the run finished before it could be killed twice: {kills}"
    assert kills[-1] < N_REVIEWS

    resumed = subprocess.run(extract_args(data, cache, out), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr

    ref = tmp_path / "ref" / "reviews.parquet"
    clean = subprocess.run(extract_args(data, tmp_path / "cache-b", ref), env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr

    assert filecmp.cmp(out, ref, shallow=False), "resumed Parquet differs from an uninterrupted run"
    man, man_ref = (p.with_suffix(".manifest.json") for p in (out, ref))
    assert filecmp.cmp(man, man_ref, shallow=False), "resumed manifest differs from an uninterrupted run"
    assert temporaries(out_dir) == [], "temporary files left beside the output"


@pytest.mark.slow
def test_export_killed_mid_build_leaves_nothing_loadable_and_a_rerun_cleans_up(tmp_path, env, musical_instruments):
    out = tmp_path / "exp"
    cmd = recfeat("export", "--encoder", "minilm", "--max-length", "16", "--out", str(out))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def building() -> bool:  # the build folder exists and the tokenizer is already in it
        return any((tmp_path / name / "vocab.txt").exists() for name in temporaries(tmp_path))

    assert kill_when(proc, building, "the export's build folder"), "export finished before the kill"
    assert not out.exists(), "a killed export left its --out folder"
    stale = temporaries(tmp_path)
    assert stale, "the build folder of the killed export is gone: the kill point was not mid-build"

    data = tmp_path / "reviews.json"
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as src:
        data.write_text("".join(line for _, line in zip(range(5), src, strict=False)))
    for name in stale:  # half-made: must not load as a model
        run = subprocess.run(recfeat("extract", str(data), "--format", "amazon", "--encoder", str(tmp_path / name),
                                     "--no-cache", "--out", str(tmp_path / "f.parquet")),
                             env=env, capture_output=True, text=True)  # fmt: skip
        assert run.returncode != 0, f"the half-made folder {name} loaded as a model"
        assert "Traceback" not in run.stderr + run.stdout
        assert not (tmp_path / "f.parquet").exists()

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "manifest.json").is_file()
    assert temporaries(tmp_path) == [], "the rerun left the killed export's build folder"
