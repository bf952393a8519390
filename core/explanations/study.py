"""``recfeat explain-eval``: the faithfulness tests of every model on one split.

Each model is fitted on the split's training part (text models on item vectors built from
training reviews only: ``RecModel.fit`` averages review-level features over ``train``), a
seeded sample of users with enough training history is drawn once and shared by every
model, and each user's top-k list, citations and re-scores follow
``recfeat.explanations.faithfulness``. Models that explain nothing get a row saying so.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from recfeat.errors import UsageError
from recfeat.explanations.faithfulness import FaithSettings, summarise, user_trial
from recfeat.explanations.history import user_history
from recfeat.progress import progress_bar

#: the models the benchmark runs by default: the text models the target names, and the
#: ID-only and sequential ones beside them
DEFAULT_MODELS = ("content", "ease-text", "ease", "als", "hybrid-als", "sasrec-text")


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """The split (``split``, ``seed``, ``test_fraction``), the users sampled (``users`` per
    citation size c, each with at least max(``min_history``, 2c) distinct training items:
    the cited evidence is at most half the history, so a deletion never removes most of
    it, which would drop any item, cited or not) and the tests' ``faith`` settings."""

    split: str = "random"
    seed: int = 0
    test_fraction: float = 0.2
    users: int = 300
    min_history: int = 2
    faith: FaithSettings = dataclasses.field(default_factory=FaithSettings)

    def history_floor(self, c: int) -> int:
        return max(int(self.min_history), 2 * int(c))


def sample_users(split, settings: StudySettings) -> dict[int, list[str]]:
    """Per citation size c: a seeded sample of ``users`` test users with at least
    ``history_floor(c)`` distinct training items."""
    sizes = split.train.drop_duplicates(["user", "item"]).groupby("user").size()
    tested = set(split.test["user"].astype(str))
    out = {}
    for c in settings.faith.cite:
        floor = settings.history_floor(c)
        eligible = sorted(u for u, n in sizes.items() if n >= floor and u in tested)
        if not eligible:
            raise UsageError(f"no test user has {floor} or more distinct training items (2 x "
                             f"--cite {c}); cite fewer items or use a denser dataset")  # fmt: skip
        rng = np.random.default_rng([settings.seed, c])
        take = min(settings.users, len(eligible))
        out[c] = sorted(rng.choice(np.array(eligible, dtype=object), take, replace=False).tolist())
    return out


def run_model(model, split, users: dict[int, list[str]], settings: StudySettings,
              item_features=None, label: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Fit ``model`` on the split's training part and run the tests for ``users`` (per
    citation size, from ``sample_users``)."""
    name = label or model.name
    row: dict[str, Any] = {"model": name, "explains": list(model.explains)}
    if "history" not in model.explains:
        row["skipped"] = ("explains nothing: its scores do not decompose over the user's "
                          "history")  # fmt: skip
        return row
    if model.uses_text and item_features is None:
        row["skipped"] = "a text model: pass --features (recfeat extract) to test it"
        return row
    start = time.perf_counter()
    model.fit(split.train, item_features=item_features if model.uses_text else None)
    row["fit_seconds"] = round(time.perf_counter() - start, 2)
    candidates = np.asarray(model.items_, dtype=object)
    index = {k: n for n, k in enumerate(candidates)}
    everyone = sorted({u for us in users.values() for u in us})
    trials = []
    start = time.perf_counter()
    with progress_bar(len(everyone), f"explain-eval {name}") as bar:
        for n, user in enumerate(everyone):
            sizes = tuple(c for c in settings.faith.cite if user in users[c])
            history = user_history(model, user, interactions=split.train)
            seen = np.zeros(len(candidates), dtype=bool)
            seen[[index[h] for h in history if h in index]] = True
            # one stream per user: a user's draws do not depend on the other users or models
            rng = np.random.default_rng([settings.seed, n])
            faith = dataclasses.replace(settings.faith, cite=sizes)
            trials.append(user_trial(model, history, candidates, seen, faith, rng))
            bar.advance()
    row["test_seconds"] = round(time.perf_counter() - start, 2)
    row["by_cite"] = summarise(trials, settings.faith, seed=settings.seed)
    return row


def run_study(data, models, item_features=None, settings: StudySettings | None = None,
              *, registry=None) -> dict[str, Any]:  # fmt: skip
    """Every model of ``models`` (names, or (name, options) pairs) on one split of ``data``
    (a RecData); ``item_features``: review- or item-level features for the text models."""
    from recfeat.evaluation.splits import make_split
    from recfeat.machine import cpu_model
    from recfeat.plugin.registry import get_registry

    settings = settings or StudySettings()
    registry = registry or get_registry("model")
    made = []
    for spec in models:  # every name and option is checked before any fitting
        name, options = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        made.append((name, registry.create(name, **options)))
    split = make_split(data.interactions, settings.split, seed=settings.seed,
                       test_fraction=settings.test_fraction)  # fmt: skip
    users = sample_users(split, settings)
    rows = [run_model(model, split, users, settings, item_features, label=name)
            for name, model in made]  # fmt: skip
    import os

    manifest = getattr(item_features, "manifest", {}) or {}
    return {
        "dataset": data.name,
        "split": {"kind": settings.split, "seed": settings.seed,
                  "test_fraction": settings.test_fraction,
                  "train": int(len(split.train)), "test": int(len(split.test))},
        "users": {"per_cite": {str(c): len(us) for c, us in users.items()},
                  "min_history": {str(c): settings.history_floor(c) for c in users},
                  "seed": settings.seed},
        "tests": {"k": settings.faith.k, "cite": list(settings.faith.cite),
                  "random_draws": settings.faith.draws},
        "features": None if item_features is None else {
            "level": manifest.get("level"), "encoder": manifest.get("encoder_name"),
            "path": manifest.get("path")},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "models": rows,
    }  # fmt: skip
