"""Train several models on one split and measure them with rating and ranking metrics.

``evaluate(data, item_features, models, split, k, seed)`` returns an ``EvaluationResult``:
a model x metric table (pandas), a JSON-able dict and per-model notes.

Protocol
- Every model is fitted on the same ``split.train`` (recfeat.evaluation.splits; seeded).
- Rating metrics (RMSE, MAE) use the split's evaluated test pairs and only models that
  predict ratings; others show ``n/a (ranks, does not predict ratings)``.
- Ranking is FULL ranking, no sampled negatives. Warm splits (random, temporal): each test
  user ranks every training item they did not interact with in training; relevant = that
  user's held-out items. ``item-cold``: candidates are ALL held-out (cold) items; relevant =
  the user's held-out items. ``user-cold``: held-out users rank every training item.
  Relevance is binary (every held-out interaction, or rating >= ``relevance_threshold``).
  Ties and items a model cannot score (NaN) are ordered by a seeded random key, NaN last,
  so an unscorable item is never a free hit. A model that can score none of a user's
  candidates (an ID-only model on cold items) shows ``n/a (cannot score cold items)``.

Features and leakage
- Item-level features from item texts (titles, genres, descriptions) are not derived from
  interactions and are used as given, cold items included.
- Review-derived text MUST come as review-level features (``recfeat extract --level
  review``: one vector per (user, item) review). The evaluation then builds each item's
  vector as the mean of its TRAINING reviews only, so no held-out review reaches a model.
  Item-level or user-level files that were aggregated from reviews/interactions are
  refused: they already contain held-out reviews.
- User profiles are built by the text models from the item vectors of TRAINING
  interactions only (see recfeat.plugins.models.content).
- Cold items on review-only data (Amazon 5-core has no item descriptions): a held-out
  item's only text is its reviews, all written by test users. Each cold item is therefore
  represented LEAVE-ONE-OUT: when ranking for user u, the item's vector is the mean of its
  reviews by users OTHER than u, so u's own review (which states u's rating) never enters
  u's score. An item whose only review is u's has no vector for u and ranks last.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat.data.features import Features, read_features
from recfeat.data.recdata import RecData
from recfeat.errors import DataError, UsageError
from recfeat.evaluation.splits import Split, make_split
from recfeat.jsonable import jsonable

DEFAULT_METRICS = (
    "rmse", "mae", "precision@k", "recall@k", "f1@k", "ndcg@k", "hitrate@k", "map@k", "mrr",
    "coverage",
)  # fmt: skip
NA_COLD_ITEMS = "n/a (cannot score cold items)"
NA_COLD_USERS = "n/a (cannot score cold users)"
NA_NOT_RATING = "n/a (ranks, does not predict ratings)"
NA_NO_RATINGS = "n/a (implicit data: no ratings)"
NA_SHORT = {
    NA_COLD_ITEMS: "no:cold-item",
    NA_COLD_USERS: "no:cold-user",
    NA_NOT_RATING: "rank-only",
    NA_NO_RATINGS: "no-ratings",
}
CHUNK_USERS = 128


# -- features ------------------------------------------------------------------------------
@dataclasses.dataclass
class ReviewVectors:
    """One vector per (user, item) review, the leakage-safe input for review-only data."""

    users: np.ndarray
    items: np.ndarray
    vectors: np.ndarray
    manifest: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def item_means(self, pairs: pd.DataFrame) -> Features:
        """Item vectors = mean of the reviews whose (user, item) is in ``pairs`` (training)."""
        keep = self._rows_in(pairs)
        items = self.items[keep]
        labels, inverse = np.unique(items, return_inverse=True)
        sums = np.zeros((len(labels), self.dim))
        np.add.at(sums, inverse, self.vectors[keep])
        counts = np.bincount(inverse, minlength=len(labels))
        manifest = {**self.manifest, "level": "item", "source": "training reviews (evaluation)"}
        return Features(labels, sums / counts[:, None], manifest)

    def leave_one_out(self, items) -> _LeaveOneOut:
        """Per-user vectors of ``items`` built from every review except that user's own."""
        return _LeaveOneOut(self, items)

    def _rows_in(self, pairs: pd.DataFrame) -> np.ndarray:
        keys = pd.MultiIndex.from_arrays([pairs["user"].astype(str), pairs["item"].astype(str)])
        mine = pd.MultiIndex.from_arrays([self.users, self.items])
        return np.asarray(mine.isin(keys))


class _LeaveOneOut:
    def __init__(self, reviews: ReviewVectors, items):
        self.items = np.asarray(sorted(str(x) for x in items), dtype=object)
        index = {k: n for n, k in enumerate(self.items)}
        rows = np.fromiter((index.get(k, -1) for k in reviews.items), dtype=np.int64)
        keep = rows >= 0
        self.sums = np.zeros((len(self.items), reviews.dim))
        np.add.at(self.sums, rows[keep], reviews.vectors[keep])
        self.counts = np.bincount(rows[keep], minlength=len(self.items)).astype(float)
        self.own: dict[str, list[tuple[int, np.ndarray]]] = {}
        for user, row, vec in zip(
            reviews.users[keep], rows[keep], reviews.vectors[keep], strict=False
        ):
            self.own.setdefault(user, []).append((row, vec))
        self.manifest = {**reviews.manifest, "level": "item", "source": "other users' reviews"}

    def for_user(self, user: str) -> Features:
        sums, counts = self.sums.copy(), self.counts.copy()
        for row, vec in self.own.get(user, ()):
            sums[row] -= vec
            counts[row] -= 1
        ok = counts > 0
        return Features(self.items[ok], sums[ok] / counts[ok, None], self.manifest)


def load_optional_features(path: str | Path | None) -> Features | ReviewVectors | None:
    """``load_features(path)``, or None when no path was given (an optional --features)."""
    return load_features(path) if path else None


def load_features(path: str | Path) -> Features | ReviewVectors:
    """A features file as item/user ``Features``, or ``ReviewVectors`` when rows are reviews."""
    ids, vectors, manifest = read_features(path)
    return features_from_table(ids, vectors, {**manifest, "path": str(path)}, where=str(path))


def features_from_table(ids: pd.DataFrame, vectors: np.ndarray, manifest: dict[str, Any],
                        where: str = "features") -> Features | ReviewVectors:  # fmt: skip
    """Id columns + vectors as item/user ``Features``, or ``ReviewVectors`` for reviews."""
    cols = list(ids.columns)
    if "user" in cols and "item" in cols:
        return ReviewVectors(
            ids["user"].astype(str).to_numpy(dtype=object),
            ids["item"].astype(str).to_numpy(dtype=object),
            vectors,
            manifest,
        )
    col = "item" if "item" in cols else "user" if "user" in cols else (cols[0] if cols else None)
    if col is None:
        raise DataError(f"{where}: features file has no id column")
    return Features(ids[col].astype(str).to_numpy(), vectors, {**manifest, "id_column": col})


def check_features(item_features, user_features) -> None:
    """Refuse features that already contain held-out interactions (see module doc)."""
    if isinstance(item_features, Features):
        source = str(item_features.manifest.get("source", ""))
        if item_features.manifest.get("id_column") == "user":
            raise UsageError(
                f"{_where(item_features)} holds user vectors; pass it as --user-features, "
                "and item or review vectors as --features"
            )
        if "review" in source:
            raise UsageError(
                f"item features in {_where(item_features)} were aggregated from reviews "
                f"(source {source!r}) and so contain held-out reviews; pass review-level "
                "features instead (recfeat extract DATA --level review --out reviews.parquet) "
                "and the evaluation aggregates training reviews only"
            )
    if isinstance(user_features, ReviewVectors):
        raise UsageError("--user-features takes user-level features, not review-level ones")
    if isinstance(user_features, Features):
        source = str(user_features.manifest.get("source", ""))
        if "review" in source or "rated" in source:
            raise UsageError(
                f"user features in {_where(user_features)} were built from interactions "
                f"(source {source!r}) and include held-out ones; drop --user-features: text "
                "models build user profiles from each split's training data themselves"
            )
    if item_features is not None and user_features is not None:
        if item_features.dim != user_features.dim:
            raise DataError(
                f"item features have dimension {item_features.dim} but user features "
                f"{user_features.dim}; extract both with the same encoder"
            )


def _where(features) -> str:
    path = features.manifest.get("path")
    return str(path) if path else "the features given"


# -- result --------------------------------------------------------------------------------
@dataclasses.dataclass
class EvaluationResult:
    """``table``: model x metric floats (NaN = not applicable, reason in ``na``)."""

    table: pd.DataFrame
    na: dict[str, dict[str, str]]
    notes: dict[str, list[str]]
    fit_seconds: dict[str, float]
    options: dict[str, dict[str, Any]]
    info: dict[str, Any]

    def display_table(self, digits: int = 4, short: bool = False) -> pd.DataFrame:
        """The table as strings, with each n/a reason written out (``short``: as the short
        labels of ``NA_SHORT``, explained by ``na_legend()``, so wide tables stay readable)."""
        out = self.table.astype(object).copy()
        for model in out.index:
            for metric in out.columns:
                value = self.table.loc[model, metric]
                reason = self.na.get(model, {}).get(metric)
                if reason and short:
                    reason = NA_SHORT.get(reason, "n/a")
                out.loc[model, metric] = reason or (
                    "-" if pd.isna(value) else f"{value:.{digits}f}"
                )
        return out

    def na_legend(self) -> str:
        """One line explaining the short n/a labels that appear in this result."""
        used = {r for per_model in self.na.values() for r in per_model.values()}
        parts = [
            f"{NA_SHORT.get(r, 'n/a')} = {r.removeprefix('n/a (').rstrip(')')}"
            for r in sorted(used)
        ]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        models = {}
        for model in self.table.index:
            row = self.table.loc[model]
            models[model] = {
                "options": self.options.get(model, {}),
                "metrics": {m: (None if pd.isna(v) else float(v)) for m, v in row.items()},
                "not_applicable": self.na.get(model, {}),
                "notes": self.notes.get(model, []),
                "fit_seconds": round(self.fit_seconds.get(model, float("nan")), 3),
            }
        return {**self.info, "metrics": list(self.table.columns), "models": models}

    def to_json(self) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=2)

    def to_markdown(self) -> str:
        shown = self.display_table()
        shown.insert(
            len(shown.columns), "fit s", [f"{self.fit_seconds[m]:.1f}" for m in shown.index]
        )
        header = "| model | " + " | ".join(shown.columns) + " |"
        rule = "|" + "---|" * (len(shown.columns) + 1)
        rows = [f"| {m} | " + " | ".join(str(v) for v in shown.loc[m]) + " |" for m in shown.index]
        return "\n".join([header, rule, *rows])


# -- evaluation ----------------------------------------------------------------------------
def _model_specs(models) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, registry name, options) per model; labels stay unique."""
    specs, seen = [], set()
    for spec in models:
        name, options = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        label = (
            name if not options else f"{name}({', '.join(f'{k}={v}' for k, v in options.items())})"
        )
        if label in seen:
            raise UsageError(f"model {label!r} is listed twice")
        seen.add(label)
        specs.append((label, name, options))
    if not specs:
        raise UsageError("no models to evaluate; pass --models a,b,c")
    return specs


def check_ratings(data: RecData) -> None:
    """Ratings outside the dataset's declared scale are an error, not something to average."""
    if data.rating_scale is None:
        return
    lo, hi = data.rating_scale
    r = pd.to_numeric(data.interactions["rating"], errors="coerce")
    bad = (r < lo) | (r > hi)
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} ratings lie outside the scale {lo:g}..{hi:g} "
            f"(e.g. {r[bad].iloc[0]:g}); fix the data or its declared rating scale"
        )


def evaluate(
    data: RecData,
    item_features: Features | ReviewVectors | None = None,
    models=("global-mean", "bias"),
    split: str | Split = "random",
    k: int = 10,
    seed: int = 0,
    user_features: Features | None = None,
    *,
    metrics=None,
    test_fraction: float = 0.2,
    relevance_threshold: float | None = None,
) -> EvaluationResult:
    """Fit every model on the same split and measure it; see the module doc for the protocol."""
    from recfeat.plugin.registry import get_registry
    from recfeat.progress import progress_bar

    check_ratings(data)
    check_features(item_features, user_features)
    if k < 1:
        raise UsageError(f"--k must be at least 1 (got {k})")
    specs = _model_specs(models)
    model_reg, metric_reg = get_registry("model"), get_registry("metric")
    for _, name, _ in specs:
        model_reg.entry(name)  # unknown names fail before any work
    split_obj = (
        split
        if isinstance(split, Split)
        else make_split(data.interactions, split, seed=seed, test_fraction=test_fraction)
    )
    metric_objs = _metrics(metric_reg, metrics or DEFAULT_METRICS, k)
    has_ratings = not pd.to_numeric(split_obj.train["rating"], errors="coerce").isna().all()
    task = _RankingTask(split_obj, k, seed, relevance_threshold)

    fit_features, cold_features, feature_info = _features_for_split(item_features, split_obj)
    info = {
        "dataset": data.name,
        "split": split_obj.report,
        "k": k,
        "seed": seed,
        "ranking": task.describe(),
        "features": feature_info,
        "relevance": "every held-out interaction"
        if relevance_threshold is None
        else f"held-out interactions rated >= {relevance_threshold:g}",
    }

    rows, na, notes, fit_s, options = {}, {}, {}, {}, {}
    from threadpoolctl import threadpool_limits

    # Models here multiply small matrices many times (per user, per batch); multi-threaded
    # BLAS only adds contention for them (5-10x slower measured on 2 cores).
    with threadpool_limits(1, "blas"), progress_bar(len(specs), "evaluating models") as bar:
        for label, name, opts in specs:
            model = model_reg.create(name, **opts)
            options[label] = {"name": name, **model.get_params()}
            model_notes: list[str] = []
            model_na: dict[str, str] = {}
            uses_text = model.uses_text
            if uses_text and fit_features is None and user_features is None:
                raise UsageError(
                    f"model {name!r} uses text features; pass --features (e.g. review-level "
                    "features from recfeat extract --level review)"
                )
            start = time.perf_counter()
            model.fit(
                split_obj.train,
                item_features=fit_features if uses_text else None,
                user_features=user_features if uses_text else None,
            )
            fit_s[label] = time.perf_counter() - start
            missing = getattr(model, "n_items_without_features_", 0)
            if missing:
                model_notes.append(
                    f"{missing} training items have no text vector (zero vector in profiles; "
                    "content cannot score them)"
                )
            per_item = cold_features if uses_text else None
            values: dict[str, float] = {}
            values.update(
                _rating_metrics(model, split_obj, metric_objs, has_ratings, per_item, model_na)
            )
            values.update(
                task.run(model, metric_objs, per_item if uses_text else None, model_na, model_notes)
            )
            rows[label] = values
            na[label], notes[label] = model_na, model_notes
            bar.advance()

    columns = [m.display_name() for m in metric_objs]
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)
    table.index.name = "model"
    return EvaluationResult(table, na, notes, fit_s, options, info)


def _metrics(registry, names, k):
    """Metric objects from names or ``(name, options)``; ``k`` fills in where not given."""
    out = []
    for spec in names:
        name, options = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        cls = registry.get(name)
        if "k" in _init_args(cls):
            options.setdefault("k", k)
        out.append(registry.create(name, **options))
    return out


def _init_args(cls) -> set[str]:
    import inspect

    return set(inspect.signature(cls.__init__).parameters) - {"self"}


def _features_for_split(item_features, split: Split):
    """(features to fit on, per-user provider for held-out items or None, description)."""
    if item_features is None:
        return None, None, {"item_features": None}
    if isinstance(item_features, ReviewVectors):
        fit = item_features.item_means(split.train)
        cold = None
        if split.kind == "item-cold":
            cold = item_features.leave_one_out(split.cold_items)
        return (
            fit,
            cold,
            {
                "item_features": "review-level; item vector = mean of its TRAINING reviews",
                "cold_items": "leave-one-out: mean of the item's reviews by other users"
                if cold is not None
                else None,
                "dim": item_features.dim,
                "encoder": item_features.manifest.get("encoder_name")
                or item_features.manifest.get("encoder"),
                "reviews": int(len(item_features.items)),
            },
        )
    return (
        item_features,
        None,
        {
            "item_features": f"item-level (source {item_features.manifest.get('source', 'item texts')!r})",
            "dim": item_features.dim,
            "encoder": item_features.manifest.get("encoder_name")
            or item_features.manifest.get("encoder"),
        },
    )


def _rating_metrics(model, split, metric_objs, has_ratings, cold_features, na) -> dict[str, float]:
    rating = [m for m in metric_objs if m.kind == "rating"]
    if not rating:
        return {}
    out = {m.display_name(): float("nan") for m in rating}
    reason = None
    if not has_ratings:
        reason = NA_NO_RATINGS
    elif not model.predicts_ratings:
        reason = NA_NOT_RATING
    elif split.kind == "item-cold" and not model.cold_start_items:
        reason = NA_COLD_ITEMS
    if reason:
        na.update({m.display_name(): reason for m in rating})
        return out
    rows = split.evaluation_rows()
    if cold_features is None:
        pred = model.predict(rows["user"], rows["item"])
        true = rows["rating"].to_numpy(dtype=float)
    else:  # per user, with that user's leave-one-out item vectors
        preds, trues = [], []
        for user, group in rows.groupby("user", sort=True):
            preds.append(
                model.predict(
                    group["user"], group["item"], item_features=cold_features.for_user(user)
                )
            )
            trues.append(group["rating"].to_numpy(dtype=float))
        pred, true = np.concatenate(preds), np.concatenate(trues)
    ok = ~np.isnan(pred)
    if not ok.all():
        # Pairs a model cannot score: fall back to the training mean so the error counts.
        pred = np.where(ok, pred, model.global_mean_)
    for m in rating:
        out[m.display_name()] = m(true, pred)
    return out


class _RankingTask:
    """Candidates, exclusions and relevant sets for each evaluated user, shared by all models."""

    def __init__(self, split: Split, k: int, seed: int, threshold: float | None):
        rows = split.evaluation_rows()
        if threshold is not None:
            rows = rows[pd.to_numeric(rows["rating"], errors="coerce") >= threshold]
        self.kind = split.kind
        self.seed = seed
        if split.kind == "item-cold":
            self.candidates = np.asarray(sorted(split.cold_items), dtype=object)
        else:
            self.candidates = np.asarray(sorted(set(split.train["item"])), dtype=object)
        if k > len(self.candidates):
            raise UsageError(
                f"--k {k} is larger than the {len(self.candidates)} candidate items of this "
                f"{split.kind} split; use --k {len(self.candidates)} or less"
            )
        index = {item: n for n, item in enumerate(self.candidates)}
        relevant = rows.groupby("user")["item"].apply(
            lambda s: np.array([index[x] for x in s if x in index])
        )
        relevant = relevant[relevant.map(len) > 0]
        self.users = np.asarray(relevant.index, dtype=object)
        self.relevant = list(relevant.to_numpy())
        seen = split.train[split.train["user"].isin(set(self.users))]
        seen = seen[seen["item"].isin(index)]
        by_user = seen.groupby("user")["item"].apply(lambda s: np.array([index[x] for x in s]))
        self.exclude = [by_user.get(u, np.zeros(0, dtype=np.int64)) for u in self.users]
        if len(self.users) == 0:
            raise DataError(
                f"the {split.kind} split left no test user with a relevant candidate item"
            )

    def describe(self) -> dict[str, Any]:
        return {
            "users": int(len(self.users)),
            "candidates": int(len(self.candidates)),
            "candidate_set": "held-out (cold) items"
            if self.kind == "item-cold"
            else "all training items the user has not interacted with in training",
        }

    def _tie_keys(self, pos: int) -> np.ndarray:
        return np.random.default_rng([self.seed, pos]).random(len(self.candidates))

    def run(self, model, metric_objs, cold_features, na, notes) -> dict[str, float]:
        ranking_metrics = [m for m in metric_objs if m.kind in ("ranking", "catalog")]
        if not ranking_metrics:
            return {}
        rankings, unscorable, nan_cells = [], 0, 0
        for start in range(0, len(self.users), CHUNK_USERS):
            chunk = self.users[start : start + CHUNK_USERS]
            if cold_features is not None:
                scores = np.vstack(
                    [
                        model.score_items(
                            [u], self.candidates, item_features=cold_features.for_user(u)
                        )
                        for u in chunk
                    ]
                )
            else:
                scores = model.score_items(chunk, self.candidates)
            for offset, row in enumerate(scores):
                pos = start + offset
                valid = np.ones(len(row), dtype=bool)
                valid[self.exclude[pos]] = False
                idx = np.flatnonzero(valid)
                s = row[idx]
                nan = np.isnan(s)
                if nan.all():
                    unscorable += 1
                nan_cells += int(nan.sum())
                filled = np.where(nan, -np.inf, s)
                order = np.lexsort((self._tie_keys(pos)[idx], -filled))
                rankings.append(idx[order])
        out = {m.display_name(): float("nan") for m in ranking_metrics}
        if unscorable == len(self.users):
            reason = (
                NA_COLD_ITEMS
                if self.kind == "item-cold"
                else NA_COLD_USERS
                if self.kind == "user-cold"
                else "n/a (cannot score)"
            )
            na.update({m.display_name(): reason for m in ranking_metrics})
            return out
        if unscorable:
            notes.append(
                f"{unscorable} of {len(self.users)} users had no scorable candidate (ranked at random)"
            )
        if nan_cells:
            notes.append(f"{nan_cells} (user, candidate) scores were NaN and ranked last")
        for m in ranking_metrics:
            if m.kind == "catalog":
                out[m.display_name()] = m(
                    rankings, self.relevant, n_candidates=len(self.candidates)
                )
            else:
                out[m.display_name()] = m(rankings, self.relevant)
        return out


# -- chart ---------------------------------------------------------------------------------
def plot_result(
    result: EvaluationResult, path: str | Path, metrics=None, title: str | None = None
) -> Path:
    """Bar chart, one panel per metric; n/a models are labelled, not drawn as zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recfeat.atomic import atomic_path

    table = result.table
    metrics = list(metrics or [c for c in table.columns if table[c].notna().any()])
    if not metrics:
        raise DataError("nothing to plot: every metric is n/a")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1, 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=False):
        values = table[metric]
        ypos = np.arange(len(values))
        ax.barh(
            ypos,
            values.fillna(0).to_numpy(),
            color=["#bbbbbb" if pd.isna(v) else "#3b75af" for v in values],
        )
        for y, v in zip(ypos, values, strict=False):
            ax.text(0, y, " n/a" if pd.isna(v) else f" {v:.3f}", va="center", fontsize=7)
        ax.set_yticks(ypos, labels=list(values.index), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
