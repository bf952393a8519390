"""Text encoders: texts -> float32 matrix, one row per text.

Encoders follow scikit-learn's transformer conventions: ``__init__`` only stores its keyword
options, ``get_params``/``set_params``/``clone`` work, and ``fit(X)`` (nothing to learn)
then ``transform(X)`` turns a list or Series of texts into an ndarray, so an encoder can be
the first step of a scikit-learn Pipeline. ``validate()`` checks the options; the registry
calls it on ``create`` and encoders call it again before first use.

``get_feature_names_out()`` names the columns ``<name>0`` .. ``<name><dim-1>`` (``minilm0``),
so ``set_output(transform="pandas")`` and ``ColumnTransformer`` work. Pickling (``pickle``,
``joblib``) keeps the options and the weights hash, never the loaded model: an unpickled
encoder loads its model again on first use and refuses weights that hash differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from recfeat.errors import ArtifactError, DataError, RecfeatError

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
        return self.encode(texts_of(X))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Column names ``<name>0`` .. ``<name><dim-1>`` (``minilm0``, ...): the registry
        name lowercased, as scikit-learn's ``ClassNamePrefixFeaturesOutMixin`` prefixes its
        own. ``input_features``, if given, is the one text column (as ColumnTransformer
        passes it); the names do not depend on it."""
        if input_features is not None and len(input_features) != 1:
            raise DataError(
                f"an encoder reads one column of texts, got input_features {list(input_features)}; "
                "give the encoder a single text column"
            )
        return prefixed_names(self, self.dim)

    def set_params(self, **params):
        changed = {k for k, v in params.items() if getattr(self, k, v) != v}
        super().set_params(**params)
        self._reset(changed)
        return self

    #: Options that choose the weights: changing one through set_params drops the weights
    #: hash an unpickled encoder checks. None: any option may (third-party encoders).
    weights_options: tuple[str, ...] | None = None

    # scikit-learn's own per-instance settings (set_output, metadata requests): options,
    # not loaded state, so set_params and pickling keep them.
    _SKLEARN_STATE = ("_sklearn_output_config", "_metadata_request")
    _PIN = "_pinned_weights_sha256"

    def _reset(self, changed: set[str] | None = None) -> None:
        """Forget anything loaded for the old options (subclasses cache models)."""
        keep = set(self._SKLEARN_STATE)
        if changed is not None and not (
            changed & set(self.weights_options) if self.weights_options is not None else changed
        ):
            keep.add(self._PIN)
        for key in [k for k in vars(self) if k.startswith("_") and k not in keep]:
            delattr(self, key)

    # -- pickling -----------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The options, scikit-learn's settings and the weights hash, never the loaded model:
        its tensors (91 MB for MiniLM) do not unpickle into a fresh torch module, and the
        weights are on disk anyway. The model loads again on first use, checked by hash."""
        state = super().__getstate__()
        keep = set(self.get_params(deep=False)) | set(self._SKLEARN_STATE)
        state = {k: v for k, v in state.items() if k in keep}
        state[self._PIN] = self.__dict__.get(self._PIN) or self._current_weights_sha256()
        return state

    def _current_weights_sha256(self) -> str | None:
        """The weights hash the fingerprint holds, or None when it cannot be known now (a
        model not on this machine: pickling still works, and using it raises the reason)."""
        try:
            return self.fingerprint().get("weights_sha256")
        except RecfeatError:
            return None

    def _check_weights(self, found: str, where: str) -> None:
        """Refuse weights that hash differently from those this encoder was pickled with.
        Subclasses call it wherever they first read their model's identity."""
        expected = self.__dict__.get(self._PIN)
        if expected and found != expected:
            raise ArtifactError(
                f"the weights at {where} changed since this {self.name or type(self).__name__} "
                f"encoder was pickled: expected sha256 {expected}, found {found}; put the "
                "original weights back, or to use the new ones replace the encoder with a fresh "
                "one (sklearn.base.clone(encoder) or recfeat.encoder(...)) and refit what was "
                "fitted on its vectors"
            )

    def __sklearn_is_fitted__(self) -> bool:
        return True  # usable without fit: there is nothing to learn

    def get_options(self) -> dict[str, Any]:
        return self.get_params(deep=False)

    def __repr__(self) -> str:  # Component's repr, not BaseEstimator's pretty printer
        return Component.__repr__(self)


def prefixed_names(component: Component, n: int) -> np.ndarray:
    """``<name>0`` .. ``<name><n-1>``: the registry name (else the class name) lowercased,
    as scikit-learn's ``ClassNamePrefixFeaturesOutMixin`` names ``pca0``, ``pca1``, ..."""
    prefix = (component.name or type(component).__name__).lower()
    return np.asarray([f"{prefix}{i}" for i in range(n)], dtype=object)


def texts_of(X):
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
