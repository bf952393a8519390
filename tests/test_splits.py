"""Splits: determinism, persistence, and each split's leakage guarantees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recfeat.errors import DataError, UsageError
from recfeat.evaluation.splits import KINDS, load_split, make_split, save_split


def interactions(n_users=40, n_items=30, per_user=8, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, size=per_user, replace=False)):
            rows.append((f"u{u}", f"i{i}", float(rng.integers(1, 6)), 1000 * u + t))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def pairs(frame):
    return set(zip(frame["user"], frame["item"], strict=False))


@pytest.mark.parametrize("kind", KINDS)
def test_no_test_pair_in_train_and_rows_partition(kind):
    inter = interactions()
    s = make_split(inter, kind, seed=3)
    assert not pairs(s.train) & pairs(s.test)
    assert len(s.train) + len(s.test) == len(inter)
    assert pairs(s.train) | pairs(s.test) == pairs(inter)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_split_other_seed_other_split(kind):
    inter = interactions()
    a, b = make_split(inter, kind, seed=1), make_split(inter, kind, seed=1)
    assert np.array_equal(a.test_rows, b.test_rows)
    if kind not in ("temporal", "leave-last-out"):  # these do not depend on the seed
        c = make_split(inter, kind, seed=2)
        assert not np.array_equal(a.test_rows, c.test_rows)


def test_random_split_holds_out_the_fraction():
    s = make_split(interactions(), "random", seed=0, test_fraction=0.2)
    assert len(s.test) == round(0.2 * 320)


def test_item_cold_holds_out_items_with_all_their_interactions():
    inter = interactions()
    s = make_split(inter, "item-cold", seed=0, test_fraction=0.2)
    held = set(s.test["item"])
    assert len(held) == round(0.2 * inter["item"].nunique())
    assert not held & set(s.train["item"])  # cold items never reach training
    assert s.cold_items == held
    # every interaction of a held-out item is in test
    assert len(s.test) == int(inter["item"].isin(held).sum())


def test_user_cold_holds_out_users_with_all_their_interactions():
    inter = interactions()
    s = make_split(inter, "user-cold", seed=0, test_fraction=0.25)
    held = set(s.test["user"])
    assert len(held) == 10
    assert not held & set(s.train["user"])
    assert s.cold_users == held
    assert s.evaluation_rows()["item"].isin(set(s.train["item"])).all()


def test_temporal_split_tests_each_users_latest_interactions():
    inter = interactions()
    s = make_split(inter, "temporal", test_fraction=0.25)
    for user, _group in inter.groupby("user"):
        test_t = s.test.loc[s.test["user"] == user, "timestamp"]
        train_t = s.train.loc[s.train["user"] == user, "timestamp"]
        assert len(test_t) == 2 and len(train_t) == 6
        assert test_t.min() > train_t.max()


def test_temporal_leave_last_out_keeps_one_training_row_per_user():
    inter = pd.DataFrame(
        {
            "user": ["a", "a", "a", "b"],
            "item": ["x", "y", "z", "x"],
            "rating": 1.0,
            "timestamp": [3, 1, 2, 5],
        }  # fmt: skip
    )
    s = make_split(inter, "temporal", leave_last=True)
    assert pairs(s.test) == {("a", "x")}  # a's latest; b has a single row and keeps it
    assert ("b", "x") in pairs(s.train)


def test_temporal_needs_timestamps():
    inter = interactions().assign(timestamp=-1)
    with pytest.raises(DataError, match="timestamps"):
        make_split(inter, "temporal")


def test_users_or_items_without_training_data_are_counted_with_the_policy():
    # item "solo" appears once: wherever it lands in test it has no training data.
    inter = pd.concat(
        [
            interactions(n_users=5, per_user=4),
            pd.DataFrame([("u0", "solo", 3.0, 0)], columns=["user", "item", "rating", "timestamp"]),
        ]
    )
    for seed in range(20):
        s = make_split(inter, "random", seed=seed, test_fraction=0.3)
        if "solo" in set(s.test["item"]):
            break
    rep = s.report
    assert rep["test_items_without_training_data"] >= 1
    assert rep["dropped_cold_rows"] >= 1
    assert "dropped" in rep["policy"]
    assert "solo" not in set(s.evaluation_rows()["item"])


def test_save_and_load_round_trip(tmp_path):
    inter = interactions()
    s = make_split(inter, "item-cold", seed=4)
    path = save_split(s, tmp_path / "split.json", inter)
    back = load_split(path, inter)
    assert back.kind == "item-cold" and pairs(back.test) == pairs(s.test)
    assert back.cold_items == s.cold_items


def test_loading_a_split_for_other_data_fails(tmp_path):
    inter = interactions()
    path = save_split(make_split(inter, "random"), tmp_path / "split.json", inter)
    with pytest.raises(DataError, match="other interactions"):
        load_split(path, interactions(seed=9))


def test_bad_split_arguments():
    with pytest.raises(UsageError, match="item-cold"):
        make_split(interactions(), "item_cold")
    with pytest.raises(UsageError, match="between 0 and 1"):
        make_split(interactions(), "random", test_fraction=1.5)
    dup = pd.concat([interactions().head(3)] * 2)
    with pytest.raises(DataError, match="repeated"):
        make_split(dup, "random")


def test_real_data_item_cold_split(musical_instruments):
    from recfeat.plugins.datasets import load_dataset

    data = load_dataset(musical_instruments, format="amazon")
    s = make_split(data.interactions, "item-cold", seed=0, test_fraction=0.2)
    assert len(s.cold_items) == 180  # 20% of 900 items
    assert not s.cold_items & set(s.train["item"])
    assert s.report["evaluated_test_interactions"] + s.report["dropped_cold_rows"] == len(s.test)
