"""Every registered model: scikit-learn conventions, the fit/predict/score_items contract,
and a learnable synthetic signal (two taste groups whose item texts differ)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from recfeat.data.features import Features
from recfeat.errors import DataError, NotFittedError, OptionError, UsageError
from recfeat.plugin.registry import get_registry

MODELS = sorted(get_registry("model").names())
REQUIRED = {"global-mean", "bias", "popularity", "random", "linear", "ridge", "sgd", "gbm", "mf",
            "als", "bpr", "content", "hybrid"}  # fmt: skip
# Small settings so the whole contract suite stays fast; defaults are exercised on real data.
FAST = {
    "mf": {"iterations": 5},
    "als": {"iterations": 5, "factors": 8},
    "bpr": {"iterations": 20, "factors": 8},
    "hybrid": {"epochs": 8, "factors": 8},
    "gbm": {"max_iter": 30},
    "sasrec": {"epochs": 2, "dim": 16},
    "sasrec-text": {"epochs": 2, "dim": 16},
}


def synthetic(n_users=60, n_items=40, per_user=12, dim=8, seed=0):
    """Users and items in two groups; same-group pairs rate ~4.5, others ~1.5; items'
    text vectors point towards their group's direction."""
    rng = np.random.default_rng(seed)
    user_group = np.arange(n_users) % 2
    item_group = np.arange(n_items) % 2
    directions = rng.normal(size=(2, dim))
    item_vecs = directions[item_group] + 0.3 * rng.normal(size=(n_items, dim))
    rows = []
    for u in range(n_users):
        # mostly items of the user's own group, a few of the other
        own = rng.choice(
            np.flatnonzero(item_group == user_group[u]), size=per_user - 3, replace=False
        )
        other = rng.choice(np.flatnonzero(item_group != user_group[u]), size=3, replace=False)
        for t, i in enumerate(np.concatenate([own, other])):
            good = item_group[i] == user_group[u]
            rating = float(np.clip(round((4.5 if good else 1.5) + rng.normal(0, 0.5)), 1, 5))
            rows.append((f"u{u}", f"i{i}", rating, t))
    inter = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    feats = Features(
        [f"i{i}" for i in range(n_items)], item_vecs.astype(np.float32), {"encoder": "synthetic"}
    )
    return inter, feats, user_group, item_group


@pytest.fixture(scope="module")
def data():
    return synthetic()


def make(name):
    return get_registry("model").create(name, **FAST.get(name, {}))


def fitted(name, inter, feats):
    model = make(name)
    text = feats if model.uses_text else None
    assert model.fit(inter, item_features=text) is model  # fit returns self
    return model


def test_every_model_of_the_issue_is_registered():
    assert REQUIRED <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_init_only_stores_options_and_clone_works(name):
    model = make(name)
    assert not [a for a in vars(model) if a.endswith("_")], (
        "__init__ must not set fitted attributes"
    )
    params = model.get_params()
    twin = clone(model)
    assert twin is not model and twin.get_params() == params
    assert model.set_params(**params) is model
    assert type(model).__doc__ and type(model).name == name


@pytest.mark.parametrize("name", MODELS)
def test_predict_before_fit_raises_not_fitted(name):
    model = make(name)
    with pytest.raises(NotFittedError):
        model.predict(["u0"], ["i0"])
    with pytest.raises(NotFittedError):
        model.score_items(["u0"], ["i0", "i1"])


@pytest.mark.parametrize("name", MODELS)
def test_fit_predict_score_items_contract(name, data):
    inter, feats, _, _ = data
    model = fitted(name, inter, feats)
    users = ["u0", "u1", "u2"]
    items = ["i0", "i1", "i2", "i3"]
    pred = model.predict(users * 4, items * 3)
    assert pred.shape == (12,) and np.isfinite(pred).all()
    scores = model.score_items(users, items)
    assert scores.shape == (3, 4) and np.isfinite(scores).all()
    # score_items and predict agree on the same pairs (ratings clipped by predict)
    if name != "random":
        direct = model.predict(["u1"] * 4, items)
        expected = scores[1]
        if model.predicts_ratings:
            expected = np.clip(expected, *model.rating_range_)
        np.testing.assert_allclose(direct, expected, rtol=1e-6, atol=1e-9)
    if model.predicts_ratings:
        lo, hi = model.rating_range_
        assert ((pred >= lo) & (pred <= hi)).all()
    with pytest.raises(DataError, match="one per pair"):
        model.predict(["u0", "u1"], ["i0"])


@pytest.mark.parametrize("name", MODELS)
def test_unknown_items_are_nan_unless_the_model_scores_cold_items(name, data):
    inter, feats, _, _ = data
    held_out = "i5"
    model = fitted(name, inter[inter["item"] != held_out], feats)
    scores = model.score_items(["u0", "u1"], ["i0", held_out])
    assert np.isfinite(scores[:, 0]).all()
    if model.cold_start_items:
        assert np.isfinite(scores[:, 1]).all()
    else:
        assert np.isnan(scores[:, 1]).all()


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_scores(name, data):
    inter, feats, _, _ = data
    a = fitted(name, inter, feats).score_items(["u0", "u3"], ["i0", "i1", "i2"])
    b = fitted(name, inter, feats).score_items(["u0", "u3"], ["i0", "i1", "i2"])
    if name == "random":  # a fresh generator per fit: the same seed repeats its draws
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", [n for n in MODELS if get_registry("model").get(n).uses_text])
def test_text_models_need_features_and_check_their_dimension(name, data):
    inter, feats, _, _ = data
    with pytest.raises(UsageError, match="features"):
        make(name).fit(inter)
    model = fitted(name, inter, feats)
    other = Features(["new"], np.zeros((1, feats.dim + 3), dtype=np.float32), {"encoder": "other"})
    with pytest.raises(DataError, match="dimension"):
        model.score_items(["u0"], ["new"], item_features=other)


@pytest.mark.parametrize(
    "name", [n for n in MODELS if get_registry("model").get(n).needs_ratings is True]
)
def test_rating_models_refuse_implicit_data(name, data):
    inter, feats, _, _ = data
    with pytest.raises(DataError, match="no rating"):
        make(name).fit(inter.assign(rating=np.nan), item_features=feats)


def test_bad_input_frames(data):
    inter, _, _, _ = data
    with pytest.raises(DataError, match="lack column"):
        make("bias").fit(inter.drop(columns=["rating"]))
    with pytest.raises(DataError, match="no training interactions"):
        make("bias").fit(inter.head(0))
    with pytest.raises(OptionError, match="unknown option"):
        get_registry("model").create("mf", factor=3)


def test_rating_models_learn_the_taste_groups(data):
    inter, feats, _, _ = data
    rng = np.random.default_rng(1)
    test_mask = rng.random(len(inter)) < 0.2
    train, test = inter[~test_mask], inter[test_mask]
    test = test[test["item"].isin(set(train["item"]))]

    def rmse(name):
        model = fitted(name, train, feats)
        return float(
            np.sqrt(np.mean((model.predict(test["user"], test["item"]) - test["rating"]) ** 2))
        )

    base = rmse("global-mean")
    for name in ("mf", "ridge", "gbm"):
        assert rmse(name) < 0.7 * base, name


def test_content_and_hybrid_rank_cold_items_of_the_users_group_first(data):
    inter, feats, user_group, item_group = data
    cold = [f"i{i}" for i in range(30, 40)]
    train = inter[~inter["item"].isin(cold)]
    for name in ("content", "hybrid"):
        model = fitted(name, train, feats)
        scores = model.score_items([f"u{u}" for u in range(10)], cold)
        same_group = item_group[30:40][None, :] == user_group[:10][:, None]
        # the mean score of same-group cold items beats the other group's for every user
        better = [
            scores[r][same_group[r]].mean() > scores[r][~same_group[r]].mean() for r in range(10)
        ]
        assert all(better), name


def test_prediction_time_features_score_new_items(data):
    inter, feats, _, _ = data
    model = fitted("content", inter, feats)
    vec = feats.lookup(["i0"])[0]
    new = Features(["brand-new"], vec, {"encoder": "synthetic"})
    with_new = model.score_items(["u0"], ["i0", "brand-new"], item_features=new)
    np.testing.assert_allclose(with_new[0, 0], with_new[0, 1], rtol=1e-6)


def test_hybrid_rating_loss_predicts_ratings(data):
    inter, feats, _, _ = data
    model = get_registry("model").create("hybrid", loss="rating", epochs=10, factors=8)
    assert model.predicts_ratings
    model.fit(inter, item_features=feats)
    pred = model.predict(inter["user"], inter["item"])
    assert np.sqrt(np.mean((pred - inter["rating"]) ** 2)) < 1.0
    with pytest.raises(OptionError, match="loss"):
        get_registry("model").create("hybrid", loss="hinge").fit(inter, item_features=feats)


def test_models_work_in_a_grid_search_style_loop(data):
    """clone + set_params is all model selection needs (no glue code)."""
    inter, _, _, _ = data
    base = get_registry("model").create("bias")
    fits = [clone(base).set_params(reg_user=r).fit(inter) for r in (0.1, 50.0)]
    assert not np.allclose(fits[0].user_bias_, fits[1].user_bias_)
