"""hybrid-als: the text prior is what lets it score cold items, options are validated, and
the usual contract (covered for every model in test_models.py) holds with its defaults."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_models import synthetic

from recfeat.data.features import Features
from recfeat.errors import OptionError
from recfeat.plugin.registry import get_registry


@pytest.fixture(scope="module")
def data():
    return synthetic()


def create(**options):
    return get_registry("model").create("hybrid-als", **options)


def test_registered_as_a_text_model_that_scores_cold_items():
    cls = get_registry("model").get("hybrid-als")
    assert cls.uses_text and cls.cold_start_items and not cls.predicts_ratings


def test_cold_items_are_scored_from_text_alone(data):
    inter, feats, user_group, item_group = data
    cold = [f"i{i}" for i in range(30, 40)]
    model = create().fit(inter[~inter["item"].isin(cold)], feats)
    users = [f"u{u}" for u in range(20)]
    scores = model.score_items(users, cold)
    same = item_group[30:40][None, :] == user_group[:20][:, None]
    hits = [scores[r][same[r]].mean() > scores[r][~same[r]].mean() for r in range(20)]
    assert all(hits)
    # a cold item's factor is exactly its text projection W' x
    vec, _ = feats.lookup(["i31"])
    x = np.append((vec[0] - model.text_mean_) / model.text_scale_, 1.0)
    expected = model.user_factors_[model.user_index_["u0"]] @ (x @ model.W_)
    np.testing.assert_allclose(model.score_items(["u0"], ["i31"])[0, 0], expected, rtol=1e-6)


def test_prediction_time_vectors_only_affect_items_without_a_factor(data):
    inter, feats, _, _ = data
    model = create(iterations=3, factors=4).fit(inter, feats)
    swapped = Features(["i0", "new"], feats.lookup(["i1", "i1"])[0], {"encoder": "synthetic"})
    before = model.score_items(["u0"], ["i0", "i1"])
    after = model.score_items(["u0"], ["i0", "i1", "new", "unknown"], item_features=swapped)
    np.testing.assert_allclose(after[0, :2], before[0])  # warm i0 keeps its trained factor
    assert np.isfinite(after[0, 2]) and np.isnan(after[0, 3])  # no vector, no score


def test_text_reg_ties_item_factors_to_their_text_prediction(data):
    inter, feats, _, _ = data

    def residual(text_reg):
        m = create(iterations=5, factors=8, text_reg=text_reg).fit(inter, feats)
        vecs, found = feats.lookup(m.items_)
        x = m._text(vecs.astype(np.float64), found)
        return np.linalg.norm(m.item_factors_ - x @ m.W_) / np.linalg.norm(m.item_factors_)

    assert residual(1e4) < 0.5 * residual(0.0)


def test_unknown_users_get_the_mean_user_ranking(data):
    inter, feats, _, _ = data
    model = create(iterations=3, factors=4).fit(inter, feats)
    items = ["i0", "i1", "i2"]
    scores = model.score_items(["nobody"], items)
    q = model.item_factors_[model.item_codes(items)]
    np.testing.assert_allclose(scores[0], q @ model.user_factors_.mean(axis=0))


def test_duplicate_interactions_count_once(data):
    inter, feats, _, _ = data
    doubled = pd.concat([inter, inter], ignore_index=True)
    a = create(iterations=3, factors=4).fit(inter, feats).score_items(["u0"], ["i0", "i1"])
    b = create(iterations=3, factors=4).fit(doubled, feats).score_items(["u0"], ["i0", "i1"])
    np.testing.assert_allclose(a, b)


@pytest.mark.parametrize(
    "options", [{"alpha": -1.0}, {"text_reg": -1.0}, {"projection_reg": 0.0}, {"factors": 0}]
)
def test_bad_options_raise_option_error(data, options):
    inter, feats, _, _ = data
    with pytest.raises(OptionError, match="hybrid-als"):
        create(**options).fit(inter, feats)
