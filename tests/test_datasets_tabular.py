"""Generic CSV / JSON Lines / Parquet loaders: column mapping, format detection, bad input."""

from __future__ import annotations

import json

import pytest

from recfeat.errors import DataError, OptionError, UnknownComponentError
from recfeat.plugins.datasets import detect_format, load_dataset

BOOKS = (
    "user_id,book_id,rating,review,timestamp\n"
    "alice,b1,5,Loved every page.,1600000000\n"
    "bob,b1,2,   ,1600000100\n"
    'alice,b2,4,"Slow start, great ending.",1600000200\n'
    "carol,b2,3,,1600000300\n"
)


@pytest.fixture()
def book_reviews(tmp_path):
    p = tmp_path / "book_reviews.csv"
    p.write_text(BOOKS, encoding="utf-8")
    return p


def test_book_reviews_csv_with_review_and_rating(book_reviews):
    assert detect_format(book_reviews) == "csv"
    data = load_dataset(book_reviews)
    assert data.report["columns"] == {
        "user": "user_id", "item": "book_id", "rating": "rating", "text": "review", "timestamp": "timestamp",
    }  # fmt: skip
    assert data.interactions["rating"].tolist() == [5.0, 2.0, 4.0, 3.0]
    assert data.interactions["timestamp"].tolist()[0] == 1600000000
    # empty and whitespace-only texts: interaction kept, text "" and counted
    assert data.reviews["text"].tolist() == [
        "Loved every page.",
        "",
        "Slow start, great ending.",
        "",
    ]
    assert data.report["empty_texts"] == 2
    assert data.rating_scale == (2.0, 5.0)  # observed, as no rating_scale was given
    assert data.items is None


def test_explicit_mapping_and_dates(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text(
        "reader\ttitle_id\tstars\twords\twhen\nr1\t007\t8\tgood\t2020-01-02\nr2\t007\t10\tbest\t2020-01-03T00:00:00Z\n"
    )
    data = load_dataset(
        p, user_col="reader", item_col="title_id", rating_col="stars", text_col="words",
        timestamp_col="when", rating_scale=(1, 10),
    )  # fmt: skip
    assert data.interactions["item"].tolist() == ["007", "007"]  # ids stay strings: no lost zeros
    assert data.interactions["timestamp"].tolist() == [1577923200, 1578009600]
    assert data.rating_scale == (1.0, 10.0)


def test_missing_columns_error_lists_columns(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("who,what,stars\na,b,5\n")
    with pytest.raises(
        DataError,
        match=r"no user column \(tried user, user_id.*columns found: who, what, stars; map one with the user_col option",
    ):
        load_dataset(p)
    with pytest.raises(
        DataError,
        match=r"column 'reader' \(option user_col\) not found; columns found: who, what, stars",
    ):
        load_dataset(p, user_col="reader")
    data = load_dataset(p, user_col="who", item_col="what")
    assert len(data.interactions) == 1 and data.reviews is None


def test_unknown_option_and_format(book_reviews):
    with pytest.raises(OptionError, match=r"(?i)valid options: user_col"):
        load_dataset(book_reviews, usr_col="x")
    with pytest.raises(UnknownComponentError, match="Known datasets"):
        load_dataset(book_reviews, format="xlsx")


@pytest.mark.parametrize(
    ("value", "scale", "reason"),
    [("", None, "rating is missing"), ("abc", None, "rating is missing or not a number"),
     ("11", (1, 10), "rating 11 outside rating_scale")],
)  # fmt: skip
def test_bad_ratings(tmp_path, value, scale, reason):
    p = tmp_path / "r.csv"
    p.write_text(f"user,item,rating\na,x,4\nb,x,{value}\nc,y,3\n")
    with pytest.raises(DataError, match=rf"data row 2 \(line 3\): {reason}.*skip_bad_rows"):
        load_dataset(p, rating_scale=scale)
    data = load_dataset(p, rating_scale=scale, skip_bad_rows=True)
    assert data.report["bad_rows_skipped"] == 1
    assert data.interactions["user"].tolist() == ["a", "c"]


def test_duplicates_keep_latest(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user,item,rating,timestamp,text\na,x,1,300,new\na,x,5,100,old\nb,x,3,5,b\n")
    data = load_dataset(p)
    assert data.report["duplicates_dropped"] == 1
    assert data.reviews[data.reviews.user == "a"]["text"].tolist() == ["new"]


def test_undecodable_bytes_names_line_and_option(tmp_path):
    p = tmp_path / "r.csv"
    p.write_bytes(b"user,item,rating,text\na,x,4,ok\nb,x,3,caf\xe9\n")
    with pytest.raises(DataError, match=r"r\.csv line 3: bytes not valid utf-8.*`encoding` option"):
        load_dataset(p)
    data = load_dataset(p, encoding="latin-1")
    assert data.reviews["text"].tolist() == ["ok", "café"]


def test_empty_file_and_header_only(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_dataset(p)
    p.write_text("user,item,rating\n")
    with pytest.raises(DataError, match="header but no rows"):
        load_dataset(p)


def test_detect_format_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        detect_format(tmp_path / "missing.csv")
    odd = tmp_path / "data.xlsx"
    odd.write_bytes(b"PK\x03\x04")
    with pytest.raises(
        DataError,
        match=r"cannot tell the format .*pass --format, one of: amazon, csv, jsonl, movielens",
    ):
        load_dataset(odd)
    with pytest.raises(DataError, match="cannot tell the format of folder"):
        detect_format(tmp_path)


def test_jsonl_malformed_line_and_skip(tmp_path):
    p = tmp_path / "r.jsonl"
    rows = [json.dumps({"user_id": "a", "item_id": "x", "score": 4, "text": "good"}), "{broken",
            json.dumps({"user_id": "b", "item_id": "x", "score": 2, "text": "meh"})]  # fmt: skip
    p.write_text("\n".join(rows) + "\n")
    assert detect_format(p) == "jsonl"
    with pytest.raises(DataError, match=r"r\.jsonl line 2: malformed JSON"):
        load_dataset(p)
    data = load_dataset(p, skip_bad_rows=True)
    assert data.report["bad_rows_skipped"] == 1
    assert data.reviews["text"].tolist() == ["good", "meh"]


def test_jsonl_bad_rating_names_file_line(tmp_path):
    p = tmp_path / "r.jsonl"
    rows = [json.dumps({"user": "a", "item": "x", "rating": 4}), "",
            json.dumps({"user": "b", "item": "x", "rating": None})]  # fmt: skip
    p.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"r\.jsonl line 3: rating is missing"):
        load_dataset(p)


def test_parquet_roundtrip(tmp_path):
    import pandas as pd

    p = tmp_path / "r.parquet"
    pd.DataFrame(
        {"userId": [1, 2], "movieId": [10, 10], "rating": [3.5, 4.0], "time": [5, 6]}
    ).to_parquet(p)
    assert detect_format(p) == "parquet"
    data = load_dataset(p)
    assert data.interactions.to_dict("list") == {
        "user": ["1", "2"], "item": ["10", "10"], "rating": [3.5, 4.0], "timestamp": [5, 6],
    }  # fmt: skip
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_dataset(bad)


def test_item_text_inline_and_items_path(tmp_path, book_reviews):
    p = tmp_path / "r.csv"
    p.write_text(
        "user,item,rating,title,blurb\na,x,4,Dune,Sand and spice\nb,x,5,Dune,other\nc,y,2,,\n"
    )
    data = load_dataset(p, item_text_col="title,blurb")
    assert dict(zip(data.items["item"], data.items["text"], strict=True)) == {
        "x": "Dune. Sand and spice",
        "y": "",
    }
    assert data.report["empty_texts"] == 1

    books = tmp_path / "books.csv"
    books.write_text(
        "book_id,title,description\nb1,Dune,Sand and spice!\nb2,Emma,A comedy of manners\nb9,Unrated,x\n"
    )
    data = load_dataset(book_reviews, items_path=str(books))
    assert dict(zip(data.items["item"], data.items["text"], strict=True)) == {
        "b1": "Dune. Sand and spice!", "b2": "Emma. A comedy of manners", "b9": "Unrated. x",
    }  # fmt: skip
    assert data.report["items_without_text"] == 0
    with pytest.raises(DataError, match="items_path path .* does not exist"):
        load_dataset(book_reviews, items_path=str(tmp_path / "none.csv"))


def test_missing_ids_are_bad_rows(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user,item,rating\na,x,4\n,x,3\nb,,2\nc,y,5\n")
    with pytest.raises(
        DataError, match=r"data row 2 \(line 3\): user id is missing \(2 such rows\)"
    ):
        load_dataset(p)
    data = load_dataset(p, skip_bad_rows=True)
    assert data.report["bad_rows_skipped"] == 2
    assert data.interactions["user"].tolist() == ["a", "c"]
