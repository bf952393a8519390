"""Tokenizers (Hugging Face fast tokenizers behind one small interface) and sparse
token-feature extractors built on them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .base import Component


@dataclasses.dataclass
class TokenBatch:
    """Token ids of a batch of texts, unpadded.

    ``ids[i]`` holds the ids kept for text i (special tokens included, after truncation);
    ``n_tokens[i]`` the length before truncation; ``n_dropped[i]`` how many truncation removed.
    """

    ids: list[list[int]]
    n_tokens: np.ndarray
    n_dropped: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))

    def padded(self, pad_id: int, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
        """``(input_ids, attention_mask)`` as int64 arrays padded to the longest text."""
        n = len(self.ids)
        width = int(self.lengths.max()) if n else 0
        input_ids = np.full((n, width), pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for i, row in enumerate(self.ids):
            if not row:
                continue
            if side == "left":
                input_ids[i, width - len(row) :] = row
                mask[i, width - len(row) :] = 1
            else:
                input_ids[i, : len(row)] = row
                mask[i, : len(row)] = 1
        return input_ids, mask


class Tokenizer(Component):
    """Subclasses implement ``tokenize``; ``pad_id`` and ``padding_side`` drive ``TokenBatch.padded``."""

    pad_id: int = 0
    padding_side: str = "right"

    def tokenize(self, texts: Sequence[str]) -> TokenBatch:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError


class TokenFeaturizer(Component, TransformerMixin, BaseEstimator):
    """Sparse features over a model's own token ids (hashed bag-of-tokens, TF-IDF).

    scikit-learn transformer conventions, so a featurizer is a Pipeline or ColumnTransformer
    step: ``fit(X, y=None)`` returns self, ``transform(X)`` takes a list, Series or
    one-column frame of texts and returns a ``scipy.sparse.csr_matrix`` of float32,
    ``get_params``/``clone`` work and ``get_feature_names_out()`` names the columns.
    Subclasses pickle without their loaded tokenizer or network (reloaded on first use).
    Sparse output has no pandas form: ``set_output(transform="pandas")`` is scikit-learn's
    error, as for its own sparse vectorizers.
    """

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        raise NotImplementedError

    def __sklearn_is_fitted__(self) -> bool:
        return True  # stateless unless a subclass says otherwise

    def __repr__(self) -> str:  # Component's repr, not BaseEstimator's pretty printer
        return Component.__repr__(self)
