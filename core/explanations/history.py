"""The user's training history as the model ranks from it, and the history items an
explanation cites: the largest terms of ``RecModel.history_contributions``."""

from __future__ import annotations

from typing import Any

import numpy as np

from recfeat.errors import DataError, UsageError


def check_explains(model, what: str = "history") -> None:
    """UsageError in one line when ``model`` explains nothing (or not ``what``)."""
    name = getattr(model, "name", None) or type(model).__name__
    explains = tuple(getattr(model, "explains", ()))
    if not explains:
        raise UsageError(
            f"model {name!r} explains nothing: its scores do not decompose over the user's "
            "history (rating models, popularity, bpr); explain content, ease, ease-text, als, "
            "hybrid-als, sasrec, sasrec-text, item-knn-last or text-knn-last"
        )
    if what not in explains:
        raise UsageError(f"model {name!r} explains {', '.join(explains)}, not {what}")


def user_history(model, user: str, *, seen: dict[str, Any] | None = None,
                 interactions=None) -> list[str]:  # fmt: skip
    """The items of ``user``'s training history, oldest first where the model keeps an
    order: the model's own record when it keeps one (sequential models, EASE), else the
    bundle's ``seen`` lists, else the ``interactions`` the model was trained on."""
    if model.user_codes([user])[0] < 0:
        example = model.users_[0] if len(model.users_) else "?"
        raise DataError(
            f"user {user!r} is not one the model was trained on (e.g. {example!r}); an "
            "explanation cites the user's own training history"
        )
    code = int(model.user_codes([user])[0])
    if hasattr(model, "history_items_") and hasattr(model, "history_offsets_"):
        start, end = model.history_offsets_[code], model.history_offsets_[code + 1]
        return [str(i) for i in model.items_[model.history_items_[start:end]]]
    if hasattr(model, "history_"):  # EASE's binary user x item matrix: what it scores with
        return [str(i) for i in model.items_[model.history_[code].indices]]
    if seen is not None and user in seen:
        return [str(i) for i in seen[user]]
    if interactions is not None:
        rows = interactions[interactions["user"].astype(str) == user]
        if "timestamp" in rows.columns:
            rows = rows.sort_values("timestamp", kind="stable")
        return rows["item"].astype(str).tolist()
    raise UsageError(
        f"model {model.name!r} keeps no per-user history; pass data (the interactions it was "
        "trained on) or explain a bundle from recfeat train"
    )


def cite(contributions: np.ndarray, history: list[str], top: int) -> list[tuple[str, float]]:
    """The ``top`` history items with the largest positive contribution to one item's
    score (``contributions``: one value per history position; repeats of an item summed),
    largest first. Items that lower the score are not evidence for it and are not cited."""
    totals: dict[str, float] = {}
    for item, value in zip(history, contributions, strict=True):
        if np.isfinite(value):
            totals[item] = totals.get(item, 0.0) + float(value)
    ranked = sorted(((v, i) for i, v in totals.items() if v > 0), key=lambda t: (-t[0], t[1]))
    return [(i, v) for v, i in ranked[:top]]
