"""Tokenizers (Hugging Face fast tokenizers behind one small interface) and sparse
token-feature extractors built on them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

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


class TokenFeaturizer(Component):
    """Sparse features over a model's own token ids (hashed bag-of-tokens, TF-IDF).

    scikit-learn transformer conventions: ``fit(texts)`` returns self, ``transform(texts)``
    returns a ``scipy.sparse.csr_matrix`` of float32.
    """

    def fit(self, texts: Sequence[str]):
        return self

    def transform(self, texts: Sequence[str]):
        raise NotImplementedError

    def fit_transform(self, texts: Sequence[str]):
        return self.fit(texts).transform(texts)
