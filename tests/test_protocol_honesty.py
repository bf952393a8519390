"""The evaluation protocol cannot be gamed without text (issue 10), on real data.

The blind scorer below reads no text: it ranks candidates by how many reviews stand behind
each candidate's vector, which it recovers from the vector alone (review vectors here are
hashed word COUNTS, so a mean of m reviews is a multiple of 1/m). Under the old
leave-one-out rule that count told it which items the user had reviewed (NDCG@10 3.4x
random on Musical Instruments item-cold, the figure the independent evaluator found); the
default first-reviews protocol builds every candidate from the same number of reviews.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recfeat.data.features import Features, ReviewVectors
from recfeat.errors import DataError, UsageError
from recfeat.evaluation import leaks
from recfeat.evaluation.probes import ReviewCountScorer, count_review_vectors
from recfeat.evaluation.protocol import (
    NA_RATING_MODEL,
    _RankingTask,
    evaluate,
)
from recfeat.evaluation.splits import make_split
from recfeat.plugin.registry import get_registry


@pytest.fixture(scope="module")
def scorer():
    registry = get_registry("model")
    registry.register(ReviewCountScorer)
    yield ReviewCountScorer.name
    registry.unregister(ReviewCountScorer.name)


@pytest.fixture(scope="module")
def mi(musical_instruments):
    from recfeat.plugins.datasets import load_dataset

    return load_dataset(musical_instruments, format="amazon")


@pytest.fixture(scope="module")
def count_vectors(mi) -> ReviewVectors:
    return count_review_vectors(mi)


def ndcg(res, model):
    return res.table.loc[model, "ndcg@10"]


def test_blind_count_scorer_is_chance_under_the_default_protocol(mi, count_vectors, scorer):
    to_chance = []
    for seed in (0, 1, 2):  # one tie-broken draw is noisy; the mean over three is not
        res = evaluate(mi, count_vectors, ["random", scorer], "item-cold", k=10, seed=seed,
                       metrics=["ndcg@k"])  # fmt: skip
        assert res.info["cold_start"]["protocol"] == "first-reviews"
        to_chance.append(ndcg(res, scorer) / res.info["ranking"]["expected_random_ndcg@10"])
        if seed == 0:
            assert ndcg(res, scorer) <= 1.2 * ndcg(res, "random")
    assert np.mean(to_chance) <= 1.2
    # why: every candidate it was shown stands on exactly 3 reviews
    split = make_split(mi.interactions, "item-cold", seed=0)
    from recfeat.evaluation.coldstart import cold_start

    cold = cold_start(split, count_vectors, mi)
    model = ReviewCountScorer().fit(split.train, item_features=count_vectors)
    vecs, _ = cold.features.lookup(cold.items)
    assert {model.count(v) for v in vecs} == {3}


def test_the_same_scorer_beat_random_under_the_old_leave_one_out_rule(mi, count_vectors, scorer):
    res = evaluate(mi, count_vectors, ["random", scorer], "item-cold", k=10, seed=0,
                   metrics=["ndcg@k"], relevance_threshold=None,
                   cold_protocol="leave-one-out")  # fmt: skip
    assert ndcg(res, scorer) > 2 * ndcg(res, "random")
    assert ndcg(res, scorer) > 2 * res.info["ranking"]["expected_random_ndcg@10"]


def test_first_reviews_leave_the_test_set_and_the_candidates(mi, count_vectors):
    split = make_split(mi.interactions, "item-cold", seed=0)
    from recfeat.evaluation.coldstart import cold_start

    cold = cold_start(split, count_vectors, mi, n_reviews=4)
    assert cold.n_reviews == 4 and len(cold.representing) == 4 * len(cold.items)
    assert cold.dropped_items == 0  # 5-core: every item has >= 5 reviews
    item = cold.items[0]
    rows = split.test[split.test["item"] == item].sort_values("timestamp", kind="stable")
    first = rows.head(4)
    got = set(cold.representing.loc[cold.representing["item"] == item, "user"])
    assert got == set(first["user"])
    mask = (count_vectors.items == item) & np.isin(count_vectors.users, list(got))
    np.testing.assert_allclose(
        cold.features.lookup([item])[0][0], count_vectors.vectors[mask].mean(axis=0), rtol=1e-5
    )
    task = _RankingTask(split, 10, 0, None, cold)
    pos = {c: n for n, c in enumerate(task.candidates)}
    for user, rel, excl in zip(task.users, task.relevant, task.exclude, strict=True):
        if user in got:  # a representing review is neither a hit nor a candidate for its author
            assert pos[item] not in set(rel) and pos[item] in set(excl)


def test_items_with_too_few_reviews_are_dropped_and_counted(mi, count_vectors):
    res = evaluate(mi, count_vectors, ["random"], "item-cold", k=10, seed=0, cold_reviews=8)
    cold = res.info["cold_start"]
    assert cold["dropped_items"] > 0
    assert cold["cold_candidates"] + cold["dropped_items"] == 180
    assert res.info["ranking"]["candidates"] == cold["cold_candidates"]


def test_mixed_candidates_rank_cold_among_warm_and_report_the_new_first_bar(
    mi, count_vectors, scorer
):
    res = evaluate(mi, count_vectors, ["random", "popularity", scorer], "item-cold", k=10,
                   seed=0, metrics=["ndcg@k"], candidates="mixed")  # fmt: skip
    ranking = res.info["ranking"]
    assert ranking["candidates_mode"] == "mixed"
    assert ranking["candidates"] == mi.interactions["item"].nunique()  # 720 warm + 180 cold
    bar = ranking["reference_new_items_first"]["ndcg@10"]
    # the blind scorer sees vectors for new items only, so it IS "new items first"
    assert ndcg(res, scorer) == pytest.approx(bar)
    assert bar > 2 * ndcg(res, "random")
    with pytest.raises(UsageError, match="item-cold"):
        evaluate(mi, None, ["random"], "random", candidates="mixed")


def test_relevance_defaults_to_four_stars_and_none_means_all(mi):
    split = make_split(mi.interactions, "random", seed=0)
    res = evaluate(mi, None, ["popularity"], split, k=10, metrics=["ndcg@k"])
    assert res.info["relevance_threshold"] == 4.0
    task = _RankingTask(split, 10, 0, 4.0)
    rating = split.test.set_index(["user", "item"])["rating"]
    for user, rel in zip(task.users[:200], task.relevant[:200], strict=True):
        assert all(rating[(user, task.candidates[i])] >= 4 for i in rel)
    everything = evaluate(mi, None, ["popularity"], split, k=10, metrics=["ndcg@k"],
                          relevance_threshold=None)  # fmt: skip
    assert everything.info["relevance_threshold"] is None
    assert everything.info["ranking"]["users"] > res.info["ranking"]["users"]


def test_rating_only_models_are_na_in_ranking_columns_by_default(mi):
    res = evaluate(mi, None, ["global-mean", "bias", "popularity"], "random", k=10,
                   metrics=["rmse", "ndcg@k"])  # fmt: skip
    for name in ("global-mean", "bias"):
        assert res.na[name]["ndcg@10"] == NA_RATING_MODEL
        assert np.isfinite(res.table.loc[name, "rmse"])
    assert np.isfinite(res.table.loc["popularity", "ndcg@10"])
    asked = evaluate(mi, None, ["bias"], "random", k=10, metrics=["ndcg@k"],
                     rank_rating_models=True)  # fmt: skip
    assert np.isfinite(asked.table.loc["bias", "ndcg@10"])


def test_ranks_items_flags():
    registry = get_registry("model")
    flag = {n: registry.create(n).ranks_items for n in (
        "global-mean", "bias", "mf", "linear", "ridge", "sgd", "gbm",
        "popularity", "random", "als", "bpr", "content", "hybrid", "hybrid-als")}  # fmt: skip
    assert {n for n, v in flag.items() if not v} == {
        "global-mean",
        "bias",
        "mf",
        "linear",
        "ridge",
        "sgd",
        "gbm",
    }
    assert registry.create("hybrid", loss="rating").ranks_items is False


def _plant_variants(data, n_items: int):
    """Copy every review of ``n_items`` items to a new item id (same user, same text)."""
    items = sorted(data.interactions["item"].unique())[:n_items]
    copy = data.reviews[data.reviews["item"].isin(items)]
    copy = copy.assign(item="VARIANT-" + copy["item"])
    inter = pd.concat([data.interactions, copy[data.interactions.columns]], ignore_index=True)
    reviews = pd.concat([data.reviews, copy], ignore_index=True)
    import dataclasses

    return dataclasses.replace(data, interactions=inter, reviews=reviews), len(copy)


def test_planted_variant_duplicates_are_refused_then_merged(mi):
    planted, n_copies = _plant_variants(mi, 12)
    assert n_copies >= 0.01 * len(planted.interactions) / 2
    found = leaks.variant_duplicates(planted)
    assert found["status"] == "refused"
    assert found["groups"] >= 12 and found["rows"] >= 2 * n_copies - 10
    with pytest.raises(DataError, match="--merge-variants"):
        evaluate(planted, None, ["random"], "random", metrics=["ndcg@k"])
    res = evaluate(planted, None, ["random"], "random", merge_variants=True, metrics=["ndcg@k"])
    assert res.info["leaks"]["variant_duplicates"]["status"] == "ok"
    merged, mapping = leaks.merge_variants(planted)
    # every planted copy folds back into its item, exactly as the file's own 3 groups fold
    real, _ = leaks.merge_variants(mi)
    assert len(merged.interactions) == len(real.interactions) < len(mi.interactions)
    assert res.info["variants_merged"]["interactions_dropped"] == (
        n_copies + len(mi.interactions) - len(real.interactions)
    )
    assert all(v == k.removeprefix("VARIANT-") for k, v in mapping.items() if "VARIANT" in k)
    assert sum("VARIANT" in k for k in mapping) == 12


def test_a_few_variants_warn_with_counts(mi):
    found = leaks.variant_duplicates(mi)  # the real file: 3 groups of identical reviews
    assert found["status"] == "warn" and found["groups"] == 3 and found["rows"] == 6
    res = evaluate(mi, None, ["random"], "random", k=10, metrics=["ndcg@k"])
    assert res.info["leaks"]["variant_duplicates"]["status"] == "warn"
    assert res.info["leaks"]["test_text_in_train"]["status"] in ("ok", "warn")


def test_features_without_provenance_are_refused_on_review_only_data(mi, tmp_path):
    items = np.asarray(sorted(mi.interactions["item"].unique()), dtype=object)
    vecs = np.random.default_rng(0).normal(size=(len(items), 8)).astype(np.float32)
    stripped = Features(items, vecs, {})
    with pytest.raises(UsageError, match="no provenance"):
        evaluate(mi, stripped, ["content"], "random", metrics=["ndcg@k"])
    res = evaluate(mi, stripped, ["content"], "random", trust_features=True, metrics=["ndcg@k"])
    assert res.info["leaks"]["item_features"]["status"] == "warn"
    # a file whose metadata was stripped is refused when it is read: it no longer says its level
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recfeat.data.features import load_features

    flat = pa.array(vecs.reshape(-1), type=pa.float32())
    table = pa.table({"item": list(items), "vector": pa.FixedSizeListArray.from_arrays(flat, 8)})
    pq.write_table(table, tmp_path / "stripped.parquet")
    with pytest.raises(DataError, match="stripped.parquet: has no recfeat metadata"):
        load_features(tmp_path / "stripped.parquet")


def test_a_split_carved_from_a_training_part_uses_the_same_protocol(mi, count_vectors, scorer):
    outer = make_split(mi.interactions, "random", seed=0)
    inner = make_split(outer.train, "item-cold", seed=1)
    res = evaluate(mi, count_vectors, ["random", scorer], inner, k=10, metrics=["ndcg@k"])
    assert res.info["cold_start"]["protocol"] == "first-reviews"
    assert res.info["ranking"]["candidates"] == res.info["cold_start"]["cold_candidates"]
    assert np.isfinite(ndcg(res, scorer))


def test_merged_features_follow_the_product_groups():
    mapping = {"b": "a"}
    reviews = ReviewVectors(
        np.array(["u1", "u1", "u2"], object), np.array(["a", "b", "b"], object),
        np.eye(3, dtype=np.float32), {"level": "review"},
    )  # fmt: skip
    merged = leaks.remap_features(reviews, mapping)
    assert list(zip(merged.users, merged.items, strict=True)) == [("u1", "a"), ("u2", "a")]
    items = Features(["b", "a", "c"], np.eye(3, dtype=np.float32), {"source": "item texts"})
    kept = leaks.remap_features(items, mapping)
    assert list(kept.ids) == ["a", "c"]
    np.testing.assert_array_equal(kept.lookup(["a"])[0][0], [0, 1, 0])  # a's own vector
