"""A run killed with SIGKILL mid-way resumes from the cache and gives byte-identical output.

Real process, real model, real reviews: ``recfeat extract`` on 1,500 Musical Instruments
reviews in chunks of 250 (bf16 where the CPU has bf16 units, else fp32: emulated bf16 is
slower; max_length 32 to keep it quick), killed as soon as the cache holds a committed chunk, then run
again; compared with an uninterrupted run into a separate cache.
"""

from __future__ import annotations

import filecmp
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recfeat.data.features import manifest_path, read_features
from recfeat.extraction.cache import CACHE_FILE
from recfeat.extraction.manifest import run_record_path
from recfeat.machine import has_bf16

N_REVIEWS = 1500
CHUNK = 250
# bf16 is quick only on CPUs with bf16 units (AVX-512 BF16, AMX); elsewhere torch emulates it
QUICK_PRECISION = "bf16" if has_bf16() else "fp32"


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
    except sqlite3.Error:  # table not created yet
        return 0


def extract_cmd(data: Path, cache: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-c", "from recfeat.cli.main import cli; cli(prog_name='recfeat')", "extract", str(data), "--format", "amazon",
        "--max-length", "32", "--precision", QUICK_PRECISION, "--chunk-size", str(CHUNK), "--cache", str(cache), "--out", str(out),
    ]  # fmt: skip


@pytest.fixture()
def env(tmp_path):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0",
            "RECFEAT_CACHE_DIR": str(tmp_path / "unused-default")}  # fmt: skip


@pytest.mark.slow
def test_sigkill_then_resume_is_byte_identical(musical_instruments, tmp_path, env):
    data = tmp_path / "reviews.json"
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as src, open(data, "w") as dst:
        for _, line in zip(range(N_REVIEWS), src, strict=False):
            dst.write(line)
    out = tmp_path / "out" / "reviews.parquet"
    cache = tmp_path / "cache-a"

    proc = subprocess.Popen(extract_cmd(data, cache, out), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 240
    while cached_rows(cache) < CHUNK:
        assert proc.poll() is None, f"extract ended before it could be killed: {proc.stdout.read()}"
        assert time.monotonic() < deadline, "no chunk committed within 240 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = cached_rows(cache)
    assert proc.returncode == -signal.SIGKILL
    assert CHUNK <= committed < N_REVIEWS and committed % CHUNK == 0  # whole chunks only
    assert not out.exists()  # never half-written

    resumed = subprocess.run(extract_cmd(data, cache, out), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    ids, vectors, manifest = read_features(out)
    run = json.loads(run_record_path(out).read_text())
    assert run["cached_texts"] >= committed and run["encoded_texts"] > 0
    assert run["cached_texts"] + run["encoded_texts"] == manifest["unique_texts"]

    out_b = tmp_path / "uninterrupted.parquet"
    clean = subprocess.run(extract_cmd(data, tmp_path / "cache-b", out_b), env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert clean.returncode == 0, clean.stderr
    ids_b, vectors_b, manifest_b = read_features(out_b)
    assert json.loads(run_record_path(out_b).read_text())["cached_texts"] == 0
    assert ids.equals(ids_b)
    assert vectors.tobytes() == vectors_b.tobytes()  # byte-identical, not merely close
    assert np.isfinite(vectors).all() and vectors.shape == (N_REVIEWS, 384)
    assert manifest_path(out).is_file()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
    # the files themselves, not only the vectors: resumed and uninterrupted runs agree byte
    # for byte, truncation counts included (timings and cache hits are in the run record)
    assert manifest["truncated_texts"] == manifest_b["truncated_texts"] > 0
    assert filecmp.cmp(out, out_b, shallow=False)
    assert filecmp.cmp(manifest_path(out), manifest_path(out_b), shallow=False)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".recfeat-")]
