"""One API shape (issue 25, item 8): data and features are accepted as a path, a DataFrame or
the loaded object wherever a function takes them; ``train`` fits a split's training part (in
Python and with ``recfeat train --load-split``); the trained model is a typed object
(``recfeat.TrainedModel``) that every model-taking function accepts; and every public function
says what it returns."""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

import recfeat
import recfeat.api
from recfeat.cli.main import cli
from recfeat.data.features import write_features
from recfeat.errors import DataError, UsageError
from recfeat.evaluation.splits import save_split

DIM = 8


def ratings_frame() -> pd.DataFrame:
    """40 users x 8 of 20 items, ratings 1..5, distinct timestamps."""
    rng = np.random.default_rng(3)
    rows = [(f"u{u}", f"i{i}", float(rng.integers(1, 6)), 1_600_000_000 + 8 * u + n)
            for u in range(40) for n, i in enumerate(rng.choice(20, 8, replace=False))]  # fmt: skip
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("uniform")
    frame = ratings_frame()
    csv = root / "ratings.csv"
    frame.to_csv(csv, index=False)
    data = recfeat.load_dataset(csv)
    items = sorted(frame["item"].unique())
    vectors = np.random.default_rng(4).normal(size=(len(items), DIM)).astype(np.float32)
    features = write_features(root / "items.parquet", pd.DataFrame({"item": items}), vectors,
                              {"level": "item", "encoder": "synthetic"})  # fmt: skip
    split = recfeat.make_split(data, "random", seed=1)
    split_file = save_split(split, root / "split.json", data.interactions)
    return {"root": root, "frame": frame, "csv": csv, "data": data, "features": features,
            "split": split, "split_file": split_file}  # fmt: skip


def scores(trained, users=("u0", "u1", "u7")) -> np.ndarray:
    return trained.model.score_items(list(users), trained.item_ids)


# -- data: a path, a DataFrame or a RecData, everywhere --------------------------------------


def test_load_dataset_reads_a_dataframe_as_its_csv_file(world):
    from_frame = recfeat.load_dataset(world["frame"])
    assert isinstance(from_frame, recfeat.RecData)
    pd.testing.assert_frame_equal(from_frame.interactions, world["data"].interactions)


def test_make_split_takes_a_dataset_path_as_its_interactions(world):
    by_path = recfeat.make_split(world["csv"], "random", seed=1)
    np.testing.assert_array_equal(by_path.test_rows, world["split"].test_rows)


@pytest.mark.parametrize("form", ["path", "frame", "recdata"])
def test_train_takes_a_dataset_in_any_form_with_the_same_result(world, form):
    data = {"path": world["csv"], "frame": world["frame"], "recdata": world["data"]}[form]
    trained = recfeat.train(data, "bias")
    reference = recfeat.train(world["data"], "bias")
    assert isinstance(trained, recfeat.TrainedModel)
    np.testing.assert_allclose(scores(trained), scores(reference))
    assert trained.lineage["data"] == (str(world["csv"]) if form == "path" else None)


def test_train_fits_a_splits_training_part(world):
    split = world["split"]
    trained = recfeat.train(split.train, "popularity")
    assert trained.interactions == len(split.train)
    held_out = set(zip(split.test["user"], split.test["item"], strict=True))
    seen = {(u, i) for u, items in trained.seen.items() for i in items}
    assert seen and not seen & held_out  # no test pair among what it was fitted on
    assert trained.lineage["rows"] == len(split.train)


def test_a_whole_split_as_data_names_its_training_part(world):
    with pytest.raises(UsageError, match=r"got a Split; pass split\.train"):
        recfeat.train(world["split"], "bias")


# -- features: a path, a DataFrame or Features, everywhere -----------------------------------


def test_train_takes_item_features_as_path_frame_or_features(world):
    path = world["features"]
    forms = {"path": path, "str": str(path), "frame": pd.read_parquet(path),
             "features": recfeat.read_features(path)}  # fmt: skip
    trained = {name: recfeat.train(world["data"], "content", item_features=value)
               for name, value in forms.items()}  # fmt: skip
    for name, model in trained.items():
        assert model.feature_dim == DIM, name
        np.testing.assert_allclose(scores(model), scores(trained["path"]), err_msg=name)
    assert trained["path"].features["encoder"] == "synthetic"
    assert "encoder" not in trained["frame"].features  # a DataFrame carries no manifest
    # evaluate and recommend take the same forms
    result = recfeat.evaluate(world["data"], forms["frame"], models=["content"],
                              split=world["split"])  # fmt: skip
    assert "content" in result.table.index
    ranked = recfeat.recommend(trained["path"], "u0", k=3, features=forms["frame"])
    assert ranked[0].items == trained["path"].recommend("u0", 3, features=path)[0].items


@pytest.mark.parametrize(("frame", "error", "fragment"), [
    (pd.DataFrame({"item": ["i0"], "vec": [[1.0, 2.0]]}), UsageError, "got columns item, vec"),
    (pd.DataFrame({"id": ["i0"], "vector": [[1.0, 2.0]]}), UsageError, "id column"),
    (pd.DataFrame({"item": ["i0", "i1"], "vector": [[1.0, 2.0], [1.0]]}), DataError, "differ in length"),
    (pd.DataFrame({"item": ["i0", "i0"], "vector": [[1.0, 2.0], [1.0, 3.0]]}), DataError, "duplicate item"),
    (pd.DataFrame({"item": ["i0"], "vector": [[1.0, np.nan]]}), DataError, "NaN"),
    (pd.DataFrame({"item": ["i0"], "vector": ["a, b"]}), DataError, "not lists of numbers"),
])  # fmt: skip
def test_a_bad_features_frame_is_one_error_naming_the_problem(world, frame, error, fragment):
    with pytest.raises(error, match=fragment):
        recfeat.train(world["data"], "content", item_features=frame)


def test_a_wrong_features_type_names_every_accepted_form(world):
    with pytest.raises(UsageError, match="feature file path, Features, an extract.. result or a DataFrame"):
        recfeat.train(world["data"], "content", item_features=[1, 2])


# -- train --load-split ---------------------------------------------------------------------


def test_train_on_a_saved_split_equals_train_on_its_training_part(world):
    split = world["split"]
    loaded = recfeat.train(world["csv"], "bias", load_split=world["split_file"])
    direct = recfeat.train(split.train, "bias")
    np.testing.assert_allclose(scores(loaded), scores(direct))
    assert loaded.interactions == len(split.train)
    assert loaded.lineage["split"] == {"file": str(world["split_file"]), "kind": "random",
                                       "seed": 1, "test_fraction": split.test_fraction}  # fmt: skip
    assert loaded.lineage["fingerprint"] == direct.lineage["fingerprint"]


def test_cli_train_load_split_fits_the_training_part(world, tmp_path):
    out = tmp_path / "m.recfeat"
    r = CliRunner().invoke(cli, ["train", str(world["csv"]), "--model", "popularity",
                                 "--load-split", str(world["split_file"]), "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"on {len(world['split'].train)} interactions (the training part of" in r.output
    trained = recfeat.load_model(out)
    assert trained.interactions == len(world["split"].train)
    assert trained.lineage["split"]["file"] == str(world["split_file"])


def _tampered(world, tmp_path, change) -> str:
    payload = json.loads(world["split_file"].read_text())
    change(payload)
    path = tmp_path / "split.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return str(path)


@pytest.mark.parametrize(("change", "code", "fragment"), [
    (lambda p: p.update(test_rows=[0, 10_000]), 1, "test_rows hold positions outside"),
    (lambda p: p.update(test_rows="all"), 1, "field 'test_rows' is not list"),
    (lambda p: p.update(fingerprint="0" * 16), 1, "made for other interactions"),
    (lambda p: p.update(kind="sideways"), 1, "unknown kind 'sideways'"),
    (lambda p: p.update(format="other"), 1, "is not a recfeat split file"),
    (lambda p: p.pop("seed"), 1, "field 'seed' is missing"),
])  # fmt: skip
def test_cli_train_refuses_a_tampered_split_file(world, tmp_path, change, code, fragment):
    path = _tampered(world, tmp_path, change)
    out = tmp_path / "m.recfeat"
    r = CliRunner().invoke(cli, ["train", str(world["csv"]), "--model", "popularity",
                                 "--load-split", path, "--out", str(out)])  # fmt: skip
    assert_one_line_error(r, code, fragment)
    assert not out.exists()


def test_cli_train_load_split_usage_errors(world, tmp_path):
    base = ["train", str(world["csv"]), "--model", "popularity"]
    split_file = str(world["split_file"])
    r = CliRunner().invoke(cli, [*base, "--load-split", split_file, "--out", split_file])
    assert_one_line_error(r, 2, "--out")  # the model file would overwrite the split file
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe not json")
    r = CliRunner().invoke(cli, [*base, "--load-split", str(garbage), "--out", str(tmp_path / "m")])
    assert_one_line_error(r, 1, "cannot read split file")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    r = CliRunner().invoke(cli, [*base, "--load-split", str(folder), "--out", str(tmp_path / "m")])
    assert_one_line_error(r, 1, "cannot read split file")


# -- the trained model: a typed object -------------------------------------------------------


def test_train_returns_a_typed_model_with_its_attributes(world):
    trained = recfeat.train(world["data"], "mf", {"factors": 4, "iterations": 2})
    assert isinstance(trained, recfeat.TrainedModel)
    assert trained.name == "mf" and trained.options["factors"] == 4
    assert trained.dataset == world["data"].name
    assert sorted(trained.item_ids) == sorted(world["frame"]["item"].unique())
    assert len(trained.user_ids) == 40 and trained.interactions == len(world["frame"])
    assert trained.feature_dim is None and trained.features is None
    assert trained.lineage["split"] is None and len(trained.lineage["fingerprint"]) == 16
    assert trained.fit_seconds >= 0 and "mf" in repr(trained)


def test_recommend_save_load_and_explain_take_the_typed_model(world, tmp_path):
    trained = recfeat.train(world["data"], "ease")
    by_method = trained.recommend(["u0", "u1"], k=4)
    by_function = recfeat.recommend(trained, ["u0", "u1"], k=4)
    assert [r.items for r in by_method] == [r.items for r in by_function]
    path = trained.save(tmp_path / "ease.recfeat")
    loaded = recfeat.load_model(path)
    assert isinstance(loaded, recfeat.TrainedModel) and loaded.name == "ease"
    assert loaded.lineage == json.loads(json.dumps(trained.lineage))
    assert recfeat.TrainedModel.load(path).header == loaded.header
    assert [r.items for r in recfeat.recommend(path, ["u0", "u1"], k=4)] == [r.items for r in by_method]
    assert recfeat.save_model(loaded, tmp_path / "again.recfeat").exists()
    for model in (trained, loaded, path):
        explained = recfeat.explain(model, "u0", k=2)
        assert explained["model"] == "ease" and len(explained["items"]) == 2


def test_a_model_file_without_lineage_still_loads(world, tmp_path):
    import dataclasses

    trained = recfeat.train(world["data"], "popularity")
    header = {k: v for k, v in trained.header.items() if k != "lineage"}  # as files before it
    path = dataclasses.replace(trained, header=header).save(tmp_path / "old.recfeat")
    loaded = recfeat.load_model(path)
    assert loaded.lineage is None and loaded.recommend("u0", 2)[0].items


def test_dict_access_still_works_with_a_deprecation_warning(world):
    trained = recfeat.train(world["data"], "popularity")
    with pytest.warns(DeprecationWarning, match=r"trained\['model'\] is deprecated"):
        assert trained["model"] is trained.model
    with pytest.warns(DeprecationWarning, match="a bundle dict is deprecated"):
        ranked = recfeat.recommend(trained.to_dict(), "u0", k=2)
    assert ranked[0].items == trained.recommend("u0", 2)[0].items
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recfeat.recommend(trained, "u0", k=2)  # the typed model: no warning


@pytest.mark.parametrize(("call", "fragment"), [
    (lambda: recfeat.recommend(5, "u0"), "bundle must be a TrainedModel"),
    (lambda: recfeat.save_model([1], "m.recfeat"), "bundle must be a TrainedModel"),
    (lambda: recfeat.explain(5, "u0"), "model must be a TrainedModel"),
    (lambda: recfeat.TrainedModel(model=5, header={"model": "x"}), "not a fitted recfeat model"),
    (lambda: recfeat.TrainedModel(model=None, header={}), "names no model"),
])  # fmt: skip
def test_a_wrong_model_argument_is_one_usage_error(call, fragment):
    with pytest.raises(UsageError, match=fragment):
        call()


# -- every public function says what it returns ----------------------------------------------


def _public_functions():
    found = {name: getattr(recfeat, name) for name in recfeat.__all__}
    found.update({name: value for name, value in vars(recfeat.api).items()
                  if not name.startswith("_") and inspect.isfunction(value)
                  and value.__module__ == "recfeat.api"})  # fmt: skip
    return {name: value for name, value in found.items() if inspect.isfunction(value)}


def test_every_public_function_has_a_return_annotation():
    functions = _public_functions()
    assert {"train", "load_model", "recommend", "load_dataset", "ranking_scorer"} <= set(functions)
    missing = sorted(name for name, fn in functions.items()
                     if inspect.signature(fn).return_annotation is inspect.Signature.empty)  # fmt: skip
    assert missing == [], f"public functions without a return annotation: {missing}"
    assert inspect.signature(recfeat.train).return_annotation == "TrainedModel"
    assert inspect.signature(recfeat.load_model).return_annotation == "TrainedModel"
