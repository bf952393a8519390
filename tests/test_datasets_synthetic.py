"""The SYNTHETIC demo sample: deterministic, labelled, loadable through `csv`, and its item
text carries real signal about who likes an item."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from recfeat.plugins.datasets import load_dataset
from recfeat.plugins.datasets.synthetic import GENRES, write_sample


@pytest.fixture(scope="module")
def sample():
    return load_dataset(None, format="sample")


def _digest(folder) -> str:
    h = hashlib.sha256()
    for name in ("book_reviews.csv", "books.csv", "README.txt"):
        h.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return h.hexdigest()


HASH_SCRIPT = (
    "import hashlib, sys, pathlib\n"
    "from recfeat.plugins.datasets.synthetic import write_sample\n"
    "d = pathlib.Path(sys.argv[1]); write_sample(d)\n"
    "h = hashlib.sha256()\n"
    "for n in ('book_reviews.csv', 'books.csv', 'README.txt'):\n"
    "    h.update(n.encode() + b'\\0' + (d / n).read_bytes())\n"
    "print(h.hexdigest())\n"
)


def test_labelled_synthetic_and_sized(sample):
    assert "SYNTHETIC" in sample.name
    assert sample.report["synthetic"] is True
    s = sample.summary()
    assert s["interactions"] == 3000 and s["users"] == 300 and s["item_texts"] == 400
    assert sample.items["genre"].nunique() == len(GENRES) == 10
    assert set(sample.interactions["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert sample.interactions["rating"].nunique() >= 4
    assert not sample.interactions.duplicated(["user", "item"]).any()
    zh = sample.reviews[~sample.reviews["text"].map(str.isascii)]
    assert 10 <= len(zh) <= 150 and sample.report["languages"]["zh"] == len(zh)
    assert zh["text"].str.contains("书|作品").all()


def test_deterministic_across_runs_and_processes(tmp_path, sample):
    a, b = tmp_path / "a", tmp_path / "b"
    write_sample(a)
    write_sample(b)
    assert _digest(a) == _digest(b)
    again = load_dataset(None, format="sample")
    assert again.reviews.equals(sample.reviews) and again.items.equals(sample.items)
    # another interpreter with a different string-hash seed writes the same bytes
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", HASH_SCRIPT, str(tmp_path / "c")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == _digest(a)
    assert (a / "README.txt").read_text().startswith("SYNTHETIC DATA")
    assert not [p for p in a.iterdir() if p.name.startswith(".")]  # no temp files left


def test_other_seed_differs(sample):
    other = load_dataset(None, format="sample", seed=8)
    assert not other.reviews["text"].equals(sample.reviews["text"])


def test_loads_back_through_csv(tmp_path, sample):
    path = write_sample(tmp_path)
    data = load_dataset(path, items_path=str(tmp_path / "books.csv"))
    assert data.report["format"] == "csv"
    assert data.interactions.equals(sample.interactions)
    assert data.reviews["text"].tolist() == sample.reviews["text"].tolist()
    assert data.items[["item", "text"]].equals(sample.items[["item", "text"]])


def _text_signal(data, item_texts) -> float:
    """Spearman correlation between held-out ratings and the similarity of the item's text to
    a profile built (rating-weighted) from the texts of the user's earlier ratings."""
    from scipy.stats import spearmanr
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer().fit_transform(item_texts).toarray()
    row = {it: i for i, it in enumerate(data.items["item"])}
    inter = data.interactions.sort_values(["user", "timestamp"], kind="stable")
    sims, ratings = [], []
    for _, g in inter.groupby("user", sort=True):
        half = len(g) // 2
        train, test = g.iloc[:half], g.iloc[half:]
        profile = X[[row[i] for i in train["item"]]].T @ (train["rating"].to_numpy() - 3.0)
        sims += [float(X[row[i]] @ profile) for i in test["item"]]
        ratings += test["rating"].tolist()
    return float(spearmanr(sims, ratings).statistic)


def test_item_text_predicts_who_likes_it(sample):
    real = _text_signal(sample, sample.items["text"])
    # the control: the same texts detached from their items (shuffled) predict far less
    texts = sample.items["text"].to_numpy()
    shuffled = [_text_signal(sample, np.random.default_rng(s).permutation(texts)) for s in range(3)]
    assert real > 0.3
    assert real > max(shuffled) + 0.15
