"""Downstream recommendation models, following scikit-learn estimator conventions:
``__init__`` only stores its arguments, ``fit`` validates and sets attributes ending in
``_`` and returns ``self``, prediction starts with a fitted check.

Contract (every model in recfeat.plugins.models follows it):

- ``fit(X, y=None, *, item_features=None, user_features=None)``: ``X`` is an interactions
  DataFrame (``user``, ``item``, ``rating``, ``timestamp``; ids are str); ``y``, when given,
  holds the ratings, one per row of ``X`` (it sets the ``rating`` column); features are
  ``recfeat.data.features.Features`` (vectors keyed by id) or None. User profiles and item
  aggregates are computed from ``train`` only, so a model never sees held-out interactions.
- ``predict(X)`` (a DataFrame with ``user``/``item`` columns) or ``predict(users, items,
  item_features=None)`` -> np.ndarray: one score per (user, item) pair; a rating estimate
  for rating models (``predicts_ratings``), clipped to the training rating range.
- ``score_items(users, items, item_features=None) -> np.ndarray (len(users), len(items))``:
  scores to rank ``items`` for each user; NaN where the model cannot score an item (an
  ID-only model and an item never seen in training). Users never seen in training get the
  model's non-personalised fallback (item bias, popularity) or NaN when it has none.
- ``item_features`` given at prediction time adds or replaces item vectors (new items that
  arrived after training, or leakage-free per-user vectors during evaluation); they must
  have the dimension the model was trained with (``DataError`` otherwise).
- ``score(X, y=None)``: greater is better, as scikit-learn expects: minus the RMSE for
  rating models, NDCG@10 over ``X``'s rows for ranking models (see ``scoring``).
- Class flags: ``uses_text`` (consumes features), ``cold_start_items`` (can score items
  absent from training), ``predicts_ratings`` (``predict`` estimates a rating, so RMSE/MAE
  apply), ``ranks_items`` (ranking metrics are meaningful; False for rating-only models),
  ``tune_space`` (options and values ``--tune`` searches on validation data).

Subclasses implement ``_fit(self, u, i, r, train, item_features, user_features)`` (``u``/``i``
are integer codes into ``users_``/``items_``) and ``_score_pairs(users, items,
item_features)`` (arrays of str); they may override ``_score_matrix`` for speed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from ..errors import DataError, NotFittedError, UsageError
from .base import Component
from .scoring import ranking_scorer, rmse_scorer

REQUIRED_COLUMNS = ("user", "item", "rating")


class RecModel(Component, BaseEstimator):
    """Base of every recommendation model."""

    uses_text: ClassVar[bool] = False
    cold_start_items: ClassVar[bool] = False
    predicts_ratings: ClassVar[bool] = False
    #: rating models need explicit ratings; ranking models treat every row as a positive.
    needs_ratings: ClassVar[bool] = False
    #: False for models that only estimate ratings: evaluation leaves them out of ranking
    #: tables unless asked (``--rank-rating-models``), since rating error is not a ranker.
    ranks_items: ClassVar[bool] = True
    #: options ``evaluate(tune=True)`` searches on validation data (recfeat.evaluation.tuning):
    #: option name -> values to try; keep it small. Empty: nothing to tune.
    tune_space: ClassVar[dict[str, list]] = {}
    #: True for models that rank from a time-ordered list of items alone (the sequential
    #: ones): ``score_history`` serves a user the model never saw, e.g. a live session.
    ranks_from_history: ClassVar[bool] = False
    #: What ``recfeat.explain`` can show for this model's recommendations (docs/explain.md):
    #: "history" (the user's training items that add most to an item's score, from the
    #: model's own scoring: ``history_contributions`` and ``fold_in``), "sentences" and
    #: "tokens" (text models: the user's own review sentences closest to the item, and the
    #: tokens the user's reviews share with it). Empty: scores that do not decompose over the
    #: user's history (rating models, popularity), so nothing is explained.
    explains: ClassVar[tuple[str, ...]] = ()

    def get_options(self):
        return self.get_params(deep=False)

    def __repr__(self) -> str:  # Component's repr, not BaseEstimator's pretty printer
        return Component.__repr__(self)

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X, y=None, *, item_features=None, user_features=None):
        """Validate ``X`` (ratings from ``y`` when given), index its ids, then fit; returns
        ``self``. Features are fit parameters (``GridSearchCV(...).fit(X, item_features=f)``)."""
        if _is_features(y):  # the pre-sklearn positional form fit(train, item_features)
            if item_features is not None:
                raise DataError(
                    f"{self._what()}: item_features given twice; pass fit(X, y, item_features=...)"
                )
            y, item_features = None, y
        train = check_interactions(
            X, needs_ratings=self.needs_ratings, what=self._what(), ratings=y
        )
        item_features = _as_features(item_features, train)
        user_features = _as_features(user_features, train)
        if self.uses_text and item_features is None and user_features is None:
            raise UsageError(
                f"{self._what()} uses text features; pass item_features (recfeat extract "
                "--level item) or choose an ID-only model"
            )
        users, u = np.unique(train["user"].to_numpy(dtype=object), return_inverse=True)
        items, i = np.unique(train["item"].to_numpy(dtype=object), return_inverse=True)
        self.users_ = users
        self.items_ = items
        self.user_index_ = {k: n for n, k in enumerate(users)}
        self.item_index_ = {k: n for n, k in enumerate(items)}
        r = train["rating"].to_numpy(dtype=np.float64)
        if np.isnan(r).all():
            r = np.ones(len(train))  # implicit feedback: every row is a positive
        self.global_mean_ = float(np.nanmean(r))
        self.rating_range_ = (float(np.nanmin(r)), float(np.nanmax(r)))
        self.n_train_ = len(train)
        feats = item_features if item_features is not None else user_features
        self.feature_dim_ = None if feats is None else int(feats.dim)
        self.feature_source_ = None if feats is None else feature_fingerprint(feats)
        self._fit(u.astype(np.int64), i.astype(np.int64), r, train, item_features, user_features)
        self.is_fitted_ = True
        return self

    def _fit(self, u, i, r, train, item_features, user_features) -> None:
        raise NotImplementedError

    # -- predicting ------------------------------------------------------------------------
    def predict(self, X, items=None, item_features=None) -> np.ndarray:
        """One score per (user, item) pair, from ``predict(X)`` (a frame with ``user`` and
        ``item`` columns) or ``predict(users, items)``; ratings are clipped to the training range."""
        self._check_fitted()
        users, items = _pairs(X, items)
        if len(users) != len(items):
            raise DataError(
                f"predict: {len(users)} users but {len(items)} items; pass one per pair"
            )
        self._check_features(item_features)
        out = np.asarray(self._score_pairs(users, items, item_features), dtype=np.float64)
        if self.predicts_ratings:
            out = np.clip(out, *self.rating_range_)
        return out

    def score(self, X, y=None) -> float:
        """Greater is better: -RMSE for rating models, NDCG@10 over ``X``'s rows otherwise."""
        scorer = rmse_scorer if self.predicts_ratings else ranking_scorer()
        return scorer(self, X, y)

    def score_items(self, users, items, item_features=None) -> np.ndarray:
        """Scores of shape (len(users), len(items)); NaN where an item cannot be scored."""
        self._check_fitted()
        users, items = _as_ids(users), _as_ids(items)
        self._check_features(item_features)
        scores = np.asarray(self._score_matrix(users, items, item_features), dtype=np.float64)
        if not self.cold_start_items:
            scores[:, ~self.known_items(items)] = np.nan
        return scores

    def score_history(self, history, items, item_features=None) -> np.ndarray:
        """Scores of ``items`` for someone whose interactions so far are ``history`` (item
        ids, oldest first; ids the model never saw are skipped), for models that
        ``ranks_from_history``; NaN where an item cannot be scored."""
        self._check_fitted()
        if not self.ranks_from_history:
            raise UsageError(
                f"{self._what()} ranks the users it was trained on, not a list of items; use "
                "a sequential model (sasrec, sasrec-text, item-knn-last, text-knn-last)"
            )
        history, items = _as_ids(history), _as_ids(items)
        self._check_features(item_features)
        codes = self.item_codes(history)
        out = self._score_history(codes[codes >= 0], items, item_features)
        return np.asarray(out, dtype=np.float64)

    def _score_history(self, history: np.ndarray, items, item_features) -> np.ndarray:
        raise NotImplementedError

    # -- explaining (recfeat.explain) ------------------------------------------------------
    def fold_in(self, history, items, item_features=None) -> np.ndarray:
        """Scores of ``items`` for a user whose training history were ``history`` (item ids,
        oldest first; ids the model never saw are skipped), re-solved from the model's
        fitted item side (EASE's weights, ALS's item factors, content's item vectors, a
        sequential model's network): what the deletion test of ``recfeat explain-eval``
        re-scores an edited history with. For models that explain "history"."""
        codes, items = self._explain_args(history, items, item_features)
        return np.asarray(self._fold_in(codes, items, item_features), dtype=np.float64)

    def history_contributions(self, history, items, item_features=None) -> np.ndarray:
        """(len(history), len(items)): how much each history entry adds to each item's
        ``fold_in`` score (0 for ids the model never saw). Exact decompositions where the
        score is linear in the history (EASE, ALS, hybrid-als, content's cosine: the rows
        sum to the score); otherwise the score lost when that entry alone is left out."""
        codes, items = self._explain_args(history, items, item_features)
        known = self.item_codes(_as_ids(history)) >= 0
        out = np.zeros((len(known), len(items)))
        out[known] = self._history_contributions(codes, items, item_features)
        return out

    def _explain_args(self, history, items, item_features) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        if "history" not in self.explains:
            raise UsageError(
                f"{self._what()} does not explain through the user's history (its scores do "
                "not decompose over it); models that do: content, ease, ease-text, als, "
                "hybrid-als, sasrec, sasrec-text, item-knn-last, text-knn-last"
            )
        self._check_features(item_features)
        codes = self.item_codes(_as_ids(history))
        return codes[codes >= 0], _as_ids(items)

    def _fold_in(self, history: np.ndarray, items, item_features) -> np.ndarray:
        """``history``: item codes (time order). Sequential models rank from a list of
        items already; the others override this."""
        if self.ranks_from_history:
            return self._score_history(history, items, item_features)
        raise NotImplementedError

    def _history_contributions(self, history: np.ndarray, items, item_features) -> np.ndarray:
        """Default: the score each entry's removal costs (leave one out, one re-score per
        entry); models whose score is linear in the history override it with the exact terms."""
        full = self._fold_in(history, items, item_features)
        out = np.zeros((len(history), len(items)))
        for j in range(len(history)):
            out[j] = full - self._fold_in(np.delete(history, j), items, item_features)
        return np.nan_to_num(out)

    def _score_matrix(self, users, items, item_features) -> np.ndarray:
        n_u, n_i = len(users), len(items)
        flat = self._score_pairs(np.repeat(users, n_i), np.tile(items, n_u), item_features)
        return np.asarray(flat, dtype=np.float64).reshape(n_u, n_i)

    def _score_pairs(self, users, items, item_features) -> np.ndarray:
        raise NotImplementedError

    def _score_pairs_by_user(self, users, items, item_features) -> np.ndarray:
        """A ``_score_pairs`` for models that score whole (users x items) blocks: one
        ``_score_matrix`` row per distinct user (small in practice). A model takes it with
        ``_score_pairs = RecModel._score_pairs_by_user``."""
        out = np.empty(len(users))
        for user in np.unique(users):
            rows = np.flatnonzero(users == user)
            one = np.array([user], dtype=object)
            out[rows] = self._score_matrix(one, items[rows], item_features)[0]
        return out

    # -- helpers for subclasses ------------------------------------------------------------
    def known_items(self, items) -> np.ndarray:
        return np.fromiter((k in self.item_index_ for k in items), dtype=bool, count=len(items))

    def user_codes(self, users) -> np.ndarray:
        """Integer code of each user, -1 for users not seen in training."""
        idx = self.user_index_
        return np.fromiter((idx.get(k, -1) for k in users), dtype=np.int64, count=len(users))

    def item_codes(self, items) -> np.ndarray:
        idx = self.item_index_
        return np.fromiter((idx.get(k, -1) for k in items), dtype=np.int64, count=len(items))

    def _check_fitted(self) -> None:
        if not getattr(self, "is_fitted_", False):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(train, ...) first"
            )

    def _check_features(self, features) -> None:
        if features is None or self.feature_dim_ is None:
            return
        if int(features.dim) != self.feature_dim_:
            raise DataError(
                f"features have dimension {features.dim} but {self._what()} was trained on "
                f"dimension {self.feature_dim_} ({describe_source(self.feature_source_)}); "
                "extract features with the same encoder the model was trained with"
            )

    def _what(self) -> str:
        return f"model {self.name or type(self).__name__!r}"


def check_interactions(train, *, needs_ratings: bool = False, what: str = "model", ratings=None):
    """Return ``train`` with str ids and float ratings (from ``ratings``, one per row, when
    given), or raise DataError naming the problem."""
    import pandas as pd

    if not isinstance(train, pd.DataFrame):
        raise DataError(f"{what}: train must be a pandas DataFrame, got {type(train).__name__}")
    if ratings is not None:
        ratings = np.asarray(ratings)
        if ratings.ndim != 1 or len(ratings) != len(train):
            raise DataError(
                f"{what}: y has shape {ratings.shape} but X has {len(train)} rows; "
                "pass one rating per interaction"
            )
        train = train.assign(rating=ratings)  # positional, like sklearn's (X, y)
    missing = [c for c in REQUIRED_COLUMNS if c not in train.columns]
    if missing:
        raise DataError(
            f"{what}: interactions lack column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, train.columns))})"
        )
    if len(train) == 0:
        raise DataError(f"{what}: no training interactions; check the split or the data")
    out = train.assign(
        user=train["user"].astype(str),
        item=train["item"].astype(str),
        rating=pd.to_numeric(train["rating"], errors="coerce").astype(float),
    )
    if needs_ratings and out["rating"].isna().any():
        n = int(out["rating"].isna().sum())
        raise DataError(
            f"{what} predicts ratings but {n} training interactions have no rating; "
            "use a ranking model (popularity, als, bpr, content, hybrid) for implicit data"
        )
    return out


def feature_fingerprint(features) -> dict[str, Any]:
    """What identifies the vectors a model was trained on: dim plus the manifest's encoder."""
    manifest = getattr(features, "manifest", {}) or {}
    keys = ("encoder", "model", "weights_sha256", "weights_hash", "pooling", "precision", "level")
    found = {k: manifest[k] for k in keys if k in manifest and _plain(manifest[k])}
    return {"dim": int(features.dim), **found}


def describe_source(source: dict[str, Any] | None) -> str:
    if not source:
        return "unknown encoder"
    return ", ".join(f"{k}={v}" for k, v in source.items())


def _plain(value) -> bool:
    return isinstance(value, (str, int, float, bool))


def _is_features(value) -> bool:
    # A Features object (duck-typed, as the models use it), not ratings: see fit.
    return (hasattr(value, "lookup") and hasattr(value, "dim")) or hasattr(value, "to_features")


def _as_features(value, train):
    """What a model reads from ``value``: ``Features`` keyed by id. An extraction result
    (``recfeat.extract(...)``) becomes its features; review vectors become each item's mean
    over the reviews in ``train`` only, so held-out reviews never reach the model."""
    if hasattr(value, "to_features"):
        value = value.to_features()
    if hasattr(value, "item_means") and not hasattr(value, "lookup"):
        value = value.item_means(train)
    return value


def _pairs(X, items) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) as str arrays from a frame with user/item columns or two sequences."""
    if hasattr(X, "columns"):
        if items is not None or not {"user", "item"} <= set(X.columns):
            raise DataError(
                "predict: pass a DataFrame with user and item columns, or predict(users, items)"
            )
        X, items = X["user"], X["item"]
    elif items is None:
        raise DataError("predict: items missing; pass predict(users, items) or a DataFrame X")
    return _as_ids(X), _as_ids(items)


def _as_ids(values) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=object)
