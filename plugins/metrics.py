"""Built-in metrics: rating error (RMSE, MAE) and top-K ranking quality.

Ranking metrics take one user's full ordering of candidate items and the set of that user's
held-out (relevant) items; relevance is binary. Definitions, per user, with ``hits@k`` the
relevant items among the first ``k``:

- precision@k = hits@k / k;  recall@k = hits@k / |relevant|;
- f1@k = harmonic mean of that user's precision@k and recall@k (0 when both are 0);
- hitrate@k = 1 if hits@k > 0;
- ndcg@k = sum over relevant positions p <= k of 1/log2(p+1), divided by the same sum
  for the ideal list (min(|relevant|, k) hits at the top);
- map@k = (1 / min(|relevant|, k)) * sum over relevant positions p <= k of precision@p;
- mrr = 1 / position of the first relevant item in the FULL ranking (0 if none is ranked);
- coverage@k = distinct items in the union of all users' top-k / number of candidate items.

Every metric is the mean over evaluated users (coverage is global).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from recfeat.components.metric import Metric, RankingMetric, RatingMetric
from recfeat.errors import DataError, OptionError
from recfeat.plugin.hookspecs import hookimpl


class RMSE(RatingMetric):
    """Root mean squared error of predicted ratings."""

    name = "rmse"

    def compute(self, y_true, y_pred):
        return np.sqrt(np.mean((y_true - y_pred) ** 2))


class MAE(RatingMetric):
    """Mean absolute error of predicted ratings."""

    name = "mae"

    def compute(self, y_true, y_pred):
        return np.mean(np.abs(y_true - y_pred))


class _AtK(RankingMetric):
    def __init__(self, k: int = 10):
        self.k = k

    def _hits(self, ranking: np.ndarray, relevant: np.ndarray) -> np.ndarray:
        if self.k < 1:
            raise OptionError(f"{self.name}: k must be >= 1 (got {self.k})")
        return np.isin(ranking[: self.k], relevant)


class Precision(_AtK):
    """Precision@k: share of the top-k that is relevant."""

    name = "precision@k"

    def per_user(self, ranking, relevant):
        return self._hits(ranking, relevant).sum() / self.k


class Recall(_AtK):
    """Recall@k: share of the relevant items found in the top-k."""

    name = "recall@k"

    def per_user(self, ranking, relevant):
        return self._hits(ranking, relevant).sum() / len(relevant) if len(relevant) else 0.0


class F1(_AtK):
    """F1@k: harmonic mean of precision@k and recall@k, per user."""

    name = "f1@k"

    def per_user(self, ranking, relevant):
        hits = self._hits(ranking, relevant).sum()
        if hits == 0:
            return 0.0
        p, r = hits / self.k, hits / len(relevant)
        return 2 * p * r / (p + r)


class HitRate(_AtK):
    """HitRate@k: share of users with at least one relevant item in the top-k."""

    name = "hitrate@k"

    def per_user(self, ranking, relevant):
        return float(self._hits(ranking, relevant).any())


class NDCG(_AtK):
    """NDCG@k with binary relevance and log2 discount."""

    name = "ndcg@k"

    def per_user(self, ranking, relevant):
        hits = self._hits(ranking, relevant)
        discounts = 1.0 / np.log2(np.arange(2, len(hits) + 2))
        ideal = discounts[: min(len(relevant), len(hits))].sum()
        return float((hits * discounts).sum() / ideal) if ideal > 0 else 0.0


class MAP(_AtK):
    """MAP@k: mean average precision over the top-k."""

    name = "map@k"

    def per_user(self, ranking, relevant):
        hits = self._hits(ranking, relevant)
        if not hits.any():
            return 0.0
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        return float((precision_at * hits).sum() / min(len(relevant), self.k))


class MRR(RankingMetric):
    """Mean reciprocal rank of the first relevant item in the full ranking."""

    name = "mrr"

    def per_user(self, ranking, relevant):
        found = np.flatnonzero(np.isin(ranking, relevant))
        return 1.0 / (found[0] + 1) if len(found) else 0.0


class Coverage(Metric):
    """Catalogue coverage: share of candidate items that appear in some user's top-k."""

    name = "coverage"
    kind: ClassVar[str] = "catalog"

    def __init__(self, k: int = 10):
        self.k = k

    def display_name(self) -> str:
        return f"coverage@{self.k}"

    def __call__(self, rankings, relevant=None, *, n_candidates: int) -> float:
        if n_candidates <= 0:
            raise DataError("coverage: the candidate catalogue is empty")
        shown = set()
        for r in rankings:
            shown.update(np.asarray(r)[: self.k].tolist())
        return len(shown) / n_candidates


ALL = (RMSE, MAE, Precision, Recall, F1, HitRate, NDCG, MAP, MRR, Coverage)


@hookimpl
def register_metrics(register):
    for cls in ALL:
        register(cls)
