"""Downstream recommendation models, following scikit-learn estimator conventions:
``__init__`` only stores its arguments, ``fit`` validates and sets attributes ending in
``_`` and returns ``self``, prediction starts with a fitted check.

Contract (refined in recfeat.plugins.models):
- ``fit(train, item_features=None, user_features=None)``: ``train`` is an interactions
  DataFrame (``user``, ``item``, ``rating``, ``timestamp``; ids are str); features are
  ``recfeat.features.Features`` (vectors keyed by id) or None.
- ``predict(users, items) -> np.ndarray``: one score per (user, item) pair; a rating estimate
  for rating models.
- ``score_items(users, items) -> np.ndarray (len(users), len(items))``: scores to rank
  ``items`` for each user; NaN where the model cannot score an item (e.g. an ID-only model
  and an item never seen in training).
- Class flags: ``uses_text`` (consumes features), ``cold_start_items`` (can score items
  absent from training).
"""

from __future__ import annotations

from typing import ClassVar

from sklearn.base import BaseEstimator

from .base import Component


class RecModel(Component, BaseEstimator):
    """Base of every recommendation model."""

    uses_text: ClassVar[bool] = False
    cold_start_items: ClassVar[bool] = False

    def get_options(self):
        return self.get_params(deep=False)

    def fit(self, train, item_features=None, user_features=None):
        raise NotImplementedError

    def predict(self, users, items):
        raise NotImplementedError

    def score_items(self, users, items):
        raise NotImplementedError
