"""Every metric against small cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recfeat.errors import DataError, UnknownComponentError
from recfeat.plugin.registry import get_registry


def metric(name, **options):
    return get_registry("metric").create(name, **options)


def test_every_metric_of_the_issue_is_registered():
    names = set(get_registry("metric").names())
    assert {"rmse", "mae", "precision@k", "recall@k", "f1@k", "ndcg@k", "hitrate@k", "mrr",
            "map@k", "coverage"} <= names  # fmt: skip


def test_unknown_metric_is_a_registry_error_with_a_hint():
    with pytest.raises(UnknownComponentError, match="ndcg@k"):
        metric("ndcg")


def test_rmse_and_mae_by_hand():
    y, p = [1, 2, 3, 4], [2, 2, 5, 4]  # errors 1, 0, 2, 0
    assert metric("rmse")(y, p) == pytest.approx(math.sqrt(5 / 4))
    assert metric("mae")(y, p) == pytest.approx(3 / 4)


def test_rating_metrics_refuse_mismatched_or_nan_input():
    with pytest.raises(DataError, match="predictions"):
        metric("rmse")([1, 2], [1])
    with pytest.raises(DataError, match="NaN"):
        metric("mae")([1, 2], [1, float("nan")])


# One user: ranking [a b c d e] as codes 0..4, relevant {1, 4} (hits at positions 2 and 5).
RANKING = [np.array([0, 1, 2, 3, 4])]
RELEVANT = [np.array([1, 4])]


def test_precision_recall_f1_hitrate_at_k():
    assert metric("precision@k", k=2)(RANKING, RELEVANT) == pytest.approx(1 / 2)
    assert metric("recall@k", k=2)(RANKING, RELEVANT) == pytest.approx(1 / 2)
    assert metric("f1@k", k=2)(RANKING, RELEVANT) == pytest.approx(1 / 2)
    # k=5: precision 2/5, recall 1, f1 = 2*0.4*1/1.4
    assert metric("precision@k", k=5)(RANKING, RELEVANT) == pytest.approx(0.4)
    assert metric("f1@k", k=5)(RANKING, RELEVANT) == pytest.approx(0.8 / 1.4)
    assert metric("hitrate@k", k=1)(RANKING, RELEVANT) == 0.0
    assert metric("hitrate@k", k=2)(RANKING, RELEVANT) == 1.0


def test_ndcg_by_hand():
    # DCG@5 = 1/log2(3) + 1/log2(6); IDCG = 1/log2(2) + 1/log2(3)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3)
    assert metric("ndcg@k", k=5)(RANKING, RELEVANT) == pytest.approx(dcg / idcg)
    # k=2: one hit at position 2; the ideal list has 2 hits in 2 slots
    assert metric("ndcg@k", k=2)(RANKING, RELEVANT) == pytest.approx((1 / math.log2(3)) / idcg)
    # a perfect list scores 1
    assert metric("ndcg@k", k=3)([np.array([1, 4, 0])], RELEVANT) == pytest.approx(1.0)


def test_map_and_mrr_by_hand():
    # AP@5 = (P@2 + P@5) / min(2, 5) = (1/2 + 2/5) / 2
    assert metric("map@k", k=5)(RANKING, RELEVANT) == pytest.approx((0.5 + 0.4) / 2)
    # AP@2 = P@2 / min(2, 2)
    assert metric("map@k", k=2)(RANKING, RELEVANT) == pytest.approx(0.25)
    assert metric("mrr")(RANKING, RELEVANT) == pytest.approx(1 / 2)
    assert metric("mrr")([np.array([0, 2])], [np.array([7])]) == 0.0


def test_ranking_metrics_average_over_users():
    rankings = [np.array([0, 1, 2]), np.array([2, 1, 0])]
    relevant = [np.array([0]), np.array([0])]  # first user hits at 1, second at 3
    assert metric("mrr")(rankings, relevant) == pytest.approx((1 + 1 / 3) / 2)
    assert metric("hitrate@k", k=1)(rankings, relevant) == pytest.approx(0.5)


def test_coverage_counts_distinct_items_in_all_top_k():
    cov = metric("coverage", k=2)
    rankings = [np.array([0, 1, 2]), np.array([1, 3, 0])]  # top-2 union {0, 1, 3}
    assert cov(rankings, None, n_candidates=6) == pytest.approx(3 / 6)
    assert cov.display_name() == "coverage@2"


def test_display_names_carry_k():
    assert metric("ndcg@k", k=7).display_name() == "ndcg@7"
    assert metric("mrr").display_name() == "mrr"
