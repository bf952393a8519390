"""``recfeat extract`` and ``recfeat demo`` from the command line, good input and bad."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

from recfeat.cli.main import cli
from recfeat.data.features import read_features

REVIEWS_CSV = """user,item,rating,review
ann,b1,5,"A gripping mystery, I read it in one night."
ann,b2,2,Too slow for me.
bob,b1,4,Clever plot and a satisfying ending.
bob,b3,5,"Beautiful prose; the <b>best</b> novel this year."
cat,b2,3,"   "
cat,b3,4,Lovely characters.
dan,b1,1,Not my kind of book at all.
"""


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture()
def reviews_csv(tmp_path):
    path = tmp_path / "book_reviews.csv"
    path.write_text(REVIEWS_CSV)
    return path


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_help_documents_levels_cache_and_empty_policy():
    result = run("extract", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for needle in ("--level", "--aggregate", "--no-cache", "--token-features", "--encoder DIR",
                   "--ray", "zero vector", "RECFEAT_CACHE_DIR", "--train"):  # fmt: skip
        assert needle in text, needle


def test_extract_reviews_then_cached_rerun(reviews_csv, tmp_path):
    out = tmp_path / "feats" / "reviews.parquet"  # a missing folder is created
    first = run("extract", reviews_csv, "--out", out, "--max-length", "32")
    assert first.exit_code == 0, first.output
    assert "7 review vectors x 384 dims" in first.output
    assert "6 texts encoded, 0 from cache, 1 empty" in first.output
    ids, vectors, manifest = read_features(out)
    assert len(ids) == 7 and vectors.shape == (7, 384)
    assert not vectors[4].any()  # the whitespace-only review
    assert manifest["empty_texts"] == 1 and manifest["max_length"] == 32
    again = run("extract", reviews_csv, "--out", out, "--max-length", "32")
    assert "0 texts encoded, 6 from cache" in again.output
    np.testing.assert_array_equal(read_features(out)[1], vectors)


def test_item_and_user_levels_with_options(reviews_csv, tmp_path):
    out = tmp_path / "items.parquet"
    r = run("extract", reviews_csv, "--level", "item", "--aggregate", "rating-weighted",
            "--cleaners", "html,whitespace", "--token-features", "hashed-bow", "--no-cache",
            "--max-length", "32", "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    ids, _, manifest = read_features(out)
    assert sorted(ids["item"]) == ["b1", "b2", "b3"]
    run_record = json.loads((tmp_path / "items.run.json").read_text())
    assert manifest["aggregate"] == "rating-weighted" and run_record["cache"]["path"] is None
    assert [c["use"] for c in manifest["cleaners"]] == ["html", "whitespace"]
    assert (tmp_path / "items.tokens.npz").is_file()

    train = tmp_path / "train.csv"
    train.write_text("user,item\nann,b1\nbob,b3\ncat,b3\n")
    out = tmp_path / "users.parquet"
    r = run("extract", reviews_csv, "--level", "user", "--train", train, "--out", out,
            "--max-length", "32")  # fmt: skip
    assert r.exit_code == 0, r.output
    ids, _, manifest = read_features(out)
    assert sorted(ids["user"]) == ["ann", "bob", "cat"] and manifest["interactions"] == "train"


def test_config_file_with_flags_overriding(reviews_csv, tmp_path):
    config = tmp_path / "pipeline.toml"
    config.write_text(
        'cleaners = [{ use = "whitespace" }]\n[dataset]\nuse = "csv"\ntext_col = "review"\n'
        '[encoder]\nuse = "minilm"\nmax_length = 48\npooling = "cls"\n'
    )
    out = tmp_path / "c.parquet"
    r = run("extract", reviews_csv, "--config", config, "--pooling", "mean", "--out", out)
    assert r.exit_code == 0, r.output
    manifest = read_features(out)[2]
    assert (manifest["max_length"], manifest["pooling"]) == (48, "mean")
    assert [c["use"] for c in manifest["cleaners"]] == ["whitespace"]
    assert manifest["dataset"]["format"] == "csv"


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--encoder", "no-such-model"], 2, "unknown encoder 'no-such-model'"),
        (["--pooling", "median"], 2, "median"),
        (["--onnx", "somewhere"], 2, "No such option '--onnx'"),
        (["--backend", "onnx"], 2, "needs --encoder DIR"),
        (["--cache", "x", "--no-cache"], 2, "contradict"),
        (["--level", "review", "--aggregate", "mean"], 2, "not review"),
        (["--cleaners", "html,nope"], 2, "unknown cleaner 'nope'"),
        (["--token-features", "bag-of-nothing"], 2, "unknown tokenizer"),
        (["--train", "missing-train.csv", "--level", "user"], 1, "missing-train.csv"),
    ],
)
def test_bad_options_fail_in_one_line(reviews_csv, tmp_path, args, code, fragment):
    out = tmp_path / "o.parquet"
    result = run("extract", reviews_csv, "--out", out, *args)
    assert_one_line_error(result, code, fragment)
    assert not out.exists()


def test_onnx_backend_goes_to_the_onnx_encoder_with_the_folder(reviews_csv, tmp_path):
    not_an_export = tmp_path / "not-an-export"
    not_an_export.mkdir()
    r = run(
        "extract",
        reviews_csv,
        "--backend",
        "onnx",
        "--encoder",
        not_an_export,
        "--out",
        tmp_path / "o.parquet",
    )
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "not-an-export" in r.output  # the onnx encoder got path=DIR and refused it
    r = run("extract", reviews_csv, "--backend", "onnx", "--encoder", "gpt2",
            "--out", tmp_path / "o.parquet")  # fmt: skip
    assert_one_line_error(r, 2, "recfeat export --encoder gpt2")


def test_bad_input_files_fail_in_one_line(tmp_path):
    out = tmp_path / "o.parquet"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_one_line_error(run("extract", empty, "--format", "csv", "--out", out), 1, "empty.csv")
    no_user = tmp_path / "no_user.csv"
    no_user.write_text("item,rating,review\nb1,5,good\n")
    # the loader's message lists the columns it found
    assert_one_line_error(run("extract", no_user, "--out", out), 1, "item, rating, review")
    assert_one_line_error(run("extract", tmp_path / "nope.json", "--out", out), 1, "nope.json")
    assert_one_line_error(run("extract", "--out", out), 2, "missing DATA")
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"user": "a", "item": "b", "rating": 5, "text": "ok"}\n{"user": \n')
    assert_one_line_error(run("extract", bad_json, "--out", out), 1, "line 2")
    assert not list(tmp_path.glob("*.parquet"))


def test_bad_out_paths(reviews_csv, tmp_path):
    assert_one_line_error(run("extract", reviews_csv, "--out", tmp_path / "x.csv"), 2, ".parquet")
    blocker = tmp_path / "afile"
    blocker.write_text("")
    assert_one_line_error(
        run("extract", reviews_csv, "--out", blocker / "sub" / "x.parquet"), 1, "not a folder"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_folder(reviews_csv, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert_one_line_error(
            run("extract", reviews_csv, "--out", ro / "x.parquet"), 1, "permission"
        )
    finally:
        ro.chmod(0o700)


def test_a_failed_rerun_leaves_the_earlier_output_intact(reviews_csv, tmp_path):
    out = tmp_path / "keep.parquet"
    assert run("extract", reviews_csv, "--out", out, "--max-length", "32").exit_code == 0
    before = out.read_bytes(), out.with_suffix(".manifest.json").read_bytes()
    reviews_csv.write_text("user,item,rating,review\n")  # now a header without rows
    assert_one_line_error(run("extract", reviews_csv, "--out", out), 1, "no rows")
    assert (out.read_bytes(), out.with_suffix(".manifest.json").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".keep")) == []


def test_demo_on_a_real_dataset_and_the_synthetic_default(reviews_csv, tmp_path):
    from recfeat.demo import DEMO_STEPS, run_demo
    from recfeat.plugins.datasets import load_dataset

    r = run("demo", "--data", reviews_csv, "--out", tmp_path / "demo")
    assert r.exit_code == 0, r.output
    assert "SYNTHETIC" not in r.output
    assert "skipped: 3 items is too few" in r.output
    assert (tmp_path / "demo" / "review_features.parquet").is_file()
    assert (tmp_path / "demo" / "item_features.parquet").is_file()

    # the synthetic default, shrunk so the test stays quick; `recfeat demo` runs it full size
    data = load_dataset(None, format="synthetic-books", n_users=40, n_books=60, n_reviews=240)
    lines: list[str] = []
    calls: list[str] = []
    extra = ("an appended step", lambda ctx: calls.append(sorted(ctx.outputs)))
    ctx = run_demo(data, tmp_path / "demo2", steps=[*DEMO_STEPS, extra], echo=lines.append)
    assert calls == [
        ["evaluation_item_cold", "evaluation_random", "item_features", "review_features"]
    ]
    cold = json.loads((tmp_path / "demo2" / "evaluation_item_cold.json").read_text())
    # ID-only models cannot rank unseen items, and the demo says so instead of scoring them
    assert "cannot score cold items" in json.dumps(cold["models"]["mf"]["not_applicable"])
    assert cold["models"]["content"]["metrics"]["ndcg@10"] is not None
    assert (tmp_path / "demo2" / "evaluation_random.png").stat().st_size > 0
    assert any("rank-only" in line for line in lines)
    assert any("no:cold-item = cannot score cold items" in line for line in lines)
    assert any("SYNTHETIC" in line for line in lines)
    assert ctx.synthetic and read_features(ctx.outputs["item_features"])[1].shape == (60, 384)
    assert json.loads((tmp_path / "demo2" / "item_features.manifest.json").read_text())["dataset"][
        "synthetic"
    ]
