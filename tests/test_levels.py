"""Item- and user-level aggregation: weights, empty texts, training-only profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recfeat.components import Encoder
from recfeat.data.recdata import RecData
from recfeat.errors import DataError, UsageError
from recfeat.extraction.levels import (
    group_rows,
    l2_normalize_rows,
    rating_weights,
    restrict_to_pairs,
)
from recfeat.extraction.pipeline import extract


class TableEncoder(Encoder):
    """Looks each text up in a fixed table, so expected means can be written by hand."""

    name = "table"
    backend = "test"

    def __init__(self, normalize: bool = False):
        self.normalize = normalize
        self.seen: list[str] = []
        self.last_stats: dict = {}

    @property
    def dim(self) -> int:
        return 2

    def encode(self, texts, progress=False):
        self.seen.extend(texts)
        out = np.array([[float(len(t)), float(t.count("good"))] for t in texts], dtype=np.float32)
        return l2_normalize_rows(out) if self.normalize else out

    def fingerprint(self):
        return {"encoder": self.name, "weights_sha256": "t", "normalize": self.normalize,
                "backend": "test", "pooling": "none", "precision": "fp32", "max_length": 99}  # fmt: skip


def reviews_data() -> RecData:
    reviews = pd.DataFrame(
        {
            "user": ["u1", "u1", "u2", "u2", "u3"],
            "item": ["a", "b", "a", "c", "c"],
            "rating": [5.0, 1.0, 3.0, 4.0, 2.0],
            "timestamp": [1, 2, 3, 4, 5],
            "text": ["good good", "bad", "okay-ish", "   ", "good"],
        }
    )
    inter = reviews.drop(columns="text")
    return RecData(name="toy", interactions=inter, reviews=reviews, rating_scale=(1.0, 5.0))


def vec(text: str) -> np.ndarray:
    return np.array([len(text), text.count("good")], dtype=np.float32)


def test_rating_weights():
    np.testing.assert_array_equal(rating_weights([1, 5, np.nan], (1.0, 5.0)), [1, 5, 1])
    np.testing.assert_array_equal(rating_weights([0.5, 5.0], (0.5, 5.0)), [1, 5.5])
    np.testing.assert_array_equal(rating_weights([2.0, 4.0]), [1, 3])  # scale from the data


def test_group_rows_means_and_empty_groups():
    x = np.array([[1, 0], [3, 0], [0, 4]], dtype=np.float32)
    g = group_rows(["b", "a", "a", "c"], np.array([0, 1, 2, -1]), 3, np.array([1, 1, 3, 1]))
    assert list(g.labels) == ["a", "b", "c"]
    out = g.apply(x)
    np.testing.assert_allclose(out[0], (1 * x[1] + 3 * x[2]) / 4)
    np.testing.assert_allclose(out[1], x[0])
    np.testing.assert_array_equal(out[2], [0, 0])  # only an empty row: zero vector
    assert g.empty_groups == 1 and g.rows_used == 3


def test_item_level_from_reviews_mean_and_rating_weighted():
    data = reviews_data()
    res = extract(data, "item", TableEncoder(), [], aggregate="mean", cache=False)
    got = dict(zip(res.ids["item"], res.vectors, strict=True))
    np.testing.assert_allclose(got["a"], (vec("good good") + vec("okay-ish")) / 2)
    np.testing.assert_allclose(got["c"], vec("good"))  # the whitespace review weighs nothing
    assert res.manifest["source"] == "item reviews" and res.manifest["empty_texts"] == 1
    assert list(res.ids["n_texts"]) == [2, 1, 1]

    res = extract(data, "item", TableEncoder(), [], aggregate="rating-weighted", cache=False)
    got = dict(zip(res.ids["item"], res.vectors, strict=True))
    np.testing.assert_allclose(got["a"], (5 * vec("good good") + 3 * vec("okay-ish")) / 8)
    assert res.manifest["aggregate"] == "rating-weighted"


def test_item_level_prefers_item_text_unless_aggregate_is_given():
    data = reviews_data()
    data.items = pd.DataFrame({"item": ["a", "b", "c"], "text": ["A good", "B", "C"]})
    enc = TableEncoder()
    res = extract(data, "item", enc, [], cache=False)
    assert res.manifest["source"] == "item texts"
    assert sorted(enc.seen) == ["A good", "B", "C"]
    res = extract(data, "item", TableEncoder(), [], aggregate="mean", cache=False)
    assert res.manifest["source"] == "item reviews"


def test_user_profiles_use_training_interactions_only():
    data = reviews_data()
    train = pd.DataFrame({"user": ["u1", "u2", "u3"], "item": ["a", "a", "c"]})
    res = extract(data, "user", TableEncoder(), [], train_interactions=train, cache=False)
    got = dict(zip(res.ids["user"], res.vectors, strict=True))
    np.testing.assert_allclose(got["u1"], vec("good good"))  # u1's test review 'bad' unused
    assert res.manifest["interactions"] == "train" and "interactions_note" not in res.manifest
    # changing a held-out review cannot change any profile: nothing leaks
    data.reviews.loc[1, "text"] = "a completely different held-out text"
    again = extract(data, "user", TableEncoder(), [], train_interactions=train, cache=False)
    np.testing.assert_array_equal(again.vectors, res.vectors)

    standalone = extract(data, "user", TableEncoder(), [], cache=False)
    assert standalone.manifest["interactions"] == "all"
    assert "leaks" in standalone.manifest["interactions_note"]
    got = dict(zip(standalone.ids["user"], standalone.vectors, strict=True))
    np.testing.assert_allclose(
        got["u1"], (vec("good good") + vec("a completely different held-out text")) / 2
    )


def test_user_profiles_from_item_vectors_rating_weighted():
    inter = pd.DataFrame(
        {"user": ["u1", "u1", "u2"], "item": ["m1", "m2", "m2"], "rating": [5.0, 1.0, 3.0],
         "timestamp": -1}
    )  # fmt: skip
    items = pd.DataFrame({"item": ["m1", "m2", "m3"], "text": ["good film", "dull", "unseen"]})
    data = RecData(name="films", interactions=inter, items=items, rating_scale=(1.0, 5.0))
    res = extract(data, "user", TableEncoder(), [], aggregate="rating-weighted", cache=False)
    assert res.manifest["source"] == "vectors of rated items"
    got = dict(zip(res.ids["user"], res.vectors, strict=True))
    np.testing.assert_allclose(got["u1"], (5 * vec("good film") + 1 * vec("dull")) / 6)
    np.testing.assert_allclose(got["u2"], vec("dull"))
    assert list(res.ids.columns) == ["user", "n_items"]


def test_normalised_encoders_get_normalised_aggregates():
    res = extract(
        reviews_data(), "item", TableEncoder(normalize=True), [], aggregate="mean", cache=False
    )
    norms = np.linalg.norm(res.vectors, axis=1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)


def test_level_errors():
    data = reviews_data()
    with pytest.raises(UsageError, match="unknown level"):
        extract(data, "shop", TableEncoder(), [], cache=False)
    with pytest.raises(UsageError, match="aggregation"):
        extract(data, "item", TableEncoder(), [], aggregate="median", cache=False)
    with pytest.raises(UsageError, match="not review level"):
        extract(data, "review", TableEncoder(), [], aggregate="mean", cache=False)
    films = RecData(name="films", interactions=data.interactions)
    with pytest.raises(DataError, match="no review texts"):
        extract(films, "review", TableEncoder(), [], cache=False)
    with pytest.raises(DataError, match="lack column"):
        restrict_to_pairs(data.reviews, pd.DataFrame({"user": ["u1"]}))
