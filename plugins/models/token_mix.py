"""Dense vectors and sparse token features as one input for the text models.

A text model with ``token_weight`` w > 0 reads each item as

    [ sqrt(1 - w) * dense / s_dense ,  sqrt(w) * P(unit(tokens)) / s_tokens ]

- ``tokens``: the item's sparse token-feature row (TF-IDF over the encoder's own token ids,
  or a learned sparse encoder's vocabulary weights), made unit length so it is a cosine space;
- ``P``: the projection onto the top ``components`` right singular vectors of the TRAINING
  items' unit token rows (a truncated SVD fitted in ``fit``, seeded). Every model here
  compares an item with training items or with profiles built from them, and those lie in
  the span of the training rows, so with ``components`` >= that span's rank the projection
  keeps every such inner product exactly; smaller values keep its largest directions. It
  also makes the block dense and small, so every model takes it through the code it already
  has for dense vectors (hybrid-als' ridge, sasrec-text's input layer);
- ``s_dense``, ``s_tokens``: each block's root-mean-square distance from its training mean,
  so the weight, not the blocks' raw scales, sets their shares (models centre and normalise
  what they read, as before).

w = 0 is the dense vectors alone, untouched (no mix is built); w = 1 is the token features
alone. The weight is an ordinary option, so ``--tune`` chooses it on validation data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfeat.errors import DataError, OptionError

#: the SVD's width: enough for the training span of a catalogue of a few hundred items, small
#: enough that a saved model stays a few MB (components x vocabulary columns seen in training)
DEFAULT_COMPONENTS = 256
#: the token weights ``--tune`` tries (0: the dense vectors alone); tuning drops the option
#: when the features carry no token features
TOKEN_WEIGHTS = [0.0, 0.3, 0.5, 0.7]


def check_token_weight(name: str, weight: Any) -> None:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise OptionError(
            f"{name}: token_weight must be a number from 0 (dense vectors only) to 1 (token "
            f"features only), got {weight!r}"
        )


def fit_mix(weight: float, features, items, *, components: int = DEFAULT_COMPONENTS,
            seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The fitted mix for ``items`` (the training items): a dict of arrays and numbers, so
    it saves with the model like any other fitted attribute."""
    from sklearn.utils.extmath import randomized_svd

    if getattr(features, "tokens", None) is None:
        raise DataError(
            f"token_weight={weight:g} needs token features beside the vectors: extract with "
            "--token-features tfidf (one run writes both), or set token_weight=0"
        )
    dense, found = features.lookup(items)
    tokens, tfound = features.lookup_tokens(items)
    unit = _unit_rows(tokens[np.flatnonzero(tfound)])
    # Only the columns the training items use: the others are orthogonal to every training
    # row, so they cannot change an inner product with the training span.
    columns = np.flatnonzero(np.asarray(unit.getnnz(axis=0)) > 0)
    unit = unit[:, columns]
    if unit.shape[0] < 2 or unit.shape[1] < 2:
        raise DataError("token features: fewer than 2 training items with tokens; use token_weight=0")
    k = max(1, min(int(components), unit.shape[0] - 1, unit.shape[1] - 1))
    _, _, vt = randomized_svd(unit, k, random_state=int(seed))
    basis = np.ascontiguousarray(vt.T, dtype=np.float32)  # (columns, k)
    return {
        "weight": float(weight),
        "columns": columns.astype(np.int64),
        "basis": basis,
        "n_columns": int(tokens.shape[1]),
        "dense_scale": _spread(dense[found]),
        "token_scale": _spread(unit @ basis),
    }


def mix_width(mix: dict[str, Any], dense_dim: int) -> int:
    return int(dense_dim) + int(mix["basis"].shape[1])


def mix_lookup(mix: dict[str, Any], features, items) -> tuple[np.ndarray, np.ndarray]:
    """Mixed vectors of ``items`` (zeros where missing) and the found mask: an item needs a
    dense vector unless w = 1, and token features unless w = 0."""
    w = mix["weight"]
    dense, found = features.lookup(items)
    tokens, tfound = features.lookup_tokens(items)
    if tokens.shape[1] != mix["n_columns"]:
        raise DataError(
            f"token features have {tokens.shape[1]} columns but the model was trained on "
            f"{mix['n_columns']}; extract them in the same run (same --token-features) as the "
            "training features"
        )
    projected = np.asarray(_unit_rows(tokens)[:, mix["columns"]] @ mix["basis"], dtype=np.float64)
    out = np.hstack([
        dense.astype(np.float64) * (np.sqrt(1.0 - w) / mix["dense_scale"]),
        projected * (np.sqrt(w) / mix["token_scale"]),
    ])  # fmt: skip
    ok = np.ones(len(out), dtype=bool)
    if w < 1:
        ok &= found
    if w > 0:
        ok &= tfound
    out[~ok] = 0.0
    return out, ok


def _unit_rows(tokens):
    """Rows scaled to unit length (all-zero rows stay zero)."""
    from sklearn.preprocessing import normalize

    return normalize(tokens.tocsr(), norm="l2")


def _spread(x: np.ndarray) -> float:
    """Root-mean-square distance of the rows from their mean; 1 when there is none."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return 1.0
    rms = float(np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean()))
    return rms if rms > 0 else 1.0
