"""The ``hf`` tokenizer (truncation statistics on real reviews), the byte-level BPE trainer
and the ``gpt2-bpe`` component."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recfeat import get_registry
from recfeat.errors import DataError, OptionError, RecfeatError
from recfeat.plugins.tokenizers import GPT2_SPECIAL, train_byte_level_bpe


@pytest.fixture(scope="module")
def reviews(mi_review_texts) -> list[str]:
    return mi_review_texts[:200]


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return get_registry("tokenizer").create("hf", model=str(minilm_path), max_length=64)


def test_hf_is_wordpiece_for_minilm(minilm):
    tok = minilm.hf_tokenizer
    assert tok.is_fast
    assert json.loads(tok.backend_tokenizer.to_str())["model"]["type"] == "WordPiece"
    assert minilm.vocab_size == 30522
    assert minilm.pad_id == tok.pad_token_id == 0
    assert minilm.padding_side == "right"


def test_default_model_name_resolves_to_the_packaged_minilm(minilm):
    tok = get_registry("tokenizer").create("hf")
    assert tok.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert tok.tokenize(["a guitar"]).ids == minilm.tokenize(["a guitar"]).ids


def test_truncation_statistics_on_real_reviews(minilm, reviews):
    batch = minilm.tokenize(reviews)
    full = minilm.hf_tokenizer(reviews, truncation=False)["input_ids"]  # reference, untruncated
    n_full = np.array([len(x) for x in full])
    np.testing.assert_array_equal(batch.n_tokens, n_full)
    np.testing.assert_array_equal(batch.n_dropped, np.maximum(n_full - 64, 0))
    np.testing.assert_array_equal(batch.lengths, np.minimum(n_full, 64))
    assert batch.n_dropped.sum() > 0 and (batch.n_dropped == 0).sum() > 0  # both kinds present
    cls, sep = minilm.hf_tokenizer.cls_token_id, minilm.hf_tokenizer.sep_token_id
    for ids, ref in zip(batch.ids, full, strict=True):
        assert ids[0] == cls and ids[-1] == sep  # specials survive truncation
        assert ids[:-1] == ref[: len(ids) - 1]  # the kept text is the start of the text


def test_without_special_tokens(minilm_path, reviews):
    tok = get_registry("tokenizer").create(
        "hf", model=str(minilm_path), max_length=32, add_special_tokens=False
    )
    batch = tok.tokenize(reviews[:20])
    specials = set(tok.hf_tokenizer.all_special_ids)
    assert all(not specials & set(ids) for ids in batch.ids)
    assert (batch.lengths <= 32).all()
    np.testing.assert_array_equal(batch.n_tokens - batch.n_dropped, batch.lengths)


def test_empty_inputs_and_padding(minilm):
    batch = minilm.tokenize(["", "short text", "a"])
    assert batch.ids[0] == [101, 102]
    assert list(batch.n_dropped) == [0, 0, 0]
    input_ids, mask = batch.padded(minilm.pad_id, minilm.padding_side)
    assert input_ids.shape == mask.shape == (3, max(batch.lengths))
    assert mask.sum() == batch.lengths.sum()
    empty = minilm.tokenize([])
    assert empty.ids == [] and empty.n_tokens.shape == (0,)


def test_bad_inputs_and_options(minilm_path, minilm, tmp_path):
    with pytest.raises(DataError, match="text 1 is a NoneType"):
        minilm.tokenize(["ok", None])
    registry = get_registry("tokenizer")
    with pytest.raises(OptionError, match="use at least 3"):
        registry.create("hf", model=str(minilm_path), max_length=2).tokenize(["x"])
    with pytest.raises(OptionError, match="max_length <= 512"):
        registry.create("hf", model=str(minilm_path), max_length=4096).tokenize(["x"])
    with pytest.raises(OptionError):
        registry.create("hf", max_length=0)
    with pytest.raises(RecfeatError, match="cannot load model") as err:
        registry.create("hf", model="nobody/no-such-model-here").tokenize(["x"])
    assert "\n" not in str(err.value)
    with pytest.raises(RecfeatError, match="does not exist"):
        registry.create("hf", model=str(tmp_path / "missing.dir")).tokenize(["x"])


# -- byte-level BPE --------------------------------------------------------------------------------


def test_train_byte_level_bpe_is_deterministic_and_lossless(reviews):
    a = train_byte_level_bpe(reviews, vocab_size=1000)
    b = train_byte_level_bpe(reviews, vocab_size=1000)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    model = json.loads(a.backend_tokenizer.to_str())["model"]
    assert model["type"] == "BPE" and len(model["merges"]) > 0
    assert len(a) <= 1000
    assert a.eos_token == a.bos_token == a.pad_token == a.unk_token == GPT2_SPECIAL
    assert a.convert_tokens_to_ids(GPT2_SPECIAL) == 0
    # byte level: text never seen in training (CJK, emoji, accents) round-trips exactly
    text = "这把吉他 👍🏽 café\tnaïve  spaces"
    ids = a(text)["input_ids"]
    assert a.unk_token_id not in ids
    assert a.decode(ids) == text
    assert a("hello")["input_ids"] == a.encode("hello")  # no specials added by default, like GPT-2
    # learned merges compress: common words take fewer tokens than bytes
    assert len(a("the guitar strings")["input_ids"]) < len("the guitar strings")


def test_train_byte_level_bpe_saves_atomically(reviews, tmp_path):
    out = tmp_path / "bpe"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    tok = train_byte_level_bpe(reviews[:50], vocab_size=400, out_dir=out, min_frequency=1)
    assert (out / "tokenizer.json").exists() and not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bpe"]  # no temporary folders left
    loaded = get_registry("tokenizer").create("hf", model=str(out), max_length=16)
    assert json.loads(loaded.hf_tokenizer.backend_tokenizer.to_str())["model"]["type"] == "BPE"
    text = reviews[0]
    assert loaded.tokenize([text]).ids[0] == tok(text)["input_ids"][:16]
    assert loaded.pad_id == tok.pad_token_id


def test_train_byte_level_bpe_bad_input():
    with pytest.raises(DataError, match="empty corpus"):
        train_byte_level_bpe(["", ""], vocab_size=500)
    with pytest.raises(OptionError, match="at least 257"):
        train_byte_level_bpe(["abc"], vocab_size=100)


def test_gpt2_bpe_component_trains_once_then_reloads(reviews, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(r.replace("\n", " ") for r in reviews), encoding="utf-8")
    cache = tmp_path / "cache"
    registry = get_registry("tokenizer")
    tok = registry.create("gpt2-bpe", corpus=str(corpus), vocab_size=600, cache_dir=str(cache), max_length=32)
    batch = tok.tokenize(reviews[:10])
    assert (batch.lengths <= 32).all() and batch.n_dropped.sum() > 0
    trained = tok.trained_dir()
    assert trained.parent == cache and (trained / "tokenizer.json").exists()
    stamp = os.stat(trained / "tokenizer.json").st_mtime_ns
    again = registry.create("gpt2-bpe", corpus=str(corpus), vocab_size=600, cache_dir=str(cache), max_length=32)
    assert again.tokenize(reviews[:10]).ids == batch.ids
    assert os.stat(trained / "tokenizer.json").st_mtime_ns == stamp  # loaded, not retrained
    assert again.get_options()["vocab_size"] == 600 and again.vocab_size <= 600
    # a different vocabulary size is a different tokenizer
    other = registry.create("gpt2-bpe", corpus=str(corpus), vocab_size=700, cache_dir=str(cache))
    assert other.trained_dir() != trained


def test_gpt2_bpe_missing_corpus(tmp_path):
    tok = get_registry("tokenizer").create("gpt2-bpe", corpus=str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="cannot read corpus"):
        tok.tokenize(["x"])
