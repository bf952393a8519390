"""Train several models on one split and measure them with rating and ranking metrics.

``evaluate(data, item_features, models, split, k=..., seed=...)`` returns an
``EvaluationResult``: a model x metric table (pandas), a JSON-able dict and per-model notes.
The measuring choices (k, seed, metrics, relevance, cold-start protocol, tuning...) are one
``Protocol``, given whole or as keyword arguments.

Protocol (docs/evaluation.md has the full text, the rules and the measured leaks)
- Before anything runs, the leak detectors of recfeat.evaluation.leaks check the data and
  features (variant duplicates, held-out texts found in training, features without
  provenance); a refusal is one error line naming the fix, the rest go to ``info["leaks"]``.
- Every model is fitted on the same ``split.train`` (recfeat.evaluation.splits; seeded).
- Rating metrics (RMSE, MAE) use the split's evaluated test pairs and only models that
  predict ratings; others show ``n/a (ranks, does not predict ratings)``.
- Ranking is FULL ranking, no sampled negatives. Warm splits (random, temporal): each test
  user ranks every training item they did not interact with in training; relevant = that
  user's relevant held-out items. ``item-cold``: candidates are the cold items
  (``candidates="cold"``) or the training items plus the cold items (``"mixed"``, reported
  with the score of the "new items first, random order" reference, since every relevant
  item is new). ``user-cold``: held-out users rank every training item.
- Relevance is binary: a held-out interaction rated >= ``relevance_threshold`` (default
  4, i.e. 4 and 5 stars on a 1-5 scale; None or 0: every held-out interaction). Data
  without ratings (implicit) counts every held-out interaction.
- Ranking tables leave out models that only estimate ratings (``ranks_items`` False:
  global-mean, bias, mf, the text regressors, hybrid with the rating loss): their ranking
  columns show ``n/a (rating model; --rank-rating-models ranks it)`` unless
  ``rank_rating_models=True``.
- Ties and items a model cannot score (NaN) are ordered by a seeded random key, NaN last,
  so an unscorable item is never a free hit. A model that can score none of a user's
  candidates (an ID-only model on cold items) shows ``n/a (cannot score cold items)``.

Features and leakage
- Item-level features from item texts (titles, genres, descriptions) are not derived from
  interactions and are used as given, cold items included.
- Review-derived text MUST come as review-level features (``recfeat extract --level
  review``: one vector per (user, item) review). The evaluation then builds each item's
  vector as the mean of its TRAINING reviews only, so no held-out review reaches a model.
  Item-level or user-level files that were aggregated from reviews/interactions are
  refused: they already contain held-out reviews; so is a file whose provenance was
  stripped, unless ``trust_features``.
- User profiles are built by the text models from the item vectors of TRAINING
  interactions only (see recfeat.plugins.models.content).
- Cold items (recfeat.evaluation.coldstart): represented only by text that exists when the
  item is listed: its item text where the data has it, else its FIRST ``cold_reviews``
  reviews by time, which then leave the test set and their reviewers' candidates. Every
  candidate is built from the same number of reviews, so no count or presence signal says
  which items are relevant. ``cold_protocol="leave-one-out"`` is the old, leaky rule.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat.atomic import atomic_path
from recfeat.components.metric import objective_problem
from recfeat.data import checks
from recfeat.data.features import Features, ReviewVectors, check_matches_dataset
from recfeat.data.recdata import RecData
from recfeat.data.validation import check_ratings
from recfeat.errors import DataError, UsageError
from recfeat.evaluation import coldstart as cs
from recfeat.evaluation import leaks
from recfeat.evaluation.splits import Split, make_split
from recfeat.evaluation.tuning import Tuner, check_trials
from recfeat.jsonable import jsonable
from recfeat.plugin.registry import get_registry
from recfeat.progress import progress_bar

DEFAULT_METRICS = (
    "rmse", "mae", "precision@k", "recall@k", "f1@k", "ndcg@k", "hitrate@k", "map@k", "mrr",
    "coverage",
)  # fmt: skip
NA_COLD_ITEMS = "n/a (cannot score cold items)"
NA_COLD_USERS = "n/a (cannot score cold users)"
NA_NOT_RATING = "n/a (ranks, does not predict ratings)"
NA_NO_RATINGS = "n/a (implicit data: no ratings)"
NA_RATING_MODEL = "n/a (rating model; --rank-rating-models ranks it)"
#: Ranking relevance: a held-out interaction rated at least this (4 and 5 stars of 1-5).
DEFAULT_RELEVANCE = 4.0
NA_SHORT = {
    NA_COLD_ITEMS: "no:cold-item",
    NA_COLD_USERS: "no:cold-user",
    NA_NOT_RATING: "rank-only",
    NA_NO_RATINGS: "no-ratings",
    NA_RATING_MODEL: "rating-only",
}
CHUNK_USERS = 128
#: Short metric titles for a table that must fit a terminal (recfeat.cli.tables names them).
SHORT_METRIC_NAMES = {"precision": "prec", "recall": "rec", "hitrate": "hit", "coverage": "cov"}
#: Columns such a table leaves out first: those the others imply (f1 from precision and
#: recall) or that say least about a model next to ndcg and recall.
DROP_FIRST = ("f1@", "map@", "mrr", "hitrate@", "precision@", "fit s", "coverage", "mae")


# -- features ------------------------------------------------------------------------------
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
    # model -> metric -> what the metric is computed from, for paired resampling: per-user
    # scores (ranking metrics, users in the same order for every model of one split) or
    # ``(true, predicted)`` ratings per test pair (rating metrics). Not part of ``to_dict``.
    units: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

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

    def display_rows(self, digits: int = 4, short: bool = False) -> tuple[list[str], list[list[str]]]:
        """``display_table`` as a header and rows of strings, each row's label first and
        its fit seconds last (``recfeat.cli.tables`` lays them out)."""
        shown = self.display_table(digits=digits, short=short)
        header = ["model", *map(str, shown.columns), "fit s"]
        rows = [[str(model), *map(str, shown.iloc[n]), f"{self.fit_seconds[model]:.1f}"]
                for n, model in enumerate(shown.index)]  # fmt: skip
        return header, rows

    def table_layout(self, short: bool = False) -> dict[str, Any]:
        """How ``recfeat.cli.tables.fit`` may narrow ``display_rows``: its n/a cells, short
        metric titles and the columns to leave out first."""
        na = {"-", *(r for per_model in self.na.values() for r in per_model.values())}
        if short:
            na = {NA_SHORT.get(r, "n/a") if r != "-" else r for r in na}
        return {"na": na, "abbreviations": SHORT_METRIC_NAMES, "drop_first": DROP_FIRST,
                "row_noun": "model"}  # fmt: skip

    def na_legend_entries(self) -> list[str]:
        """``short label = reason`` for each short n/a label that appears in this result."""
        used = {r for per_model in self.na.values() for r in per_model.values()}
        return [f"{NA_SHORT.get(r, 'n/a')} = {r.removeprefix('n/a (').rstrip(')')}"
                for r in sorted(used)]  # fmt: skip

    def na_legend(self) -> str:
        """One line explaining the short n/a labels that appear in this result."""
        return "; ".join(self.na_legend_entries())

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

    def report_markdown(self, title: str) -> str:
        """A Markdown report: ``title``, the table, then the split, relevance, tuning and
        each model's notes (which say the options tuning searched and the ones held fixed)."""
        rep = self.info.get("split") or {}
        lines = [f"# {title}", "", self.to_markdown(), ""]
        legend = self.na_legend()
        if legend:
            lines += [f"n/a: {legend}", ""]
        if rep:
            lines.append(f"- split: {rep.get('split')}, {rep.get('train_interactions')} train / "
                         f"{rep.get('test_interactions')} test interactions")  # fmt: skip
        lines.append(f"- relevance: {self.info.get('relevance')}")
        tuning = self.info.get("tuning")
        if tuning:
            lines.append(f"- tuning: {tuning['n_trials']} trials per model on a validation "
                         f"split of the training part; objective {tuning['objective']}")  # fmt: skip
        lines += [f"- {model}: {note}" for model, notes in self.notes.items() for note in notes]
        return "\n".join(lines)


# -- evaluation ----------------------------------------------------------------------------
def _model_label(spec) -> str:
    """A model's row label: its name, with its options when it has any."""
    name, options = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
    return name if not options else f"{name}({', '.join(f'{k}={v}' for k, v in options.items())})"


def _search_spaces(models) -> dict[str, dict[str, list]]:
    """label -> the search space a ``(name, options, space)`` spec gives (tuning searches
    it instead of the model's built-in one)."""
    return {_model_label(spec): dict(spec[2]) for spec in models
            if not isinstance(spec, str) and len(spec) == 3 and spec[2]}  # fmt: skip


def _model_specs(models) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, registry name, options) per model; labels stay unique."""
    specs, seen = [], set()
    for spec in models:
        name, options = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        label = _model_label(spec)
        if label in seen:
            raise UsageError(f"model {label!r} is listed twice")
        seen.add(label)
        specs.append((label, name, options))
    if not specs:
        raise UsageError("no models to evaluate; pass --models a,b,c")
    return specs


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one evaluation measures: every choice but the data, the features, the models and
    the split (the module doc says what each one does). ``evaluate`` takes it as
    ``protocol=``, or its fields as keyword arguments; ``recfeat.settings.evaluate_settings``
    builds it from flags over a config file over these defaults."""

    k: int = 10
    seed: int = 0
    metrics: Any = None  # names or (name, options); None: DEFAULT_METRICS
    test_fraction: float = 0.2
    relevance_threshold: float | None = DEFAULT_RELEVANCE  # None or <= 0: every held-out one
    cold_protocol: str = "first-reviews"
    cold_reviews: int = cs.DEFAULT_COLD_REVIEWS
    candidates: str = "cold"
    rank_rating_models: bool = False
    merge_variants: bool = False
    trust_features: bool = False
    tune: bool = False
    tune_trials: int | None = None
    tune_objective: str | None = None  # a metric name; None: NDCG@k, RMSE for rating models

    @classmethod
    def of(cls, protocol: Protocol | None = None, **options: Any) -> Protocol:
        """``protocol`` (default: the defaults) with ``options`` on top; an unknown option
        is a UsageError naming the known ones."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise UsageError(f"evaluate: unknown option(s) {', '.join(unknown)}; use "
                             f"{', '.join(known)}")  # fmt: skip
        if protocol is not None and not isinstance(protocol, cls):
            raise checks.refuse("protocol", "a recfeat.evaluation.protocol.Protocol", protocol,
                                "pass Protocol(k=10, ...) or its fields as keyword arguments")  # fmt: skip
        return check_protocol(dataclasses.replace(protocol or cls(), **options))


def check_protocol(p: Protocol) -> Protocol:
    """Every field's type and range, before any work, named as the command's flag: a k given
    as "10" or a NaN relevance threshold would otherwise surface as a TypeError deep inside
    or as NaN metrics with a success status."""
    checks.integer(p.k, "--k", low=1, example=10)
    checks.seed(p.seed, "--seed")
    checks.fraction(p.test_fraction, "--test-fraction")
    if p.relevance_threshold is not None:
        # 0 (or "none" on the command line) counts every held-out interaction; a negative
        # one used to mean the same silently, and NaN made every metric NaN
        checks.number(p.relevance_threshold, "--relevance-threshold", low=0, example=4)
    if p.metrics is not None:
        component_specs(p.metrics, "--metrics", example="rmse,ndcg@k")
    for name in ("cold_protocol", "candidates"):
        checks.text(getattr(p, name), f"--{name.replace('_', '-')}")
    checks.integer(p.cold_reviews, "--cold-reviews", low=1, example=cs.DEFAULT_COLD_REVIEWS)
    cs.check_options(p.cold_protocol, p.cold_reviews, p.candidates)
    for name in ("rank_rating_models", "merge_variants", "trust_features", "tune"):
        checks.flag(getattr(p, name), f"--{name.replace('_', '-')}")
    if p.tune_trials is not None:
        check_trials(p.tune_trials)
    if p.tune_objective is not None and objective_problem(p.tune_objective):
        raise UsageError(f"--tune-objective: {objective_problem(p.tune_objective)}")
    return p


def component_specs(given: Any, name: str, example: str) -> list[Any]:
    """Models or metrics as ``evaluate`` takes them: "a,b", or a list of names and
    ``(name, options)`` pairs (models also ``(name, options, search space)`` triples: the
    space tuning searches, option -> values); anything else is one UsageError naming
    ``name``."""
    if isinstance(given, str):
        return checks.names(given, name, example=example)
    if not isinstance(given, (list, tuple)):
        raise checks.refuse(name, "names ('a,b') or a list of names and (name, options) pairs",
                            given, f"pass e.g. {checks.spelled(name, example)}")  # fmt: skip
    if not given:
        raise checks.refuse(name, "at least one name", given,
                            f"pass e.g. {checks.spelled(name, example)}")  # fmt: skip
    sizes = (2, 3) if name == "models" else (2,)
    for spec in given:
        pair = isinstance(spec, (list, tuple)) and len(spec) in sizes
        if not (isinstance(spec, str) and spec.strip()) and not (
            pair and isinstance(spec[0], str) and all(isinstance(s, dict) for s in spec[1:])
        ):
            raise checks.refuse(f"each of {name}", "a name or a (name, options dict) pair", spec,
                                f"pass e.g. {checks.spelled(name, example)}")  # fmt: skip
    return list(given)


def evaluate(
    data: RecData,
    item_features: Features | ReviewVectors | None = None,
    models=("global-mean", "bias"),
    split: str | Split = "random",
    *,
    user_features: Features | None = None,
    protocol: Protocol | None = None,
    progress: bool | None = None,
    **options: Any,
) -> EvaluationResult:
    """Fit every model on the same split and measure it; see the module doc for the protocol.

    ``split`` is a kind name or any ``Split`` (one carved from a training part included: the
    protocol only reads ``split.train``/``split.test``). ``protocol`` (a ``Protocol``) and/or
    its fields as keyword arguments (``k``, ``seed``, ``metrics``, ``relevance_threshold``,
    ``cold_protocol``/``cold_reviews``: how cold items are represented,
    recfeat.evaluation.coldstart; ``candidates``: ``cold`` or ``mixed`` for item-cold;
    ``merge_variants``: merge product variants first, only when ``split`` is a name, since a
    made split is over the unmerged ids; ``tune``: choose each model's options on a
    validation split carved from ``split.train``, ``tune_trials`` candidates each,
    recfeat.evaluation.tuning, then fit them on all of ``split.train``).
    ``progress``: show progress bars (None: when stderr is a terminal)."""
    p = Protocol.of(protocol, **options)
    specs = _check_inputs(data, item_features, user_features, models, p)
    # the bar shows from here: splitting and the leak checks can take a while on big data
    with progress_bar(len(specs), "evaluating models", enabled=progress, unit="model") as bar:
        bar.describe("evaluating models: preparing the split")
        data, item_features, split_obj = _split_for(data, item_features, split, p)
        run = _prepare(data, item_features, user_features, split_obj, specs, p)
        run.spaces = _search_spaces(component_specs(models, "models", example="bias,popularity"))
        tuner = _tuner(run, progress) if p.tune else None
        return _evaluate_models(run, specs, tuner, bar)


def _check_inputs(data, item_features, user_features, models, p: Protocol):
    """Every check that needs no split, before any work; returns the model specs."""
    if not isinstance(data, RecData):
        raise checks.refuse("data", "a RecData", data, "load one with recfeat.load_dataset(path "
                            "or DataFrame)")  # fmt: skip
    for name, features in (("item_features", item_features), ("user_features", user_features)):
        if features is not None and not isinstance(features, (Features, ReviewVectors)):
            raise checks.refuse(name, "Features or ReviewVectors (or None)", features,
                                "read a feature file with recfeat.read_features(path)")  # fmt: skip
    check_ratings(data)
    check_features(item_features, user_features)
    check_matches_dataset(data, item_features, user_features)  # features of another dataset
    specs = _model_specs(component_specs(models, "models", example="bias,popularity"))
    model_reg = get_registry("model")
    for _, name, _ in specs:
        model_reg.entry(name)  # unknown names fail before any work
    return specs


def _split_for(data, item_features, split, p: Protocol):
    """``(data, item_features, split)``: product variants merged first when asked, the split
    made from its name (or taken as given)."""
    if p.merge_variants:
        if isinstance(split, Split):
            raise UsageError(
                "merge_variants needs the split made after merging: pass split as a name, or "
                "merge first (recfeat.evaluation.leaks.merge_variants) and split the merged data"
            )
        data, mapping = leaks.merge_variants(data)
        item_features = leaks.remap_features(item_features, mapping)
    split_obj = (
        split
        if isinstance(split, Split)
        else make_split(data.interactions, split, seed=p.seed, test_fraction=p.test_fraction)
    )
    if p.candidates == "mixed" and not split_obj.new_items:
        raise UsageError(
            f"candidates='mixed' ranks cold items among warm ones and needs an item-cold split "
            f"(got {split_obj.kind}); warm splits already rank every training item"
        )
    return data, item_features, split_obj


@dataclasses.dataclass
class _Run:
    """What every model of one evaluation shares: the split, the metrics, the cold items'
    representation, the ranking task, the features to fit on and the result's ``info``."""

    data: RecData
    split: Split
    protocol: Protocol
    item_features: Any  # as given (tuning carves its own view of them)
    user_features: Any
    fit_features: Any  # per split: review vectors averaged over training reviews
    metrics: list[Any]
    has_ratings: bool
    threshold: float | None
    cold: cs.ColdStart | None
    task: _RankingTask
    created: dict[str, Any]  # label -> unfitted model
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    spaces: dict[str, dict[str, list]] = dataclasses.field(default_factory=dict)  # label -> given


def _prepare(data, item_features, user_features, split: Split, specs, p: Protocol) -> _Run:
    """Leak checks, metrics, relevance, cold-start representation, models and ranking task."""
    leak_info = leaks.run_detectors(
        data, split, item_features, user_features, trust_features=p.trust_features
    )
    metric_objs = _metrics(get_registry("metric"), p.metrics or DEFAULT_METRICS, p.k)
    has_ratings = not pd.to_numeric(split.train["rating"], errors="coerce").isna().all()
    threshold = p.relevance_threshold if has_ratings else None
    if threshold is not None and threshold <= 0:
        threshold = None
    cold = cs.cold_start(split, item_features, data, p.cold_protocol, p.cold_reviews)
    model_reg = get_registry("model")
    created = {label: model_reg.create(name, **opts) for label, name, opts in specs}
    ranked = any(p.rank_rating_models or m.ranks_items for m in created.values())
    ranks = ranked and any(m.kind in ("ranking", "catalog") for m in metric_objs)
    # A run of rating models only needs no relevant items (nothing is ranked).
    task = _RankingTask(split, p.k, p.seed, threshold, cold, p.candidates, required=ranks)
    fit_features, feature_info = _features_for_split(item_features, split, cold)
    run = _Run(data, split, p, item_features, user_features, fit_features, metric_objs,
               has_ratings, threshold, cold, task, created)  # fmt: skip
    run.info = _describe(run, feature_info, leak_info)
    return run


def _describe(run: _Run, feature_info: dict[str, Any], leak_info: dict[str, Any]) -> dict[str, Any]:
    """The result's ``info``: dataset, split, ranking task, features, relevance, leaks."""
    p, threshold = run.protocol, run.threshold
    if threshold is not None:
        relevance = f"held-out interactions rated >= {threshold:g}"
    else:
        relevance = "every held-out interaction" + (
            " (implicit data: no ratings)" if not run.has_ratings else ""
        )
    info = {
        "dataset": run.data.name,
        "split": run.split.report,
        "k": p.k,
        "seed": p.seed,
        "ranking": run.task.describe(),
        "features": feature_info,
        "cold_start": None if run.cold is None else run.cold.describe(),
        "relevance": relevance,
        "relevance_threshold": threshold,
        "rank_rating_models": p.rank_rating_models,
        "leaks": leak_info,
        "variants_merged": run.data.report.get("variants_merged"),
    }
    if p.candidates == "mixed":
        info["ranking"]["reference_new_items_first"] = run.task.reference(run.metrics)
    return info


def _tuner(run: _Run, progress: bool | None):
    """The tuner of ``run`` (it sees ``split.train`` only); fills ``info["tuning"]`` as each
    model is tuned."""
    p = run.protocol
    tuner = Tuner(run.data, run.item_features, run.user_features, run.split, evaluate=evaluate,
                  k=p.k, seed=p.seed, relevance_threshold=run.threshold, n_trials=p.tune_trials,
                  cold_protocol=p.cold_protocol, cold_reviews=p.cold_reviews,
                  candidates=p.candidates, trust_features=p.trust_features,
                  progress=progress, objective=p.tune_objective)  # fmt: skip
    run.info["tuning"] = tuner.summary
    return tuner


def _evaluate_models(run: _Run, specs, tuner, bar) -> EvaluationResult:
    """Fit and measure every model in turn (``bar`` counts them); the table, n/a reasons
    and notes."""
    from threadpoolctl import threadpool_limits

    rows, na, notes, fit_s, options = {}, {}, {}, {}, {}
    units: dict[str, dict[str, Any]] = {}
    # Models here multiply small matrices many times (per user, per batch); multi-threaded
    # BLAS only adds contention for them (5-10x slower measured on 2 cores).
    with threadpool_limits(1, "blas"):
        for label, name, opts in specs:
            bar.describe(f"evaluating models: {label}")
            values, na[label], notes[label], fit_s[label], options[label], units[label] = (
                _fit_and_score(run, label, name, opts, tuner)
            )
            rows[label] = values
            bar.advance()
    columns = [m.display_name() for m in run.metrics]
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)
    table.index.name = "model"
    return EvaluationResult(table, na, notes, fit_s, options, run.info, units)


def _fit_and_score(run: _Run, label: str, name: str, opts: dict[str, Any], tuner):
    """Fit one model on all of ``split.train`` (with the tuned options when tuning) and
    measure it: ``(values, n/a reasons, notes, fit seconds, options, per-unit scores)``."""
    if tuner is not None:  # refit on all of split.train with the chosen options
        chosen = tuner.tune(label, name, opts, run.spaces.get(label)).options
        run.created[label] = get_registry("model").create(name, **chosen)
    model = run.created[label]
    options = {"name": name, **model.get_params()}
    notes: list[str] = [] if tuner is None else [tuner.reports[label].note()]
    if tuner is None and label in run.spaces:  # said, not silently dropped
        notes.append(f"search space {run.spaces[label]} not searched: tuning is off "
                     "(--tune, or tune = true under [tuning])")  # fmt: skip
    na: dict[str, str] = {}
    uses_text = model.uses_text
    if uses_text and run.fit_features is None and run.user_features is None:
        raise UsageError(
            f"model {name!r} uses text features; pass --features (e.g. review-level "
            "features from recfeat extract --level review)"
        )
    start = time.perf_counter()
    model.fit(
        run.split.train,
        item_features=run.fit_features if uses_text else None,
        user_features=run.user_features if uses_text else None,
    )
    seconds = time.perf_counter() - start
    missing = getattr(model, "n_items_without_features_", 0)
    if missing:
        notes.append(
            f"{missing} training items have no text vector (zero vector in profiles; "
            "content cannot score them)"
        )
    values: dict[str, float] = {}
    units: dict[str, Any] = {}
    values.update(_rating_metrics(model, run.split, run.metrics, run.has_ratings, run.cold,
                                  uses_text, na, units))  # fmt: skip
    if not run.protocol.rank_rating_models and not model.ranks_items:
        ranking = [m for m in run.metrics if m.kind in ("ranking", "catalog")]
        values.update({m.display_name(): float("nan") for m in ranking})
        na.update({m.display_name(): NA_RATING_MODEL for m in ranking})
    else:
        values.update(run.task.run(model, run.metrics, uses_text, na, notes, units))
    return values, na, notes, seconds, options, units


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


def _features_for_split(item_features, split: Split, cold):
    """(features to fit on, description); cold items' vectors come from ``cold``."""
    if item_features is None:
        return None, {"item_features": None}
    encoder = item_features.manifest.get("encoder_name") or item_features.manifest.get("encoder")
    if isinstance(item_features, ReviewVectors):
        return item_features.item_means(split.train), {
            "item_features": "review-level; item vector = mean of its TRAINING reviews",
            "cold_items": None if cold is None else cold.describe()["representation"],
            "dim": item_features.dim,
            "encoder": encoder,
            "reviews": int(len(item_features.items)),
        }
    source = item_features.manifest.get("source", "item texts")
    return item_features, {
        "item_features": f"item-level (source {source!r})",
        "cold_items": None if cold is None else cold.describe()["representation"],
        "dim": item_features.dim,
        "encoder": encoder,
    }


def _rating_metrics(
    model, split, metric_objs, has_ratings, cold, uses_text, na, units=None
) -> dict[str, float]:
    rating = [m for m in metric_objs if m.kind == "rating"]
    if not rating:
        return {}
    out = {m.display_name(): float("nan") for m in rating}
    reason = None
    if not has_ratings:
        reason = NA_NO_RATINGS
    elif not model.predicts_ratings:
        reason = NA_NOT_RATING
    elif split.new_items and not model.cold_start_items:
        reason = NA_COLD_ITEMS
    if reason:
        na.update({m.display_name(): reason for m in rating})
        return out
    rows = split.evaluation_rows()
    if cold is not None:  # the interactions that represent items are their text, not tests
        rows = cold.drop_representing(rows)
    if cold is None or cold.per_user is None or not uses_text:
        shared = cold.features if cold is not None and uses_text else None
        pred = model.predict(rows["user"], rows["item"], item_features=shared)
        true = rows["rating"].to_numpy(dtype=float)
    else:  # per user, with that user's leave-one-out item vectors (old rule)
        preds, trues = [], []
        for user, group in rows.groupby("user", sort=True):
            preds.append(
                model.predict(
                    group["user"],
                    group["item"],
                    item_features=cold.per_user.for_user(user),
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
        if units is not None:
            units[m.display_name()] = (true, pred)
    return out


class _RankingTask:
    """Candidates, exclusions and relevant sets for each evaluated user, shared by all models."""

    def __init__(self, split: Split, k: int, seed: int, threshold: float | None,
                 cold: cs.ColdStart | None = None, candidates: str = "cold",
                 required: bool = True):  # fmt: skip
        rows = split.evaluation_rows()
        if cold is not None:
            rows = cold.drop_representing(rows)
        if threshold is not None:
            rows = rows[pd.to_numeric(rows["rating"], errors="coerce") >= threshold]
        self.kind = split.kind
        self.new_items = split.new_items
        self.seed = seed
        self.k = k
        self.cold = cold
        self.mixed = candidates == "mixed" and cold is not None
        if cold is not None:
            pool = set(cold.items) | (set(split.train["item"]) if self.mixed else set())
            self.candidates = np.asarray(sorted(pool), dtype=object)
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
        seen = split.train[["user", "item"]]
        if cold is not None and len(cold.representing):  # their reviews are already written
            seen = pd.concat([seen, cold.representing[["user", "item"]]])
        if split.kind == "leave-last-out-new":  # held-out items met before the last one: history
            history = split.test[~split.test.index.isin(split.evaluation_rows().index)]
            seen = pd.concat([seen, history[["user", "item"]]])
        seen = seen[seen["user"].isin(set(self.users)) & seen["item"].isin(index)]
        by_user = seen.groupby("user")["item"].apply(lambda s: np.array([index[x] for x in s]))
        self.exclude = [by_user.get(u, np.zeros(0, dtype=np.int64)) for u in self.users]
        if len(self.users) == 0 and required:
            raise DataError(
                f"the {split.kind} split left no test user with a relevant candidate item"
                + (
                    f" (relevant: rated >= {threshold:g}); lower --relevance-threshold or pass "
                    "--relevance-threshold none"
                    if threshold is not None
                    else ""
                )
            )

    def describe(self) -> dict[str, Any]:
        if not self.new_items:
            what = "all training items the user has not interacted with in training"
        elif self.mixed:
            what = "training items plus held-out (cold) items, minus the user's seen ones (mixed)"
        else:
            what = "held-out (cold) items, minus the user's seen ones"
        return {
            "users": int(len(self.users)),
            "candidates": int(len(self.candidates)),
            "candidate_set": what,
            "candidates_mode": ("mixed" if self.mixed else "cold") if self.new_items else None,
            f"expected_random_ndcg@{self.k}": round(float(self.expected_random_ndcg()), 6),
        }

    def expected_random_ndcg(self) -> float:
        """Exact mean NDCG@k of a uniformly random ranking of these candidates: the chance
        level without the noise of one random draw (hit chance R/N at every position)."""
        discounts = 1.0 / np.log2(np.arange(2, self.k + 2))
        total = 0.0
        for relevant, exclude in zip(self.relevant, self.exclude, strict=True):
            n = len(self.candidates) - len(np.unique(exclude))
            top = min(self.k, n)
            ideal = discounts[: min(len(relevant), top)].sum()
            total += len(relevant) / n * discounts[:top].sum() / ideal
        return total / len(self.relevant) if self.relevant else float("nan")

    def _tie_keys(self, pos: int) -> np.ndarray:
        return np.random.default_rng([self.seed, pos]).random(len(self.candidates))

    def reference(self, metric_objs) -> dict[str, float]:
        """Scores of "new items first, in random order" (mixed candidates: every relevant
        item is new, so this, not random, is the bar a model must clear)."""
        new = np.isin(self.candidates, list(self.cold.items)).astype(float)

        class _NewFirst:
            name = "new-items-first"

            def score_items(self, users, items, item_features=None):
                return np.tile(new, (len(users), 1))

        na: dict[str, str] = {}
        out = self.run(_NewFirst(), metric_objs, False, na, [])
        return {m: v for m, v in out.items() if not np.isnan(v)}

    def _scores(self, model, chunk, uses_text) -> np.ndarray:
        cold = self.cold if uses_text else None
        if cold is not None and cold.per_user is not None:  # leave-one-out: per user
            return np.vstack(
                [
                    model.score_items([u], self.candidates, item_features=cold.per_user.for_user(u))
                    for u in chunk
                ]
            )
        shared = None if cold is None else cold.features
        return model.score_items(chunk, self.candidates, item_features=shared)

    def run(self, model, metric_objs, uses_text, na, notes, units=None) -> dict[str, float]:
        ranking_metrics = [m for m in metric_objs if m.kind in ("ranking", "catalog")]
        if not ranking_metrics:
            return {}
        rankings, unscorable, nan_cells = [], 0, 0
        for start in range(0, len(self.users), CHUNK_USERS):
            chunk = self.users[start : start + CHUNK_USERS]
            scores = self._scores(model, chunk, uses_text)
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
                if self.new_items
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
                scores = m.scores(rankings, self.relevant)  # the metric is their mean
                out[m.display_name()] = float(np.mean(scores))
                if units is not None:
                    units[m.display_name()] = scores
        return out


# -- chart ---------------------------------------------------------------------------------
def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` (a column title such as ``rmse`` or ``ndcg@10``) is
    better: the registered metric's ``higher_is_better``, else the error metrics' names."""
    import re

    from recfeat.components.metric import LOWER_IS_BETTER

    registry = get_registry("metric")
    base = re.sub(r"@\d+$", "", metric)
    for name in (metric, f"{base}@k", base):
        if name in registry:
            return not registry.get(name).higher_is_better
    return base.lower() in LOWER_IS_BETTER


def reference_lines(result: EvaluationResult, metric: str) -> list[tuple[str, float]]:
    """The bars a model must clear on ``metric``, as (label, value): chance (the exact
    expected score of a random ranking where the protocol computed it, else the ``random``
    model's), "new items first" (item-cold, mixed candidates) and the global mean's RMSE/MAE."""
    table, ranking = result.table, result.info.get("ranking") or {}

    def row_value(model: str) -> float | None:
        value = table[metric].get(model) if metric in table else None
        return None if value is None or pd.isna(value) else float(value)

    out = []
    chance = ranking.get(f"expected_random_{metric}")
    if chance is None:
        chance = row_value("random")
    if chance is not None:
        out.append(("chance", float(chance)))
    new_first = (ranking.get("reference_new_items_first") or {}).get(metric)
    if new_first is not None:
        out.append(("new items first", float(new_first)))
    mean = row_value("global-mean")
    if mean is not None:
        out.append(("global mean", mean))
    return out


_LINE_STYLES = {"chance": ("#c0392b", "--"), "new items first": ("#7d3c98", ":"),
                "global mean": ("#555555", "-.")}  # fmt: skip
_BAR_COLOURS = {False: ("#3b75af", "#a9c4df"), True: ("#c8701e", "#ecc39c")}  # best, others


def result_figure(result: EvaluationResult, metrics=None, title: str | None = None):
    """The chart of ``plot_result`` as a matplotlib ``Figure``: a grid of panels (at most
    4 across), one per metric with a value; in each, the models that have one as bars, best
    on top, and the reference lines (``reference_lines``) dashed. Lower-is-better metrics
    say so in their title and are drawn in another colour."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    table = result.table
    metrics = [m for m in (metrics or table.columns) if m in table and table[m].notna().any()]
    if not metrics:
        raise DataError("nothing to plot: every metric is n/a")
    n = len(metrics)
    # at most 4 across; 3 where that leaves fewer empty cells (5, 6, 9 panels)
    cols = n if n <= 4 else min((4, 3), key=lambda c: (-n % c, -c))
    rows = -(-n // cols)
    bars = max(int(table[m].notna().sum()) for m in metrics)
    panel_h = 0.9 + 0.26 * bars
    fig = Figure(figsize=(3.9 * cols, panel_h * rows + 0.9), dpi=110, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    used_lines: dict[str, Line2D] = {}
    for ax, metric in zip(axes, metrics, strict=False):
        lower = lower_is_better(metric)
        values = table[metric].dropna().sort_values(ascending=lower)
        best, other = _BAR_COLOURS[lower]
        ypos = np.arange(len(values))
        ax.barh(ypos, values.to_numpy(), color=[best] + [other] * (len(values) - 1), height=0.7)
        ax.set_yticks(ypos, labels=list(values.index), fontsize=8)
        ax.set_ylim(bars - 0.5, -0.5)  # best on top; every panel's bars equally thick
        refs = reference_lines(result, metric)
        top = max([float(values.max()), *(v for _, v in refs)])
        for y, v in zip(ypos, values, strict=True):
            ax.text(v + top * 0.015, y, f"{v:.3f}", va="center", fontsize=7)
        for label, value in refs:
            colour, style = _LINE_STYLES[label]
            used_lines[label] = ax.axvline(value, color=colour, linestyle=style, linewidth=1.4,
                                           label=label)  # fmt: skip
        ax.set_xlim(0, top * 1.2 if top > 0 else 1)
        ax.tick_params(axis="x", labelsize=7)
        direction = "lower is better \u2193" if lower else "higher is better \u2191"
        ax.set_title(f"{metric} ({direction})", fontsize=9, fontweight="bold" if lower else None)
        missing = [m for m in table.index if pd.isna(table.loc[m, metric])]
        if missing:
            ax.set_xlabel("n/a: " + ", ".join(missing), fontsize=7, color="#666666", wrap=True)
    for ax in axes[n:]:
        ax.set_visible(False)
    if used_lines:
        fig.legend(handles=[used_lines[k] for k in _LINE_STYLES if k in used_lines],
                   loc="outside upper right", ncols=len(used_lines), fontsize=8, frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_result(
    result: EvaluationResult, path: str | Path, metrics=None, title: str | None = None
) -> Path:
    """``result_figure`` written as a PNG to ``path`` (atomically)."""
    fig = result_figure(result, metrics=metrics, title=title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
