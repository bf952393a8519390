"""recfeat models as scikit-learn estimators: clone, Pipeline, GridSearchCV with recfeat's
scorers, fit(X, y), predict(X), and features passed as fit parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from test_models import MODELS, Features, make, synthetic

from recfeat import get_registry
from recfeat.components.scoring import ranking_scorer, rmse_scorer
from recfeat.errors import DataError, OptionError
from recfeat.plugins.datasets import load_dataset


@pytest.fixture(scope="module")
def ml100k(movielens_100k) -> pd.DataFrame:
    return load_dataset(movielens_100k).interactions


@pytest.fixture(scope="module")
def ml_split(ml100k):
    test = np.random.default_rng(0).random(len(ml100k)) < 0.2
    return ml100k[~test], ml100k[test]


def model(name, **options):
    return get_registry("model").create(name, **options)


def rmse(pred, true) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(true)) ** 2)))


def ratings_only(frame: pd.DataFrame) -> pd.DataFrame:
    """A first pipeline step: keep the columns a model reads (drops timestamp)."""
    return frame[[c for c in ("user", "item", "rating") if c in frame.columns]]


# -- clone ---------------------------------------------------------------------------------
# options whose +1 change would be invalid together (dim must be a multiple of heads): another
# non-default value instead
VALID_CHANGE = {"sasrec": {"heads": 1}, "sasrec-text": {"heads": 1}}


def _changed(value):
    """A non-default value of the same type, so clone must carry it rather than the default."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.5
    return value


# sgd on 160 toy rows stops at max_iter: expected, not what this test is about
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", MODELS)
def test_clone_keeps_params_and_drops_fitted_state(name):
    data = synthetic(n_users=20, n_items=16, per_user=8)
    inter, feats = data[0], data[1]
    base = make(name)
    params = base.get_params()
    assert all(isinstance(v, (bool, int, float, str, type(None))) for v in params.values()), (
        "constructor params must be plain options; features are fit params"
    )
    base.set_params(**{**{k: _changed(v) for k, v in params.items()}, **VALID_CHANGE.get(name, {})})
    twin = clone(base)
    assert type(twin) is type(base) and twin.get_params() == base.get_params()
    # a clone of a fitted model is unfitted, and a clone inside a Pipeline keeps the params
    if "token_weight" in params:  # the changed token_weight mixes in token features: give some
        import scipy.sparse as sp

        tokens = sp.random(len(feats), 50, density=0.3, random_state=0, format="csr")
        feats = Features(feats.ids, feats.vectors, feats.manifest, tokens)
    base.fit(inter, item_features=feats if base.uses_text else None)
    assert not [a for a in vars(clone(base)) if a.endswith("_")]
    pipe = clone(Pipeline([("model", base)]))
    assert pipe.get_params()["model"].get_params() == base.get_params()


# -- fit(X, y), predict(X) -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["bias", "mf"])
def test_fit_with_y_equals_fit_with_the_rating_column(name, ml_split):
    train, test = ml_split
    options = {"iterations": 3} if name == "mf" else {}
    a = model(name, **options).fit(train)
    b = model(name, **options).fit(train.drop(columns=["rating"]), train["rating"].to_numpy())
    np.testing.assert_allclose(a.predict(test), b.predict(test))
    # y wins over the rating column: fitting on flipped ratings changes every prediction
    flipped = model(name, **options).fit(train, 6 - train["rating"])
    assert not np.allclose(flipped.predict(test), a.predict(test))
    with pytest.raises(DataError, match="one rating per interaction"):
        model(name).fit(train, train["rating"].to_numpy()[:-1])


def test_predict_on_a_frame_equals_the_pairs_form(ml_split):
    train, test = ml_split
    fitted = model("bias").fit(train)
    np.testing.assert_array_equal(fitted.predict(test), fitted.predict(test["user"], test["item"]))
    assert fitted.predict(test).shape == (len(test),)
    with pytest.raises(DataError, match="user and item columns"):
        fitted.predict(test[["user"]])
    with pytest.raises(DataError, match="items missing"):
        fitted.predict(test["user"])


def test_features_positionally_still_mean_item_features():
    inter, feats, _, _ = synthetic()
    a = model("content").fit(inter, feats).score_items(["u0"], ["i0", "i1"])
    b = model("content").fit(inter, item_features=feats).score_items(["u0"], ["i0", "i1"])
    np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="given twice"):
        model("content").fit(inter, feats, item_features=feats)


def test_score_is_greater_is_better(ml_split):
    train, test = ml_split
    bias = model("bias").fit(train)
    assert bias.score(test) == pytest.approx(-rmse(bias.predict(test), test["rating"]))
    assert bias.score(test, test["rating"]) == bias.score(test)
    pop = model("popularity").fit(train)
    assert pop.score(test) == pytest.approx(ranking_scorer("ndcg", 10)(pop, test))
    assert 0 < pop.score(test) < 1


# -- Pipeline ------------------------------------------------------------------------------
def test_pipeline_fits_and_predicts_movielens(ml_split):
    train, test = ml_split
    pipe = Pipeline([("select", FunctionTransformer(ratings_only)), ("model", model("bias"))])
    pipe.fit(train.drop(columns=["rating"]), train["rating"])  # y flows to the model
    pred = pipe.predict(test)
    direct = model("bias").fit(train).predict(test)
    np.testing.assert_allclose(pred, direct)
    assert rmse(pred, test["rating"]) < 0.9 * rmse(train["rating"].mean(), test["rating"])
    assert pipe.score(test) == pytest.approx(-rmse(pred, test["rating"]))
    assert rmse_scorer(pipe, test) == pytest.approx(pipe.score(test))


# -- GridSearchCV --------------------------------------------------------------------------
def test_grid_search_bias_with_rmse_scorer(ml100k):
    sample = ml100k.head(30000)  # u.data is in shuffled order: plain 3-fold is a random split
    search = GridSearchCV(
        model("bias"), {"reg_user": [1, 10]}, scoring=rmse_scorer, cv=3, error_score="raise"
    ).fit(sample)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and (scores < 0).all()
    assert search.best_params_["reg_user"] == [1, 10][int(np.argmax(scores))]
    assert search.best_estimator_.reg_user == search.best_params_["reg_user"]
    mean_only = cross_val_score(model("global-mean"), sample, scoring=rmse_scorer, cv=3)
    assert search.best_score_ > mean_only.mean() + 0.05  # biases beat the global mean


def test_grid_search_ranking_scorer_over_pipeline_models(ml100k):
    sample = ml100k.head(20000)
    pipe = Pipeline([("select", FunctionTransformer(ratings_only)), ("model", model("random"))])
    grid = {"model": [model("random"), model("popularity"), model("bpr", factors=8, iterations=20)]}
    search = GridSearchCV(
        pipe,
        grid,
        scoring={"ndcg": ranking_scorer(), "recall": ranking_scorer("recall", k=20, threshold=4)},
        refit="ndcg",
        cv=KFold(3, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(sample)
    ndcg = search.cv_results_["mean_test_ndcg"]
    recall = search.cv_results_["mean_test_recall"]
    assert np.isfinite(ndcg).all() and np.isfinite(recall).all()
    assert ndcg[0] < 0.5 * min(ndcg[1:])  # random is the floor
    assert search.best_params_["model"].name != "random"


def test_grid_search_text_model_with_features_as_fit_params():
    inter, feats, _, _ = synthetic()
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(
        model("ridge", n_components=4),
        {"alpha": [0.1, 1000.0]},
        scoring=rmse_scorer,
        cv=cv,
        error_score="raise",
    ).fit(inter, item_features=feats)
    assert search.best_estimator_.item_features_ is feats
    assert search.best_params_ in ({"alpha": 0.1}, {"alpha": 1000.0})
    mean_only = cross_val_score(model("global-mean"), inter, scoring=rmse_scorer, cv=cv)
    assert -search.best_score_ < 0.7 * -mean_only.mean()  # well under the mean's RMSE
    # a small deterministic Features object works the same way (dimension from the fit params)
    small = Features(feats.ids, np.eye(len(feats.ids), 6, dtype=np.float32), {"encoder": "eye"})
    search.fit(inter, item_features=small)
    assert search.best_estimator_.feature_dim_ == 6


# -- the scorers themselves ----------------------------------------------------------------
@pytest.fixture()
def tiny():
    train = pd.DataFrame(
        {"user": ["p", "q", "r", "p", "q", "p"], "item": ["a", "a", "a", "b", "b", "c"]}
    ).assign(rating=5.0, timestamp=0)
    return model("popularity").fit(train)  # ranks a, b, c for everyone


def test_ranking_scorer_reuses_the_registered_metrics(tiny):
    held = pd.DataFrame({"user": ["z", "z"], "item": ["b", "new"], "rating": [5.0, 1.0]})
    # candidates a, b, c, new; "new" cannot be scored (NaN): ranked last, never a free hit
    assert ranking_scorer("ndcg", k=2, threshold=4)(tiny, held) == pytest.approx(1 / np.log2(3))
    assert ranking_scorer("recall", k=1)(tiny, held) == 0.0
    assert ranking_scorer("recall", k=2)(tiny, held) == 0.5
    assert ranking_scorer("recall", k=2)(tiny, pd.concat([held, held])) == 0.5  # repeats once
    assert ranking_scorer("mrr", threshold=4)(tiny, held) == pytest.approx(1 / 2)
    assert ranking_scorer("mrr")(tiny, held.iloc[1:]) == pytest.approx(1 / 4)
    # y gives the ratings when X has none
    only_new = ranking_scorer("mrr", threshold=4)(tiny, held.drop(columns=["rating"]), [1, 5])
    assert only_new == pytest.approx(1 / 4)


def test_scorers_refuse_bad_input(tiny):
    with pytest.raises(OptionError, match="rating metric"):
        ranking_scorer("rmse")
    with pytest.raises(OptionError, match="k must be"):
        ranking_scorer("ndcg", k=0)
    held = pd.DataFrame({"user": ["z"], "item": ["b"], "rating": [2.0]})
    with pytest.raises(DataError, match="lower k"):
        ranking_scorer("ndcg", k=50)(tiny, held)
    with pytest.raises(DataError, match="no held-out row is relevant"):
        ranking_scorer(k=2, threshold=4)(tiny, held)
    with pytest.raises(DataError, match="no rating"):
        rmse_scorer(model("bias").fit(held.assign(user="p")), held.drop(columns=["rating"]))
    with pytest.raises(DataError, match="not a recfeat model"):
        rmse_scorer(object(), held)
