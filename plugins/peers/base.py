"""What the factorisation peers share: scores = user . item factors + biases, read from the
arrays the library learned (copied into recfeat's id order), so ranking every candidate is
one matrix product and no library object is needed at prediction time.

Users never seen in training get the model's item biases (its non-personalised part) when
it learned any, NaN otherwise; items never seen get NaN unless a subclass can build their
factors from text (``_item_parts``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from recfeat.components import RecModel


class FactorPeer(RecModel):
    """A peer whose fit sets ``user_factors_``, ``item_factors_``, ``user_bias_``,
    ``item_bias_`` (recfeat code order) and ``global_offset_``."""

    #: the library the peer comes from (``--peers`` name).
    library: ClassVar[str] = ""
    #: whether unknown users fall back to item biases (False: NaN).
    bias_fallback: ClassVar[bool] = True
    #: the library's own model object (kept for tests that compare scores with it) is not
    #: written to a model file: it only pickles, and scoring uses the copied factors.
    unsaved_attributes: ClassVar[tuple[str, ...]] = ("library_model_",)

    def _set_factors(self, user_factors, item_factors, user_bias=None, item_bias=None, offset=0.0):
        self.user_factors_ = np.asarray(user_factors, dtype=np.float64)
        self.item_factors_ = np.asarray(item_factors, dtype=np.float64)
        n_u, n_i = len(self.user_factors_), len(self.item_factors_)
        self.user_bias_ = np.zeros(n_u) if user_bias is None else np.asarray(user_bias, np.float64)
        self.item_bias_ = np.zeros(n_i) if item_bias is None else np.asarray(item_bias, np.float64)
        self.global_offset_ = float(offset)

    def _item_parts(self, items, item_features):
        """(factors, biases, scorable mask) of ``items``; ID-only: training items only."""
        ic = self.item_codes(items)
        ok = ic >= 0
        safe = np.maximum(ic, 0)
        return self.item_factors_[safe], self.item_bias_[safe], ok

    def _score_matrix(self, users, items, item_features):
        uc = self.user_codes(users)
        vi, bi, ok = self._item_parts(items, item_features)
        safe = np.maximum(uc, 0)
        scores = self.user_factors_[safe] @ vi.T + self.user_bias_[safe, None] + bi[None, :]
        scores += self.global_offset_
        unknown = uc < 0
        if unknown.any():
            scores[unknown] = (bi + self.global_offset_)[None, :] if self.bias_fallback else np.nan
        scores[:, ~ok] = np.nan
        return scores

    def _score_pairs(self, users, items, item_features):
        uc = self.user_codes(users)
        vi, bi, ok = self._item_parts(items, item_features)
        safe = np.maximum(uc, 0)
        out = np.einsum("ij,ij->i", self.user_factors_[safe], vi) + self.user_bias_[safe] + bi
        out += self.global_offset_
        unknown = uc < 0
        out[unknown] = (bi + self.global_offset_)[unknown] if self.bias_fallback else np.nan
        out[~ok] = np.nan
        return out
