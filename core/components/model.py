"""Downstream recommendation models, following scikit-learn estimator conventions:
``__init__`` only stores its arguments, ``fit`` validates and sets attributes ending in
``_`` and returns ``self``, prediction starts with a fitted check."""

from __future__ import annotations

from sklearn.base import BaseEstimator

from .base import Component


class RecModel(Component, BaseEstimator):
    """Base of every recommendation model; see recfeat.plugins.models for the contract details."""

    def get_options(self):
        return self.get_params(deep=False)
