"""Sparse token features over the model's own token ids: hashed bag-of-tokens and TF-IDF."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from recfeat import get_registry
from recfeat.errors import NotFittedError, OptionError


@pytest.fixture(scope="module")
def reviews(mi_review_texts) -> list[str]:
    return mi_review_texts[:200]


@pytest.fixture(scope="module")
def model(minilm_path) -> str:
    return str(minilm_path)


def _create(name, **options):
    return get_registry("tokenizer").create(name, **options)


def test_hashed_bow_shape_dtype_and_determinism(model, reviews):
    feat = _create("hashed-bow", model=model, n_features=2**12)
    X = feat.transform(reviews)
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32
    assert X.shape == (200, 2**12)
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0, rtol=1e-5)  # l2 rows
    again = _create("hashed-bow", model=model, n_features=2**12).transform(reviews)
    assert (X != again).nnz == 0  # stateless and deterministic across instances
    assert feat.fit(reviews) is feat  # fit is a no-op that returns self


def test_hashed_bow_counts_token_ids_without_specials(model):
    feat = _create("hashed-bow", model=model, norm=None)
    tok = feat._tokenizer().hf_tokenizer
    text = "guitar guitar strings"
    X = feat.transform([text, "", "[CLS] [SEP]"])
    assert X[0].sum() == len(tok(text, add_special_tokens=False)["input_ids"]) == 3
    assert sorted(X[0].data.tolist()) == [1.0, 2.0]  # "guitar" twice, "strings" once
    assert X[1].nnz == 0  # no [CLS]/[SEP] for an empty text
    assert X[2].nnz == 0  # special tokens typed in the text are not counted either
    binary = _create("hashed-bow", model=model, norm=None, binary=True).transform([text])
    assert sorted(binary.data.tolist()) == [1.0, 1.0]


def test_hashed_bow_uses_the_models_ids_not_words(model, tmp_path, reviews):
    from recfeat.plugins.tokenizers import train_byte_level_bpe

    bpe_dir = tmp_path / "bpe"
    train_byte_level_bpe(reviews, vocab_size=500, out_dir=bpe_dir)
    text = ["the strings sound great"]
    wordpiece = _create("hashed-bow", model=model, norm=None).transform(text)
    bpe = _create("hashed-bow", model=str(bpe_dir), norm=None).transform(text)
    assert wordpiece.sum() == 4  # four WordPiece tokens
    assert bpe.sum() > wordpiece.sum()  # a 500-token BPE splits words into more pieces


def test_tfidf_down_weights_common_tokens(model, reviews):
    feat = _create("tfidf", model=model)
    X = feat.fit_transform(reviews)
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32 and X.shape[0] == 200
    assert X.shape[1] == len(feat.vocabulary_) == len(feat.idf_)
    tok = feat._tokenizer().hf_tokenizer
    the, amp = tok.convert_tokens_to_ids("the"), tok.convert_tokens_to_ids("amp")
    idf = {t: feat.idf_[feat.vocabulary_[t]] for t in (the, amp)}
    assert idf[the] < idf[amp]  # "the" is in most reviews, "amp" in few
    specials = set(tok.all_special_ids)
    assert not specials & set(feat.vocabulary_)  # no [CLS]/[SEP] columns
    names = feat.feature_names()
    assert names[feat.vocabulary_[the]] == "the"
    # transform after fit gives the same matrix as fit_transform
    assert abs(feat.transform(reviews) - X).max() < 1e-6


def test_tfidf_options_change_the_vocabulary(model, reviews):
    full = _create("tfidf", model=model).fit(reviews)
    pruned = _create("tfidf", model=model, min_df=5).fit(reviews)
    capped = _create("tfidf", model=model, max_features=50).fit(reviews)
    assert len(pruned.vocabulary_) < len(full.vocabulary_)
    assert len(capped.vocabulary_) == 50
    sub = _create("tfidf", model=model, sublinear_tf=True, norm=None).fit_transform(["amp amp amp amp"])
    assert sub.data[0] == pytest.approx(1 + np.log(4))


def test_tfidf_errors_and_pickling(model, reviews):
    feat = _create("tfidf", model=model)
    with pytest.raises(NotFittedError, match="call fit"):
        feat.transform(reviews[:2])
    with pytest.raises(OptionError, match="cannot fit"):
        _create("tfidf", model=model, min_df=1000).fit(reviews[:10])
    with pytest.raises(OptionError):
        _create("tfidf", model=model, norm="l3")
    feat.fit(reviews[:50])
    clone = pickle.loads(pickle.dumps(feat.vectorizer_))
    assert (clone.transform(feat.token_ids(reviews[:5])) != feat.transform(reviews[:5])).nnz == 0


def test_features_are_listed_with_tokenizers():
    described = {d["name"]: d for d in get_registry("tokenizer").describe()}
    assert {"hf", "gpt2-bpe", "hashed-bow", "tfidf"} <= set(described)
    assert described["hashed-bow"]["options"]["n_features"]["default"] == 2**18
