"""A fully cached ``recfeat extract`` never loads the model: start-up is part of speed.

When every text's vector is in the cache, the run needs the encoder's fingerprint (weights
hash, family, default pooling...) but no vector from it. The fingerprint comes from the
model folder's files through memos kept by content (``recfeat.encode.hf_models``:
``config_facts``, ``weights_sha256``), so such a run builds no model and imports neither
transformers nor torch; the model is loaded on the first miss only. These tests check

- that a cached re-run writes the same bytes as the fresh run that filled the cache, on
  data with repeated rows, empty texts, texts equal after cleaning and ids that collide,
  at every level and on both local engines, without loading the model;
- in a fresh process, that the cached run imports neither torch nor transformers, and that
  the same process does import them as soon as one text misses (so the probe can fail);
- that damaged memo files are recomputed, never trusted.

A tiny random BERT (a real Hugging Face folder) stands in for MiniLM to keep them quick;
benchmarks/bench_cache.py measures the same with MiniLM on the Musical Instruments reviews.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _export_helpers import make_tiny

import recfeat
from recfeat.encode import hf_models
from recfeat.errors import RecfeatError
from recfeat.extraction.manifest import run_record_path

LONG = " ".join(["the tuner clips on well and is accurate"] * 12)  # over max_length 16
# (user, item, rating, text, timestamp): each row is awkward on purpose
ROWS = [
    ("u1", "i1", 5, "Great strings, bright tone.", 100),
    ("u1", "i1", 4, "Changed my mind: dull after a week.", 200),  # repeated pair: later wins
    ("u2", "i1", 3, "", 100),  # empty
    ("u3", "i2", 4, "   \t ", 100),  # whitespace only
    ("u4", "i2", 2, "<br/><p></p>", 100),  # empty once the HTML is cleaned
    ("u5", "i3", 5, "Great strings, bright tone.", 100),  # same text as another row
    ("u6", "i3", 5, "<b>Great</b> strings,   bright tone.", 100),  # same after cleaning
    ("u7", "i4", 1, "mail me at a@example.com", 100),  # the same text once PII is masked...
    ("u8", "i4", 2, "mail me at b@example.org", 100),  # ...as this one
    ("007", "i5", 4, "ﬁne cable", 100),  # NFKC: the same text as the next row
    ("7", "i5", 3, "fine cable", 100),  # an id that reads as the number of the one above
    ("i1", "u1", 5, LONG, 100),  # user and item ids that are each other's
    ("u9", "007", 4, LONG + " and then some more words", 100),  # truncated, like the above
    ("u9", "7", 3, "Solid stand.", 100),
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny("bert", tmp_path_factory.mktemp("cached-startup") / "bert")


@pytest.fixture(scope="module")
def awkward_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("awkward") / "reviews.csv"
    frame = pd.DataFrame(ROWS, columns=["user", "item", "rating", "text", "timestamp"])
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def cache_home(tmp_path, monkeypatch) -> Path:
    """recfeat's own cache folder (the weight and config memos), private to the test."""
    home = tmp_path / "recfeat-home"
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(home))
    monkeypatch.setattr(hf_models, "_HASH_MEMO", {})  # nothing remembered from other tests
    return home


def _no_model(monkeypatch) -> None:
    """Make loading a model, or reading a config through transformers, fail loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("a fully cached run loaded the model")

    monkeypatch.setattr("recfeat.plugins.encoders.load_transformer", refuse)
    monkeypatch.setattr(hf_models, "load_transformer", refuse)
    monkeypatch.setattr(hf_models, "load_config", refuse)


def _extract(data: Path, out: Path, cache: Path, model: Path, level: str, stream: bool):
    return recfeat.extract_file(data, out, level=level, encoder=str(model), cache=str(cache),
                                stream=stream, max_length=16, format="csv")  # fmt: skip


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "memory"])
@pytest.mark.parametrize("level", ["review", "item", "user"])
def test_cached_rerun_writes_the_fresh_runs_bytes_without_the_model(
    level, stream, tiny_bert, awkward_csv, tmp_path, cache_home, monkeypatch
):
    cache = tmp_path / "vectors"
    fresh, cached = tmp_path / "fresh.parquet", tmp_path / "cached.parquet"
    first = _extract(awkward_csv, fresh, cache, tiny_bert, level, stream)
    assert first.run["encoded_texts"] > 0 and first.run["cached_texts"] == 0
    hf_models._HASH_MEMO.clear()  # as in a new process: the weights hash from its memo file
    with monkeypatch.context() as patched:
        _no_model(patched)
        second = _extract(awkward_csv, cached, cache, tiny_bert, level, stream)
    assert second.run["encoded_texts"] == 0
    assert second.run["cached_texts"] == first.run["encoded_texts"]
    assert cached.read_bytes() == fresh.read_bytes()
    assert (cached.with_suffix(".manifest.json").read_bytes()
            == fresh.with_suffix(".manifest.json").read_bytes())  # fmt: skip
    manifest = second.manifest
    assert manifest["empty_texts"] >= 3 and manifest["truncated_texts"] >= 1
    assert manifest["truncation_unknown"] == 0  # token counts came from the cache
    # what differs between the two runs is only in the run record
    assert json.loads(run_record_path(cached).read_text())["cache"]["misses"] == 0


def test_a_miss_loads_the_model_once_and_matches_a_fresh_run(
    tiny_bert, awkward_csv, tmp_path, cache_home, monkeypatch
):
    """Half cached, half not: the model loads (on the first miss) and the bytes are those of
    a run that encoded everything."""
    rows = pd.read_csv(awkward_csv, keep_default_na=False)
    half = tmp_path / "half.csv"
    rows.iloc[: len(rows) // 2].to_csv(half, index=False)
    cache = tmp_path / "vectors"
    _extract(half, tmp_path / "half.parquet", cache, tiny_bert, "review", True)
    loads = []
    real = hf_models.load_transformer

    def counting(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr("recfeat.plugins.encoders.load_transformer", counting)
    mixed = _extract(awkward_csv, tmp_path / "mixed.parquet", cache, tiny_bert, "review", True)
    assert len(loads) == 1
    assert mixed.run["cached_texts"] > 0 and mixed.run["encoded_texts"] > 0
    whole = _extract(awkward_csv, tmp_path / "whole.parquet", tmp_path / "other", tiny_bert,
                     "review", True)  # fmt: skip
    assert whole.run["cached_texts"] == 0
    assert (tmp_path / "mixed.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


PROBE = """
import json, sys
from recfeat.cli.main import cli

def modules():
    return sorted(m for m in ("torch", "transformers") if m in sys.modules)

seen = []
for data in sys.argv[1:3]:
    cli(["extract", data, "--format", "csv", "--encoder", sys.argv[3], "--max-length", "16",
         "--cache", sys.argv[4], "--out", sys.argv[5]], prog_name="recfeat", standalone_mode=False)
    seen.append(modules())
print("PROBE " + json.dumps(seen))
"""


def test_a_fully_cached_run_imports_neither_torch_nor_transformers(
    tiny_bert, awkward_csv, tmp_path, cache_home
):
    cache = tmp_path / "vectors"
    _extract(awkward_csv, tmp_path / "fill.parquet", cache, tiny_bert, "review", True)
    more = tmp_path / "more.csv"
    rows = pd.read_csv(awkward_csv, keep_default_na=False)
    extra = pd.DataFrame([("u10", "i9", 4, "A text no run has seen yet.", 100)],
                         columns=rows.columns)  # fmt: skip
    pd.concat([rows, extra]).to_csv(more, index=False)
    env = {**os.environ, "RECFEAT_CACHE_DIR": str(cache_home), "RECFEAT_LOAD_PLUGINS": "",
           "RECFEAT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(awkward_csv), str(more), str(tiny_bert), str(cache),
         str(tmp_path / "probe.parquet")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = [x for x in proc.stdout.splitlines() if x.startswith("PROBE ")][-1]
    cached_run, with_a_miss = json.loads(line.removeprefix("PROBE "))
    assert cached_run == []  # every vector cached: no model, no torch
    assert with_a_miss == ["torch", "transformers"]  # one miss: the model is loaded


# -- the memos are untrusted input -------------------------------------------------------------


DAMAGE = {
    "garbage": b"\x00\xff" * 40,
    "huge": b"a" * 100_000,
    "wrong shape": b'{"family": "bert"}',
    "wrong types": b'{"family": "bert", "hidden_size": true, "default_pooling": "mean"}',
    "bad pooling": b'{"family": "bert", "hidden_size": 64, "default_pooling": "cls; rm"}',
    "not json": b"{family: bert",
    "not hex": b"z" * 64,
    "empty": b"",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_memos_are_recomputed(damage, tiny_bert, cache_home):
    truth = hf_models.describe_model(str(tiny_bert))
    memos = sorted((cache_home / "configs").glob("*.json")) + sorted((cache_home / "hashes").glob("*.txt"))
    assert len(memos) == 2, memos  # one for the config, one for the one weight file
    for memo in memos:
        memo.write_bytes(DAMAGE[damage])
    hf_models._HASH_MEMO.clear()
    assert hf_models.describe_model(str(tiny_bert)) == truth
    for memo in memos:  # rewritten with the recomputed values
        assert memo.read_bytes() != DAMAGE[damage]
    assert json.loads((cache_home / "configs").glob("*.json").__next__().read_text()) == {
        "family": "bert", "hidden_size": 64, "default_pooling": "mean"}


def test_a_memo_folder_in_the_way_only_costs_speed(tiny_bert, cache_home):
    truth = hf_models.describe_model(str(tiny_bert))
    for memo in [*(cache_home / "configs").glob("*.json"), *(cache_home / "hashes").glob("*.txt")]:
        memo.unlink()
        memo.mkdir()  # unreadable as a file, and cannot be replaced by one
    hf_models._HASH_MEMO.clear()
    assert hf_models.describe_model(str(tiny_bert)) == truth


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_config_memo_gives_what_transformers_reads(kind, tmp_path, cache_home, monkeypatch):
    """DistilBERT's width is config.json's ``dim`` (transformers maps hidden_size onto it):
    the memo holds what AutoConfig answered, not a guess from the JSON."""
    folder = make_tiny(kind, tmp_path / kind)
    config = hf_models.load_config(str(folder))
    expected = (config.model_type, int(config.hidden_size), hf_models.default_pooling_for(config))
    assert hf_models.config_facts(folder) == expected
    with monkeypatch.context() as patched:
        _no_model(patched)
        assert hf_models.config_facts(folder) == expected  # from the memo alone
    # an edited config.json is a new key: read again, not served the old answer
    data = json.loads((folder / "config.json").read_text())
    data["num_hidden_layers"] = 1
    (folder / "config.json").write_text(json.dumps(data))
    with monkeypatch.context() as patched:
        _no_model(patched)
        with pytest.raises(AssertionError, match="loaded the model"):
            hf_models.config_facts(folder)


def test_a_broken_config_is_still_one_clear_error(tmp_path, cache_home):
    folder = make_tiny("bert", tmp_path / "bert")
    (folder / "config.json").write_text('{"model_type": "no-such-family"}')
    with pytest.raises(RecfeatError, match="cannot load model folder"):
        hf_models.describe_model(str(folder))
