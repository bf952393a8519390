"""Row-wise cosine similarity: the one rule every parity gate uses.

The exporter's validation (``recfeat.exporters.validate``), the benchmark parity and the
auto-backend gate (``recfeat.selection.compare``) and the benchmark scripts all call
``cosine_rows``, so a backend and an export are judged alike.

Zero rows are real: an empty text pools to a zero vector. The rule:

- two zero rows are the same vector: 1.0;
- a zero row against a non-zero row: 0.0 (a backend that returns zeros where the reference
  has a vector has lost it, and must not pass);
- otherwise the cosine, computed in float64 on rescaled unit rows and clipped to [-1, 1];
- a row with NaN or infinity gives NaN, so a mean over it fails every ``>=`` threshold.
"""

from __future__ import annotations

import numpy as np

from recfeat.errors import RecfeatError


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b`` (two (n, dim) matrices) -> (n,)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise RecfeatError(f"cannot compare embeddings of shapes {a.shape} and {b.shape}")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # Scale each row by its largest |value| first, then to unit length: neither the norm
        # nor the dot product can overflow or underflow, whatever the magnitudes.
        ma = np.abs(a).max(axis=1) if a.shape[1] else np.zeros(len(a))
        mb = np.abs(b).max(axis=1) if b.shape[1] else np.zeros(len(b))
        zero_a, zero_b = ma == 0, mb == 0
        ua = a / np.where(zero_a, 1.0, ma)[:, None]
        ub = b / np.where(zero_b, 1.0, mb)[:, None]
        ua /= np.where(zero_a, 1.0, np.linalg.norm(ua, axis=1))[:, None]
        ub /= np.where(zero_b, 1.0, np.linalg.norm(ub, axis=1))[:, None]
        cos = (ua * ub).sum(axis=1)
    cos = np.clip(cos, -1.0, 1.0)  # NaN stays NaN
    cos = np.where(zero_a & zero_b, 1.0, cos)
    cos = np.where(zero_a ^ zero_b, 0.0, cos)
    return cos


__all__ = ["cosine_rows"]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to unit length along its last axis (a zero row stays zero): serve's
    text-profile ranking, its approximate index and its explanations normalise alike."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
