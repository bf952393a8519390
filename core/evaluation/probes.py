"""Probes of the evaluation protocol itself: scorers that read no text and so must stay at
chance under an honest protocol. ``ReviewCountScorer`` ranks candidates by how many reviews
were averaged into each one's vector; with review vectors that are word COUNTS
(``count_review_vectors``) that number can be read off the vector alone (a mean of m count
vectors is a whole multiple of 1/m). It passed the old leave-one-out cold-start rule at
3.4x random; the first-reviews rule gives every candidate the same number of reviews, so it
scores chance there (tests/test_protocol_honesty.py, benchmarks/bench_honest.py).

They are not registered as models: register one for a run with
``get_registry("model").register(ReviewCountScorer)``."""

from __future__ import annotations

import numpy as np

from recfeat.components import RecModel
from recfeat.data.features import ReviewVectors


class ReviewCountScorer(RecModel):
    """Text-free: score = minus the number of reviews averaged into the candidate's vector."""

    name = "review-count-scorer"
    uses_text = True
    cold_start_items = True

    def __init__(self, max_reviews: int = 400):
        self.max_reviews = max_reviews

    def _fit(self, u, i, r, train, item_features, user_features):
        self.counts_seen_: dict[bytes, int] = {}

    def count(self, vector: np.ndarray) -> int:
        """Smallest m with m * vector all whole numbers (vector = mean of m count vectors)."""
        key = vector.tobytes()
        if key not in self.counts_seen_:
            m = np.arange(1, self.max_reviews + 1)[:, None] * vector[None, :].astype(np.float64)
            whole = np.abs(m - np.round(m)).max(axis=1) < 1e-3
            self.counts_seen_[key] = int(np.argmax(whole)) + 1 if whole.any() else 0
        return self.counts_seen_[key]

    def _score_matrix(self, users, items, item_features):
        scores = np.full(len(items), np.nan)
        if item_features is not None:  # only vectors handed over at ranking time
            vecs, found = item_features.lookup(items)
            scores[found] = [-self.count(v) for v in vecs[found]]
        return np.tile(scores, (len(users), 1))


def count_review_vectors(data, n_features: int = 64) -> ReviewVectors:
    """Encoder-free review vectors of ``data.reviews``: hashed bag-of-words COUNTS."""
    from sklearn.feature_extraction.text import HashingVectorizer

    counts = HashingVectorizer(n_features=n_features, alternate_sign=False, norm=None)
    vecs = counts.transform(data.reviews["text"]).toarray().astype(np.float32)
    return ReviewVectors(
        data.reviews["user"].astype(str).to_numpy(object),
        data.reviews["item"].astype(str).to_numpy(object),
        vecs,
        {"level": "review", "source": "reviews", "encoder": f"hashed-counts-{n_features}"},
    )
