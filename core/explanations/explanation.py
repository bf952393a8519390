"""What an explanation looks like, built in one place for the Python API
(``recfeat.explain``), ``recfeat recommend --explain`` and ``serve``'s ``"explain": true``.

One user's explanation::

    {"user", "model", "explains": [...], "history_size", "notes": [...],
     "items": [{"item", "score", "rank", "explains": [...],
                "history":   [{"item", "contribution"}, ...],      # models explaining history
                "sentences": [{"text", "similarity", "review_item"}, ...],   # text models
                "tokens":    [{"token", "weight"}, ...]}, ...]}             # text models

A key is present when the model explains that kind of evidence (``RecModel.explains``);
an empty list then means there was none, and ``notes`` says why (no review texts given,
features without token features...). Every text comes from the user's own reviews.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from recfeat.errors import DataError, RecfeatError
from recfeat.explanations.history import check_explains, cite, user_history
from recfeat.explanations.text import (
    UserSentences,
    UserTokens,
    closest_sentences,
    own_reviews,
    shared_tokens,
    user_sentences,
    user_tokens,
)

if TYPE_CHECKING:
    from recfeat.training.bundle import TrainedModel

#: history items, sentences and tokens shown per recommended item by default
TOP_HISTORY, TOP_SENTENCES, TOP_TOKENS = 3, 3, 5
#: encoder settings a features manifest records that change the vectors
_ENCODER_SETTINGS = ("pooling", "normalize", "max_length", "precision")


@dataclasses.dataclass
class TextSide:
    """One user's text evidence and the item side it is compared with: dense item vectors
    (``vectors(ids) -> (rows, found)``) centred on ``center``, and token rows
    (``token_rows(ids) -> (CSR, found)``) whose column j is tokenizer id ``columns[j]``."""

    sentences: UserSentences | None = None
    tokens: UserTokens | None = None
    vectors: Callable[[list[str]], tuple[np.ndarray, np.ndarray]] | None = None
    center: np.ndarray | None = None
    token_rows: Callable[[list[str]], tuple[Any, np.ndarray]] | None = None
    columns: np.ndarray | None = None


def item_entries(explains: Sequence[str], items: Sequence[str], scores: Sequence[float], *,
                 history: list[str], contributions: np.ndarray | None, text: TextSide | None,
                 top: int = TOP_HISTORY, sentences: int = TOP_SENTENCES,
                 tokens: int = TOP_TOKENS) -> list[dict[str, Any]]:  # fmt: skip
    """The per-item part of an explanation (see the module doc); ``contributions``: the
    model's (len(history), len(items)) history terms, or None."""
    items = [str(i) for i in items]
    text = text or TextSide()
    vecs = found = rows = tfound = None
    if "sentences" in explains and text.sentences is not None and text.vectors is not None:
        vecs, found = text.vectors(items)
    if "tokens" in explains and text.tokens is not None and text.token_rows is not None:
        rows, tfound = text.token_rows(items)
    out = []
    for r, (item, score) in enumerate(zip(items, scores, strict=True)):
        entry: dict[str, Any] = {"item": item, "score": _number(score), "rank": r + 1,
                                 "explains": list(explains)}  # fmt: skip
        if "history" in explains:
            cited = [] if contributions is None else cite(contributions[:, r], history, top)
            entry["history"] = [{"item": i, "contribution": round(v, 6)} for i, v in cited]
        if "sentences" in explains:
            vec = vecs[r] if vecs is not None and found[r] else None
            entry["sentences"] = (closest_sentences(text.sentences, vec, text.center, sentences)
                                  if text.sentences is not None else [])  # fmt: skip
        if "tokens" in explains:
            entry["tokens"] = (shared_tokens(text.tokens, rows[r], text.columns, tokens)
                               if rows is not None and tfound[r] else [])  # fmt: skip
        out.append(entry)
    return out


def explain_bundle(bundle: TrainedModel, user: str, items: Sequence[str] | None = None, *,
                   k: int = 10, reviews=None, interactions=None, extra_features=None,
                   include_seen: bool = False, encoder=None, top: int = TOP_HISTORY,
                   sentences: int = TOP_SENTENCES, tokens: int = TOP_TOKENS) -> dict[str, Any]:  # fmt: skip
    """Explain ``user``'s top ``k`` items (as ``recommend`` ranks them) or the given
    ``items`` under a trained model. ``reviews``: the reviews table whose rows by ``user``
    give sentences and tokens; ``interactions``: the training interactions, for a model
    that keeps no per-user history; ``encoder``: encodes sentences (default: the encoder
    named by the model's features manifest)."""
    from recfeat.training.bundle import check_bundle, recommend

    bundle = check_bundle(bundle)
    model = bundle.model
    check_explains(model)
    explains = tuple(model.explains)
    history = user_history(model, user, seen=bundle.seen, interactions=interactions)
    if user not in bundle.seen:  # a fitted model: its history is what was seen
        bundle = dataclasses.replace(bundle, seen={**bundle.seen, user: history})
    if items is None:
        (ranking,) = recommend(bundle, [user], k, extra_features=extra_features,
                               include_seen=include_seen, snippets={})  # fmt: skip
        items, scores = ranking.items, ranking.scores
    else:
        items = [str(i) for i in items]
        if not items:
            raise DataError("items is empty; pass the item ids to explain, or None for the top k")
        scores = model.score_items([user], items, item_features=extra_features)[0].tolist()
    contributions = None
    if "history" in explains and items:
        contributions = model.history_contributions(history, items, extra_features)
    notes: list[str] = []
    text = None
    if "sentences" in explains or "tokens" in explains:
        text = text_side(model, user, reviews, extra_features, encoder, notes)
    return {
        "user": user, "model": bundle.name, "explains": list(explains),
        "history_size": len(history), "notes": notes,
        "items": item_entries(explains, items, scores, history=history,
                              contributions=contributions, text=text, top=top,
                              sentences=sentences, tokens=tokens),
    }  # fmt: skip


def text_side(model, user: str, reviews, extra_features, encoder, notes: list[str]) -> TextSide:
    """The user's own sentences and tokens, and the model's item vectors and token rows to
    compare them with; what is missing is said in ``notes``, never raised."""
    feats = [f for f in (getattr(model, "item_features_", None), extra_features)
             if f is not None and hasattr(f, "lookup")]  # fmt: skip
    side = TextSide()
    if not feats:
        notes.append("sentences, tokens: the model holds no item vectors to compare with")
        return side
    base = feats[0]
    mine = own_reviews(reviews, user)
    if reviews is None:
        notes.append("sentences, tokens: no review texts given; pass data (the dataset with "
                     "this user's reviews)")  # fmt: skip
    elif not mine:
        notes.append(f"sentences, tokens: user {user!r} has no review text in the data given")
    cleaner = _cleaner(base.manifest, notes)
    side.vectors = lambda ids: _lookup(feats, ids)
    side.center = np.asarray(base.vectors, dtype=np.float64).mean(axis=0)
    if mine:
        encode = _sentence_encoder(base.manifest, encoder, notes)
        side.sentences = user_sentences(mine, encode, cleaner)
        if encode is None:
            side.sentences = None
    tokenizer, columns = token_side(feats, notes)
    if tokenizer is not None and mine:
        texts = [t for _, t in mine]
        side.tokens = user_tokens(cleaner.clean(texts) if cleaner is not None else texts, tokenizer)
        side.token_rows = lambda ids: lookup_tokens(feats, ids)
        side.columns = columns
    return side


def _lookup(feats: list, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Dense vectors of ``ids``: prediction-time features win over the fitted ones."""
    out = np.zeros((len(ids), feats[0].dim))
    found = np.zeros(len(ids), dtype=bool)
    for f in feats:
        vec, ok = f.lookup(ids)
        out[ok] = vec[ok]
        found |= ok
    return out, found


def lookup_tokens(feats: list, ids: list[str]):
    """Token rows of ``ids`` (CSR) and the found mask, prediction-time features first."""
    import scipy.sparse as sp

    with_tokens = [f for f in feats if getattr(f, "tokens", None) is not None]
    width = with_tokens[0].tokens.shape[1]
    chosen: list = [None] * len(ids)
    for f in with_tokens:
        if f.tokens.shape[1] != width:
            continue  # another extraction's columns: not comparable
        part, ok = f.lookup_tokens(ids)
        for r in np.flatnonzero(ok):
            chosen[r] = part[r]
    empty = sp.csr_matrix((1, width), dtype=np.float32)
    found = np.array([c is not None for c in chosen], dtype=bool)
    rows = sp.vstack([empty if c is None else c for c in chosen]).tocsr() if ids else empty[:0]
    return rows, found


def token_side(feats: list, notes: list[str]):
    """(tokenizer, column token ids) of the features' token features, or (None, None)."""
    from recfeat.plugin.registry import get_registry

    base = feats[0]
    if getattr(base, "tokens", None) is None:
        notes.append("tokens: the features carry no token features; extract them with "
                     "--token-features tfidf")  # fmt: skip
        return None, None
    columns = getattr(base, "token_columns", None)
    if columns is None:
        notes.append("tokens: the token features' columns are hashed, not token ids, so they "
                     "cannot be shown as words; extract with --token-features tfidf")  # fmt: skip
        return None, None
    name = getattr(base, "token_model", None)
    spec = base.manifest.get("token_features") if isinstance(base.manifest, dict) else None
    length = spec.get("max_length", 512) if isinstance(spec, dict) else 512
    try:
        featurizer = _featurizer(spec)
        if hasattr(featurizer, "tokenizer_model"):
            # e.g. a learned sparse encoder: its columns are its own model's vocabulary
            name = featurizer.tokenizer_model()
        tokenizer = get_registry("tokenizer").create("hf", model=name, max_length=int(length),
                                                     add_special_tokens=False)  # fmt: skip
        tokenizer.tokenize(["probe"])  # loads it now: a missing tokenizer is a note, not a failure
    except (RecfeatError, OSError, TypeError, ValueError) as exc:
        notes.append(f"tokens: cannot load the tokenizer {name!r} of the token features: {exc}")
        return None, None
    return tokenizer, np.asarray(columns)


def _sentence_encoder(manifest: dict[str, Any], encoder, notes: list[str]):
    """``texts -> vectors`` with ``encoder`` or the encoder the features were made with."""
    if isinstance(manifest.get("adaptor"), dict) and encoder is None:
        notes.append("sentences: the features went through an adaptor (recfeat adapt), so raw "
                     "sentence vectors are not comparable with them; pass encoder=")  # fmt: skip
        return None
    if encoder is None:
        try:
            encoder = features_encoder(manifest)
        except RecfeatError as exc:
            notes.append(f"sentences: {exc}")
            return None
    return encoder.encode


def features_encoder(manifest: dict[str, Any]):
    """The encoder named by a features manifest, with the settings that shape its vectors;
    RecfeatError when it is not available here or its weights differ from the manifest's."""
    from recfeat.plugin.registry import get_registry

    name = manifest.get("encoder_name")
    registry = get_registry("encoder")
    if not isinstance(name, str) or name not in registry:
        raise RecfeatError(f"the features' encoder {name!r} is not available here; pass encoder=")
    made = manifest.get("encoder") if isinstance(manifest.get("encoder"), dict) else {}
    params = set(inspect.signature(registry.get(name).__init__).parameters)
    options = {k: made[k] for k in _ENCODER_SETTINGS if k in params and made.get(k) is not None}
    encoder = registry.create(name, **options)
    want = made.get("weights_sha256") or manifest.get("weights_sha256")
    have = encoder.fingerprint().get("weights_sha256") if want else None
    if want and have and want != have:
        raise RecfeatError(f"encoder {name!r} here has other weights than the features were "
                           "made with; pass encoder=")  # fmt: skip
    return encoder


def _cleaner(manifest: dict[str, Any], notes: list[str]):
    """The cleaner chain the features' texts went through, so sentences read as encoded."""
    from recfeat.extraction.stages import make_cleaner

    spec = manifest.get("cleaners")
    if not isinstance(spec, list) or not spec:
        return None
    try:
        return make_cleaner(spec)
    except RecfeatError as exc:
        notes.append(f"sentences: the features' cleaners are not available here ({exc}); "
                     "sentences are shown uncleaned")  # fmt: skip
        return None


def _number(x) -> float | None:
    x = float(x)
    return round(x, 6) if np.isfinite(x) else None


def _featurizer(spec):
    """The token featuriser a manifest's ``token_features`` spec names (unloaded), or None."""
    from recfeat.plugin.registry import get_registry

    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return None
    options = {k: v for k, v in spec.items() if k != "name"}
    return get_registry("tokenizer").create(spec["name"], **options)
