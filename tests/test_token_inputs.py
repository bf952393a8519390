"""Sparse token features as model inputs (``token_weight``): through every model that takes
them, from an extraction to a saved model, on cases built so the answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from test_models import FAST, synthetic

from recfeat.data.features import (
    Features,
    ReviewVectors,
    load_features,
    read_token_features,
    token_features_path,
    write_token_features,
)
from recfeat.errors import DataError, OptionError
from recfeat.plugin.registry import get_registry

TOKEN_MODELS = ["content", "ease-text", "hybrid-als", "sasrec-text"]
FAST_TOKENS = {**FAST, "hybrid-als": {"factors": 16, "iterations": 10},
               "sasrec-text": {"epochs": 40, "dim": 32, "ids": False}}  # fmt: skip


def create(name, **options):
    return get_registry("model").create(name, **{**FAST_TOKENS.get(name, {}), **options})


def split_signal(seed=0):
    """The synthetic two-group data, but the DENSE vectors are noise and the group lives in
    the token features only (each group uses its own 20 of 60 "tokens", plus shared noise
    tokens): dense alone is at chance, tokens alone see the groups."""
    inter, feats, user_group, item_group = synthetic(n_users=80, n_items=80, seed=seed)
    rng = np.random.default_rng(seed + 1)
    # shuffled order within each user, so a sequential model's next item is the user's
    # group, as for the other models (synthetic() lists the other group's items last)
    inter = inter.assign(timestamp=rng.permutation(len(inter)))
    n = len(feats)
    noise_dense = rng.normal(size=feats.vectors.shape).astype(np.float32)
    rows, cols, vals = [], [], []
    for i in range(n):
        own = rng.choice(20, size=6, replace=False) + 20 * item_group[i]
        shared = rng.choice(20, size=3, replace=False) + 40
        for c in np.concatenate([own, shared]):
            rows.append(i)
            cols.append(c)
            vals.append(rng.uniform(0.5, 1.5))
    tokens = sp.csr_matrix((vals, (rows, cols)), shape=(n, 60), dtype=np.float32)
    with_tokens = Features(feats.ids, noise_dense, {"encoder": "synthetic"}, tokens,
                           np.arange(1000, 1060))  # fmt: skip
    return inter, with_tokens, user_group, item_group


def group_precision(model, inter, user_group, item_group, items=None, item_features=None):
    """Share of each user's top-5 unseen items that are of the user's own group."""
    items = np.asarray([f"i{i}" for i in range(len(item_group))] if items is None else items,
                       dtype=object)  # fmt: skip
    users = np.asarray(sorted(inter["user"].unique()), dtype=object)
    scores = model.score_items(users, items, item_features=item_features)
    seen = set(zip(inter["user"], inter["item"], strict=True))
    hits = []
    for r, user in enumerate(users):
        order = [j for j in np.argsort(-np.nan_to_num(scores[r], nan=-np.inf))
                 if (user, items[j]) not in seen][:5]  # fmt: skip
        u = int(user[1:])
        hits += [item_group[int(items[j][1:])] == user_group[u] for j in order]
    return float(np.mean(hits))


# -- every model that takes token features ---------------------------------------------------
@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_tokens_carry_the_signal_dense_noise_cannot(name):
    inter, feats, ug, ig = split_signal()
    dense = group_precision(create(name).fit(inter, item_features=feats), inter, ug, ig)
    tokens = group_precision(create(name, token_weight=1.0).fit(inter, item_features=feats),
                             inter, ug, ig)  # fmt: skip
    mixed = group_precision(create(name, token_weight=0.6).fit(inter, item_features=feats),
                            inter, ug, ig)  # fmt: skip
    # (ease-text and hybrid-als also learn from interactions, so their dense-only figure is not
    # at chance on warm items; the cold-item test below isolates the text)
    assert tokens > dense or tokens >= 0.95, (name, dense, tokens)
    assert mixed > dense or mixed >= 0.95, (name, dense, mixed)
    assert tokens >= 0.8, (name, tokens)


@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_cold_items_are_placed_by_their_tokens(name):
    """Items absent from training get scores from features given at prediction time; with
    the group in the tokens only, token_weight=1 ranks a user's group first, dense does not."""
    inter, feats, ug, ig = split_signal()
    cold = {f"i{i}" for i in range(60, 80)}
    train = inter[~inter["item"].isin(cold)]
    cold_items = sorted(cold)
    fit_feats = Features(  # training items only at fit time: nothing about the cold ones
        feats.ids[:60], feats.vectors[:60], feats.manifest, feats.tokens[:60], feats.token_columns
    )
    dense = create(name).fit(train, item_features=fit_feats)
    tok = create(name, token_weight=1.0).fit(train, item_features=fit_feats)
    p_dense = group_precision(dense, train, ug, ig, cold_items, item_features=feats)
    p_tok = group_precision(tok, train, ug, ig, cold_items, item_features=feats)
    assert p_tok >= 0.8 and p_tok > p_dense + 0.15, (name, p_dense, p_tok)


@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_weight_zero_is_the_dense_model_exactly(name):
    inter, feats, _, _ = split_signal()
    plain = Features(feats.ids, feats.vectors, feats.manifest)  # no tokens at all
    a = create(name, token_weight=0.0).fit(inter, item_features=feats)
    b = create(name).fit(inter, item_features=plain)
    users, items = ["u0", "u1", "u7"], [f"i{i}" for i in range(80)]
    np.testing.assert_allclose(a.score_items(users, items), b.score_items(users, items))
    assert a.token_mix_ is None


@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_a_token_weight_without_token_features_is_one_line(name):
    inter, feats, _, _ = split_signal()
    plain = Features(feats.ids, feats.vectors, feats.manifest)
    with pytest.raises(DataError, match="--token-features tfidf"):
        create(name, token_weight=0.5).fit(inter, item_features=plain)
    for bad in (-0.1, 1.5):
        with pytest.raises(OptionError, match="token_weight must be a number from 0"):
            create(name, token_weight=bad).fit(inter, item_features=feats)
    with pytest.raises(OptionError, match="token_weight"):
        create(name, token_weight="half")


def test_prediction_time_tokens_must_have_the_training_columns():
    inter, feats, _, _ = split_signal()
    model = create("content", token_weight=0.5).fit(inter, item_features=feats)
    other = Features(feats.ids, feats.vectors, feats.manifest, feats.tokens[:, :50])
    with pytest.raises(DataError, match="same run"):
        model.score_items(["u0"], ["i1"], item_features=other)


# -- review-level token features: each split averages its training reviews ------------------
def test_item_means_average_tokens_like_vectors_with_repeats_and_empty_rows():
    users = np.array(["a", "b", "c", "a", "d"], dtype=object)
    items = np.array(["x", "x", "y", "z", "x"], dtype=object)  # x three times
    vecs = np.arange(10, dtype=np.float32).reshape(5, 2)
    tokens = sp.csr_matrix(np.array([[1, 0, 0], [0, 2, 0], [0, 0, 3], [0, 0, 0], [1, 1, 0]],
                                    dtype=np.float32))  # row 3: an empty text  # fmt: skip
    reviews = ReviewVectors(users, items, vecs, {"level": "review"}, tokens, np.array([7, 8, 9]))
    pairs = pd.DataFrame({"user": ["a", "b", "c", "a"], "item": ["x", "x", "y", "z"]})
    feats = reviews.item_means(pairs)  # d's review of x is held out
    got, found = feats.lookup_tokens(["x", "y", "z", "w"])
    np.testing.assert_allclose(got.toarray(), [[0.5, 1, 0], [0, 0, 3], [0, 0, 0], [0, 0, 0]])
    assert found.tolist() == [True, True, True, False]
    np.testing.assert_array_equal(feats.token_columns, [7, 8, 9])
    sub = reviews.subset(np.array([True, False, True, False, True]))
    np.testing.assert_allclose(sub.tokens.toarray(), tokens.toarray()[[0, 2, 4]])


def test_evaluate_uses_review_tokens_and_tuning_searches_the_weight(tmp_path):
    """Through recfeat.evaluate on review-level features with tokens: the item-cold split's
    cold items get token rows from their reviews, and --tune tries token weights."""
    import recfeat
    from recfeat.data.recdata import RecData

    inter, feats, _, _ = split_signal()
    ids = pd.DataFrame({"user": inter["user"], "item": inter["item"]})
    index = {k: n for n, k in enumerate(feats.ids)}
    rows = np.array([index[i] for i in inter["item"]])
    reviews = ReviewVectors(inter["user"].to_numpy(dtype=object), inter["item"].to_numpy(dtype=object),
                            feats.vectors[rows], {"level": "review"}, feats.tokens[rows],
                            feats.token_columns)  # fmt: skip
    assert len(ids) == len(reviews.users)
    data = RecData("synthetic", inter, rating_scale=(1.0, 5.0))
    result = recfeat.evaluate(data, models=["content"], item_features=reviews, split="item-cold", k=5,
                              tune=True, tune_trials=6, seed=0)  # fmt: skip
    tuning = result.info["tuning"]["models"]
    label = next(iter(tuning))
    assert "token_weight" in tuning[label]["space"]
    plain = Features(feats.ids, feats.vectors, {"level": "item", "encoder": "synthetic"})
    result = recfeat.evaluate(data, models=["content"], item_features=plain, split="item-cold", k=5,
                              tune=True, tune_trials=6, seed=0)  # fmt: skip
    tuning = result.info["tuning"]["models"]
    assert "token_weight" not in tuning[next(iter(tuning))]["space"]


# -- files: written by extract, read as untrusted input --------------------------------------
def test_token_file_round_trip_and_damaged_files(tmp_path):
    tokens = sp.random(4, 30, density=0.2, random_state=1, format="csr", dtype=np.float32)
    path = tmp_path / "f.parquet"
    with open(token_features_path(path), "wb") as fh:
        write_token_features(fh, tokens, np.arange(30) + 100)
    got, cols = read_token_features(path, 4)
    np.testing.assert_allclose(got.toarray(), tokens.toarray())
    np.testing.assert_array_equal(cols, np.arange(30) + 100)
    with pytest.raises(DataError, match="row for row"):
        read_token_features(path, 5)
    # a pickled object array inside the npz is refused, never unpickled
    np.savez(token_features_path(path), data=np.array([object()], dtype=object),
             indices=np.array([0]), indptr=np.array([0, 1]), shape=np.array([1, 1]))  # fmt: skip
    with pytest.raises(DataError, match="cannot read token features"):
        read_token_features(path, 1)
    # indices out of range
    np.savez(token_features_path(path), data=np.array([1.0], dtype=np.float32),
             indices=np.array([99]), indptr=np.array([0, 1]), shape=np.array([1, 3]))  # fmt: skip
    with pytest.raises(DataError, match="damaged token features"):
        read_token_features(path, 1)
    token_features_path(path).write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read token features"):
        read_token_features(path, 1)


def test_extract_writes_decodable_token_columns_and_load_features_reads_them(tmp_path, minilm_path):
    from click.testing import CliRunner

    from recfeat.cli.main import cli

    reviews = pd.DataFrame({
        "user": ["a", "b", "c", "a"], "item": ["x", "x", "y", "y"], "rating": [5, 4, 3, 2],
        "text": ["great guitar strings", "strings broke fast", "a quiet amplifier", ""],
    })  # fmt: skip
    src = tmp_path / "reviews.csv"
    reviews.to_csv(src, index=False)
    out = tmp_path / "rev.parquet"
    res = CliRunner().invoke(cli, ["extract", str(src), "--level", "review", "--encoder",
                                   str(minilm_path), "--token-features", "tfidf",
                                   "--out", str(out), "--no-cache"])  # fmt: skip
    assert res.exit_code == 0, res.output
    feats = load_features(out)
    assert isinstance(feats, ReviewVectors) and feats.tokens.shape[0] == 4
    from recfeat.plugins.tokenizers import HFTokenizer

    words = HFTokenizer(model=str(minilm_path)).convert_ids_to_tokens(
        feats.token_columns.tolist()
    )
    first = {words[c] for c in feats.tokens[0].indices}
    assert {"guitar", "strings"} <= first
    assert feats.tokens[3].nnz == 0  # the empty text has no tokens


def test_a_saved_model_keeps_its_token_mix(tmp_path):
    from recfeat.data.recdata import RecData
    from recfeat.training.bundle import load_model, save_model, train_model

    inter, feats, _, _ = split_signal()
    data = RecData("synthetic", inter, rating_scale=(1.0, 5.0))
    bundle = train_model(data, "hybrid-als", {**FAST_TOKENS["hybrid-als"], "token_weight": 0.6},
                         item_features=feats)  # fmt: skip
    model = bundle.model
    path = save_model(bundle, tmp_path / "m.recfeat")
    back = load_model(path).model
    users, items = ["u0", "u3"], [f"i{i}" for i in range(80)]
    np.testing.assert_allclose(back.score_items(users, items), model.score_items(users, items))
    np.testing.assert_allclose(back.item_features_.tokens.toarray(), feats.tokens.toarray())
