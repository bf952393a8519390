"""MovieLens 100k and latest-small loaders on the real folders, plus bad inputs."""

from __future__ import annotations

import re
import shutil

import pytest

from recfeat.errors import DataError
from recfeat.plugins.datasets import detect_format, load_dataset


@pytest.fixture(scope="module")
def ml100k(movielens_100k):
    return load_dataset(movielens_100k)


@pytest.fixture(scope="module")
def mlsmall(movielens_small):
    return load_dataset(movielens_small)


def test_100k_counts(ml100k, movielens_100k):
    assert detect_format(movielens_100k) == "movielens-100k"
    s = ml100k.summary()
    assert (s["interactions"], s["users"], s["items"], s["item_texts"]) == (100000, 943, 1682, 1682)
    assert ml100k.reviews is None and ml100k.rating_scale == (1.0, 5.0)
    counts = ml100k.interactions["rating"].value_counts().to_dict()
    assert counts == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert ml100k.interactions["timestamp"].min() > 800_000_000


def test_100k_latin1_titles_and_genres(ml100k):
    text = dict(zip(ml100k.items["item"], ml100k.items["text"], strict=True))
    assert text["543"].startswith("Misérables, Les (1995)")
    assert text["1"] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert not any("\ufffd" in t for t in text.values())
    # a title's own year is kept alone: u.item's date is the (re-)release, 1997 here
    assert text["181"].startswith("Return of the Jedi (1983). Genres:")
    assert not any(re.search(r"\(\d{4}\) \(\d{4}\)", t) for t in text.values())


def test_100k_alias(movielens_100k):
    small = load_dataset(movielens_100k, format="ml-100k")
    assert len(small.interactions) == 100000


def test_latest_small_counts_and_tags(mlsmall, movielens_small):
    assert detect_format(movielens_small) == "movielens"
    s = mlsmall.summary()
    assert (s["interactions"], s["users"], s["items"], s["item_texts"]) == (100836, 610, 9724, 9742)
    assert mlsmall.report["tags_read"] == 3683
    assert mlsmall.report["items_with_tags"] == 1572
    ratings = set(mlsmall.interactions["rating"].unique())
    assert {0.5, 1.5, 4.5, 5.0} <= ratings
    assert mlsmall.rating_scale == (0.5, 5.0)
    text = dict(zip(mlsmall.items["item"], mlsmall.items["text"], strict=True))
    assert text["1"].startswith(
        "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags:"
    )
    assert "pixar" in text["1"]


def _copy(src, dst, names):
    dst.mkdir()
    for n in names:
        shutil.copy(src / n, dst / n)
    return dst


def test_tags_deduplicated_most_frequent_first(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.5,100\n2,10,0.5,200\n")
    (d / "movies.csv").write_text(
        'movieId,title,genres\n10,"Heat, The (1995)",Action|Crime\n11,Quiet (2001),(no genres listed)\n'
    )
    (d / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,10,slow,1\n1,10,Heist,2\n2,10,heist,3\n3,10,HEIST,4\n2,10,Slow,5\n4,10,moody,6\n"
    )
    data = load_dataset(d)
    text = dict(zip(data.items["item"], data.items["text"], strict=True))
    assert text["10"] == "Heat, The (1995). Genres: Action, Crime. Tags: Heist, slow, moody"
    assert text["11"] == "Quiet (2001)"  # an unrated movie still gets its text (cold start)


def test_100k_bad_rating_line(tmp_path, movielens_100k):
    d = _copy(movielens_100k, tmp_path / "ml", ["u.item", "u.genre"])
    (d / "u.data").write_text("1\t10\t4\t881250949\n2\t10\t6\t881250950\n3\t11\t\t881250951\n")
    with pytest.raises(
        DataError, match=r"u\.data line 2: rating 6 outside rating_scale \(1, 5\) \(2 such rows\)"
    ):
        load_dataset(d)
    data = load_dataset(d, skip_bad_rows=True)
    assert data.report["bad_rows_skipped"] == 2
    assert data.interactions["user"].tolist() == ["1"]


def test_100k_missing_item_file_lists_files(tmp_path, movielens_100k):
    d = _copy(movielens_100k, tmp_path / "ml", ["u.data"])
    with pytest.raises(DataError, match=r"no u\.item .*files found: u\.data"):
        load_dataset(d, format="movielens-100k")


def test_latest_misnamed_columns(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    (d / "ratings.csv").write_text("user,movie,stars,when\n1,10,4.5,100\n")
    (d / "movies.csv").write_text("movieId,title,genres\n10,Heat (1995),Action\n")
    with pytest.raises(DataError, match=r"columns found: user, movie, stars, when.*--format csv"):
        load_dataset(d)


def test_latest_undecodable_bytes(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.5,100\n")
    (d / "movies.csv").write_bytes(
        b"movieId,title,genres\n10,Heat (1995),Action\n11,Am\xe9lie (2001),Comedy\n"
    )
    with pytest.raises(DataError, match=r"movies\.csv line 3: bytes not valid utf-8.*encoding"):
        load_dataset(d)
    data = load_dataset(d, encoding="latin-1")
    assert "Amélie (2001). Genres: Comedy" in data.items["text"].tolist()


def test_empty_ratings_file(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    (d / "ratings.csv").write_text("")
    (d / "movies.csv").write_text("movieId,title,genres\n")
    with pytest.raises(DataError, match=r"ratings\.csv is empty"):
        load_dataset(d, format="movielens")
