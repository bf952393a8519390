"""Peers inside the harness: implicit, LightFM and cornac models fitted and ranked by
recfeat's own evaluator on real MovieLens-100k, LightFM scoring cold items from item
features, scores equal to the libraries' own predictions, and one-line errors for an
unknown or missing peer library."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

from recfeat import get_registry
from recfeat.cli.main import cli
from recfeat.data.features import Features
from recfeat.errors import MissingDependencyError, UsageError
from recfeat.evaluation.protocol import evaluate
from recfeat.evaluation.splits import make_split
from recfeat.plugins.datasets import load_dataset
from recfeat.plugins.peers import LIBRARIES, add_peers, expand_peers

RANKING_PEERS = ["implicit-als", "implicit-bpr", "lightfm-warp", "cornac-bpr"]
ALL_PEERS = [name for names in LIBRARIES.values() for name in names]


def need(library: str) -> None:
    """Skip when a peer's library is missing locally; under CI it must be installed (make setup)."""
    if importlib.util.find_spec(library) is None:
        msg = f"{library} is not installed (pip install 'recfeat[peers-cf]'; lightfm: benchmarks/peers/install_lightfm.sh)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def library_of(name: str) -> str:
    return name.split("-")[0]


@pytest.fixture(scope="module")
def ml100k(movielens_100k):
    return load_dataset(movielens_100k)


@pytest.fixture(scope="module")
def ml_subset(ml100k):
    """The first 300 users (about 31k ratings): real data, a few seconds per model."""
    inter = ml100k.interactions
    return dataclasses.replace(ml100k, interactions=inter[inter["user"].astype(int) <= 300])


@pytest.fixture(scope="module")
def genres(ml100k) -> Features:
    """One-hot genres parsed from the dataset's item texts ("Title. Genres: A, B")."""
    items = ml100k.items
    lists = [t.split("Genres: ")[1].split(", ") if "Genres: " in t else [] for t in items["text"]]
    names = sorted({g for gs in lists for g in gs})
    onehot = np.array([[g in gs for g in names] for gs in lists], dtype=np.float32)
    return Features(items["item"].astype(str), onehot, {"encoder": "genres-onehot"})


# -- fitted and ranked through the evaluator -------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", RANKING_PEERS)
def test_peer_fits_and_ranks_above_random_on_movielens(name, ml_subset):
    need(library_of(name))
    result = evaluate(ml_subset, None, ["random", name], "random", k=10, seed=0, metrics=["ndcg@k"])
    ndcg = result.table["ndcg@10"]
    assert np.isfinite(ndcg[name])
    assert ndcg[name] > 2 * ndcg["random"], result.table


@pytest.mark.slow
def test_cornac_mf_predicts_ratings_better_than_the_global_mean(ml_subset):
    need("cornac")
    result = evaluate(
        ml_subset, None, ["global-mean", "cornac-mf"], "random", seed=0, metrics=["rmse"]
    )
    rmse = result.table["rmse"]
    assert rmse["cornac-mf"] < rmse["global-mean"] - 0.05, result.table


@pytest.mark.slow
def test_lightfm_text_scores_cold_items_from_item_features(ml_subset, genres):
    need("lightfm")
    split = make_split(ml_subset.interactions, "item-cold", seed=0)
    result = evaluate(
        ml_subset, genres, ["random", "lightfm-warp", "lightfm-warp-text"], split, k=10, seed=0,
        metrics=["ndcg@k"],
    )  # fmt: skip
    ndcg = result.table["ndcg@10"]
    assert result.na["lightfm-warp"]["ndcg@10"].startswith("n/a (cannot score cold items)")
    assert np.isfinite(ndcg["lightfm-warp-text"])
    assert ndcg["lightfm-warp-text"] > ndcg["random"], result.table


# -- the adapters score exactly as the libraries do -------------------------------------------
def _fit(name, train, features=None, **options):
    model = get_registry("model").create(name, **options)
    return model.fit(train, item_features=features)


def test_lightfm_scores_equal_lightfm_predict(ml_subset, genres):
    need("lightfm")
    train = ml_subset.interactions.iloc[:5000]
    model = _fit("lightfm-warp", train, epochs=3)
    users, items = model.users_[:5], model.items_[:7]
    ours = model.score_items(users, items)
    uc = np.repeat(model.user_codes(users), len(items)).astype(np.int32)
    ic = np.tile(model.item_codes(items), len(users)).astype(np.int32)
    theirs = model.library_model_.predict(uc, ic).reshape(len(users), len(items))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_lightfm_text_scores_equal_lightfm_predict_warm_and_cold(ml_subset, genres):
    need("lightfm")
    from scipy.sparse import csr_matrix, hstack

    train = ml_subset.interactions.iloc[:5000]
    model = _fit("lightfm-warp-text", train, genres, epochs=3)
    lib = model.library_model_
    users = model.users_[:4]
    warm = list(model.items_[:5])
    cold = [i for i in genres.ids if i not in model.item_index_][:3]
    ours = model.score_items(users, warm + cold)
    # LightFM's own predict on feature rows: identity + text for warm items, text alone for cold
    n = len(model.items_)
    text, _ = genres.lookup(warm + cold)
    vec = model._text_part(text.astype(np.float64), np.ones(len(text), bool))
    ident = np.zeros((len(text), n), dtype=np.float32)
    ident[np.arange(len(warm)), model.item_codes(warm)] = 1
    rows = hstack([csr_matrix(ident), csr_matrix(vec.astype(np.float32))], format="csr")
    for r, user in enumerate(users):
        uc = np.full(len(text), model.user_index_[user], dtype=np.int32)
        theirs = lib.predict(uc, np.arange(len(text), dtype=np.int32), item_features=rows)
        np.testing.assert_allclose(ours[r], theirs, rtol=1e-4, atol=1e-4)
    assert np.isfinite(ours).all()


@pytest.mark.parametrize("name", ["cornac-bpr", "cornac-mf"])
def test_cornac_scores_equal_cornac_score(name, ml_subset):
    need("cornac")
    train = ml_subset.interactions.iloc[:5000]
    model = _fit(name, train, max_iter=5)
    urow, irow = model.cornac_rows_
    for code in (0, 7):
        ours = model.score_items([model.users_[code]], model.items_)[0]
        theirs = np.asarray(model.library_model_.score(int(urow[code])))[irow]
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_implicit_als_applies_bm25_like_implicits_example(ml_subset):
    need("implicit")
    from implicit.nearest_neighbours import bm25_weight
    from scipy.sparse import csr_matrix

    model = get_registry("model").create("implicit-als")
    m = csr_matrix(np.array([[1, 0, 1], [1, 1, 0]], dtype=np.float32))
    expected = (bm25_weight(m.T.tocoo(), B=0.9) * 5).T.toarray()
    np.testing.assert_allclose(model._weight(m).toarray(), expected, rtol=1e-6)
    assert not np.allclose(expected, m.toarray())  # the weighting changes the matrix


def tried_candidates(name: str) -> tuple[dict, list[dict]]:
    """(search space, candidates) of ``name`` under the benchmark's default budget."""
    from recfeat.evaluation.tuning import DEFAULT_TRIALS, candidates, search_space

    reg = get_registry("model")
    base = reg.create(name).get_params(deep=False)
    space = search_space(reg.get(name), {})
    return space, candidates(space, base, DEFAULT_TRIALS, seed=0)


@pytest.mark.parametrize("name", RANKING_PEERS)
def test_ranking_peer_search_tries_its_whole_grid_within_the_budget(name):
    """A grid larger than the budget is sampled at random (9 of 54 points before): the
    ranking peers' grids fit the benchmark's 10 trials, the documented defaults first."""
    from sklearn.model_selection import ParameterGrid

    space, tried = tried_candidates(name)
    points = [dict(p) for p in ParameterGrid(space)]
    assert tried[0] == get_registry("model").create(name).get_params(deep=False)
    assert all(any(all(c[k] == v for k, v in p.items()) for c in tried) for p in points), space


def test_implicit_als_search_tries_implicits_own_best_configuration():
    """implicit tuned directly (benchmarks/results/independent_als.md) scores best on
    MovieLens 100k with BM25 at B=0 (idf only), unscaled, alpha 1, regularization 30, and
    its optimum in regularization is sharp: the peer's sweep must hold that point and step
    finely around it."""
    from itertools import pairwise

    space, tried = tried_candidates("implicit-als")
    best = {"bm25_b": 0.0, "bm25_scale": 1.0, "alpha": 1.0, "regularization": 30.0}
    assert any(all(c[k] == v for k, v in best.items()) for c in tried), tried
    sweep = sorted(space["regularization"])
    near = [r for r in sweep if 10 <= r <= 100]
    assert all(b / a <= 1.5 for a, b in pairwise(near) if a < 50), sweep
    assert sweep[0] <= 10 and sweep[-1] >= 70  # both ends lie off the optimum


def test_lightfm_warp_search_tries_lightfms_documented_configurations():
    """LightFM's quickstart (10 components, 30 epochs) and its MovieLens WARP example
    (32 components, 70 epochs) are both tried within the benchmark's budget."""
    _, tried = tried_candidates("lightfm-warp")
    assert {(10, 30), (32, 70)} <= {(c["no_components"], c["epochs"]) for c in tried}, tried


@pytest.mark.slow
def test_tuned_implicit_als_comes_close_to_tuned_als_on_movielens(ml_subset):
    """Both wrap implicit's ALS: tuned with the same budget, the peer must not trail
    recfeat's own model by more than a rounding margin (here 0.404 vs 0.380; it trailed by
    0.14, 0.242, when its search stopped at regularization 1)."""
    need("implicit")
    result = evaluate(ml_subset, None, ["als", "implicit-als"], "random", k=10, seed=0,
                      metrics=["ndcg@k"], relevance_threshold=None, tune=True)  # fmt: skip
    ndcg = result.table["ndcg@10"]
    assert ndcg["implicit-als"] >= ndcg["als"] - 0.02, result.table


# -- declared search spaces -------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_PEERS)
def test_every_peer_declares_a_valid_tune_space(name):
    reg = get_registry("model")
    cls = reg.get(name)
    space = cls.tune_space
    assert isinstance(space, dict) and space
    for option, values in space.items():
        assert isinstance(values, list) and values, option
        for value in values:
            reg.create(name, **{option: value})  # every value is a valid option value
    assert cls.library == library_of(name)


# -- --peers -----------------------------------------------------------------------------------
def test_expand_peers_lists_the_library_models_and_text_peers_only_with_features():
    need("implicit")
    need("lightfm")
    assert expand_peers("implicit") == ["implicit-als", "implicit-bpr"]
    assert expand_peers(" lightfm ,implicit") == [
        "lightfm-warp", "lightfm-warp-text", "implicit-als", "implicit-bpr",
    ]  # fmt: skip
    assert expand_peers("lightfm", text=False) == ["lightfm-warp"]
    with pytest.raises(UsageError, match="unknown peer library 'lightfn'.*Did you mean 'lightfm'"):
        expand_peers("lightfn")


def test_add_peers_appends_and_applies_peer_options():
    out = add_peers(
        ["bias", ("implicit-als", {"factors": 8})], ["implicit-als", "implicit-bpr"],
        {"implicit-als": {"iterations": 3}, "implicit-bpr": {"factors": 4}, "bias": {"x": 1}},
    )  # fmt: skip
    assert out == [
        "bias", ("implicit-als", {"factors": 8, "iterations": 3}), ("implicit-bpr", {"factors": 4}),
    ]  # fmt: skip


def test_cli_unknown_peer_library_is_a_usage_error(movielens_100k):
    result = CliRunner().invoke(cli, ["evaluate", str(movielens_100k), "--peers", "nosuchlib"])
    assert_one_line_error(
        result, 2, "unknown peer library 'nosuchlib'", "implicit, lightfm, cornac"
    )


@pytest.mark.parametrize(
    ("library", "fragment"),
    [("cornac", "pip install 'recfeat[peers-cf]'"), ("implicit", "pip install 'recfeat[peers-cf]'"),
     ("lightfm", "benchmarks/peers/install_lightfm.sh")],
)  # fmt: skip
def test_cli_missing_peer_library_names_the_install_command(
    library, fragment, movielens_100k, monkeypatch
):
    monkeypatch.setitem(sys.modules, library, None)  # makes `import library` fail
    result = CliRunner().invoke(cli, ["evaluate", str(movielens_100k), "--peers", library])
    assert_one_line_error(result, 1, f"{library} is not installed", fragment)


def test_peer_model_without_its_library_fails_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "cornac", None)
    train = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "rating": [4.0, 5.0]})
    with pytest.raises(MissingDependencyError, match=r"pip install 'recfeat\[peers-cf\]'"):
        get_registry("model").create("cornac-bpr").fit(train)


@pytest.mark.slow
def test_cli_peers_run_beside_models_with_their_options(movielens_100k):
    need("implicit")
    import json

    result = CliRunner().invoke(cli, [
        "evaluate", str(movielens_100k), "--models", "popularity", "--peers", "implicit",
        "-O", "implicit-als.factors=16", "-O", "implicit-bpr.iterations=20",
        "--metrics", "ndcg@k", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert list(out["models"]) == [
        "popularity",
        "implicit-als(factors=16)",
        "implicit-bpr(iterations=20)",
    ]
    assert out["models"]["implicit-als(factors=16)"]["options"]["factors"] == 16
    assert all(m["metrics"]["ndcg@10"] > 0 for m in out["models"].values())


def test_python_api_evaluate_takes_peers(ml_subset):
    need("implicit")
    import recfeat

    result = recfeat.evaluate(
        ml_subset, models=["random"], peers="implicit", metrics=["ndcg@k"], seed=0,
    )  # fmt: skip
    assert list(result.table.index) == ["random", "implicit-als", "implicit-bpr"]
