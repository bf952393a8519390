"""``"explain": true`` on ``POST /recommend``: each ranked item gets the evidence of
``recfeat.explanations`` (same shape as ``recfeat.explain``), from the request's own
history and texts and the user's training history, per path:

- ``model`` / ``model-history``: the history items that add most to the item's score under
  the model (``RecModel.history_contributions``: the user's training history, or the
  request's ``history_items`` for a sequential model), as far as the model explains;
- ``text-profile``: the profile is the mean of the request's text and item vectors, so a
  history item adds <v_j - c, unit(v_i - c)> / (n |p|) to the cosine (c the mean item
  vector, p the centred profile, n the vectors averaged): exact terms of the score;
- every path but popularity: the sentences of the request's ``history_texts`` closest to
  the item (cosine of the centred vectors, encoded by the served encoder).

The server has no reviews of its own to quote: sentences come only from the request.
Tokens are shown when the model's item features carry token features and the request
sends ``history_texts``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfeat.encode.similarity import unit_rows
from recfeat.errors import RecfeatError
from recfeat.explanations.explanation import TextSide, item_entries, lookup_tokens, token_side
from recfeat.explanations.text import UserSentences, user_tokens

TEXT_PROFILE_EXPLAINS = ("history", "sentences")


def explain_ranking(rec, result: dict[str, Any], *, user: str | None, history_items: list[str],
                    history_vectors: np.ndarray | None, sentences: UserSentences | None,
                    texts: list[str]) -> dict[str, Any]:  # fmt: skip
    """``result`` (a /recommend answer) with each item explained and ``notes`` saying what
    could not be (``rec``: the Recommender; ``texts``: the request's cleaned history texts)."""
    notes: list[str] = []
    source = result["source"]
    ids = [r["item"] for r in result["items"]]
    scores = [r["score"] for r in result["items"]]
    if source == "popularity":
        notes.append("popularity ranks by training counts: nothing here comes from this user")
        entries = item_entries((), ids, scores, history=[], contributions=None, text=None)
    elif source == "text-profile":
        entries = _text_profile(rec, ids, scores, history_items, history_vectors, sentences)
    else:
        entries = _model(rec, source, user, ids, scores, history_items, sentences, texts, notes)
    if sentences is None and any("sentences" in e["explains"] for e in entries):
        notes.append("sentences: send history_texts (the user's own texts) to see them")
    items = [{**row, **entry} for row, entry in zip(result["items"], entries, strict=True)]
    return {**result, "items": items, "notes": notes}


def _model(rec, source, user, ids, scores, history_items, sentences, texts, notes):
    model = rec.model
    explains = tuple(model.explains)
    if not explains:
        notes.append(f"model {rec.bundle.name!r} explains nothing: its scores do "
                     "not decompose over the user's history")  # fmt: skip
        return item_entries((), ids, scores, history=[], contributions=None, text=None)
    if source == "model":
        history = [str(i) for i in rec.bundle.seen.get(user, ())]
    else:
        history = [str(i) for i in history_items]
    extra = None
    if rec.new_items_to_model and rec.store.added:
        extra = rec.store.features(sorted(rec.store.added))
    contributions = None
    if "history" in explains and ids:
        try:
            contributions = model.history_contributions(history, ids, extra)
        except RecfeatError as exc:
            notes.append(f"history: {exc}")
    text = _store_side(rec, sentences)
    if sentences is not None and ids and not rec.store.lookup(ids)[1].any():
        notes.append("sentences: the server holds no vectors for these items; start it with "
                     "--item-features (or --data with item texts) to compare them")  # fmt: skip
    if "tokens" in explains and texts:
        feats = [f for f in (getattr(model, "item_features_", None),) if f is not None]
        tokenizer, columns = _tokenizer(rec, feats, notes)
        if tokenizer is not None:
            text.tokens = user_tokens(texts, tokenizer)
            text.token_rows = lambda items: lookup_tokens(feats, items)
            text.columns = columns
    return item_entries(explains, ids, scores, history=history, contributions=contributions,
                        text=text)  # fmt: skip


def _tokenizer(rec, feats: list, notes: list[str]):
    """The token features' tokenizer, loaded once per server (a note each time it cannot be)."""
    cached = getattr(rec, "explain_tokenizer", None)
    if cached is None:
        found: list[str] = []
        tokenizer, columns = token_side(feats, found) if feats else (None, None)
        cached = rec.explain_tokenizer = (tokenizer, columns, found)
    notes.extend(cached[2])
    return cached[0], cached[1]


def _text_profile(rec, ids, scores, history_items, history_vectors, sentences):
    """History terms of the text profile's cosine (see the module doc)."""
    store = rec.store
    center = store.mean()
    hvecs, found = store.lookup(history_items) if history_items else (np.zeros((0, store.dim)), [])
    history = [i for i, ok in zip(history_items, found, strict=True) if ok]
    rows = [hvecs[np.asarray(found, dtype=bool)]] if history else []
    if history_vectors is not None and len(history_vectors):
        rows.append(history_vectors)
    every = np.concatenate(rows).astype(np.float64) - center
    profile = every.mean(axis=0)
    norm = max(float(np.linalg.norm(profile)), 1e-12)
    item_vecs, item_found = store.lookup(ids)
    unit = unit_rows(item_vecs.astype(np.float64) - center)
    item_rows = hvecs[np.asarray(found, dtype=bool)].astype(np.float64) - center if history else \
        np.zeros((0, store.dim))  # fmt: skip
    contributions = item_rows @ unit.T / (len(every) * norm)
    contributions[:, ~np.asarray(item_found, dtype=bool)] = np.nan
    return item_entries(TEXT_PROFILE_EXPLAINS, ids, scores, history=history,
                        contributions=contributions, text=_store_side(rec, sentences))  # fmt: skip


def _store_side(rec, sentences: UserSentences | None) -> TextSide:
    """Sentences against the stored item vectors (the served encoder's space)."""
    store = rec.store
    return TextSide(sentences=sentences, vectors=lambda items: store.lookup(items),
                    center=store.mean() if len(store) else None)  # fmt: skip
