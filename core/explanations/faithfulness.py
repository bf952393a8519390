"""Are the cited history items what the model ranks by? Two tests per user (docs/explain.md):

- deletion: remove the c history items an explanation cites for a recommended item,
  re-score the user from the rest (``RecModel.fold_in``) and record whether the item
  leaves the top k; against the same for c history items drawn at random;
- sufficiency: keep ONLY the c cited items and record whether the item stays in the top k;
  against c random history items.

A faithful explanation cites what the score rests on, so deleting it drops the item far
more often than deleting random history (the ratio cited / random is the measure), and
the cited items alone keep it more often than random ones. Every history, the unedited
one included, is re-scored the same way, so the top k compared against is the fold-in's.
Candidates are the training items outside the user's whole training history throughout,
so a deleted item never competes with the item it was cited for.

Random draws: ``draws`` subsets of the user's distinct history items per size, uniform,
seeded; one re-score per draw serves every recommended item whose citation has that size.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from recfeat.explanations.history import cite

TESTS = ("deletion", "sufficiency")


@dataclasses.dataclass(frozen=True)
class FaithSettings:
    """``k``: the top list; ``cite``: citation sizes c; ``draws``: random subsets per size."""

    k: int = 10
    cite: tuple[int, ...] = (1, 3)
    draws: int = 5


def in_top(scores: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Whether each target index is in the top ``k`` of ``scores`` (NaN: never); a tie
    counts in the target's favour, as a stable sort of the candidates would not promise."""
    values = scores[targets]
    finite = np.where(np.isnan(scores), -np.inf, scores)
    above = (finite[None, :] > values[:, None]).sum(axis=1)
    return (above < k) & ~np.isnan(values)


def user_trial(model, history: list[str], candidates: np.ndarray, seen: np.ndarray,
               settings: FaithSettings, rng: np.random.Generator) -> dict[int, dict[str, float]]:  # fmt: skip
    """One user's rates per citation size c: ``deletion_cited`` / ``deletion_random`` (share
    of (item, draw) pairs that left the top k), ``sufficiency_cited`` /
    ``sufficiency_random`` (share that stayed), and ``cited`` (mean citation size).
    ``candidates``: item ids, ``seen``: their mask of the user's training items. Sizes
    where no recommended item got a citation are left out."""
    k = settings.k

    def rescore(items: list[str]) -> np.ndarray:
        scores = model.fold_in(items, candidates)
        scores[seen] = np.nan
        return scores

    base = rescore(history)
    order = np.argsort(-np.where(np.isnan(base), -np.inf, base), kind="stable")
    top = order[: min(k, int((~np.isnan(base)).sum()))]
    if not len(top):
        return {}
    contrib = model.history_contributions(history, candidates[top])
    distinct = list(dict.fromkeys(history))
    out: dict[int, dict[str, float]] = {}
    for c in settings.cite:
        cited = [[i for i, _ in cite(contrib[:, r], history, c)] for r in range(len(top))]
        rows = [r for r in range(len(top)) if cited[r]]
        if not rows:
            continue
        res = {name: [] for name in ("deletion_cited", "deletion_random", "sufficiency_cited",
                                     "sufficiency_random")}  # fmt: skip
        for r in rows:
            drop = set(cited[r])
            target = top[r : r + 1]
            res["deletion_cited"].append(not in_top(rescore([h for h in history if h not in drop]), target, k)[0])
            res["sufficiency_cited"].append(in_top(rescore([h for h in history if h in drop]), target, k)[0])
        for size in sorted({len(cited[r]) for r in rows}):
            targets = top[[r for r in rows if len(cited[r]) == size]]
            for _ in range(settings.draws):
                pick = set(rng.choice(np.array(distinct, dtype=object), size, replace=False))
                kept = rescore([h for h in history if h not in pick])
                res["deletion_random"].extend(~in_top(kept, targets, k))
                alone = rescore([h for h in history if h in pick])
                res["sufficiency_random"].extend(in_top(alone, targets, k))
        out[c] = {name: float(np.mean(v)) for name, v in res.items()}
        out[c]["cited"] = float(np.mean([len(cited[r]) for r in rows]))
    return out


def mean_interval(units: np.ndarray, *, resamples: int = 1000, level: float = 0.95,
                  seed: int = 0) -> tuple[float, float, float]:  # fmt: skip
    """(mean, low, high): the percentile bootstrap interval of a mean over users."""
    units = np.asarray(units, dtype=np.float64)
    if len(units) < 2:
        m = float(units.mean()) if len(units) else float("nan")
        return m, m, m
    idx = np.random.default_rng(seed).integers(0, len(units), size=(resamples, len(units)))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(units[idx].mean(axis=1), [tail, 100 - tail])
    return float(units.mean()), float(low), float(high)


def summarise(trials: list[dict[int, dict[str, float]]], settings: FaithSettings,
              seed: int = 0) -> dict[str, dict]:  # fmt: skip
    """Per citation size: each rate with its interval over users, and the ratios cited /
    random (deletion) and cited / random (sufficiency) with paired-bootstrap intervals
    (``recfeat.evaluation.paired.ratio_interval``: the same users resampled for both)."""
    from recfeat.evaluation.paired import ratio_interval

    out: dict[str, dict] = {}
    for c in settings.cite:
        per = [t[c] for t in trials if c in t]
        entry: dict = {"users": len(per)}
        if not per:
            out[str(c)] = entry
            continue
        entry["cited_items"] = round(float(np.mean([p["cited"] for p in per])), 3)
        for test in TESTS:
            cited = np.array([p[f"{test}_cited"] for p in per])
            rand = np.array([p[f"{test}_random"] for p in per])
            for side, units in (("cited", cited), ("random", rand)):
                m, lo, hi = mean_interval(units, seed=seed)
                entry[f"{test}_{side}"] = {"rate": m, "low": lo, "high": hi}
            ratio = ratio_interval(rand, cited, seed=seed) if len(per) >= 2 else None
            entry[f"{test}_ratio"] = None if ratio is None else {
                "ratio": ratio.ratio, "low": ratio.low, "high": ratio.high}  # fmt: skip
        out[str(c)] = entry
    return out
