"""Encoders and token featurizers keep scikit-learn's conventions for persistence and feature
names: a fitted Pipeline survives joblib (small pickles: options and weights hash, never the
weights), changed weights are refused after unpickling, ``get_feature_names_out`` and
``set_output(transform="pandas")`` work alone and inside a ColumnTransformer."""

from __future__ import annotations

import json
import pickle
import shutil

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.pipeline import Pipeline

import recfeat
from recfeat import get_registry
from recfeat.errors import ArtifactError, DataError

TEXTS = [
    "Great strings, bright tone.",
    "The tuner clips on well and is accurate.",
    "Cable started crackling after two months.",
    "Battery door feels flimsy.",
    "Warm, clear sound for the price.",
    "ok",
]
SMALL = 100_000  # bytes: options and a hash, not 91 MB of tensors


@pytest.fixture(scope="module")
def minilm():
    """One loaded MiniLM encoder for the tests that only read it."""
    enc = recfeat.encoder("minilm")
    enc.transform(TEXTS[:1])
    return enc


@pytest.fixture(scope="module")
def minilm_vectors(minilm):
    return minilm.transform(TEXTS)


def _loaded(enc) -> list[str]:
    return [k for k in ("_loaded", "_backend", "_info", "_tokenizer", "_manifest") if k in vars(enc)]


# -- persistence ---------------------------------------------------------------------------------
def test_a_fitted_pipeline_survives_joblib_with_identical_output(tmp_path, minilm_vectors):
    pipe = Pipeline([("encode", recfeat.encoder("minilm")), ("pca", PCA(3, random_state=0))])
    expected = pipe.fit(TEXTS).transform(TEXTS)
    path = tmp_path / "pipe.joblib"
    joblib.dump(pipe, path)
    assert path.stat().st_size < SMALL
    back = joblib.load(path)
    assert not _loaded(back.named_steps["encode"])  # the model loads on first use
    np.testing.assert_array_equal(back.transform(TEXTS), expected)
    np.testing.assert_array_equal(back.named_steps["encode"].transform(TEXTS), minilm_vectors)


def test_pickle_after_use_keeps_options_and_weights_hash_only(minilm_vectors):
    enc = recfeat.encoder("minilm", threads=1)
    enc.transform(TEXTS[:2])  # loaded, with last_stats
    data = pickle.dumps(enc)
    assert len(data) < SMALL
    back = pickle.loads(data)
    assert back.get_params() == enc.get_params()
    assert set(vars(back)) == {*enc.get_params(), "_pinned_weights_sha256"}
    assert back._pinned_weights_sha256 == enc.fingerprint()["weights_sha256"]
    np.testing.assert_array_equal(back.transform(TEXTS), minilm_vectors)
    # used again, it pickles again, to the same state
    assert pickle.loads(pickle.dumps(back)).__dict__ == pickle.loads(data).__dict__
    # clone gives a fresh encoder with the same options (the weights check is the pickle's)
    twin = clone(back)
    assert type(twin) is type(enc) and twin.get_params() == enc.get_params()
    assert twin.get_params()["threads"] == 1 and "_pinned_weights_sha256" not in vars(twin)


def test_changed_weights_are_refused_after_unpickling(tmp_path):
    from _export_helpers import make_tiny
    from safetensors.numpy import load_file, save_file

    folder = make_tiny("bert", tmp_path / "tiny")
    enc = recfeat.encoder(str(folder))
    before = enc.transform(TEXTS)
    data = pickle.dumps(enc)
    weights = folder / "model.safetensors"
    original = weights.read_bytes()
    tensors = load_file(weights)
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + np.float32(0.5)
    save_file(tensors, weights, metadata={"format": "pt"})

    back = pickle.loads(data)
    expected = enc.fingerprint()["weights_sha256"]
    with pytest.raises(ArtifactError) as info:
        back.transform(TEXTS)
    message = str(info.value)
    assert expected in message and str(folder) in message and "clone" in message
    found = clone(back).fingerprint()["weights_sha256"]  # a fresh encoder takes the new weights
    assert found != expected and found in message
    with pytest.raises(ArtifactError, match="changed since"):
        back.fingerprint()  # the feature cache cannot serve it either
    # an option that does not choose the weights keeps the check; a new model drops it
    back.set_params(batch_tokens=1024)
    with pytest.raises(ArtifactError, match="changed since"):
        back.transform(TEXTS)
    assert clone(back).transform(TEXTS).shape == before.shape

    back.set_params(batch_tokens=4096)
    weights.write_bytes(original)  # the original weights back: accepted, same vectors
    np.testing.assert_array_equal(back.transform(TEXTS), before)


def test_exported_encoder_pickles_small_and_checks_its_weights(tiny_export, tmp_path):
    from recfeat.exporters.manifest import MANIFEST, read_manifest, write_manifest

    folder = tmp_path / "export"
    shutil.copytree(tiny_export, folder)
    enc = recfeat.encoder(str(folder))
    assert enc.backend == "onnx"
    before = enc.transform(TEXTS)
    data = pickle.dumps(enc)
    assert len(data) < SMALL
    np.testing.assert_array_equal(pickle.loads(data).transform(TEXTS), before)
    assert list(pickle.loads(data).get_feature_names_out()[:2]) == ["onnx0", "onnx1"]

    # a re-export into the same folder: other weights, a manifest that matches them
    manifest = read_manifest(folder)
    model = folder / manifest["default_file"]
    model.write_bytes(model.read_bytes() + b"\0")
    write_manifest(folder, {k: v for k, v in json.loads((folder / MANIFEST).read_text()).items()
                            if k != "files"})  # fmt: skip
    with pytest.raises(ArtifactError, match="changed since this onnx encoder was pickled"):
        pickle.loads(data).transform(TEXTS)


# -- feature names and pandas output -------------------------------------------------------------
def test_feature_names_follow_the_class_name_prefix_convention(minilm):
    names = minilm.get_feature_names_out()
    assert len(names) == minilm.dim == 384 and names.dtype == object
    assert names[0] == "minilm0" and names[-1] == "minilm383"
    np.testing.assert_array_equal(minilm.get_feature_names_out(["title"]), names)
    with pytest.raises(DataError, match="one column of texts"):
        minilm.get_feature_names_out(["title", "body"])


def test_set_output_pandas_alone_keeps_the_index_and_names_the_columns(minilm_vectors):
    enc = recfeat.encoder("minilm").set_output(transform="pandas")
    frame = pd.DataFrame({"title": TEXTS}, index=[f"i{k}" for k in range(len(TEXTS))])
    for out in (enc.transform(frame["title"]), enc.fit_transform(frame[["title"]])):
        assert isinstance(out, pd.DataFrame)
        assert list(out.index) == list(frame.index)
        assert list(out.columns) == list(enc.get_feature_names_out())
        np.testing.assert_array_equal(out.to_numpy(), minilm_vectors)
    # set_params and clone keep the output setting (it is not loaded state)
    enc.set_params(batch_tokens=1024)
    assert isinstance(enc.transform(TEXTS[:2]), pd.DataFrame)
    assert isinstance(clone(enc).transform(TEXTS[:2]), pd.DataFrame)
    assert isinstance(pickle.loads(pickle.dumps(enc)).transform(TEXTS[:2]), pd.DataFrame)


@pytest.mark.parametrize("column", ["title", ["title"]])
def test_encoder_in_a_column_transformer_with_pandas_output(column, minilm_vectors):
    frame = pd.DataFrame({"title": TEXTS, "price": np.arange(len(TEXTS), dtype=float)},
                         index=np.arange(len(TEXTS)) * 10 + 7)  # fmt: skip
    ct = ColumnTransformer([("text", recfeat.encoder("minilm"), column),
                            ("num", "passthrough", ["price"])]).set_output(transform="pandas")  # fmt: skip
    out = ct.fit_transform(frame)
    assert out.shape == (len(TEXTS), 385)
    assert list(out.columns) == [*(f"text__minilm{i}" for i in range(384)), "num__price"]
    assert list(out.columns) == list(ct.get_feature_names_out())
    assert list(out.index) == list(frame.index)
    np.testing.assert_array_equal(out.iloc[:, :384].to_numpy(), minilm_vectors)
    np.testing.assert_array_equal(out["num__price"].to_numpy(), frame["price"].to_numpy())
    np.testing.assert_array_equal(ct.transform(frame).to_numpy(), out.to_numpy())


# -- token featurizers ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hashed-bow", "tfidf"])
def test_token_featurizers_are_pipeline_steps_that_pickle_and_name_columns(name, tmp_path):
    feat = get_registry("tokenizer").create(name)
    pipe = Pipeline([("tokens", feat), ("svd", TruncatedSVD(2, random_state=0))])
    expected = pipe.fit(TEXTS).transform(pd.Series(TEXTS))
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    back = joblib.load(tmp_path / "pipe.joblib")
    assert back.named_steps["tokens"]._tok is None  # the tokenizer reloads on first use
    np.testing.assert_allclose(back.transform(TEXTS), expected, rtol=0, atol=1e-6)
    assert len(pickle.dumps(feat)) < 10_000
    matrix = feat.transform(TEXTS)
    names = feat.get_feature_names_out()
    assert sp.issparse(matrix) and len(names) == matrix.shape[1] and len(set(names)) == len(names)
    assert clone(feat).get_params() == feat.get_params()

    frame = pd.DataFrame({"review": TEXTS, "n": np.arange(len(TEXTS))})
    ct = ColumnTransformer([("tokens", clone(feat), "review"), ("num", "passthrough", ["n"])])
    out = ct.fit_transform(frame)
    assert out.shape[1] == len(names) + 1 and ct.get_feature_names_out()[-1] == "num__n"


def test_tfidf_names_are_its_tokens():
    feat = get_registry("tokenizer").create("tfidf").fit(TEXTS)
    names = list(feat.get_feature_names_out())
    assert names == feat.feature_names() and "battery" in names
    assert list(get_registry("tokenizer").create("hashed-bow", n_features=4)
                .get_feature_names_out()) == ["hashed-bow0", "hashed-bow1", "hashed-bow2",
                                              "hashed-bow3"]  # fmt: skip
