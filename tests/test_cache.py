"""The content-addressed vector cache: keys, persistence, hits and misses, chunked commits.

A small counting encoder stands in for a model here so the tests can count exactly which
texts reach ``encode``; the real model goes through the cache in test_pipeline.py and
test_resume.py.
"""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pandas as pd
import pytest

from recfeat.components import Encoder
from recfeat.data.recdata import RecData
from recfeat.errors import RecfeatError
from recfeat.extraction.cache import (
    CACHE_FILE,
    NoCache,
    VectorCache,
    default_cache_dir,
    fingerprint_digest,
    open_cache,
    text_keys,
)
from recfeat.extraction.pipeline import extract
from recfeat.extraction.stages import encode_texts


class CountingEncoder(Encoder):
    """Deterministic vectors from a text hash; records every batch it is asked to encode."""

    name = "counting"
    backend = "test"

    def __init__(self, pooling: str = "mean", precision: str = "fp32", batch_tokens: int = 64,
                 fail_on_call: int | None = None):  # fmt: skip
        self.pooling = pooling
        self.precision = precision
        self.batch_tokens = batch_tokens
        self.fail_on_call = fail_on_call
        self.calls: list[list[str]] = []
        self.last_stats: dict = {}

    @property
    def dim(self) -> int:
        return 8

    def encode(self, texts, progress=False):
        texts = list(texts)
        if self.fail_on_call is not None and len(self.calls) + 1 == self.fail_on_call:
            raise RuntimeError("simulated crash")
        self.calls.append(texts)
        self.last_stats = {
            "texts": len(texts),
            "tokens": sum(len(t.split()) for t in texts),
            "truncated_texts": sum(len(t.split()) > 5 for t in texts),
            "tokens_dropped": sum(max(len(t.split()) - 5, 0) for t in texts),
        }
        out = np.empty((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = hashlib.sha256((self.pooling + self.precision + t).encode()).digest()
            out[i] = np.frombuffer(seed, dtype=np.uint8)[:8].astype(np.float32) / 255.0
        return out

    def fingerprint(self):
        return {
            "encoder": self.name,
            "weights_sha256": "0" * 64,
            "pooling": self.pooling,
            "normalize": False,
            "max_length": 5,
            "backend": self.backend,
            "precision": self.precision,
            "batch_tokens": self.batch_tokens,
        }

    def tokenize(self, texts):
        """Words as tokens, truncated at 5 (what ``last_stats`` counts), per text."""
        from recfeat.components import TokenBatch

        n = np.array([len(t.split()) for t in texts], dtype=np.int64)
        ids = [list(range(min(k, 5))) for k in n]
        return TokenBatch(ids=ids, n_tokens=n, n_dropped=np.maximum(n - 5, 0))

    @property
    def texts_encoded(self) -> int:
        return sum(len(c) for c in self.calls)


def catalogue(n: int, start: int = 0) -> RecData:
    items = pd.DataFrame(
        {"item": [f"i{k}" for k in range(start, start + n)],
         "text": [f"book {k}: a story about number {k}" for k in range(start, start + n)]}
    )  # fmt: skip
    inter = pd.DataFrame(
        {"user": ["u0"] * n, "item": items["item"], "rating": 4.0, "timestamp": -1}
    )
    return RecData(name="catalogue", interactions=inter, items=items)


def test_put_get_roundtrip_and_persistence(tmp_path):
    keys = text_keys(["a", "b", "c"], b"x" * 32)
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4)
    with VectorCache.in_dir(tmp_path) as cache:
        assert len(cache) == 0
        cache.put_many(keys[:2], vecs[:2])
        assert len(cache) == 2
    with VectorCache.in_dir(tmp_path) as cache:  # reopened: committed rows survive
        got = cache.get_many(keys)
        assert set(got) == set(keys[:2])
        np.testing.assert_array_equal(got[keys[1]], vecs[1])
        mode = cache._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode.lower() == "wal"
    assert (tmp_path / CACHE_FILE).is_file()


def test_default_location_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    with open_cache(None) as cache:
        assert cache.path == tmp_path / "here" / CACHE_FILE
    assert isinstance(open_cache(False), NoCache)


def test_cache_location_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RecfeatError, match="is a file"):
        VectorCache.in_dir(blocker)


def test_keys_cover_what_changes_vectors_and_nothing_else():
    base = CountingEncoder().fingerprint()
    digest = fingerprint_digest(base)
    for field, value in [("pooling", "cls"), ("precision", "bf16"), ("max_length", 6),
                         ("normalize", True), ("backend", "onnx"), ("weights_sha256", "1" * 64)]:  # fmt: skip
        assert fingerprint_digest({**base, field: value}) != digest, field
    # speed-only settings and, given a weights hash, the folder the weights came from
    assert fingerprint_digest({**base, "batch_tokens": 999, "threads": 2}) == digest
    assert fingerprint_digest({**base, "source": "/elsewhere"}) == digest
    no_hash = {k: v for k, v in base.items() if k != "weights_sha256"}
    assert fingerprint_digest({**no_hash, "source": "/a"}) != fingerprint_digest(
        {**no_hash, "source": "/b"}
    )
    k1, k2, k3 = text_keys(["a", "b", "a"], digest)
    assert k1 == k3 != k2


def test_rerun_encodes_nothing_and_identical_texts_once(tmp_path):
    texts = ["alpha", "beta", "gamma"]
    enc = CountingEncoder()
    first, s1 = encode_texts(texts, enc, tmp_path)
    assert (s1.encoded, s1.cached) == (3, 0)
    second, s2 = encode_texts(texts, enc, tmp_path)
    assert (s2.encoded, s2.cached) == (0, 3)
    np.testing.assert_array_equal(first, second)
    assert enc.texts_encoded == 3

    data = catalogue(3)
    data.items.loc[1, "text"] = data.items.loc[0, "text"]  # a duplicate text
    enc2 = CountingEncoder(pooling="max")
    res = extract(data, "item", enc2, [], cache=tmp_path)
    assert enc2.texts_encoded == 2
    np.testing.assert_array_equal(res.vectors[0], res.vectors[1])


def test_adding_ten_items_to_a_catalogue_encodes_ten_texts(tmp_path):
    enc = CountingEncoder()
    base = catalogue(10_000)
    extract(base, "item", enc, [], cache=tmp_path)
    assert enc.texts_encoded == 10_000
    grown = catalogue(10_010)
    enc.calls.clear()
    res = extract(grown, "item", enc, [], cache=tmp_path)
    assert enc.texts_encoded == 10
    assert sorted(t for call in enc.calls for t in call) == sorted(grown.items["text"][-10:])
    assert res.run["cache"] == {
        "path": str(tmp_path / CACHE_FILE),
        "hits": 10_000,
        "misses": 10,
    }
    # and a changed text is a new text
    grown.items.loc[5, "text"] = "a rewritten blurb"
    enc.calls.clear()
    extract(grown, "item", enc, [], cache=tmp_path)
    assert enc.calls == [["a rewritten blurb"]]


def test_changing_an_encoder_setting_misses_the_cache(tmp_path):
    data = catalogue(20)
    extract(data, "item", CountingEncoder(), [], cache=tmp_path)
    fp32_again = CountingEncoder(batch_tokens=7)  # speed only: still cached
    extract(data, "item", fp32_again, [], cache=tmp_path)
    assert fp32_again.texts_encoded == 0
    bf16 = CountingEncoder(precision="bf16")
    extract(data, "item", bf16, [], cache=tmp_path)
    assert bf16.texts_encoded == 20


def test_no_cache_encodes_every_time_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "default"))
    data = catalogue(5)
    enc = CountingEncoder()
    extract(data, "item", enc, [], cache=False)
    r = extract(data, "item", enc, [], cache=False)
    assert enc.texts_encoded == 10
    assert r.run["cache"]["path"] is None
    assert not (tmp_path / "default").exists()


def test_each_chunk_is_committed_so_a_crash_loses_at_most_one(tmp_path):
    texts = [f"text number {i}" for i in range(10)]
    crashing = CountingEncoder(fail_on_call=3)  # chunks of 3: the third chunk fails
    with pytest.raises(RuntimeError, match="simulated crash"):
        encode_texts(texts, crashing, tmp_path, chunk_size=3)
    with VectorCache.in_dir(tmp_path) as cache:
        assert len(cache) == 6
    resumed = CountingEncoder()
    vectors, stats = encode_texts(texts, resumed, tmp_path, chunk_size=3)
    # the same chunk boundaries as an uninterrupted run: texts 6-8, then 9
    assert resumed.calls == [texts[6:9], texts[9:]]
    assert (stats.cached, stats.encoded) == (6, 4)
    clean, _ = encode_texts(texts, CountingEncoder(), False, chunk_size=3)
    np.testing.assert_array_equal(vectors, clean)


def test_a_cache_shared_by_two_connections(tmp_path):
    a = VectorCache.in_dir(tmp_path)
    b = VectorCache.in_dir(tmp_path)
    try:
        keys = text_keys(["x"], b"d" * 32)
        a.put_many(keys, np.ones((1, 3), dtype=np.float32))
        assert set(b.get_many(keys)) == set(keys)
    finally:
        a.close()
        b.close()


def test_corrupt_entry_is_reported(tmp_path):
    with VectorCache.in_dir(tmp_path) as cache:
        key = text_keys(["x"], b"d" * 32)[0]
        cache.put_many([key], np.ones((1, 3), dtype=np.float32))
    db = sqlite3.connect(tmp_path / CACHE_FILE)
    db.execute("UPDATE vectors SET dim = 5")
    db.commit()
    db.close()
    with VectorCache.in_dir(tmp_path) as cache, pytest.raises(RecfeatError, match="corrupt"):
        cache.get_many([key])


@pytest.mark.parametrize("poison", [np.nan, np.inf, 1e30])
def test_a_corrupt_cached_vector_is_encoded_again_not_written(tmp_path, poison):
    """The cache is a file on disk, so untrusted: NaN, inf or absurd values in it never reach
    an output; the text is encoded again and the cache repaired."""
    texts = ["first text", "second text", "third text"]
    enc = CountingEncoder()
    fresh, _ = encode_texts(texts, enc, tmp_path)
    bad = np.full(8, poison, dtype=np.float32).tobytes()
    key = text_keys(texts[1:2], fingerprint_digest(enc.fingerprint()))[0]
    with sqlite3.connect(tmp_path / CACHE_FILE) as db:
        assert db.execute("UPDATE vectors SET vec = ? WHERE key = ?", (bad, key)).rowcount == 1
    again = CountingEncoder()
    got, stats = encode_texts(texts, again, tmp_path)
    np.testing.assert_array_equal(got, fresh)
    assert again.calls == [["second text"]] and stats.cached == 2
    repaired, _ = encode_texts(texts, CountingEncoder(), tmp_path)
    np.testing.assert_array_equal(repaired, fresh)


def test_an_encoder_that_returns_nan_is_an_error_not_an_output(tmp_path):
    class NanEncoder(CountingEncoder):
        def encode(self, texts, progress=False):
            out = super().encode(texts)
            out[0, 0] = np.nan
            return out

    with pytest.raises(RecfeatError, match="NaN or infinite"):
        encode_texts(["a", "b"], NanEncoder(), False)
