"""Built-in tuning: choose each model's options on VALIDATION data carved from the training
part of a split, then let the evaluation refit on the whole training part and report test
metrics with the chosen options (``evaluate(..., tune=True)``, ``recfeat evaluate --tune``).

Protocol
- The validation split is made from ``split.train`` alone, of the split's own kind and
  ``test_fraction``, seeded by the evaluation seed (``recfeat.evaluation.splits``):
  ``random`` holds out a seeded share of the training ROWS, ``temporal`` each user's latest
  training interactions, ``item-cold`` a seeded share of the training ITEMS, ``user-cold``
  of the training USERS. Test rows never reach tuning: the data handed to the search is
  rebuilt from the training rows (reviews and review vectors filtered to training pairs;
  item texts and item-level features from texts are not interactions and are kept).
- The search space is the model class's ``tune_space`` (``RecModel.tune_space``: option ->
  list of values; empty = nothing to tune), or the space the caller gives for that model
  (``[models.NAME.search]`` in a config, a ``(name, options, space)`` model spec), which
  replaces it. Options the caller set explicitly are FIXED: never searched, and listed as
  held fixed in the report and its note. Candidates: the caller's options as given (the defaults) first, then scikit-learn's
  ``ParameterGrid`` when the whole grid fits the budget ``n_trials``, else
  ``ParameterSampler`` (``n_trials - 1`` seeded draws without replacement).
- Each candidate is scored by ``recfeat.evaluation.protocol.evaluate`` itself on the
  validation split (same ranking task, exclusions, ties, relevance threshold, cold-start
  protocol), so there is one metric implementation. Objective: NDCG@k for models that rank
  (``ranks_items``), RMSE for rating-only models, unless ``objective`` names a metric for
  every model (its ``higher_is_better`` says which way is better). Ties keep the earlier candidate, so the
  defaults win unless something is strictly better.
- A model whose validation objective is n/a for every candidate (an ID-only model on an
  item-cold validation split) or that declares no space is reported as not tuned and keeps
  its options.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from recfeat.components.metric import objective_problem
from recfeat.errors import DataError, UsageError, closest
from recfeat.plugin.registry import get_registry
from recfeat.progress import progress_bar

DEFAULT_TRIALS = 10


def check_trials(n_trials: Any) -> int:
    """``n_trials`` as a positive int, or a one-line UsageError naming the fix."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise UsageError(
            f"--tune-trials must be a whole number of at least 1 (got {n_trials!r}); "
            f"e.g. --tune-trials {DEFAULT_TRIALS}"
        )
    return int(n_trials)


# -- data the search may see -----------------------------------------------------------------
def validation_split(split, seed: int):
    """A split of ``split.train`` of the same kind (see module doc); DataError when too small."""
    from recfeat.evaluation.splits import make_split

    try:
        return make_split(
            split.train,
            split.kind,
            seed=seed,
            test_fraction=split.test_fraction,
            leave_last=bool(split.report.get("leave_last", False)),
        )
    except DataError as exc:
        raise DataError(
            f"tuning: cannot carve a validation split from the training part ({exc}); "
            "use more data or drop --tune"
        ) from None


def training_view(data, item_features, split):
    """(data, item_features) holding nothing but ``split.train``'s interactions and reviews."""
    import pandas as pd

    from recfeat.data.features import ReviewVectors

    train = split.train.reset_index(drop=True)
    keys = pd.MultiIndex.from_arrays([train["user"].astype(str), train["item"].astype(str)])
    reviews = getattr(data, "reviews", None)
    if reviews is not None:
        mine = pd.MultiIndex.from_arrays([reviews["user"].astype(str), reviews["item"].astype(str)])
        reviews = reviews[np.asarray(mine.isin(keys))].reset_index(drop=True)
    view = dataclasses.replace(data, interactions=train, reviews=reviews, report=dict(data.report))
    if isinstance(item_features, ReviewVectors):
        mine = pd.MultiIndex.from_arrays([item_features.users, item_features.items])
        keep = np.asarray(mine.isin(keys))
        item_features = item_features.subset(keep)
    return view, item_features


# -- candidates ----------------------------------------------------------------------------
def search_space(cls, fixed: dict[str, Any], given: dict[str, list] | None = None) -> dict[str, list]:
    """What tuning searches: ``given`` (the caller's space, ``[models.NAME.search]``), which
    replaces the class's ``tune_space``, else the class's space without the options the
    caller fixed. A given option that is also fixed, or that the model does not take, is a
    UsageError: a fixed option is never searched."""
    if not given:
        space = getattr(cls, "tune_space", None) or {}
        return {k: list(v) for k, v in space.items() if k not in fixed and len(v) > 0}
    known = cls._get_param_names()  # scikit-learn's: the constructor's arguments
    for option, values in given.items():
        if option not in known:
            raise UsageError(f"{cls.name}: search space names {option!r}, not an option of the "
                             f"model.{closest(option, known)} Options: {', '.join(known)}")  # fmt: skip
        if option in fixed:
            raise UsageError(f"{cls.name}: {option!r} is both fixed ({option}={fixed[option]!r}) "
                             "and in the search space; keep one")  # fmt: skip
        if not isinstance(values, (list, tuple)) or not values:
            raise UsageError(f"{cls.name}: search space {option!r} must be a non-empty list of "
                             f"values, got {values!r}")  # fmt: skip
    return {k: list(v) for k, v in given.items()}



def candidates(
    space: dict[str, list], base: dict[str, Any], n_trials: int, seed: int
) -> list[dict]:
    """Full option sets to try: ``base`` first, then grid points or seeded samples of ``space``."""
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    out = [dict(base)]
    if not space or n_trials < 2:
        return out
    grid = ParameterGrid(space)
    points = (
        list(grid)
        if len(grid) <= n_trials - 1
        else list(ParameterSampler(space, n_iter=n_trials - 1, random_state=seed))
    )
    for point in points:
        cand = {**base, **point}
        if cand not in out:
            out.append(cand)
    return out


# -- the search ----------------------------------------------------------------------------
@dataclasses.dataclass
class TuneReport:
    """What tuning did for one model; ``options`` are the ones the evaluation then fits."""

    model: str
    status: str  # "tuned" | "not tuned"
    options: dict[str, Any]
    reason: str | None = None
    objective: str | None = None
    greater_is_better: bool = True
    space: dict[str, list] = dataclasses.field(default_factory=dict)
    #: "given" (the caller's search space) or "built-in" (the model's ``tune_space``)
    space_source: str = "built-in"
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    trials: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    validation_score: float | None = None
    default_score: float | None = None
    validation: dict[str, Any] | None = None
    seconds: float = 0.0  # wall time of the search (the final refit is the model's fit s)

    @property
    def chosen(self) -> dict[str, Any]:
        """The searched options' chosen values (the rest are the defaults or fixed)."""
        return {k: self.options[k] for k in self.space if k in self.options}

    def note(self) -> str:
        held = (f"; held fixed: {', '.join(f'{k}={v}' for k, v in self.fixed.items())}"
                if self.fixed else "")  # fmt: skip
        if self.status != "tuned":
            return f"not tuned: {self.reason}{held}"
        chosen = ", ".join(f"{k}={v}" for k, v in self.chosen.items())
        return (
            f"tuned on validation ({self.validation['split']} split of the training part, "
            f"{len(self.trials)} trials, {self.seconds:.0f} s): searched {chosen} "
            f"({self.space_source} space){held}; validation {self.objective} "
            f"{self.validation_score:.4f} (as given {_num(self.default_score)})"
        )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["chosen"] = self.chosen
        out["trials_run"] = len(self.trials)
        return out


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


class Tuner:
    """Tunes models one at a time on one validation split of ``split.train``.

    ``evaluate`` is ``recfeat.evaluation.protocol.evaluate``, handed in by the protocol that
    owns this tuner (so this module never imports the protocol that imports it).
    ``evaluate_options`` are passed through to each validation ``evaluate`` call (cold-start
    protocol, candidate set, trust_features), so validation is measured like the test."""

    def __init__(self, data, item_features, user_features, split, *, evaluate, k: int,
                 seed: int, relevance_threshold: float | None,
                 n_trials: int | None = DEFAULT_TRIALS, progress: bool | None = None,
                 objective: str | None = None, **evaluate_options: Any):  # fmt: skip
        if objective is not None and objective_problem(objective):
            raise UsageError(f"--tune-objective: {objective_problem(objective)}")
        self.objective = objective  # None: NDCG@k for models that rank, RMSE for the others
        self._evaluate_fn = evaluate
        self.progress = progress  # a bar over each model's trials (None: on a terminal)
        self.n_trials = check_trials(DEFAULT_TRIALS if n_trials is None else n_trials)
        self.k, self.seed, self.threshold = k, seed, relevance_threshold
        self.data, self.item_features = training_view(data, item_features, split)
        self.user_features = user_features
        self.split = validation_split(split, seed)
        self.evaluate_options = evaluate_options
        self.reports: dict[str, TuneReport] = {}
        #: JSON-able, filled in by ``tune`` (the evaluation puts it in ``info["tuning"]``)
        self.summary: dict[str, Any] = {
            "validation_split": self.split.report,
            "n_trials": self.n_trials,
            "objective": (f"{objective} for every model" if objective else
                          "NDCG@k for models that rank, RMSE for rating-only models"),
            "models": {},
        }

    def tune(self, label: str, name: str, options: dict[str, Any],
             space: dict[str, list] | None = None) -> TuneReport:  # fmt: skip
        """Search ``name``'s space around ``options`` (fixed: never searched); ``space``
        replaces the model's built-in one. The report's ``options`` are the best."""
        start = time.perf_counter()
        report = self._tune(label, name, options, space)
        report.seconds = round(time.perf_counter() - start, 3)
        self.reports[label] = report
        self.summary["models"][label] = report.to_dict()
        return report

    def _tune(self, label: str, name: str, options: dict[str, Any],
              given: dict[str, list] | None) -> TuneReport:  # fmt: skip
        registry = get_registry("model")
        base_model = registry.create(name, **options)
        base = base_model.get_params(deep=False)
        space = search_space(type(base_model), options, given)
        if not given and getattr(self.item_features, "tokens", None) is None:
            # token features mixed in (token_weight) need features that carry them
            space.pop("token_weight", None)
        ranks = getattr(base_model, "ranks_items", not base_model.predicts_ratings)
        metric = self.objective or ("ndcg@k" if ranks else "rmse")
        greater = bool(get_registry("metric").get(metric).higher_is_better)
        objective = metric.replace("@k", f"@{self.k}") if metric.endswith("@k") else metric
        report = TuneReport(
            model=name,
            status="not tuned",
            options=dict(options),
            objective=objective,
            greater_is_better=greater,
            space=space,
            space_source="given" if given else "built-in",
            fixed=dict(options),
            validation=self.split.report,
        )
        if not space:
            declared = getattr(type(base_model), "tune_space", None)
            report.reason = (
                "every option of its built-in search space was set explicitly, so is fixed; "
                "give a search space "
                f"([models.{name}.search] in a config) to search other options"
                if declared
                else "the model declares no search space (tune_space is empty); give one "
                f"([models.{name}.search] in a config)"
            )
            return report
        cands = candidates(space, base, self.n_trials, self.seed)
        scores = self._scores(label, name, cands, metric)
        if all(s is None for s in scores):
            report.reason = f"{objective} is n/a on the {self.split.kind} validation split"
            report.trials = [{"options": c, "score": None} for c in cands]
            return report
        sign = 1.0 if greater else -1.0
        best = max(
            range(len(cands)),
            key=lambda n: (-math.inf if scores[n] is None else sign * scores[n], -n),
        )
        report.status = "tuned"
        report.options = cands[best]
        report.trials = [{"options": c, "score": s} for c, s in zip(cands, scores, strict=True)]
        report.validation_score = scores[best]
        report.default_score = scores[0]
        return report

    def _scores(self, label, name, cands, metric) -> list[float | None]:
        """Validation ``metric`` (a registry name) per candidate, each by
        ``protocol.evaluate`` (None: n/a)."""
        evaluate = self._evaluate_fn
        out: list[float | None] = []
        what = f"tuning {label} on validation"
        with progress_bar(len(cands), what, enabled=self.progress, unit="trial") as bar:
            for i, cand in enumerate(cands, 1):
                bar.describe(f"{what}: trial {i}/{len(cands)}")
                result = self._evaluate(evaluate, name, cand, metric)
                value = float(result.table.iloc[0, 0])
                out.append(None if np.isnan(value) else value)
                bar.advance()
        return out

    def _evaluate(self, evaluate, name, cand, metric):
        try:
            return evaluate(
                self.data, self.item_features, [(name, cand)], self.split, k=self.k,
                seed=self.seed, user_features=self.user_features, metrics=[metric],
                relevance_threshold=self.threshold, progress=False, **self.evaluate_options,
            )  # fmt: skip
        except (DataError, UsageError) as exc:  # say it is the validation split, not the test
            raise type(exc)(
                f"tuning {name!r} on the validation split carved from the training part: {exc}"
            ) from None
