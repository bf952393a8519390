"""Re-scoring a user from an edited history, and the exact share of each history item in a
score, for the models whose score is linear in the user's history (``recfeat.explain``).

Each function takes the fitted model, ``history`` (codes of training items, oldest first,
repeats allowed) and the items to score (ids), and reads only what the model itself scores
with, so an unedited history gives the model's own scores (tests/test_explain.py):

- EASE / ease-text: score(i) = sum over distinct history items j of B[j, i] (the fitted
  weights; a cold item's column for ease-text). The terms are exact.
- ALS (implicit's normal equations): p = A^-1 b with A = Y'Y + reg I + sum_j (c_j - 1) y_j y_j'
  and b = sum_j c_j y_j, c_j = alpha x (times j occurs); score(i) = y_i' p, so item j adds
  c_j y_i' A^-1 y_j: what implicit's own ``explain`` computes. The trained user factors came
  from conjugate-gradient steps half an iteration before the last item update, so the
  exact re-solve differs from them slightly; the faithfulness test re-scores every history,
  the unedited one included, this same way.
- hybrid-als: the same with its own solve, A = Q'Q + reg I + alpha Q_S'Q_S, b = (1 + alpha)
  Q_S'1 over the distinct history items (its training counts each pair once).
- content: the profile is the mean of the centred history vectors, p = sum_j (v_j - o) / n,
  and the score the cosine <p / |p|, u_i> (u_i the item's centred unit vector), so item j
  adds <v_j - o, u_i> / (n |p|); with the popularity prior the cosine is standardised per
  user, and the prior itself owes nothing to the history. ``content.py`` passes its
  ``item_vectors`` (the vectors it scores with, token mix included) in: this module imports
  no model module, so the models can import it.
"""

from __future__ import annotations

import numpy as np

from recfeat.errors import UsageError

#: what ``recfeat.explain`` shows for an ID-only model, and for a text model (``explains``)
HISTORY = ("history",)
HISTORY_AND_TEXT = ("history", "sentences", "tokens")


# -- EASE ------------------------------------------------------------------------------------
def ease_columns(model, items, item_features) -> np.ndarray:
    """(training items, items): B's columns of ``items``; NaN columns where unscorable."""
    ic = model.item_codes(items)
    cols = np.full((len(model.items_), len(items)), np.nan)
    warm = ic >= 0
    cols[:, warm] = model.weights_[:, ic[warm]]
    cold = ~warm
    if cold.any() and hasattr(model, "_cold_columns"):  # ease-text places them by their text
        part, found = model._cold_columns(items[cold], item_features)
        part[:, ~found] = np.nan
        cols[:, cold] = part
    return cols


def ease_contributions(model, history, items, item_features) -> np.ndarray:
    cols = ease_columns(model, items, item_features)
    out = cols[history]
    out[_repeats(history)] = 0.0  # the binary history counts an item once
    return out


def ease_fold_in(model, history, items, item_features) -> np.ndarray:
    return ease_contributions(model, history, items, item_features).sum(axis=0)


# -- ALS (implicit) and hybrid-als -------------------------------------------------------------
def _ridge_terms(model, history, *, hybrid: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, rows of the history items' factors, their weights c_j) of the user solve."""
    y = model.item_factors_
    codes, counts = np.unique(history, return_counts=True)
    k = y.shape[1]
    if hybrid:  # each (user, item) pair once: weight (1 + alpha), extra alpha in A
        weights = np.full(len(codes), 1.0 + model.alpha)
        extra, reg = np.full(len(codes), float(model.alpha)), float(model.reg)
    else:  # implicit: confidence alpha x count (its matrix sums repeated rows)
        weights = float(model.alpha) * counts
        extra, reg = weights - 1.0, float(model.regularization)
    rows = y[codes]
    a = y.T @ y + reg * np.eye(k) + (rows * extra[:, None]).T @ rows
    if hybrid and reg == 0:
        a += 1e-8 * np.eye(k)  # as its own solve does
    return a, rows, weights


def factor_contributions(model, history, items, item_factors, *, hybrid: bool) -> np.ndarray:
    """(len(history), len(items)): c_j y_j' A^-1 y_i per history position (repeats: the
    first position carries the item's whole term)."""
    a, rows, weights = _ridge_terms(model, history, hybrid=hybrid)
    solved = np.linalg.solve(a, item_factors.T)  # (k, items): A^-1 y_i
    per_item = (rows * weights[:, None]) @ solved  # distinct history items x items
    codes = np.unique(history)
    out = np.zeros((len(history), len(items)))
    first = ~_repeats(history)
    out[first] = per_item[np.searchsorted(codes, history[first])]
    return out


def als_item_factors(model, items) -> tuple[np.ndarray, np.ndarray]:
    ic = model.item_codes(items)
    return model.item_factors_[np.maximum(ic, 0)], ic >= 0


def als_contributions(model, history, items, item_features) -> np.ndarray:
    q, ok = als_item_factors(model, items)
    out = factor_contributions(model, history, items, q, hybrid=False)
    out[:, ~ok] = np.nan
    return out


def als_fold_in(model, history, items, item_features) -> np.ndarray:
    return als_contributions(model, history, items, item_features).sum(axis=0)


def hybrid_contributions(model, history, items, item_features) -> np.ndarray:
    q, scorable = model._item_side(items, item_features)
    out = factor_contributions(model, history, items, q, hybrid=True)
    out[:, ~scorable] = np.nan
    return out


def hybrid_fold_in(model, history, items, item_features) -> np.ndarray:
    return hybrid_contributions(model, history, items, item_features).sum(axis=0)


# -- content -------------------------------------------------------------------------------------
def _content_profile(model, history, item_vectors) -> tuple[np.ndarray, int, float]:
    """(centred history vectors, zeros where an item has none; how many have one; |p|)."""
    if model.weighting != "mean":
        raise UsageError(
            f"content with weighting={model.weighting!r} weights the history by its ratings, "
            "which explanations do not see; explain a content model with weighting='mean'"
        )
    if getattr(model, "item_features_", None) is None:
        raise UsageError("content: this model has no item vectors (trained on user features "
                         "only), so its scores do not come from the history")  # fmt: skip
    vecs, found = item_vectors(model, model.items_[history])
    centred = (vecs - model.offset_) * found[:, None]
    n = int(found.sum())
    return centred, n, float(np.linalg.norm(centred.sum(axis=0) / max(n, 1)))


def _cosine_spread(model, profile_unit: np.ndarray, item_vectors) -> tuple[float, float]:
    """Mean and spread of the profile's cosine over the training items (the popularity
    prior standardises each user's cosines by them, as ``ContentModel`` does in fit)."""
    vecs, found = item_vectors(model, model.items_)
    cos = l2_normalise(vecs[found] - model.offset_) @ profile_unit
    return float(cos.mean()), max(float(cos.std()), 1e-12)


def content_contributions(model, history, items, item_features, item_vectors) -> np.ndarray:
    centred, n, norm = _content_profile(model, history, item_vectors)
    if n == 0:
        return np.full((len(history), len(items)), np.nan)
    norm = max(norm, 1e-12)  # as l2_normalise in fit
    cand, cand_found = item_vectors(model, items, item_features)
    out = centred @ l2_normalise(cand - model.offset_).T / (n * norm)
    if model.popularity_weight > 0:
        out /= _cosine_spread(model, centred.sum(axis=0) / (n * norm), item_vectors)[1]
    out[:, ~cand_found] = np.nan
    return out


def content_fold_in(model, history, items, item_features, item_vectors) -> np.ndarray:
    centred, n, norm = _content_profile(model, history, item_vectors)
    if n == 0:  # no profile: the model scores nothing for such a user
        return np.full(len(items), np.nan)
    norm = max(norm, 1e-12)
    scores = content_contributions(model, history, items, item_features, item_vectors).sum(axis=0)
    if model.popularity_weight > 0:
        mean, spread = _cosine_spread(model, centred.sum(axis=0) / (n * norm), item_vectors)
        cand, cand_found = item_vectors(model, items, item_features)
        unit = l2_normalise(cand - model.offset_)
        scores = (scores - mean / spread
                  + model.popularity_weight * model._popularity(items, unit, cand_found))  # fmt: skip
    return scores


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Unit rows (the text models' one normaliser; ``content`` re-exports it)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _repeats(history: np.ndarray) -> np.ndarray:
    """True at every position whose item already occurred earlier in ``history``."""
    seen = np.zeros(len(history), dtype=bool)
    _, first = np.unique(history, return_index=True)
    seen[first] = True
    return ~seen
