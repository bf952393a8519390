"""scikit-learn scorers for recfeat models: ``GridSearchCV(model, grid, scoring=rmse_scorer)``.

A scorer is called as ``scorer(estimator, X, y)`` on a held-out fold: ``X`` is an
interactions frame (``user``, ``item``, ``rating``), ``y`` optional ratings aligned with its
rows (they win over ``X["rating"]``). ``estimator`` is a fitted RecModel or a Pipeline ending
in one. Both return "greater is better" numbers, as GridSearchCV maximises:

- ``rmse_scorer``: minus the RMSE of ``predict(X)``; pairs a model cannot score count at the
  training mean, as in ``recfeat evaluate``.
- ``ranking_scorer(metric="ndcg", k=10, threshold=None)``: for each user in ``X``, rank every
  item the model was trained on plus the items of ``X`` (``score_items``; NaN last and ties
  in a fixed seeded order, as in ``recfeat evaluate``) and score that ranking against the
  user's rows of ``X`` (rating >= ``threshold`` when given) with the registered ranking
  metric. Nothing is excluded: the model does not keep its training pairs, so a user's
  training items stay candidates and numbers are lower than ``recfeat evaluate``'s; they
  still compare settings of one model on the same folds, which is what model selection needs.
"""

from __future__ import annotations

import numpy as np

from recfeat import get_registry

from ..errors import DataError, OptionError, UsageError

CHUNK_USERS = 128  # users per score_items call: bounded memory on large catalogues


def rmse_scorer(estimator, X, y=None) -> float:
    """Minus the RMSE of the estimator's predicted ratings on ``X`` (greater is better)."""
    model, X = _final(estimator, X)
    true = _ratings(X, y)
    if np.isnan(true).any():
        raise DataError(
            "rmse_scorer: held-out rows have no rating; use ranking_scorer for implicit data"
        )
    pred = model.predict(X)
    pred = np.where(np.isnan(pred), model.global_mean_, pred)
    return -get_registry("metric").create("rmse")(true, pred)


def ranking_scorer(metric: str = "ndcg", k: int = 10,
                   threshold: float | None = None) -> RankingScorer:  # fmt: skip
    """A scorer ranking all known items per user of ``X``; ``metric`` is a registered
    ranking metric (``ndcg``, ``recall``, ``precision``, ``map``, ``hitrate``, ``mrr``, ...)."""
    from recfeat.data import checks

    # checked here, not at scoring time deep inside a grid search: k="10" or a NaN threshold
    # would otherwise surface as a TypeError or as NaN scores from the search
    try:
        metric = checks.text(metric, "metric", example="ndcg")
        k = checks.integer(k, "k", low=1, example=10)
        threshold = checks.optional_number(threshold, "threshold")
    except UsageError as exc:  # a scorer's options are OptionErrors, as the metric's own are
        raise OptionError(str(exc)) from None
    return RankingScorer(metric, k, threshold)


class RankingScorer:
    """``ranking_scorer``'s callable; a class, not a closure, so a search holding it pickles."""

    def __init__(self, metric: str, k: int, threshold: float | None):
        self.metric_obj = _ranking_metric(metric, k)
        self.metric, self.k, self.threshold = metric, k, threshold

    def __repr__(self) -> str:
        return f"ranking_scorer(metric={self.metric!r}, k={self.k}, threshold={self.threshold})"

    def __call__(self, estimator, X, y=None) -> float:
        model, X = _final(estimator, X)
        ratings = _ratings(X, y)
        users = X["user"].astype(str).to_numpy(dtype=object)
        items = X["item"].astype(str).to_numpy(dtype=object)
        candidates = np.union1d(model.items_.astype(str), items).astype(object)
        if getattr(self.metric_obj, "k", 0) > len(candidates):  # mrr has no cut-off
            raise DataError(
                f"ranking_scorer: k={self.k} exceeds the {len(candidates)} candidate items; lower k"
            )
        keep = np.ones(len(X), bool) if self.threshold is None else ratings >= self.threshold
        if not keep.any():
            raise DataError(
                f"ranking_scorer: no held-out row is relevant (rating >= {self.threshold}); "
                "lower threshold or use larger folds"
            )
        codes = np.searchsorted(candidates, items[keep])
        order = np.argsort(users[keep], kind="stable")
        eval_users, starts = np.unique(users[keep][order], return_index=True)
        relevant = [np.unique(r) for r in np.split(codes[order], starts[1:])]  # repeats count once
        # One seeded key per candidate orders ties (and NaN among themselves) reproducibly.
        tie = np.random.default_rng(0).random(len(candidates))
        rankings = []
        for start in range(0, len(eval_users), CHUNK_USERS):
            chunk = eval_users[start : start + CHUNK_USERS]
            scores = model.score_items(chunk, candidates)
            filled = np.where(np.isnan(scores), -np.inf, scores)  # unscorable: never a free hit
            rankings.extend(np.lexsort((tie, -row)) for row in filled)
        return self.metric_obj(rankings, relevant)


def _ranking_metric(metric: str, k: int):
    import inspect

    registry = get_registry("metric")
    name = metric if metric in registry else f"{metric}@k"
    cls = registry.get(name)  # unknown names fail here, listing the known ones
    if cls.kind != "ranking":
        raise OptionError(
            f"ranking_scorer: {metric!r} is a {cls.kind} metric; use a ranking one (ndcg, recall, mrr)"
        )
    if k < 1:
        raise OptionError(f"ranking_scorer: k must be >= 1 (got {k})")
    takes_k = "k" in inspect.signature(cls.__init__).parameters
    return registry.create(name, k=k) if takes_k else registry.create(name)


def _final(estimator, X):
    """The RecModel that scores, and ``X`` as it sees it (through a Pipeline's first steps)."""
    if hasattr(estimator, "steps"):
        if len(estimator) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    if not hasattr(estimator, "score_items"):
        raise DataError(
            f"scorer: {type(estimator).__name__} is not a recfeat model; score a RecModel "
            "or a Pipeline ending in one"
        )
    if not hasattr(X, "columns") or not {"user", "item"} <= set(X.columns):
        raise DataError("scorer: X must be a DataFrame with user and item columns")
    return estimator, X


def _ratings(X, y) -> np.ndarray:
    import pandas as pd

    if y is not None:
        values = np.asarray(y)
        if values.shape != (len(X),):
            raise DataError(
                f"scorer: y has shape {values.shape} but X has {len(X)} rows; "
                "pass one rating per row"
            )
        return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    if "rating" not in X.columns:
        return np.full(len(X), np.nan)
    return pd.to_numeric(X["rating"], errors="coerce").to_numpy(dtype=float)
