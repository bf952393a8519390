"""recfeat evaluate / train / recommend from the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from test_models import synthetic  # tests/ is on sys.path (pytest rootdir import mode)

from recfeat.cli.main import cli
from recfeat.data.features import write_features


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    inter, feats, _, _ = synthetic(n_users=50, n_items=30)
    inter = inter.assign(
        text=[f"review of {i} by {u}" for u, i in zip(inter["user"], inter["item"], strict=False)]
    )
    inter["timestamp"] = np.arange(len(inter)) + 1_600_000_000
    data = root / "ratings.csv"
    inter.to_csv(data, index=False)
    items = root / "items.parquet"
    manifest = {"level": "item", "source": "item texts", "encoder": "synthetic-8"}
    write_features(items, pd.DataFrame({"item": feats.ids}), feats.vectors, manifest)
    wide = root / "wide.parquet"
    write_features(wide, pd.DataFrame({"item": feats.ids}), np.hstack([feats.vectors, feats.vectors]),
                   {**manifest, "encoder": "other-16"})  # fmt: skip
    reviews = root / "reviews.parquet"
    base, _ = feats.lookup(inter["item"])
    write_features(reviews, inter[["user", "item"]], base, {"level": "review", "source": "reviews"})
    return {"root": root, "data": data, "items": items, "wide": wide, "reviews": reviews}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_evaluate_prints_one_table_and_writes_json_and_png(files):
    out, png = files["root"] / "res.json", files["root"] / "res.png"
    r = run("evaluate", files["data"], "--format", "csv", "--features", files["items"],
            "--models", "global-mean,bias,popularity,content,mf", "-O", "mf.iterations=5",
            "--split", "random", "--k", "5", "--seed", "1", "--out", out, "--plot", png)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "ndcg@5" in r.output and "mf(iterations=5)" in r.output
    assert "rank-only" in r.output  # popularity's rmse, short label
    assert "rank-only = ranks, does not predict ratings" in r.output  # and its legend
    assert "split:" in r.output and "ranking:" in r.output
    payload = json.loads(out.read_text())
    assert set(payload["models"]) == {
        "global-mean",
        "bias",
        "popularity",
        "content",
        "mf(iterations=5)",
    }
    assert payload["k"] == 5 and payload["seed"] == 1
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_json_item_cold_marks_id_only_models(files):
    r = run("evaluate", files["data"], "--format", "csv", "--features", files["reviews"],
            "--models", "popularity,random,content", "--split", "item-cold", "--k", "3", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert (
        payload["models"]["popularity"]["not_applicable"]["ndcg@3"]
        == "n/a (cannot score cold items)"
    )
    assert payload["models"]["content"]["metrics"]["ndcg@3"] is not None


def test_evaluate_saves_and_reuses_the_split(files):
    split = files["root"] / "split.json"
    a = run("evaluate", files["data"], "--format", "csv", "--models", "bias", "--split", "temporal",
            "--save-split", split, "--json")  # fmt: skip
    b = run(
        "evaluate",
        files["data"],
        "--format",
        "csv",
        "--models",
        "bias",
        "--load-split",
        split,
        "--json",
    )
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.output)["models"]["bias"] == json.loads(b.output)["models"]["bias"] | {
        "fit_seconds": json.loads(a.output)["models"]["bias"]["fit_seconds"]
    }
    assert json.loads(b.output)["split"]["split"] == "temporal"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "nope"], "unknown model 'nope'"),
        (["--models", "bias", "--metrics", "ndcg"], "unknown metric 'ndcg'"),
        (["--models", "popularity", "--k", "999"], "larger than the"),
        (["--models", "content"], "uses text features"),
        (["--models", "bias", "-O", "mf.factors=3"], "not in --models"),
        (["--models", "bias", "-O", "bias=3"], "MODEL.KEY=VALUE"),
    ],
)
def test_evaluate_bad_input_is_one_error_line(files, args, message):
    r = run("evaluate", files["data"], "--format", "csv", *args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output


def test_train_then_recommend_with_snippets(files):
    model = files["root"] / "content.joblib"
    r = run("train", files["data"], "--format", "csv", "--model", "content", "--features", files["items"],
            "--out", model)  # fmt: skip
    assert r.exit_code == 0, r.output
    r = run("recommend", model, "--users", "u0,u1", "--k", "3")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "u0:" and lines[4] == "u1:"
    assert "review of" in lines[1]  # the item's text snippet
    # seen items are not recommended
    seen = set(pd.read_csv(files["data"]).query("user == 'u0'")["item"])
    assert not {line.split()[1] for line in lines[1:4]} & seen


def test_recommend_clamps_k_and_refuses_other_encoders(files):
    model = files["root"] / "content2.joblib"
    assert run("train", files["data"], "--format", "csv", "--model", "content", "--features",
               files["items"], "--out", model).exit_code == 0  # fmt: skip
    r = CliRunner().invoke(cli, ["recommend", str(model), "--users", "u0", "--k", "500"])
    assert r.exit_code == 0
    assert "more than the" in r.output
    r = run("recommend", model, "--users", "u0", "--features", files["wide"])
    assert r.exit_code != 0 and "extract features with the model's encoder" in r.output


def test_train_id_model_and_unknown_user(files):
    model = files["root"] / "pop.joblib"
    assert (
        run(
            "train", files["data"], "--format", "csv", "--model", "popularity", "--out", model
        ).exit_code
        == 0
    )
    r = run("recommend", model, "--users", "stranger", "--k", "2")
    assert r.exit_code == 0 and "non-personalised" in r.output
    bad = files["root"] / "not-a-model.joblib"
    bad.write_text("hello")
    r = run("recommend", bad, "--users", "u0")
    assert r.exit_code != 0 and "cannot read model file" in r.output


def test_evaluate_prints_the_protocol_and_one_line_per_leak_check(files):
    r = run("evaluate", files["data"], "--format", "csv", "--features", files["reviews"],
            "--models", "bias,popularity,random,content", "--split", "item-cold", "--k", "3")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "relevance: held-out interactions rated >= 4" in r.output
    assert "cold items: mean of the item's first 3 reviews by time" in r.output
    assert "chance level: ndcg@3" in r.output
    lines = [line for line in r.output.splitlines() if line.startswith("leak check ")]
    assert [line.split(":")[0] for line in lines] == [
        "leak check variant_duplicates", "leak check test_text_in_train",
        "leak check item_features",
    ]  # fmt: skip
    assert "rating-only" in r.output  # bias in the ranking columns
    assert "rating-only = rating model; --rank-rating-models ranks it" in r.output


def test_evaluate_protocol_options(files):
    r = run("evaluate", files["data"], "--format", "csv", "--features", files["reviews"],
            "--models", "bias,random,content", "--split", "item-cold", "--k", "3", "--json",
            "--relevance-threshold", "none", "--rank-rating-models", "--candidates", "mixed",
            "--cold-reviews", "2", "--merge-variants")  # fmt: skip
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert payload["relevance_threshold"] is None
    assert payload["models"]["bias"]["metrics"]["ndcg@3"] is not None
    assert payload["ranking"]["candidates_mode"] == "mixed"
    assert "ndcg@3" in payload["ranking"]["reference_new_items_first"]
    assert payload["cold_start"]["cold_reviews"] == 2
    r = run("evaluate", files["data"], "--format", "csv", "--models", "bias",
            "--relevance-threshold", "high")  # fmt: skip
    assert r.exit_code == 2 and "--relevance-threshold takes a rating" in r.output
    assert "Traceback" not in r.output
