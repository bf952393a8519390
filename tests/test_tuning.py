"""Built-in tuning (recfeat.evaluation.tuning): validation carved from the training part only,
the declared spaces searched with scikit-learn, the chosen options refitted and reported."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error
from test_models import synthetic  # tests/ is on sys.path (pytest rootdir import mode)

from recfeat.cli.main import cli
from recfeat.components import RecModel
from recfeat.data.recdata import RecData
from recfeat.evaluation import tuning
from recfeat.evaluation.protocol import evaluate
from recfeat.evaluation.splits import make_split
from recfeat.plugin.hookspecs import hookimpl


class PowerPopularity(RecModel):
    """Popularity ** power: the default (-1, least popular first) is bad on MovieLens."""

    name = "test-power-popularity"
    tune_space = {"power": [-1.0, 1.0]}  # noqa: RUF012

    def __init__(self, power: float = -1.0):
        self.power = power

    def _fit(self, u, i, r, train, item_features, user_features):
        self.counts_ = np.bincount(i, minlength=len(self.items_)).astype(float)

    def _score_pairs(self, users, items, item_features):
        ic = self.item_codes(items)
        return np.where(ic >= 0, self.counts_[np.maximum(ic, 0)] ** self.power, np.nan)


class _Plugin:
    @hookimpl
    def register_models(self, register):
        register(PowerPopularity)


@pytest.fixture(scope="module")
def ml_small(movielens_100k):
    """MovieLens-100k's first 150 users (about 15k ratings): real data, fast fits."""
    from recfeat.plugins.datasets import load_dataset

    data = load_dataset(movielens_100k, format="movielens-100k")
    users = sorted(data.interactions["user"].unique(), key=int)[:150]
    inter = data.interactions[data.interactions["user"].isin(users)].reset_index(drop=True)
    return dataclasses.replace(data, interactions=inter)


@pytest.fixture(scope="module")
def synth():
    inter, _, _, _ = synthetic(n_users=60, n_items=40)
    return RecData("synthetic", inter, rating_scale=(1.0, 5.0))


def test_every_builtin_space_names_real_options_with_valid_values():
    from recfeat.plugin.registry import get_registry
    from recfeat.plugins.models import model_classes

    registry = get_registry("model")
    spaces = {}
    for cls in model_classes():
        space = cls.tune_space
        params = set(cls().get_params()) if not cls.uses_text else None
        for option, values in space.items():
            assert values, (cls.name, option)
            for value in values:  # option types and the model's own checks accept each value
                model = registry.create(cls.name, **{option: value})
                assert getattr(model, option) == value
            if params is not None:
                assert option in params
        # token_weight joins the search only when the features carry token features (the
        # tuner drops it otherwise), and it must offer 0, the dense vectors alone
        if "token_weight" in space:
            assert 0.0 in space["token_weight"], cls.name
            assert all(0 <= w <= 1 for w in space["token_weight"]), cls.name
        base = {k: v for k, v in space.items() if k != "token_weight"}
        points = int(np.prod([len(v) for v in base.values()])) if base else 0
        assert points <= 9, f"{cls.name}: {points} points; keep spaces small (2 cores)"
        spaces[cls.name] = points
    tuned = {"als", "bpr", "mf", "bias", "content", "hybrid", "hybrid-als", "linear", "ridge",
             "sgd", "gbm"}  # fmt: skip
    assert tuned <= {n for n, p in spaces.items() if p}  # later models may add their own
    assert spaces["global-mean"] == spaces["popularity"] == spaces["random"] == 0


def test_candidates_grid_when_it_fits_else_seeded_samples():
    space = {"a": [1, 2, 3], "b": [10, 20]}
    base = {"a": 1, "b": 99, "c": "x"}
    full = tuning.candidates(space, base, n_trials=10, seed=0)
    assert full[0] == base  # the options as given come first
    assert len(full) == 7 and all(c["c"] == "x" for c in full)
    few = tuning.candidates(space, base, n_trials=4, seed=0)
    assert len(few) == 4 and few[0] == base
    assert few == tuning.candidates(space, base, n_trials=4, seed=0)  # deterministic
    assert tuning.candidates({}, base, n_trials=10, seed=0) == [base]
    assert tuning.candidates(space, base, n_trials=1, seed=0) == [base]


def test_search_moves_off_bad_defaults_and_refits(add_plugin, ml_small):
    assert add_plugin(_Plugin(), "test-tuning-plugin")
    plain = evaluate(ml_small, None, ["test-power-popularity"], "random", metrics=["ndcg@k"],
                     relevance_threshold=None)  # fmt: skip
    result = evaluate(ml_small, None, ["test-power-popularity"], "random", metrics=["ndcg@k"],
                      relevance_threshold=None, tune=True, tune_trials=5)  # fmt: skip
    report = result.info["tuning"]["models"]["test-power-popularity"]
    assert report["status"] == "tuned"
    assert report["chosen"] == {"power": 1.0}
    assert report["trials_run"] == 2  # the whole 2-point grid, defaults included once
    assert report["space"] == {"power": [-1.0, 1.0]}
    assert report["validation_score"] > report["default_score"]
    assert result.options["test-power-popularity"]["power"] == 1.0  # refitted with it
    assert result.table.iloc[0, 0] > plain.table.iloc[0, 0]
    assert "tuned on validation" in result.notes["test-power-popularity"][0]
    json.loads(result.to_json())  # the report is part of the JSON result


def test_options_given_explicitly_stay_fixed(add_plugin, ml_small):
    assert add_plugin(_Plugin(), "test-tuning-plugin")
    result = evaluate(ml_small, None, [("test-power-popularity", {"power": -1.0})], "random",
                      metrics=["ndcg@k"], tune=True)  # fmt: skip
    (report,) = result.info["tuning"]["models"].values()
    assert report["status"] == "not tuned" and "set explicitly" in report["reason"]
    assert next(iter(result.options.values()))["power"] == -1.0


def test_validation_is_carved_from_training_rows_only(ml_small):
    for kind in ("random", "temporal", "item-cold", "user-cold"):
        split = make_split(ml_small.interactions, kind, seed=0)
        val = tuning.validation_split(split, seed=0)
        assert val.kind == kind
        train_keys = set(zip(split.train["user"], split.train["item"], strict=True))
        test_keys = set(zip(split.test["user"], split.test["item"], strict=True))
        for part in (val.train, val.test):
            keys = set(zip(part["user"], part["item"], strict=True))
            assert keys <= train_keys and not keys & test_keys
        assert len(val.train) + len(val.test) == len(split.train)
        if kind == "item-cold":
            assert not set(val.test["item"]) & set(val.train["item"])
        if kind == "user-cold":
            assert not set(val.test["user"]) & set(val.train["user"])


def _scrambled(data, split, seed=1):
    """The same training part; test rows with shuffled ratings and items replaced."""
    rng = np.random.default_rng(seed)
    test = split.test.copy()
    test["rating"] = rng.permutation(test["rating"].to_numpy())
    test["item"] = rng.permutation(test["item"].to_numpy())
    inter = pd.concat([split.train, test]).reset_index(drop=True)
    return dataclasses.replace(data, interactions=inter), dataclasses.replace(split, test=test)


@pytest.mark.parametrize("model", ["bias", "als"])
def test_tuning_never_reads_test_rows(ml_small, model):
    split = make_split(ml_small.interactions, "random", seed=0)
    runs = []
    for data, sp in (
        (ml_small, split),
        _scrambled(ml_small, split),
        (dataclasses.replace(ml_small, interactions=split.train), split),  # test rows removed
    ):
        tuner = tuning.Tuner(data, None, None, sp, evaluate=evaluate, k=10, seed=0, relevance_threshold=None,
                             n_trials=4)  # fmt: skip
        report = tuner.tune(model, model, {})
        runs.append((report.options, [t["score"] for t in report.trials]))
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0][1]) == 4


def test_tuning_is_deterministic_for_a_seed(synth):
    def run():
        info = evaluate(synth, None, ["bias", "als"], "random", seed=3, metrics=["rmse", "ndcg@k"],
                        tune=True, tune_trials=4).info["tuning"]  # fmt: skip
        for report in info["models"].values():
            report.pop("seconds")  # wall time: the only part that may differ between runs
        return info

    first, second = run(), run()
    assert first == second
    assert first["validation_split"]["seed"] == 3


def test_empty_space_and_unscorable_validation_are_reported_not_tuned(synth):
    result = evaluate(synth, None, ["popularity", "als"], "item-cold", k=5, metrics=["ndcg@k"],
                      tune=True, tune_trials=3)  # fmt: skip
    models = result.info["tuning"]["models"]
    assert models["popularity"]["status"] == "not tuned"
    assert "no search space" in models["popularity"]["reason"]
    assert result.notes["popularity"][0].startswith("not tuned:")
    # an ID-only model cannot rank cold items: nothing to choose between on item-cold data
    assert models["als"]["status"] == "not tuned" and "n/a" in models["als"]["reason"]
    assert result.options["als"]["regularization"] == 50.0  # the defaults are kept


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_tuner_rejects_bad_trial_counts(synth, bad):
    from recfeat.errors import UsageError

    with pytest.raises(UsageError, match="--tune-trials"):
        evaluate(synth, None, ["bias"], tune=True, tune_trials=bad)


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("tune") / "ratings.csv"
    synthetic(n_users=40, n_items=30)[0].to_csv(path, index=False)
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("trials", ["0", "-2"])
def test_cli_rejects_non_positive_trials(csv_data, trials):
    result = run("evaluate", csv_data, "--models", "bias", "--tune", "--tune-trials", trials)
    assert_one_line_error(result, 2, "--tune-trials", trials)


def test_cli_trials_without_tune(csv_data):
    result = run("evaluate", csv_data, "--models", "bias", "--tune-trials", "3")
    assert_one_line_error(result, 2, "--tune-trials", "add --tune")


def test_cli_tune_reports_choices_in_json_and_notes(csv_data, tmp_path):
    out = tmp_path / "result.json"
    result = run("evaluate", csv_data, "--models", "bias,popularity", "--tune", "--tune-trials",
                 "3", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note [bias]: tuned on validation" in result.output
    assert "note [popularity]: not tuned" in result.output
    tuned = json.loads(out.read_text())["tuning"]["models"]
    assert tuned["bias"]["trials_run"] == 3 and tuned["bias"]["objective"] == "rmse"
    assert set(tuned["bias"]["chosen"]) == {"reg_user", "reg_item"}


def test_python_api_tune(synth):
    import recfeat

    result = recfeat.evaluate(synth, models=["bias"], tune=True, tune_trials=2)
    assert result.info["tuning"]["models"]["bias"]["trials_run"] == 2
