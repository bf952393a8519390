"""Hostile and mistaken inputs (GitHub issue 11, items 6-9): each is refused with one line
that names the problem and the fix, or skipped and counted with --skip-bad-rows; nothing
reaches the terminal raw; inputs are never modified. Property-based tests throw random
bytes, JSON and CSV at the loaders and option parsers: only UsageError/DataError come out."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_models import synthetic  # tests/ is on sys.path (pytest rootdir import mode)

from recfeat.cli.main import cli
from recfeat.cli.terminal import clean, json_text
from recfeat.config import parse_key_values, validate_config
from recfeat.data.features import write_features
from recfeat.data.split_files import read_train
from recfeat.errors import DataError, UsageError

# 50 examples keep each property test to seconds; RECFEAT_HYPOTHESIS_EXAMPLES=500 digs deeper
FAST = settings(
    max_examples=int(os.environ.get("RECFEAT_HYPOTHESIS_EXAMPLES", "50")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def checked(path: Path, *args):
    """Run a command on ``path`` and check the file is unchanged afterwards."""
    before = sha(path)
    result = run(*args)
    assert sha(path) == before, f"{path} was modified"
    return result


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    inter, feats, _, _ = synthetic(n_users=30, n_items=20, per_user=8)
    inter["timestamp"] = np.arange(len(inter)) + 1_600_000_000
    data = root / "ratings.csv"
    inter.to_csv(data, index=False)
    manifest = {"level": "item", "source": "item texts", "encoder": "synthetic-8"}
    items = root / "items.parquet"
    write_features(items, pd.DataFrame({"item": feats.ids}), feats.vectors, manifest)
    other = root / "other.parquet"  # same encoder, another catalogue
    write_features(
        other, pd.DataFrame({"item": [f"sku-{n}" for n in range(20)]}), feats.vectors, manifest
    )
    return {
        "root": root,
        "data": data,
        "items": items,
        "other": other,
        "feats": feats,
        "inter": inter,
    }


# -- item 6: every error names the problem and the fix -------------------------------------------


@pytest.mark.parametrize("ext, body, where", [
    ("json", '{"reviewerID":"a","asin":"x","overall":5,"unixReviewTime":Infinity,"reviewText":"t"}\n'
             '{"reviewerID":"b","asin":"x","overall":4,"unixReviewTime":7,"reviewText":"t"}\n', "line 1"),
    ("json", '{"reviewerID":"b","asin":"x","overall":4,"unixReviewTime":7,"reviewText":"t"}\n'
             '{"reviewerID":"a","asin":"x","overall":5,"unixReviewTime":1e400,"reviewText":"t"}\n', "line 2"),
    ("csv", "user,item,rating,timestamp\nb,x,4,7\na,x,5,inf\n", "data row 2 (line 3)"),
    ("csv", "user,item,rating,timestamp\nb,x,4,7\na,x,5,9e99\n", "data row 2 (line 3)"),
    ("jsonl", '{"user":"b","item":"x","rating":4,"timestamp":7}\n'
              '{"user":"a","item":"x","rating":5,"timestamp":-Infinity}\n', "line 2"),
])  # fmt: skip
def test_non_finite_timestamps_name_the_row_and_are_skipped(tmp_path, ext, body, where):
    path = tmp_path / f"r.{ext}"
    path.write_text(body, encoding="utf-8")
    r = checked(path, "data", "info", path)
    assert_one_line_error(r, 1, where, "timestamp", "is not a finite unix time", "--skip-bad-rows")
    r = checked(path, "data", "info", path, "--skip-bad-rows", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert (info["interactions"], info["bad_rows_skipped"]) == (1, 1)


def test_timestamps_that_are_no_time_are_bad_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating,timestamp\na,x,4,2020-01-02\nb,x,5,soon\nc,x,3,nan\n")
    r = checked(path, "data", "info", path)
    assert_one_line_error(r, 1, "data row 2", "'soon' is neither unix seconds nor a date",
                          "timestamp_col", "(2 such rows)")  # fmt: skip
    info = json.loads(checked(path, "data", "info", path, "--skip-bad-rows", "--json").output)
    assert (info["interactions"], info["bad_rows_skipped"]) == (1, 2)


@pytest.mark.parametrize("args, fragments", [
    (("evaluate", "{data}", "--seed", "-1"), ("--seed", "-1")),
    (("data", "sample", "{root}/s", "--seed", "-3"), ("--seed", "-3")),
    (("evaluate", "{data}", "--models", "mf", "-O", "mf.seed=-1"), ("option 'seed'", "cannot be negative")),
    (("evaluate", "{data}", "--models", "mf", "-O", "mf.factors=-3"), ("option 'factors'", "between 1 and 10000", "default is 30")),
    (("evaluate", "{data}", "--models", "als", "-O", "als.factors=1000000000"), ("option 'factors'", "between 1 and 10000")),
    (("evaluate", "{data}", "--models", "bias", "-O", "bias.reg_user=NaN"), ("option 'reg_user'", "finite number")),
    (("evaluate", "{data}", "--models", "hybrid", "-O", "hybrid.id_dropout=1.5"), ("option 'id_dropout'",)),
    (("train", "{data}", "--model", "mf", "-O", "iterations=0", "--out", "{root}/m.recfeat"), ("option 'iterations'",)),
    (("evaluate", "{data}", "--k", "0"), ("--k", "0")),
    (("data", "info", "{data}", "-o", "rating_scale=[5,1]"), ("rating_scale must be (low, high)",)),
    (("data", "info", "sample", "-o", "n_users=-3"), ("option 'n_users' must be between 1 and 1000000",)),
])  # fmt: skip
def test_negative_and_absurd_options_are_usage_errors(files, args, fragments):
    args = [a.format(data=files["data"], root=files["root"]) for a in args]
    r = checked(files["data"], *args)
    assert_one_line_error(r, 2, *fragments)
    assert not (files["root"] / "m.recfeat").exists()


@pytest.mark.parametrize("command", [
    ("evaluate", "{data}", "--out", "{dir}"),
    ("evaluate", "{data}", "--plot", "{dir}"),
    ("evaluate", "{missing}", "--out", "{dir}"),  # checked before the data is even read
    ("train", "{missing}", "--model", "popularity", "--out", "{dir}"),
])  # fmt: skip
def test_a_folder_as_out_is_refused_before_the_run(files, tmp_path, command):
    args = [
        a.format(data=files["data"], dir=tmp_path, missing=tmp_path / "none.csv") for a in command
    ]
    r = run(*args)
    assert_one_line_error(r, 2, "is a folder; give a file path inside it")
    assert list(tmp_path.iterdir()) == []


def test_out_under_a_file_is_refused(files, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("evaluate", files["data"], "--out", blocker / "sub" / "res.json")
    assert_one_line_error(r, 2, "is a file, not a folder", "choose another --out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: no permission to deny")
def test_out_in_a_read_only_folder_is_refused(files, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    r = run("train", files["data"], "--model", "popularity", "--out", ro / "m.recfeat")
    assert_one_line_error(r, 1, "permission denied", "choose another --out")


def test_an_unwritable_out_folder_is_refused_even_as_root(files, tmp_path, monkeypatch):
    from recfeat import outputs_guard

    # root passes every permission check; the folder's answer is simulated, the check is real
    monkeypatch.setattr(outputs_guard.os, "access", lambda path, mode: Path(path) != tmp_path)
    r = run("train", files["data"], "--model", "popularity", "--out", tmp_path / "m.recfeat")
    assert_one_line_error(r, 1, f"permission denied to write in {tmp_path}", "choose another --out")


def test_disk_full_is_one_line_naming_the_file(files, tmp_path, monkeypatch):
    import errno

    from recfeat.training import model_file

    out = tmp_path / "m.recfeat"

    def full(bundle, path):
        raise OSError(
            errno.ENOSPC, "No space left on device", str(tmp_path / ".recfeat-tmp.12.host-x1y2.m.recfeat")
        )

    monkeypatch.setattr(model_file, "save_bundle", full)
    r = checked(files["data"], "train", files["data"], "--model", "popularity", "--out", out)
    assert_one_line_error(r, 1, f"disk full writing {out}; free space or choose another --out")


# -- item 7: inputs checked for what they claim ---------------------------------------------------


def test_features_of_another_dataset_are_refused(files):
    r = checked(files["other"], "evaluate", files["data"], "--features", files["other"],
                "--models", "content")  # fmt: skip
    assert_one_line_error(r, 1, "match 0 of their 20 item ids", "extracted from another dataset")
    r = checked(files["other"], "train", files["data"], "--model", "content", "--features",
                files["other"], "--out", files["root"] / "c.recfeat")  # fmt: skip
    assert_one_line_error(r, 1, "extracted from another dataset")
    assert not (files["root"] / "c.recfeat").exists()


def test_features_naming_another_dataset_are_refused_even_when_ids_agree(files, tmp_path):
    feats = files["feats"]
    made = {"level": "item", "source": "item texts", "dataset": {"name": "csv:elsewhere.csv", "interactions": 7}}
    path = tmp_path / "named.parquet"
    write_features(path, pd.DataFrame({"item": feats.ids}), feats.vectors, made)
    r = checked(path, "evaluate", files["data"], "--features", path, "--models", "content")
    assert_one_line_error(r, 1, "were extracted from dataset csv:elsewhere.csv (7 interactions)",
                          "not from csv:ratings.csv (240)")  # fmt: skip


def _with_vectors(path: Path, column, meta: dict) -> Path:
    table = pa.table({"item": [f"i{n}" for n in range(len(column))], "vector": column})
    pq.write_table(table.replace_schema_metadata({b"recfeat": json.dumps(meta).encode()}), path)
    return path


@pytest.mark.parametrize("column, meta, fragments", [
    (pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float32(), 2)), {"dim": 384, "rows": 3},
     ("manifest says dim 384 but the file has 2",)),
    (pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float32(), 2)), {"dim": 2, "rows": 9},
     ("manifest says rows 9 but the file has 3",)),
    (pa.array([[float("nan")] * 2] * 3, pa.list_(pa.float32(), 2)), {},
     ("3 of 3 vectors contain NaN or infinite values",)),
    (pa.array([[1.0, 2.0], [1.0, float("inf")], [0.0, 0.0]], pa.list_(pa.float32(), 2)), {},
     ("1 of 3 vectors contain NaN or infinite values (first: row 1)",)),
    (pa.array([[1.0, 2.0], [1.0], [0.0, 0.0]], pa.list_(pa.float32())), {},
     ("vectors differ in length (row 0 has 2 values, row 1 has 1)",)),
    (pa.array([["a", "b"]] * 3), {}, ("vectors hold string, not numbers",)),
    (pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float32(), 2)), {},
     ("has no recfeat metadata", "must say its level")),
    (pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float32(), 2)), {"level": "galaxy"}, ("level 'galaxy'",)),
    (pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float32(), 2)), {"level": "review"},
     ("level 'review' but no user id column",)),
])  # fmt: skip
def test_feature_files_are_checked_against_themselves(files, tmp_path, column, meta, fragments):
    bad = _with_vectors(tmp_path / "bad.parquet", column, meta)
    r = checked(bad, "evaluate", files["data"], "--features", bad, "--models", "content")
    assert_one_line_error(r, 1, *fragments)


def test_duplicate_feature_ids_are_refused(files, tmp_path):
    feats = files["feats"]
    ids = [*feats.ids[:-1], feats.ids[0]]  # the first item twice
    path = tmp_path / "dup.parquet"
    write_features(path, pd.DataFrame({"item": ids}), feats.vectors, {"level": "item", "source": "item texts"})
    r = checked(path, "train", files["data"], "--model", "content", "--features", path, "--out", tmp_path / "m")
    assert_one_line_error(r, 1, "1 duplicate item ids (first: 'i0', row 19)")
    assert not (tmp_path / "m").exists()


def test_a_train_table_matching_no_interaction_is_refused(files, tmp_path):
    other = tmp_path / "train.csv"
    other.write_text("user,item\nnobody,nothing\nx,y\n")
    with pytest.raises(DataError, match=r"none of its 2 \(user, item\) rows is an interaction"):
        read_train(other, files["inter"])
    nocols = tmp_path / "cols.csv"
    nocols.write_text("who,what\nu0,i0\n")
    with pytest.raises(DataError, match="has no user or item column"):
        read_train(nocols, files["inter"])
    good = tmp_path / "good.csv"
    files["inter"][["user", "item"]].head(5).to_csv(good, index=False)
    assert len(read_train(good, files["inter"])) == 5


def test_the_train_check_runs_in_extract(files, tmp_path):
    other = tmp_path / "train.csv"
    other.write_text("user,item\nnobody,nothing\n")
    r = checked(other, "extract", files["data"], "--format", "csv", "--level", "user",
                "--train", other, "--out", tmp_path / "u.parquet")  # fmt: skip
    assert_one_line_error(r, 1, "none of its 1 (user, item) rows is an interaction")
    assert not (tmp_path / "u.parquet").exists()


@pytest.mark.parametrize("name, body, kept, skipped", [
    ("r.jsonl", b'{"user":"a","item":"x","rating":1}\n\xff\xfe{"user":"b"}\n{"user":"c","item":"x","rating":2}\n', 2, 1),
    ("r.json", b'{"reviewerID":"a","asin":"x","overall":1,"reviewText":"t"}\n\xff\n'
               b'{"reviewerID":"c","asin":"x","overall":2,"reviewText":"t"}\n', 2, 1),
    ("r.csv", b"user,item,rating\na,x,1\n\xff\xfe,x,2\nc,x,3\n", 2, 1),
    ("r.csv", b"user,item,rating\na,x,1\nb,x,2,too,many\nc,x,3\n", 2, 1),
    ("r.jsonl", b'{"user":{"a":1},"item":"x","rating":1}\n{"user":"b","item":[1],"rating":2}\n'
                b'{"user":"c","item":"x","rating":true}\n{"user":"d","item":"x","rating":"NaN"}\n'
                b'{"user":"e","item":"x","rating":3}\n', 1, 4),
])  # fmt: skip
def test_skip_bad_rows_skips_every_kind_and_counts_it(tmp_path, name, body, kept, skipped):
    path = tmp_path / name
    path.write_bytes(body)
    r = checked(path, "data", "info", path)
    assert_one_line_error(r, 1, name, "skip")
    r = checked(path, "data", "info", path, "--skip-bad-rows", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert (info["interactions"], info["bad_rows_skipped"]) == (kept, skipped)


def test_a_text_field_missing_everywhere_is_an_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"reviewerID":"a","asin":"x","overall":1,"reviewText":"good"}\n')
    r = checked(path, "data", "info", path, "-o", 'text_fields=["reviewTxt"]')
    assert_one_line_error(r, 1, "text field(s) reviewTxt (option text_fields) appear in no row",
                          "keys of line 1: reviewerID, asin, overall, reviewText")  # fmt: skip
    # a default field this file lacks is reported, not fatal; ratings only on purpose is fine
    info = json.loads(checked(path, "data", "info", path, "--json").output)
    assert info["absent_text_fields"] == ["summary"] and info["empty_texts"] == 0
    bare = tmp_path / "bare.json"
    bare.write_text('{"reviewerID":"a","asin":"x","overall":1}\n')
    assert_one_line_error(checked(bare, "data", "info", bare), 1, "text_fields=[] for ratings only")
    assert checked(bare, "data", "info", bare, "-o", "text_fields=[]").exit_code == 0


# -- item 8: nothing raw reaches the terminal ---------------------------------------------------

HOSTILE = "\x1b[2J\x1b]0;owned\x07\x9b31m\u202e"


def _no_raw_controls(text: str) -> None:
    assert not any(c in text for c in "\x1b\x07\x9b\u202e"), repr(text)


def test_clean_shows_controls_as_visible_escapes():
    assert clean("a\x1b[2Jb\tc\nd") == "a\\x1b[2Jb c\\nd"
    assert clean("x\u202ey\x9b", newlines=True) == "x\\u202ey\\x9b"
    assert clean("line1\nline2", newlines=True) == "line1\nline2"
    text = json.dumps({"k\x1b": "v\x9b\u2028"}, ensure_ascii=False)
    assert json.loads(json_text(text)) == {"k\x1b": "v\x9b\u2028"}
    _no_raw_controls(json_text(text))


def test_review_text_and_ids_are_cleaned_in_recommend(tmp_path):
    path = tmp_path / "r.csv"
    rows = [
        (f"u{n % 4}{HOSTILE if n == 0 else ''}", f"i{n % 6}", 1 + n % 5, n, f"text {HOSTILE}")
        for n in range(40)
    ]
    pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp", "text"]).to_csv(
        path, index=False
    )
    model = tmp_path / "m.recfeat"
    r = checked(path, "train", path, "--model", "popularity", "--out", model)
    assert r.exit_code == 0, r.output
    r = run("recommend", model, "--users", f"u1,u0{HOSTILE}", "--k", "2", "--include-seen")
    assert r.exit_code == 0, r.output
    _no_raw_controls(r.output)
    assert "text \\x1b[2J\\x1b]0;owned\\x07\\x9b31m\\u202e" in r.output


def test_lone_surrogates_are_bad_rows_and_pairs_are_text(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = ['{"user": "a", "item": "x", "rating": 1, "text": "\\ud83d\\ude00 paired"}',
            '{"user": "b\\ud800", "item": "x", "rating": 2}', '{"user": "c", "item": "x", "rating": 3}']  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    r = checked(path, "data", "info", path)
    assert_one_line_error(r, 1, "line 2", "half a surrogate pair", "--skip-bad-rows")
    info = json.loads(checked(path, "data", "info", path, "--skip-bad-rows", "--json").output)
    assert (info["interactions"], info["bad_rows_skipped"]) == (2, 1)
    assert clean("u\ud800") == "u\\ud800"  # and never printed raw (it cannot even be encoded)


def test_json_keys_in_error_lines_and_info_are_cleaned(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"reviewerID": "a", f"asin{HOSTILE}": "x", "overall": 1}) + "\n")
    r = checked(path, "data", "info", path, "--format", "amazon")
    assert_one_line_error(r, 1, "no asin key", "asin\\x1b[2J")
    _no_raw_controls(r.output)
    named = tmp_path / f"r{HOSTILE}.csv"
    named.write_text("user,item,rating,text\na,x,1,hi\n")
    r = checked(named, "data", "info", named)
    assert r.exit_code == 0 and "\\x1b[2J" in r.output
    _no_raw_controls(r.output)
    r = checked(named, "data", "info", named, "--json")
    _no_raw_controls(r.output)
    assert json.loads(r.output)["file"] == str(named)  # still the exact name, as valid JSON


@pytest.mark.parametrize("tty", [False, True])
def test_evaluate_tables_are_cleaned_plain_and_rich(monkeypatch, capsys, tty):
    import sys

    from recfeat.cli.evaluate_cmd import print_table
    from recfeat.evaluation.protocol import EvaluationResult

    label = f"mf(note={HOSTILE}[bold]x[/bold])"
    result = EvaluationResult(pd.DataFrame({"rmse": [0.5]}, index=[label]), na={}, notes={},
                              fit_seconds={label: 0.1}, options={}, info={})  # fmt: skip
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    print_table(result, title=f"data{HOSTILE}")
    out = capsys.readouterr().out
    if tty:  # rich styles with its own escape codes; none of the label's may pass through
        assert not any(c in out for c in ("\x1b[2J", "\x1b]", "\x07", "\x9b", "\u202e")), repr(out)
    else:
        _no_raw_controls(out)
    assert "\\x1b[2J" in out and "0.5000" in out
    assert "[bold]x[/bold]" in out  # rich markup in a label is shown, not applied


def test_unknown_names_in_errors_are_cleaned(files):
    r = run("evaluate", files["data"], "--models", f"mf{HOSTILE}")
    assert_one_line_error(r, 2, "unknown model")
    _no_raw_controls(r.output)


# -- item 9: the config schema ----------------------------------------------------------------


def test_config_keys_are_checked_against_what_commands_read(tmp_path):
    from recfeat.cli.config_cmd import validate_command
    from recfeat.config import SCHEMA

    problems = validate_config({"pipeline": {"sed": 1, "seed": -1, "k": 0, "test_fraction": 2.0,
                                             "split": "randm"}}, "p.toml")  # fmt: skip
    text = "\n".join(problems)
    assert "unknown setting 'sed' (no command reads it). Did you mean 'seed'?" in text
    assert "seed must be between 0 and 4294967295, got -1" in text
    assert "k must be >= 1, got 0" in text and "test_fraction must be between 0 and 1" in text
    assert "split = 'randm' is not one of random" in text and "Did you mean 'random'?" in text
    config = tmp_path / "p.toml"
    config.write_text("[pipeline]\nlevl = 'item'\n")
    r = checked(config, "config", "validate", config)
    assert (
        r.exit_code == 2
        and "unknown setting 'levl'" in r.output
        and "Did you mean 'level'?" in r.output
    )
    # the help's "who reads what" lists every section and setting of the schema
    help_text = validate_command.help
    for section, spec in SCHEMA.items():
        assert section in help_text
        for key in spec if isinstance(spec, dict) else ():
            assert key in help_text


# -- property-based: random input never gives a traceback ------------------------------------


def _data_info_is_clean(path: Path, *extra: str) -> None:
    r = CliRunner().invoke(cli, ["data", "info", str(path), *extra])
    assert r.exit_code in (0, 1, 2), r.output
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    if r.exit_code:
        assert isinstance(r.exception, SystemExit), repr(r.exception)
        assert [ln for ln in r.output.splitlines() if ln.startswith("Error")], r.output


@FAST
@given(blob=st.binary(max_size=300), ext=st.sampled_from(["csv", "tsv", "jsonl", "json", "parquet"]),
       skip=st.booleans())  # fmt: skip
def test_random_bytes_never_crash_data_info(blob, ext, skip):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"r.{ext}"
        path.write_bytes(blob)
        _data_info_is_clean(path, *(["--skip-bad-rows"] if skip else []))


# text with controls, escapes and lone surrogates (json.dumps writes them as \\uXXXX)
ANY_TEXT = st.text(st.characters(max_codepoint=0xFFFF, blacklist_categories=()), max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers()
    | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
ROW = st.fixed_dictionaries(
    {},
    optional={k: JSON_VALUES for k in ("user", "item", "rating", "timestamp", "text",
                                        "reviewerID", "asin", "overall", "unixReviewTime", "reviewText")},
)  # fmt: skip


@FAST
@given(
    rows=st.lists(ROW, min_size=1, max_size=6),
    ext=st.sampled_from(["jsonl", "json"]),
    skip=st.booleans(),
)
# found by this test: JSON's Infinity as an id crashed the integral-float id coercion
@example(rows=[{"user": None, "rating": None, "item": float("inf")}], ext="jsonl", skip=False)
@example(rows=[{"user": 1, "rating": 3, "item": float("-inf")}, {"user": 2, "rating": 3, "item": 5}],
         ext="jsonl", skip=True)  # fmt: skip
def test_random_json_lines_never_crash_data_info(rows, ext, skip):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"r.{ext}"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        fmt = ["--format", "amazon"] if ext == "json" and any("asin" in r for r in rows) else []
        _data_info_is_clean(path, *fmt, *(["--skip-bad-rows"] if skip else []))


CELL = st.one_of(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6),
                 st.sampled_from(["inf", "-inf", "nan", "1e400", "2020-01-01", "5", "-1", '"', ""]))  # fmt: skip


@FAST
@given(header=st.lists(st.sampled_from(["user", "item", "rating", "timestamp", "text", "x"]),
                       min_size=1, max_size=5),
       rows=st.lists(st.lists(CELL, min_size=0, max_size=6), max_size=6), skip=st.booleans())  # fmt: skip
def test_random_csv_never_crashes_data_info(header, rows, skip):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.csv"
        lines = [",".join(header), *(",".join(r) for r in rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _data_info_is_clean(path, *(["--skip-bad-rows"] if skip else []))


@FAST
@given(pairs=st.lists(st.text(max_size=12), max_size=4), scoped=st.booleans())
def test_parse_key_values_gives_a_dict_or_one_usage_error(pairs, scoped):
    try:
        out = parse_key_values(pairs, flag="-O", example="mf.factors=50", scoped=scoped)
    except UsageError:
        return
    assert isinstance(out, dict)


@FAST
@given(pairs=st.lists(st.text(max_size=12), max_size=3))
def test_model_options_from_the_command_line_never_crash(pairs):
    r = CliRunner().invoke(cli, ["train", "missing.csv", "--model", "mf", "--out", "m.recfeat",
                                 *[x for p in pairs for x in ("-O", p)]])  # fmt: skip
    assert (
        r.exit_code in (1, 2) and "Traceback" not in r.output and "internal error" not in r.output
    ), r.output
