"""`recfeat data info` and `recfeat data sample`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from recfeat.cli.main import cli


def _run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_info_json_on_real_folder(movielens_100k):
    res = _run("data", "info", movielens_100k, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert (info["interactions"], info["users"], info["items"]) == (100000, 943, 1682)
    assert info["format"] == "movielens-100k" and info["rating_scale"] == [1.0, 5.0]


def test_info_text_and_format_option(appliances):
    res = _run("data", "info", appliances, "--format", "amazon")
    assert res.exit_code == 0, res.output
    assert "duplicates_dropped: 2094" in res.output
    assert "interactions: 183" in res.output


def test_sample_then_info(tmp_path):
    out = tmp_path / "sample"
    res = _run("data", "sample", out)
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output
    res = _run(
        "data", "info", out / "book_reviews.csv", "-o", f"items_path={out / 'books.csv'}", "--json"
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert (info["interactions"], info["item_texts"]) == (3000, 400)
    again = _run("data", "sample", out)
    assert again.exit_code == 2 and "--force" in again.output
    assert _run("data", "sample", out, "--force").exit_code == 0


def test_info_sample_in_memory():
    res = _run("data", "info", "sample", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["synthetic"] is True and "SYNTHETIC" in info["name"]


def test_errors_are_one_line(tmp_path):
    res = _run("data", "info", tmp_path / "missing.csv")
    assert res.exit_code == 1
    assert res.output.strip().count("\n") == 0 and res.output.startswith("Error: ")
    assert "does not exist" in res.output
    res = _run("data", "info", tmp_path, "-o", "nokey")
    assert res.exit_code == 2 and "KEY=VALUE" in res.output


def test_skip_bad_rows_and_encoding_flags(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"user": "a", "item": "x", "rating": 4}\nnot json\n')
    res = _run("data", "info", p)
    assert res.exit_code == 1 and "line 2: malformed JSON" in res.output
    res = _run("data", "info", p, "--skip-bad-rows", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["bad_rows_skipped"] == 1

    c = tmp_path / "r.csv"
    c.write_bytes(b"user,item,rating,text\na,x,4,caf\xe9\n")
    res = _run("data", "info", c)
    assert res.exit_code == 1 and "--encoding" in res.output and "line 2" in res.output
    res = _run("data", "info", c, "--encoding", "latin-1", "-o", "rating_scale=[1,5]", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rating_scale"] == [1.0, 5.0]
