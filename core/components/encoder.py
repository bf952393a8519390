"""Text encoders: texts -> float32 matrix, one row per text.

Encoders follow scikit-learn's transformer conventions: ``__init__`` only stores its keyword
options, ``get_params``/``set_params``/``clone`` work, and ``fit(X)`` (nothing to learn)
then ``transform(X)`` turns a list or Series of texts into an ndarray, so an encoder can be
the first step of a scikit-learn Pipeline. ``validate()`` checks the options; the registry
calls it on ``create`` and encoders call it again before first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from recfeat.errors import DataError

from .base import Component


class Encoder(Component, TransformerMixin, BaseEstimator):
    """Subclasses implement ``encode`` and ``dim`` and set ``backend`` ('torch', 'onnx', ...).

    ``fingerprint()`` identifies everything that changes the vectors (weights hash, pooling,
    max_length, backend, precision); the feature cache and manifests key on it.
    """

    backend: str = "none"

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def validate(self) -> None:
        """Raise OptionError for option values that cannot work (the registry calls this)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        return {"encoder": self.name, "backend": self.backend, **self.get_options()}

    # -- scikit-learn --------------------------------------------------------------------
    def fit(self, X=None, y=None):
        """Nothing to learn (pretrained weights); validates the options, returns ``self``."""
        self.validate()
        return self

    def transform(self, X) -> np.ndarray:
        """Vectors of the texts in ``X`` (list, tuple, numpy array or pandas Series)."""
        return self.encode(_texts_of(X))

    def set_params(self, **params):
        super().set_params(**params)
        self._reset()
        return self

    def _reset(self) -> None:
        """Forget anything loaded for the old options (subclasses cache models)."""
        for key in [k for k in vars(self) if k.startswith("_")]:
            delattr(self, key)

    def __sklearn_is_fitted__(self) -> bool:
        return True  # usable without fit: there is nothing to learn

    def get_options(self) -> dict[str, Any]:
        return self.get_params(deep=False)

    def __repr__(self) -> str:  # Component's repr, not BaseEstimator's pretty printer
        return Component.__repr__(self)


def _texts_of(X):
    """A 1-D sequence of texts from what a scikit-learn step passes: a list, a Series, or a
    one-column frame/array (ColumnTransformer hands over 2-D input)."""
    if isinstance(X, str):
        return X  # encode() names the problem: one string, not a list of texts
    if getattr(X, "ndim", 1) == 2:
        X = np.asarray(X, dtype=object)
        if X.shape[1] != 1:
            raise DataError(f"transform takes one column of texts, got {X.shape[1]} columns")
        X = X[:, 0]
    return X.tolist() if hasattr(X, "tolist") else list(X)
