"""``POST /recommend``: which path answers, and the ranking it gives.

- ``model``: a user the saved model (``recfeat train``) knows, ranked by the model with the
  user's training items left out (``recfeat.training.bundle.recommend``). Text-aware
  models that score cold items (``content``, ``hybrid-als``...) also rank the items added
  through ``PUT /items`` when the server's encoder is the one the model was trained with.
- ``model-history``: a user the model does not know, with ``history_items`` (oldest
  first), and a model that ranks from a list of items (``ranks_from_history``: sasrec,
  sasrec-text, item-knn-last, text-knn-last): the model ranks from that history itself, as
  for a live session.
- ``text-profile``: a user the model does not know, described by the texts they just wrote
  or read (``history_texts``) and/or the items they interacted with (``history_items``):
  the profile is the mean of those vectors, ranked by cosine against every stored item
  vector after removing the mean item vector (the common direction MiniLM-style vectors
  share; the content model does the same).
- ``popularity``: nothing to go on: the items with the most training interactions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfeat.errors import RecfeatError
from recfeat.serve.errors import ApiError
from recfeat.serve.items import ItemStore
from recfeat.training.bundle import check_same_encoder, recommend


class Recommender:
    def __init__(self, bundle: dict[str, Any] | None, store: ItemStore):
        self.bundle = bundle
        self.store = store
        self.model = bundle["model"] if bundle else None
        self.new_items_to_model = False  # set by ``check_encoder``
        counts: dict[str, int] = {}
        for items in (bundle or {}).get("seen", {}).values():
            for item in items:
                counts[item] = counts.get(item, 0) + 1
        order = sorted(counts, key=lambda i: (-counts[i], i))
        self.popular = [(i, float(counts[i])) for i in order]

    def check_encoder(self) -> str | None:
        """Whether items added by PUT can go to the model; a note to print when not."""
        model = self.model
        if model is None or not (model.uses_text and model.cold_start_items):
            return None
        try:
            check_same_encoder(self.bundle["header"], self.store.features([]))
        except RecfeatError as exc:
            return f"items added by PUT are ranked by text profile only, not by the model: {exc}"
        self.new_items_to_model = True
        return None

    def knows(self, user: str | None) -> bool:
        return self.model is not None and user is not None and user in self.model.user_index_

    # -- paths -----------------------------------------------------------------------------
    def recommend(self, user: str | None, k: int, *, exclude_seen: bool,
                  history_items: list[str], history_vectors: np.ndarray | None,
                  explain: bool = False, sentences=None, texts: list[str] | None = None,
                  ) -> dict[str, Any]:  # fmt: skip
        """The ranking of the first path that answers; with ``explain``, each item says why
        (``recfeat.serve.explain``: ``sentences`` are the request's own, split and encoded)."""
        result = self._recommend(user, k, exclude_seen=exclude_seen, history_items=history_items,
                                 history_vectors=history_vectors)  # fmt: skip
        if not explain:
            return result
        from recfeat.serve.explain import explain_ranking

        return explain_ranking(self, result, user=user, history_items=history_items,
                               history_vectors=history_vectors, sentences=sentences,
                               texts=texts or [])  # fmt: skip

    def _recommend(self, user: str | None, k: int, *, exclude_seen: bool,
                   history_items: list[str], history_vectors: np.ndarray | None) -> dict[str, Any]:  # fmt: skip
        if self.knows(user):
            ranked = self._by_model(user, k, exclude_seen)
            if ranked is not None:
                return {"user": user, "items": ranked, "source": "model"}
        if history_items and self.model is not None and self.model.ranks_from_history:
            ranked = self._by_history(history_items, k, exclude_seen)
            if ranked is not None:
                return {"user": user, "items": ranked, "source": "model-history"}
        vectors = [] if history_vectors is None else [history_vectors]
        if history_items:
            found_vecs, found = self.store.lookup(history_items)
            vectors.append(found_vecs[found])
        vectors = [v for v in vectors if len(v)]
        exclude = set(history_items) if exclude_seen else set()
        if exclude_seen and self.bundle and user is not None:
            exclude |= set(self.bundle["seen"].get(user, ()))
        if vectors and len(self.store):
            ranked = self._by_text(np.concatenate(vectors), k, exclude)
            return {"user": user, "items": ranked, "source": "text-profile"}
        if not self.popular:
            raise ApiError(
                422, "nothing to rank for this user: no --model file for a popularity "
                "fallback and no history_texts/history_items with vectors; send history or "
                "start the server with --model MODEL_FILE", code="no_fallback",
            )  # fmt: skip
        ranked = [{"item": i, "score": s} for i, s in self.popular if i not in exclude][:k]
        return {"user": user, "items": ranked, "source": "popularity"}

    def _by_model(self, user: str, k: int, exclude_seen: bool) -> list[dict[str, Any]] | None:
        extra = None
        if self.new_items_to_model and self.store.added:
            extra = self.store.features(sorted(self.store.added))
        try:
            (ranking,) = recommend(self.bundle, [user], k, extra_features=extra,
                                   include_seen=not exclude_seen, snippets={})  # fmt: skip
        except RecfeatError:  # the model cannot score this user: fall back, and say so
            return None
        return [{"item": i, "score": s} for i, s in zip(ranking.items, ranking.scores, strict=True)]

    def _by_history(self, history: list[str], k: int, exclude_seen: bool) -> list[dict[str, Any]] | None:
        model = self.model
        candidates = list(model.items_)
        extra = None
        if self.new_items_to_model and self.store.added:
            extra = self.store.features(sorted(self.store.added))
            candidates += sorted(set(self.store.added) - set(candidates))
        candidates = np.asarray(candidates, dtype=object)
        try:
            scores = model.score_history(history, candidates, item_features=extra)
        except RecfeatError:  # e.g. nothing in the history the model knows: fall back
            return None
        if exclude_seen:
            scores[np.isin(candidates, list(history))] = np.nan
        ok = np.flatnonzero(~np.isnan(scores))
        if not len(ok) or not np.isin(history, model.items_).any():
            return None  # no known item in the history: the text profile or popularity answers
        best = ok[np.argsort(-scores[ok], kind="stable")[:k]]
        return [{"item": str(candidates[j]), "score": float(scores[j])} for j in best]

    def _by_text(self, history: np.ndarray, k: int, exclude: set[str]) -> list[dict[str, Any]]:
        center = self.store.mean()
        profile = _unit(history.astype(np.float64).mean(axis=0) - center)
        items = _unit(self.store.vectors.astype(np.float64) - center)
        scores = items @ profile
        if exclude:
            rows = [self.store.index[i] for i in exclude if i in self.store.index]
            scores[rows] = -np.inf
        take = min(k, int(np.isfinite(scores).sum()))
        best = np.argpartition(-scores, take - 1)[:take] if take else np.zeros(0, np.int64)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [{"item": self.store.ids[j], "score": float(scores[j])} for j in best]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
