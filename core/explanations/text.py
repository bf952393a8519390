"""Text evidence from the user's OWN reviews: the sentences closest to an item, and the
tokens the user's reviews share with the item's token features.

The only texts read are the rows of the reviews table whose ``user`` is the user being
explained (``own_reviews``); an item's vector and token row are numbers built from many
reviews, and only words the user wrote themself are ever shown (a shared token must occur
in the user's own text). Sentences are encoded with the encoder the features were made
with, so a sentence and an item are compared in the space the item vectors live in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import numpy as np

#: a sentence ends at . ! ? followed by a space or a capital (reviews often skip the
#: space: "affordable.I did"), or at a line break
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|(?<=[.!?])(?=[A-Z])|[\r\n]+")
MIN_CHARS = 3
#: sentences encoded per user at most (a long history stays cheap to explain)
MAX_SENTENCES = 256


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, stripped; fragments without a letter or shorter than
    ``MIN_CHARS`` are dropped."""
    out = []
    for part in _BOUNDARY.split(text or ""):
        part = part.strip()
        if len(part) >= MIN_CHARS and any(ch.isalpha() for ch in part):
            out.append(part)
    return out


def own_reviews(reviews, user: str) -> list[tuple[str, str]]:
    """``(item, text)`` of ``user``'s own reviews, and nothing else: the one place text
    enters an explanation."""
    if reviews is None or not len(reviews) or "text" not in reviews.columns:
        return []
    mine = reviews[reviews["user"].astype(str) == str(user)]
    return [(str(i), str(t)) for i, t in zip(mine["item"], mine["text"].fillna(""), strict=True)
            if str(t).strip()]  # fmt: skip


@dataclasses.dataclass
class UserSentences:
    """A user's own sentences, the item each came from, and their vectors (None: not encoded)."""

    texts: list[str]
    items: list[str]
    vectors: np.ndarray | None


def user_sentences(reviews: list[tuple[str, str]], encode: Callable[[list[str]], Any] | None,
                   cleaner=None) -> UserSentences:  # fmt: skip
    """Split the user's reviews (cleaned as the features' texts were, when ``cleaner`` is
    given) into sentences and encode them once with ``encode`` (texts -> (n, dim))."""
    texts, items, seen = [], [], set()
    raw = [t for _, t in reviews]
    cleaned = cleaner.clean(raw) if cleaner is not None and raw else raw
    for (item, _), text in zip(reviews, cleaned, strict=True):
        for sentence in split_sentences(text):
            if sentence not in seen and len(texts) < MAX_SENTENCES:
                seen.add(sentence)
                texts.append(sentence)
                items.append(item)
    vectors = None
    if encode is not None and texts:
        vectors = np.asarray(encode(texts), dtype=np.float64)
    return UserSentences(texts, items, vectors)


def closest_sentences(sentences: UserSentences, item_vector: np.ndarray | None,
                      center: np.ndarray | None, top: int) -> list[dict[str, Any]]:  # fmt: skip
    """The ``top`` sentences closest (cosine, both centred on ``center``, the mean item
    vector: MiniLM-style vectors share one large direction) to ``item_vector``; only
    sentences on the item's side (cosine > 0) count as evidence for it."""
    if sentences.vectors is None or item_vector is None or not len(sentences.texts) or top < 1:
        return []
    c = 0.0 if center is None else center
    rows = _unit(sentences.vectors - c)
    sims = rows @ _unit(np.asarray(item_vector, dtype=np.float64) - c)
    best = [j for j in np.argsort(-sims, kind="stable")[:top] if sims[j] > 0]  # none: not close
    return [{"text": sentences.texts[j], "similarity": round(float(sims[j]), 4),
             "review_item": sentences.items[j]} for j in best]  # fmt: skip


# -- tokens ------------------------------------------------------------------------------------
@dataclasses.dataclass
class UserTokens:
    """Share of each token id in the user's own texts, and how to show an id as a word."""

    share: dict[int, float]
    decode: Callable[[list[int]], list[str]]


def user_tokens(texts: list[str], tokenizer) -> UserTokens:
    """Token ids of the user's own ``texts`` (special tokens left out) as shares of all
    their tokens; ``tokenizer`` is the one the token features were made with."""
    special = set(getattr(tokenizer, "special_ids", ()))
    counts: dict[int, int] = {}
    if texts:
        for row in tokenizer.tokenize(list(texts)).ids:
            for token in row:
                if int(token) not in special:
                    counts[int(token)] = counts.get(int(token), 0) + 1
    total = max(sum(counts.values()), 1)
    return UserTokens({k: v / total for k, v in counts.items()}, tokenizer.convert_ids_to_tokens)


def shared_tokens(user: UserTokens, item_row, columns: np.ndarray, top: int) -> list[dict[str, Any]]:
    """Tokens in both the user's own texts and the item's token row (``item_row``: a 1-row
    sparse matrix whose column j is token ``columns[j]``), ranked by (item weight x the
    token's share of the user's text), shown as words: word pieces (``##ing``), punctuation
    and English stop words are left out."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    row = item_row.tocsr()
    pairs = []
    for col, weight in zip(row.indices, row.data, strict=True):
        token = int(columns[col])
        if token in user.share and weight > 0:
            pairs.append((float(weight) * user.share[token], token))
    pairs.sort(key=lambda p: (-p[0], p[1]))
    out: list[dict[str, Any]] = []
    for (weight, _), word in zip(pairs, user.decode([t for _, t in pairs]), strict=True):
        word = _word(word)
        if word and word not in ENGLISH_STOP_WORDS and all(o["token"] != word for o in out):
            out.append({"token": word, "weight": round(weight, 6)})
        if len(out) >= top:
            break
    return out


def _word(piece: str) -> str | None:
    """A token as a word: byte-level BPE's space marker dropped; None for a word piece
    that continues another (``##s``), punctuation or a single character."""
    if piece.startswith("##"):
        return None
    word = piece.lstrip("\u0120\u2581").strip()  # GPT-2's 'Ġ', SentencePiece's '▁'
    if len(word) < 2 or not any(ch.isalnum() for ch in word):
        return None
    return word.lower()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
