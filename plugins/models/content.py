"""Content-based model (user profile vs item vectors, cosine) and the text helpers the
feature-regression and hybrid models share.

Text policy shared by every text model:
- item vectors come from ``item_features`` (fit time) or the ``item_features`` passed at
  prediction time (new items; these win over the fit-time ones);
- a user's profile is the mean of the vectors of the items that user interacted with in
  TRAINING (``train`` is all a model sees), or the user's vector from ``user_features``
  when given;
- an item with no vector is a zero vector for profiles and cannot be scored on its own
  (content: NaN); the count is kept in ``n_items_without_features_``.
"""

from __future__ import annotations

import numpy as np

from recfeat.components import RecModel


def lookup(features, items) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of ``items`` (zeros where missing) and the found mask; float64."""
    vectors, found = features.lookup(items)
    return vectors.astype(np.float64), found


def item_vectors(model: RecModel, items, item_features=None) -> tuple[np.ndarray, np.ndarray]:
    """Item vectors for scoring: prediction-time features first, then the fit-time ones."""
    vectors = np.zeros((len(items), model.feature_dim_))
    found = np.zeros(len(items), dtype=bool)
    for feats in (model.item_features_, item_features):
        if feats is None:
            continue
        vec, ok = lookup(feats, items)
        vectors[ok] = vec[ok]
        found |= ok
    return vectors, found


def mean_profiles(u: np.ndarray, i: np.ndarray, n_users: int, item_vecs: np.ndarray, weights=None):
    """Per-user (weighted) mean of the item vectors of that user's training interactions."""
    w = np.ones(len(u)) if weights is None else weights
    sums = np.zeros((n_users, item_vecs.shape[1]))
    np.add.at(sums, u, item_vecs[i] * w[:, None])
    norm = np.bincount(u, weights=np.abs(w), minlength=n_users)
    return sums / np.maximum(norm, 1e-12)[:, None]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class ContentModel(RecModel):
    """Cosine between the user's profile and item text vectors; scores cold items."""

    name = "content"
    uses_text = True
    cold_start_items = True

    def __init__(self, center: bool = True, weighting: str = "mean"):
        self.center = center
        self.weighting = weighting

    def _fit(self, u, i, r, train, item_features, user_features):
        from recfeat.errors import OptionError

        if self.weighting not in ("mean", "centered"):
            raise OptionError(
                f"content: weighting must be 'mean' or 'centered' (got {self.weighting!r})"
            )
        self.item_features_ = item_features
        if item_features is not None:
            vecs, found = lookup(item_features, self.items_)
        else:
            vecs, found = (
                np.zeros((len(self.items_), self.feature_dim_)),
                np.zeros(len(self.items_), bool),
            )
        self.n_items_without_features_ = int((~found).sum())
        # MiniLM-style embeddings share a large common direction; removing the training items'
        # mean makes cosine measure what distinguishes items.
        self.offset_ = (
            vecs[found].mean(axis=0) if self.center and found.any() else np.zeros(vecs.shape[1])
        )
        weights = None
        if self.weighting == "centered":
            user_mean = np.bincount(u, weights=r) / np.maximum(np.bincount(u), 1)
            weights = (
                r - user_mean[u] + 1e-3
            )  # above-average ratings pull the profile towards the item
        keep = found[i]
        profiles = mean_profiles(
            u[keep],
            i[keep],
            len(self.users_),
            vecs - self.offset_,
            None if weights is None else weights[keep],
        )
        has = np.bincount(u[keep], minlength=len(self.users_)) > 0
        if user_features is not None:
            uvec, ufound = lookup(user_features, self.users_)
            profiles[ufound] = uvec[ufound] - self.offset_
            has |= ufound
        self.profiles_ = l2_normalise(profiles)
        self.has_profile_ = has

    def _score_matrix(self, users, items, item_features):
        uc = self.user_codes(users)
        vecs, found = item_vectors(self, items, item_features)
        item_unit = l2_normalise(vecs - self.offset_)
        scores = self.profiles_[np.maximum(uc, 0)] @ item_unit.T
        scores[(uc < 0) | ~self.has_profile_[np.maximum(uc, 0)], :] = np.nan
        scores[:, ~found] = np.nan
        return scores

    def _score_pairs(self, users, items, item_features):
        uc = self.user_codes(users)
        vecs, found = item_vectors(self, items, item_features)
        item_unit = l2_normalise(vecs - self.offset_)
        out = np.einsum("ij,ij->i", self.profiles_[np.maximum(uc, 0)], item_unit)
        out[(uc < 0) | ~found | ~self.has_profile_[np.maximum(uc, 0)]] = np.nan
        return out
