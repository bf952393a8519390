"""Amazon reviews loader on the real 2014 and 2018 files, plus every bad input."""

from __future__ import annotations

import gzip
import json

import pytest

from recfeat.errors import DataError
from recfeat.plugins.datasets import detect_format, load_dataset


@pytest.fixture(scope="module")
def mi(musical_instruments):
    return load_dataset(musical_instruments)


@pytest.fixture(scope="module")
def app(appliances):
    return load_dataset(appliances)


def test_musical_instruments_counts(mi):
    s = mi.summary()
    assert (s["interactions"], s["users"], s["items"], s["reviews"]) == (10261, 1429, 900, 10261)
    assert mi.report["schema"] == "2014"
    assert mi.report["duplicates_dropped"] == 0
    assert mi.report["empty_fields"]["reviewText"] == 7
    # summary + ". " + reviewText: no review ends up empty with the default text fields
    assert mi.report["empty_texts"] == 0
    assert mi.items is None and mi.rating_scale == (1.0, 5.0)
    assert list(mi.interactions.columns) == ["user", "item", "rating", "timestamp"]
    assert str(mi.interactions["timestamp"].dtype) == "int64"
    counts = mi.interactions["rating"].value_counts().to_dict()
    assert counts == {5.0: 6938, 4.0: 2084, 3.0: 772, 2.0: 250, 1.0: 217}


def test_review_text_is_summary_then_review(mi):
    first = mi.reviews.iloc[0]
    assert first["user"] == "A2IBPI20UZIR0U" and first["item"] == "1384719342"
    assert first["text"].startswith("good. Not much to write about here")
    assert mi.reviews["helpful_votes"].max() > 0


def test_empty_review_text_kept_and_counted(musical_instruments):
    data = load_dataset(musical_instruments, text_fields=["reviewText"])
    assert len(data.reviews) == 10261
    assert data.report["empty_texts"] == 7
    assert (data.reviews["text"] == "").sum() == 7


def test_appliances_2018_dedup_keeps_latest(app, appliances):
    assert app.report["schema"] == "2018"
    assert app.report["rows_read"] == 2277
    assert app.report["duplicates_dropped"] == 2094
    s = app.summary()
    assert (s["interactions"], s["users"], s["items"]) == (183, 47, 48)
    assert not app.interactions.duplicated(["user", "item"]).any()
    latest: dict[tuple[str, str], int] = {}
    with gzip.open(appliances, "rt") as fh:
        for line in fh:
            o = json.loads(line)
            key = (o["reviewerID"], o["asin"])
            latest[key] = max(latest.get(key, -1), o["unixReviewTime"])
    kept = dict(
        zip(
            zip(app.interactions["user"], app.interactions["item"], strict=True),
            app.interactions["timestamp"],
            strict=True,
        )
    )
    assert kept == latest


def test_folder_with_one_review_file(appliances):
    assert detect_format(appliances) == "amazon"
    assert detect_format(appliances.parent) == "amazon"
    assert len(load_dataset(appliances.parent, format="amazon").interactions) == 183


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _review(user="U1", item="I1", rating=5.0, text="fine", summary="ok", ts=100, **extra):
    return json.dumps(
        {"reviewerID": user, "asin": item, "overall": rating, "reviewText": text, "summary": summary,
         "unixReviewTime": ts, **extra}
    )  # fmt: skip


def test_2018_vote_with_comma(tmp_path):
    f = _write(tmp_path / "r.json", [_review(vote="1,234", verified=True), _review(user="U2")])
    data = load_dataset(f)
    assert data.report["schema"] == "2018"
    assert data.reviews["helpful_votes"].tolist() == [1234, 0]


def test_whitespace_text_policy(tmp_path):
    f = _write(tmp_path / "r.json", [_review(text="  \n\t ", summary=" "), _review(user="U2")])
    data = load_dataset(f)
    assert len(data.interactions) == 2
    assert data.reviews["text"].tolist() == ["", "ok. fine"]
    assert data.report["empty_texts"] == 1


def test_malformed_json_line(tmp_path):
    f = _write(
        tmp_path / "r.json", [_review(), '{"reviewerID": "U2", "asin": ', _review(user="U3")]
    )
    with pytest.raises(DataError, match=r"r\.json line 2: malformed JSON.*skip_bad_rows"):
        load_dataset(f, format="amazon")
    data = load_dataset(f, format="amazon", skip_bad_rows=True)
    assert data.report["bad_rows_skipped"] == 1
    assert sorted(data.interactions["user"]) == ["U1", "U3"]


def test_undecodable_bytes(tmp_path):
    f = tmp_path / "r.json"
    f.write_bytes(
        (_review() + "\n" + _review(user="U2") + "\n").encode() + b'{"reviewerID": "\xff\xfe"}\n'
    )
    with pytest.raises(DataError, match=r"r\.json line 3: bytes not valid utf-8.*encoding"):
        load_dataset(f, format="amazon")


def test_missing_keys_lists_keys_found(tmp_path):
    f = _write(
        tmp_path / "r.json", [json.dumps({"reviewerID": "U1", "product": "I1", "overall": 4})]
    )
    with pytest.raises(
        DataError, match=r"line 1: no asin key; keys found: reviewerID, product, overall.*jsonl"
    ):
        load_dataset(f, format="amazon")


@pytest.mark.parametrize("bad", [None, "NaN", 7.0, 0.0])
def test_bad_ratings(tmp_path, bad):
    lines = [_review(), _review(user="U2", rating=bad), _review(user="U3")]
    if bad == "NaN":
        lines[1] = lines[1].replace('"NaN"', "NaN")  # a real JSON NaN token (json.dumps allows it)
    f = _write(tmp_path / "r.json", lines)
    with pytest.raises(DataError, match=r"r\.json line 2: rating"):
        load_dataset(f)
    data = load_dataset(f, skip_bad_rows=True)
    assert data.report["bad_rows_skipped"] == 1
    assert len(data.interactions) == 2


def test_rating_scale_option(tmp_path):
    f = _write(tmp_path / "r.json", [_review(rating=9.0), _review(user="U2", rating=10.0)])
    data = load_dataset(f, rating_scale=(1, 10))
    assert data.rating_scale == (1.0, 10.0)
    assert data.interactions["rating"].tolist() == [9.0, 10.0]


def test_empty_and_blank_files(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        load_dataset(empty, format="amazon")
    blank = tmp_path / "blank.json"
    blank.write_text("\n  \n\n")
    with pytest.raises(DataError, match="no data"):
        load_dataset(blank, format="amazon")


def test_missing_path_and_corrupt_gzip(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope.json.gz")
    bad = tmp_path / "r.json.gz"
    bad.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="not a valid gzip file"):
        load_dataset(bad, format="amazon")


def test_error_is_one_line(tmp_path):
    f = _write(tmp_path / "r.json", ["{oops"])
    with pytest.raises(DataError) as info:
        load_dataset(f, format="amazon")
    assert "\n" not in str(info.value)
