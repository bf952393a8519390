"""How a candidate backend compares with the reference: its vectors (``parity``: row
cosines to the reference's) and its downstream metrics (``relative_drop``). One rule for
``--backend auto``, the downstream gate and the benchmark harness.
"""

from __future__ import annotations

import math

import numpy as np

from recfeat.components.metric import LOWER_IS_BETTER
from recfeat.encode.similarity import cosine_rows


def relative_drop(reference: float, value: float, metric: str) -> float:
    """How much worse ``value`` is than ``reference`` as a fraction (negative: better)."""
    if reference is None or value is None or not math.isfinite(reference) or not math.isfinite(value):
        return float("nan")
    if reference == 0:
        return 0.0 if value == reference else float("inf")
    if metric.lower() in LOWER_IS_BETTER:
        return (value - reference) / abs(reference)
    return (reference - value) / abs(reference)


def parity(reference: np.ndarray | None, candidate: np.ndarray | None) -> dict[str, float | None]:
    """Mean and lowest row cosine of ``candidate`` to ``reference`` (None when either is
    missing)."""
    if reference is None or candidate is None:
        return {"cosine_mean": None, "cosine_min": None}
    cos = cosine_rows(reference, candidate)
    return {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
