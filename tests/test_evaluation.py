"""evaluate(): one split for every model, full ranking, n/a where a model cannot score,
and no held-out review or interaction reaching a model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_models import synthetic  # tests/ is on sys.path (pytest rootdir import mode)

from recfeat.data.features import Features, ReviewVectors
from recfeat.data.recdata import RecData
from recfeat.errors import DataError, UnknownComponentError, UsageError
from recfeat.evaluation.protocol import (
    NA_COLD_ITEMS,
    NA_NOT_RATING,
    evaluate,
    plot_result,
)
from recfeat.evaluation.splits import make_split

FAST = [("mf", {"iterations": 5}), ("hybrid", {"epochs": 8, "factors": 8})]


@pytest.fixture(scope="module")
def world():
    inter, feats, _, _ = synthetic(n_users=60, n_items=40)
    data = RecData("synthetic-test", inter, rating_scale=(1.0, 5.0))
    return data, feats


def review_vectors(inter: pd.DataFrame, item_feats: Features, noise=0.1, seed=0) -> ReviewVectors:
    """One vector per review: the item's vector plus noise (what a review encoder gives)."""
    rng = np.random.default_rng(seed)
    base, _ = item_feats.lookup(inter["item"])
    vecs = base + noise * rng.normal(size=base.shape)
    return ReviewVectors(
        inter["user"].to_numpy(object), inter["item"].to_numpy(object), vecs.astype(np.float32), {}
    )


def test_warm_table_has_every_model_and_metric(world):
    data, feats = world
    res = evaluate(
        data,
        feats,
        ["global-mean", "bias", "popularity", "random", "content", *FAST],
        "random",
        k=5,
        seed=0,
    )
    assert list(res.table.index) == ["global-mean", "bias", "popularity", "random", "content",
                                     "mf(iterations=5)", "hybrid(epochs=8, factors=8)"]  # fmt: skip
    assert {"rmse", "mae", "ndcg@5", "recall@5", "mrr", "coverage@5"} <= set(res.table.columns)
    # ranking models have no rating metrics, and say why
    assert np.isnan(res.table.loc["popularity", "rmse"])
    assert res.na["popularity"]["rmse"] == NA_NOT_RATING
    assert res.display_table().loc["popularity", "rmse"] == NA_NOT_RATING
    # the synthetic taste groups are learnable: models beat the baselines
    assert res.table.loc["mf(iterations=5)", "rmse"] < res.table.loc["global-mean", "rmse"]
    assert res.table.loc["content", "ndcg@5"] > res.table.loc["random", "ndcg@5"]
    payload = json.loads(res.to_json())
    assert payload["models"]["bias"]["metrics"]["rmse"] == pytest.approx(
        res.table.loc["bias", "rmse"]
    )
    assert payload["models"]["popularity"]["not_applicable"]["rmse"] == NA_NOT_RATING
    assert payload["split"]["split"] == "random"


def test_item_cold_id_only_models_show_na_and_text_models_score(world):
    data, feats = world
    res = evaluate(
        data,
        feats,
        ["bias", "popularity", "mf", "als", "random", "content"],
        "item-cold",
        k=3,
        seed=1,
        rank_rating_models=True,  # bias and mf rank too, to show they cannot rank cold items
    )
    for name in ("bias", "popularity", "mf", "als"):
        assert res.na[name]["ndcg@3"] == NA_COLD_ITEMS
        assert res.display_table().loc[name, "ndcg@3"] == NA_COLD_ITEMS
    assert res.na["bias"]["rmse"] == NA_COLD_ITEMS
    assert np.isfinite(res.table.loc["content", "ndcg@3"])
    assert res.table.loc["content", "ndcg@3"] > res.table.loc["random", "ndcg@3"]
    assert res.info["ranking"]["candidates"] == 8  # 20% of 40 items


def test_ranking_is_full_and_excludes_training_items(world):
    """A model that scores a user's TRAINING items highest must not get credit for them."""
    data, _ = world
    split = make_split(data.interactions, "random", seed=0)
    res = evaluate(data, None, ["popularity"], split, k=5)
    ranking = res.info["ranking"]
    assert ranking["candidates"] == split.train["item"].nunique()
    assert "not interacted with in training" in ranking["candidate_set"]


def test_same_seed_same_table(world):
    data, feats = world
    a = evaluate(data, feats, ["bias", "random", "content"], "random", k=5, seed=3).table
    b = evaluate(data, feats, ["bias", "random", "content"], "random", k=5, seed=3).table
    pd.testing.assert_frame_equal(a, b)


def test_review_level_features_use_training_reviews_only(world):
    data, feats = world
    inter = data.interactions
    split = make_split(inter, "random", seed=0)
    reviews = review_vectors(inter, feats)
    # mark every held-out review with a huge value in dimension 0
    test_rows = reviews.users.astype(str) + "|" + reviews.items.astype(str)
    held = set(split.test["user"] + "|" + split.test["item"])
    marked = np.isin(test_rows, list(held))
    reviews.vectors[marked, 0] = 1e6
    item_feats = reviews.item_means(split.train)
    assert np.abs(item_feats.vectors[:, 0]).max() < 100  # no held-out review got in


def test_cold_items_are_leave_one_out_per_user(world):
    data, feats = world
    inter = data.interactions
    split = make_split(inter, "item-cold", seed=0)
    reviews = review_vectors(inter, feats, noise=1.0)
    loo = reviews.leave_one_out(split.cold_items)
    cold = split.test
    for user, item in list(zip(cold["user"], cold["item"], strict=False))[:25]:
        got = loo.for_user(user)
        others = (reviews.items == item) & (reviews.users != user)
        expected = reviews.vectors[others].mean(axis=0)
        np.testing.assert_allclose(got.lookup([item])[0][0], expected, rtol=1e-5, atol=1e-6)


def test_item_cold_with_review_features_end_to_end(world):
    data, feats = world
    reviews = review_vectors(data.interactions, feats)
    res = evaluate(
        data, reviews, ["popularity", "random", "content", "ridge"], "item-cold", k=3, seed=0,
        cold_protocol="leave-one-out",
    )  # fmt: skip
    assert res.na["popularity"]["ndcg@3"] == NA_COLD_ITEMS
    assert res.table.loc["content", "ndcg@3"] > res.table.loc["random", "ndcg@3"]
    assert np.isfinite(res.table.loc["ridge", "rmse"])
    assert "LEAVE-ONE-OUT" in res.info["features"]["cold_items"]
    # the default: cold items are their first reviews, which leave the test set
    res = evaluate(
        data, reviews, ["popularity", "random", "content", "ridge"], "item-cold", k=3, seed=0
    )
    assert res.na["popularity"]["ndcg@3"] == NA_COLD_ITEMS
    assert res.table.loc["content", "ndcg@3"] > res.table.loc["random", "ndcg@3"]
    assert np.isfinite(res.table.loc["ridge", "rmse"])
    assert "first 3 reviews" in res.info["features"]["cold_items"]
    assert res.info["cold_start"]["protocol"] == "first-reviews"


def test_review_derived_item_or_user_files_are_refused(world):
    data, feats = world
    leaky = Features(feats.ids, feats.vectors, {"level": "item", "source": "item reviews"})
    with pytest.raises(UsageError, match="--level review"):
        evaluate(data, leaky, ["content"], "random")
    users = Features(["u0"], feats.vectors[:1], {"level": "user", "source": "user reviews"})
    with pytest.raises(UsageError, match="user-features"):
        evaluate(data, feats, ["content"], "random", user_features=users)


def test_text_models_build_user_profiles_from_training_only(world):
    """Every test item gets a marker direction; no user's profile may point along it."""
    data, feats = world
    split = make_split(data.interactions, "item-cold", seed=2)
    vecs = np.hstack([feats.vectors, np.zeros((len(feats), 1), np.float32)])
    cold = np.isin(feats.ids, list(split.cold_items))
    vecs[cold, -1] = 100.0
    marked = Features(feats.ids, vecs, {})
    from recfeat.plugin.registry import get_registry

    model = (
        get_registry("model").create("content", center=False).fit(split.train, item_features=marked)
    )
    assert np.abs(model.profiles_[:, -1]).max() == 0.0


def test_bad_input(world):
    data, feats = world
    with pytest.raises(UsageError, match="larger than"):
        evaluate(data, None, ["popularity"], "random", k=1000)
    with pytest.raises(UnknownComponentError, match="Known models"):
        evaluate(data, None, ["populararity"], "random")
    out_of_scale = RecData(
        "bad", data.interactions.assign(rating=data.interactions["rating"] * 2), rating_scale=(1, 5)
    )
    with pytest.raises(DataError, match="outside the scale"):
        evaluate(out_of_scale, None, ["bias"], "random")
    with pytest.raises(UsageError, match="features"):
        evaluate(data, None, ["content"], "random")
    with pytest.raises(UsageError, match="twice"):
        evaluate(data, None, ["bias", "bias"], "random")


def test_missing_item_features_are_counted(world):
    data, feats = world
    partial = Features(feats.ids[:30], feats.vectors[:30], {})
    res = evaluate(data, partial, ["content"], "random", k=5)
    assert any("no text vector" in note for note in res.notes["content"])


def test_plot_writes_a_png(world, tmp_path):
    data, feats = world
    res = evaluate(data, feats, ["bias", "popularity", "content"], "random", k=5)
    path = plot_result(res, tmp_path / "chart.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_data_item_cold_id_only_models_cannot_score(musical_instruments):
    from recfeat.plugins.datasets import load_dataset

    data = load_dataset(musical_instruments, format="amazon")
    res = evaluate(data, None, ["bias", "popularity", "random"], "item-cold", k=10, seed=0)
    assert res.na["popularity"]["ndcg@10"] == NA_COLD_ITEMS
    assert res.info["ranking"]["candidates"] == 180
    assert 0 < res.table.loc["random", "ndcg@10"] < 0.2


def test_user_cold_uses_fallbacks_or_says_it_cannot(world):
    data, feats = world
    res = evaluate(data, feats, ["popularity", "bias", "als", "content"], "user-cold", k=5, seed=0)
    assert np.isfinite(res.table.loc["popularity", "ndcg@5"])  # non-personalised fallback
    assert np.isfinite(res.table.loc["bias", "rmse"])  # mu + b_i for unknown users
    assert res.na["als"]["ndcg@5"] == "n/a (cannot score cold users)"
    assert res.na["content"]["ndcg@5"] == "n/a (cannot score cold users)"
    assert res.info["split"]["test_users_without_training_data"] == 12  # 20% of 60 users
