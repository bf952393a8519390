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

Every answer says what it used and what it did not (``used``: the fields that shaped the
ranking; ``ignored``: each field, or the ids of one, left out and why), and puts every
path's ``score`` on one range, [-1, 1] with higher better, named by ``score_scale``
(``raw_score`` keeps the path's own number). ``history_items`` ids the server does not
know (neither the model nor the item store) are listed as ignored; when none of them is
known the request is refused, rather than answered as if it had sent no history.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfeat.data.checks import shown
from recfeat.encode.similarity import unit_rows
from recfeat.errors import RecfeatError
from recfeat.serve.errors import ApiError
from recfeat.serve.items import ItemStore
from recfeat.training.bundle import TrainedModel, check_same_encoder, recommend


class Recommender:
    def __init__(self, bundle: TrainedModel | None, store: ItemStore):
        self.bundle = bundle
        self.store = store
        self.model = bundle.model if bundle else None
        self.new_items_to_model = False  # set by ``check_encoder``
        self.index = None  # recfeat.serve.index.StoreIndex under --index hnsw: set at start
        counts: dict[str, int] = {}
        for items in (bundle.seen if bundle else {}).values():
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
            check_same_encoder(self.bundle.header, self.store.features([]))
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
        """The ranking of the first path that answers, with what it used and ignored; with
        ``explain``, each item says why (``recfeat.serve.explain``: ``sentences`` are the
        request's own, split and encoded). ApiError 422 when no ``history_items`` id is known."""
        history_items, unknown = self._known_history(history_items)
        result = self._recommend(user, k, exclude_seen=exclude_seen, history_items=history_items,
                                 history_vectors=history_vectors)  # fmt: skip
        result = self._on_one_scale(result)
        result["used"], result["ignored"] = self._accounts(
            result["source"], user, history_items, unknown, texts=history_vectors is not None,
            explain=explain,
        )  # fmt: skip
        if not explain:
            return result
        from recfeat.serve.explain import explain_ranking

        return explain_ranking(self, result, user=user, history_items=history_items,
                               history_vectors=history_vectors, sentences=sentences,
                               texts=texts or [])  # fmt: skip

    # -- what the answer says about itself -------------------------------------------------
    def _known_history(self, history_items: list[str]) -> tuple[list[str], list[str]]:
        """``(the ids the server knows, the ids it does not)``; ApiError 422 when it knows
        none: a wrong id (or id space) must not quietly become a popularity answer."""
        model_items = getattr(self.model, "item_index_", {})
        unknown = [i for i in dict.fromkeys(history_items)
                   if i not in self.store and i not in model_items]  # fmt: skip
        if unknown and len(unknown) == len(set(history_items)):
            named = ", ".join(shown(i) for i in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise ApiError(
                422, f"history_items: no id is known to this server: {named}{more}; send ids of "
                "the model's training items or of stored items (--item-features, --data, PUT "
                "/items), or send history_texts", code="unknown_items",
            )  # fmt: skip
        if not unknown:
            return history_items, []
        gone = set(unknown)
        return [i for i in history_items if i not in gone], unknown

    def _accounts(self, source: str, user: str | None, history_items: list[str],
                  unknown: list[str], *, texts: bool, explain: bool) -> tuple[list, list]:  # fmt: skip
        """``used``: the request fields that shaped the ranking; ``ignored``: the fields (or
        the ids of ``history_items``) that did not, each with the reason."""
        used: list[str] = []
        ignored: list[dict[str, Any]] = []
        if unknown:
            ignored.append({"field": "history_items", "items": unknown, "reason": "unknown ids: "
                            "neither the model nor the item store knows them"})  # fmt: skip
        if source == "model":
            used.append("user")
            why = (f"user {user!r} is known to the model, which ranks them by their training "
                   "history; history_items and history_texts describe users it does not know")
            if history_items:
                ignored.append({"field": "history_items", "reason": why})
            if texts:
                quoted = " (explain quotes them as evidence only)" if explain else ""
                ignored.append({"field": "history_texts", "reason": why + quoted})
            return used, ignored
        if user is not None:
            if self.model is None:
                why = "this server has no --model, so it knows no user"
            elif self.knows(user):
                why = f"the model could not score user {user!r}"
            else:
                why = f"user {user!r} is not in the model's training data"
            ignored.append({"field": "user", "reason": f"{why}; ranked by {source}"})
        if source == "model-history":
            used.append("history_items")
            unseen = [i for i in dict.fromkeys(history_items) if i not in self.model.item_index_]
            if unseen:
                ignored.append({"field": "history_items", "items": unseen, "reason": "the model "
                                "never saw these items in training; it ranks from the others"})  # fmt: skip
            if texts:
                ignored.append({"field": "history_texts", "reason": "the sequential model ranks "
                                "from history_items alone"})  # fmt: skip
            return used, ignored
        no_vector = [i for i in dict.fromkeys(history_items) if i not in self.store]
        if any(i in self.store for i in history_items):
            used.append("history_items")
        if no_vector:
            ignored.append({"field": "history_items", "items": no_vector, "reason": "the server "
                            "holds no vector for these items: start it with --item-features or "
                            "--data covering them, or PUT them"})  # fmt: skip
        if texts:
            if source == "text-profile":
                used.append("history_texts")
            else:
                ignored.append({"field": "history_texts", "reason": "the server holds no item "
                                "vectors to compare them with: start it with --item-features or "
                                "--data"})  # fmt: skip
        return used, ignored

    def _on_one_scale(self, result: dict[str, Any]) -> dict[str, Any]:
        """Every path's ``score`` in [-1, 1], higher better, and ``score_scale`` saying how:
        ``cosine`` (text-profile: the cosine itself), ``popularity-share`` (training
        interactions over those of the most popular item, in [0, 1]), ``model-share`` (the
        model's score over the largest absolute score in this answer: a model's scores have
        no common bound). ``raw_score`` keeps the path's own number."""
        source, items = result["source"], result["items"]
        if source == "text-profile":
            scale, divisor = "cosine", 1.0
        elif source == "popularity":
            scale, divisor = "popularity-share", self.popular[0][1]
        else:
            scale = "model-share"
            divisor = max((abs(r["score"]) for r in items), default=0.0) or 1.0
        result["items"] = [{"item": r["item"], "score": r["score"] / divisor,
                            "raw_score": r["score"]} for r in items]  # fmt: skip
        return {**result, "score_scale": scale}

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
            exclude |= set(self.bundle.seen.get(user, ()))
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
        center = self.store.mean().astype(np.float64)
        mean = history.astype(np.float64).mean(axis=0)
        profile = unit_rows(mean - center)
        excluded = [self.store.index[i] for i in exclude if i in self.store.index]
        # The approximate index only narrows which rows are scored (None: all of them), so
        # the scores are the exact path's.
        rows = None if self.index is None else self.index.candidates(mean, k, excluded)
        vectors = self.store.vectors if rows is None else self.store.vectors[rows]
        norms = self.store.centred_norms() if rows is None else self.store.centred_norms()[rows]
        # cos(v - c, p) = (v.p - c.p) / |v - c|: one float32 product over the stored rows,
        # the centred lengths cached per store version (no float64 copy of the store)
        dots = (vectors @ profile.astype(np.float32)).astype(np.float64) - float(center @ profile)
        scores = dots / np.maximum(norms, 1e-12)
        if excluded and rows is None:
            scores[excluded] = -np.inf
        ids = self.store.ids if rows is None else [self.store.ids[r] for r in rows]
        take = min(k, int(np.isfinite(scores).sum()))
        best = np.argpartition(-scores, take - 1)[:take] if take else np.zeros(0, np.int64)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [{"item": ids[j], "score": float(scores[j])} for j in best]
