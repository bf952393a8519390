"""How sure is a metric difference between two sets of vectors scored on the same split?

The downstream gate compares a candidate backend's metric with fp32's on one seeded sample.
On a few thousand interactions NDCG@10 is a mean over a few hundred test users, each of whom
moves it by a visible step when one hit enters or leaves their top 10; so the difference of
two runs carries sampling noise of several percent, more than a 1% tolerance. Resampling the
*same* test units for both sides (a paired bootstrap) measures that noise: the interval says
what the drop would plausibly be on other users drawn like these.

``units`` are what ``EvaluationResult.units`` holds per metric: per-user scores for a
ranking metric (a mean over users), or ``(true, predicted)`` ratings for RMSE and MAE.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95
# Resamples drawn per block: bounds the index matrix at ~32 MB for 20,000 units.
_BLOCK = 200


@dataclasses.dataclass(frozen=True)
class DropInterval:
    """The relative drop (negative: better) of a candidate against the reference, with the
    ``level`` paired-bootstrap percentile interval over ``units`` test units."""

    drop: float
    low: float
    high: float
    units: int
    level: float = LEVEL

    def as_dict(self) -> dict[str, Any]:
        return {"drop": self.drop, "low": self.low, "high": self.high, "units": self.units,
                "level": self.level}  # fmt: skip

    def shown(self) -> str:
        """``-1.20% (95% CI -3.10% .. +0.70%, 412 users)``: signs as drops (+ = worse)."""
        return (f"{self.drop * 100:+.2f}% ({self.level * 100:g}% CI {self.low * 100:+.2f}% .. "
                f"{self.high * 100:+.2f}%, {self.units} units)")  # fmt: skip


def _statistic(metric: str, units: Any):
    """``(n_units, f(index matrix) -> one value per row of indices)`` for ``units``, or None
    when the metric's units are not resampleable here."""
    name = metric.split()[-1].lower()
    if isinstance(units, tuple) and len(units) == 2:
        true, pred = (np.asarray(u, dtype=np.float64) for u in units)
        if name == "rmse":
            err = (true - pred) ** 2
            return len(err), lambda idx: np.sqrt(err[idx].mean(axis=1))
        if name == "mae":
            err = np.abs(true - pred)
            return len(err), lambda idx: err[idx].mean(axis=1)
        return None
    values = np.asarray(units, dtype=np.float64)
    if values.ndim != 1:
        return None
    return len(values), lambda idx: values[idx].mean(axis=1)


def drop_interval(
    metric: str,
    reference_units: Any,
    candidate_units: Any,
    *,
    lower_is_better: bool,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> DropInterval | None:
    """The candidate's relative drop on ``metric`` (``"content ndcg@10"``, ``"ridge rmse"``)
    with a paired-bootstrap interval, or None when the units do not pair up (different
    lengths, different true ratings, nothing to resample)."""
    ref = _statistic(metric, reference_units)
    cand = _statistic(metric, candidate_units)
    if ref is None or cand is None or ref[0] != cand[0] or ref[0] < 2:
        return None
    if isinstance(reference_units, tuple) and not np.array_equal(
        np.asarray(reference_units[0]), np.asarray(candidate_units[0])
    ):
        return None  # not the same test pairs
    n, f_ref = ref
    f_cand = cand[1]

    def drop(r, c):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (c - r) / np.abs(r) if lower_is_better else (r - c) / np.abs(r)

    everyone = np.arange(n)[None, :]
    point = float(drop(f_ref(everyone), f_cand(everyone))[0])
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, resamples, _BLOCK):
        idx = rng.integers(0, n, size=(min(_BLOCK, resamples - start), n))
        draws.append(drop(f_ref(idx), f_cand(idx)))
    draws = np.concatenate(draws)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return DropInterval(point, float(low), float(high), int(n), level)


@dataclasses.dataclass(frozen=True)
class RatioInterval:
    """A candidate's mean metric over a reference's (``ratio`` > 1: the candidate is higher),
    averaged over ``strata`` splits (seeds), with the ``level`` paired-bootstrap percentile
    interval: each split's test users are resampled within that split, the same draw for
    both sides."""

    ratio: float
    low: float
    high: float
    units: int
    strata: int
    level: float = LEVEL

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def shown(self) -> str:
        """``1.093x (95% CI 1.021x .. 1.170x)``."""
        return (f"{self.ratio:.3f}x ({self.level * 100:g}% CI {self.low:.3f}x .. "
                f"{self.high:.3f}x)")  # fmt: skip


def ratio_interval(
    reference_units: Any,
    candidate_units: Any,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> RatioInterval | None:
    """mean-over-strata(candidate) / mean-over-strata(reference) of a per-user ranking metric,
    with a paired, stratified bootstrap interval. ``*_units``: one per-user score array per
    stratum (a seed's split), or one array; the two sides must pair up stratum by stratum
    (same users, same order: ``EvaluationResult.units`` of two runs on one split). None when
    they do not, or when the reference is zero."""

    def strata(units):
        if isinstance(units, np.ndarray) and units.ndim == 1:
            return [units.astype(np.float64)]
        return [np.asarray(u, dtype=np.float64) for u in units]

    ref, cand = strata(reference_units), strata(candidate_units)
    if not ref or len(ref) != len(cand):
        return None
    if any(r.ndim != 1 or r.shape != c.shape or len(r) < 2 for r, c in zip(ref, cand, strict=True)):
        return None
    point_ref = np.mean([r.mean() for r in ref])
    if point_ref == 0:
        return None
    point = float(np.mean([c.mean() for c in cand]) / point_ref)
    rng = np.random.default_rng(seed)
    ref_means = np.zeros(resamples)
    cand_means = np.zeros(resamples)
    for r, c in zip(ref, cand, strict=True):
        for start in range(0, resamples, _BLOCK):
            size = min(_BLOCK, resamples - start)
            idx = rng.integers(0, len(r), size=(size, len(r)))
            ref_means[start : start + size] += r[idx].mean(axis=1) / len(ref)
            cand_means[start : start + size] += c[idx].mean(axis=1) / len(ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = cand_means / ref_means
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return RatioInterval(point, float(low), float(high), int(sum(len(r) for r in ref)),
                         len(ref), level)  # fmt: skip
