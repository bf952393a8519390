"""The extraction pipeline with the real all-MiniLM-L6-v2 on real reviews and MovieLens."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from recfeat.data.features import read_features
from recfeat.data.recdata import RecData
from recfeat.extraction.cleaning import build_cleaner_chain
from recfeat.extraction.manifest import EMPTY_POLICY, token_features_path
from recfeat.extraction.pipeline import extract
from recfeat.plugin.registry import get_registry
from recfeat.plugins.datasets import load_dataset


def head_of(path, n: int, out_dir):
    """The first ``n`` reviews of an Amazon .json.gz as a small plain file."""
    out = out_dir / f"head{n}.json"
    with gzip.open(path, "rt", encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for _, line in zip(range(n), src, strict=False):
            dst.write(line)
    return out


@pytest.fixture(scope="module")
def reviews(musical_instruments, tmp_path_factory) -> RecData:
    return load_dataset(head_of(musical_instruments, 120, tmp_path_factory.mktemp("mi")))


@pytest.fixture(scope="module")
def minilm():
    # max_length 64 keeps the tests quick and makes truncation common on real reviews
    return get_registry("encoder").create("minilm", max_length=64)


def test_review_level_matches_the_encoder_and_counts_truncation(reviews, minilm, tmp_path):
    res = extract(reviews, "review", minilm, cache=tmp_path)
    n = len(reviews.reviews)
    assert res.vectors.shape == (n, 384) and res.vectors.dtype == np.float32
    assert list(res.ids.columns) == ["user", "item", "rating", "timestamp"]
    assert res.ids["item"].tolist() == reviews.reviews["item"].tolist()  # input order kept
    cleaned = build_cleaner_chain(None).clean(reviews.reviews["text"].tolist())
    np.testing.assert_allclose(res.vectors, minilm.encode(cleaned), atol=1e-5)
    truncated = int((minilm.tokenize(list(dict.fromkeys(cleaned))).n_dropped > 0).sum())
    assert truncated > 0 and res.manifest["truncated_texts"] == truncated
    m = res.manifest
    assert res.run["encoded_texts"] == len(set(cleaned)) and res.run["cached_texts"] == 0
    assert m["weights_sha256"] == minilm.fingerprint()["weights_sha256"]
    assert (m["pooling"], m["precision"], m["max_length"]) == ("mean", "fp32", 64)
    assert [c["use"] for c in m["cleaners"]] == ["html", "control-chars", "nfkc", "pii", "whitespace"]
    assert {"numpy", "pyarrow", "torch", "transformers"} <= set(m["versions"])
    assert m["dataset"]["reviews"] == n


def test_a_fully_cached_run_never_loads_the_model(reviews, minilm, tmp_path):
    first = extract(reviews, "review", minilm, cache=tmp_path)
    fresh = get_registry("encoder").create("minilm", max_length=64)

    def refuse():
        raise AssertionError("the model was loaded although every vector was cached")

    fresh.load = refuse
    again = extract(reviews, "review", fresh, cache=tmp_path)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert again.run["encoded_texts"] == 0
    assert again.run["cached_texts"] == first.run["encoded_texts"]


def test_empty_texts_get_zero_vectors_and_are_counted(reviews, minilm, tmp_path):
    data = RecData(
        name="with-empties", interactions=reviews.interactions, reviews=reviews.reviews.copy()
    )
    data.reviews.loc[data.reviews.index[:3], "text"] = ["", "   \n\t", "<br/>  <p></p>"]
    seen: list[str] = []
    real_encode = minilm.encode

    def spy(texts, progress=False):
        seen.extend(texts)
        return real_encode(texts)

    minilm.encode = spy
    try:
        res = extract(data, "review", minilm, cache=False)
    finally:
        del minilm.encode
    assert res.manifest["empty_texts"] == 3 and res.manifest["empty_policy"] == EMPTY_POLICY
    assert not res.vectors[:3].any() and np.all(np.linalg.norm(res.vectors[3:], axis=1) > 0.99)
    assert all(t.strip() for t in seen)


def test_save_roundtrip_with_token_features(reviews, minilm, tmp_path):
    res = extract(reviews, "item", minilm, cache=tmp_path, token_features="hashed-bow")
    assert res.manifest["source"] == "item reviews"  # Amazon 5-core has no item texts
    assert res.token_features.shape[0] == len(res.ids)
    out = res.save(tmp_path / "items.parquet")
    ids, vectors, manifest = read_features(out)
    pd.testing.assert_frame_equal(ids, res.ids)
    np.testing.assert_array_equal(vectors, res.vectors)
    assert manifest["level"] == "item" and manifest["token_features"]["name"] == "hashed-bow"
    sidecar = json.loads(out.with_suffix(".manifest.json").read_text())
    assert sidecar["weights_sha256"] == manifest["weights_sha256"]
    import scipy.sparse as sp

    tokens = sp.load_npz(token_features_path(out))
    assert (tokens != res.token_features).nnz == 0
    assert np.all(tokens.getnnz(axis=1) > 0)  # every item has some review tokens


def test_movielens_item_texts_and_user_profiles_from_train_only(movielens_small, minilm, tmp_path):
    full = load_dataset(movielens_small)
    keep = set(full.items["item"][:150])
    inter = full.interactions[full.interactions["item"].isin(keep)].reset_index(drop=True)
    data = RecData(name="ml-subset", interactions=inter,
                   items=full.items[full.items["item"].isin(keep)], rating_scale=full.rating_scale)  # fmt: skip
    items = extract(data, "item", minilm, cache=tmp_path)
    assert items.manifest["source"] == "item texts" and len(items.ids) == 150
    train = inter.sample(frac=0.8, random_state=0)
    users = extract(data, "user", minilm, cache=tmp_path, train_interactions=train)
    assert users.run["encoded_texts"] == 0  # item vectors came from the cache
    assert users.manifest["interactions"] == "train"
    assert set(users.ids["user"]) == set(train["user"])
    # one user's profile by hand: mean of the item vectors they rated in training, normalised
    u = train["user"].iloc[0]
    rated = train.loc[train["user"] == u, "item"]
    lookup = dict(zip(items.ids["item"], items.vectors, strict=True))
    expect = np.mean([lookup[i] for i in rated], axis=0)
    got = users.vectors[users.ids["user"].tolist().index(u)]
    np.testing.assert_allclose(got, expect / np.linalg.norm(expect), atol=1e-5)


def test_ray_missing_names_the_extra(reviews, minilm, monkeypatch, tmp_path):
    import sys

    import recfeat
    from recfeat.errors import MissingDependencyError

    reviews.reviews[["user", "item", "rating", "text"]].to_json(tmp_path / "reviews.jsonl",
                                                                orient="records", lines=True)
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'recfeat\[ray\]'"):
        recfeat.extract_file(tmp_path / "reviews.jsonl", tmp_path / "out", "review", minilm,
                             ray=True)  # fmt: skip
