"""Train/test splits of an interactions table, deterministic for a seed, saved and loaded as
JSON row assignments.

Kinds:

- ``random``: a seeded ``test_fraction`` (default 20%) of the rows go to test.
- ``temporal``: per user, the latest ``test_fraction`` of that user's interactions (at
  least one, ``leave_last=True`` for exactly one) go to test; every user keeps at least one
  training interaction; ties in time are broken by row order. Needs timestamps.
- ``item-cold``: a seeded ``test_fraction`` of the ITEMS is held out with ALL their
  interactions, so no model ever sees them in training.
- ``user-cold``: the same for users.
- ``leave-last-out``: the next-item protocol of the sequential literature (SASRec, UniSRec,
  Recformer): each user's LAST interaction by time is the test (ties in time broken by row
  order); tuning carves the one before it as validation (recfeat.evaluation.tuning). Users
  with a single interaction keep it in training and are not tested (counted in the report
  as ``users_with_one_interaction``). Needs timestamps.
- ``leave-last-out-new``: its new-item variant. A seeded ``test_fraction`` of the items is
  held out of every training sequence (all their interactions leave training); a user is
  tested when their LAST interaction is with a held-out item, and ranks the held-out items
  (as on ``item-cold``), so only text can score the answer. Held-out rows that are not a
  user's last interaction are neither trained on nor tested: they stay out of that user's
  candidates, as history.

Leakage guarantees (tested): no (user, item) pair is in both train and test; held-out
items/users of the cold splits have no training row. Anything a model aggregates (user
profiles, item means, text aggregates) must come from ``split.train`` only; the evaluation
builds features from it (see recfeat.evaluation.protocol).

How a cold item is represented at ranking time (its item text, or its first reviews, which
then leave the test set) is the evaluation's business: recfeat.evaluation.coldstart.

Test rows whose user or item has no training data cannot be evaluated as warm
recommendations. Policy, reported in ``split.report``: on ``random``/``temporal`` splits
they are dropped from evaluation (counted as ``dropped_cold_rows``); on ``item-cold``, rows
whose USER has no training data are dropped (no profile to rank for); on ``user-cold``,
rows whose ITEM has no training data are dropped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recfeat.config import SEQUENTIAL_SPLITS, SPLIT_KINDS
from recfeat.data import checks
from recfeat.data.split_files import (
    check_interactions,
    divide,
    read_split_file,
    write_split_file,
)
from recfeat.errors import DataError, UsageError, closest

KINDS = SPLIT_KINDS
#: splits whose test items have no training interaction: the evaluation ranks them among the
#: held-out items, represented by text (recfeat.evaluation.coldstart)
NEW_ITEM_KINDS = ("item-cold", "leave-last-out-new")
#: splits that test each user's next interaction (time-ordered histories)
SEQUENTIAL_KINDS = SEQUENTIAL_SPLITS


@dataclasses.dataclass
class Split:
    """One split: ``train`` and ``test`` interactions plus what evaluation needs to know."""

    kind: str
    seed: int
    test_fraction: float
    train: pd.DataFrame
    test: pd.DataFrame
    test_rows: np.ndarray  # positions in the interactions table (what save/load stores)
    cold_items: frozenset[str]  # test items with no training interaction
    cold_users: frozenset[str]  # test users with no training interaction
    report: dict[str, Any]
    #: leave-last-out-new: test rows that are their user's last interaction (the rest of the
    #: held-out items' rows are history, never evaluated); None for the other kinds
    next_rows: np.ndarray | None = None

    @property
    def new_items(self) -> bool:
        """Whether the test items are held out of training (ranked among themselves, by text)."""
        return self.kind in NEW_ITEM_KINDS

    def evaluation_rows(self) -> pd.DataFrame:
        """Test rows that can be evaluated under this split's policy (see module doc)."""
        test = self.test
        warm_user = ~test["user"].isin(self.cold_users)
        warm_item = ~test["item"].isin(self.cold_items)
        if self.kind == "leave-last-out-new":
            return test[warm_user & test.index.isin(self.next_rows)]
        if self.kind == "item-cold":
            return test[warm_user]
        if self.kind == "user-cold":
            return test[warm_item]
        return test[warm_user & warm_item]


def make_split(
    interactions: pd.DataFrame,
    kind: str = "random",
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    leave_last: bool = False,
) -> Split:
    """Split ``interactions`` (RecData.interactions) into train and test; see module doc."""
    if not checks.is_frame(interactions):
        raise checks.refuse("interactions", "a pandas DataFrame of (user, item) rows", interactions,
                            "pass RecData.interactions (recfeat.load_dataset(path).interactions)")  # fmt: skip
    if not isinstance(kind, str):
        raise checks.refuse("split", f"one of {', '.join(KINDS)}", kind, "pass e.g. 'random'")
    if kind not in KINDS:
        raise UsageError(
            f"unknown split {kind!r}.{closest(kind, KINDS)} Splits: {', '.join(KINDS)}"
        )
    checks.seed(seed, "seed")
    checks.fraction(test_fraction, "test_fraction")
    checks.flag(leave_last, "leave_last")
    inter = check_interactions(interactions)
    rng = np.random.default_rng(seed)
    n = len(inter)
    if kind == "random":
        n_test = max(1, int(round(test_fraction * n)))
        test_rows = rng.permutation(n)[:n_test]
    elif kind == "temporal":
        test_rows = _temporal(inter, test_fraction, leave_last)
    elif kind == "leave-last-out":
        test_rows = _temporal(inter, test_fraction, True, kind)
        leave_last = True
    elif kind == "leave-last-out-new":
        ids = np.sort(inter["item"].unique())
        n_out = max(1, int(round(test_fraction * len(ids))))
        held = set(rng.permutation(ids)[:n_out].tolist())
        _time_order(inter, kind)  # the timestamps check, before any work
        test_rows = np.flatnonzero(inter["item"].isin(held).to_numpy())
        leave_last = True
    else:
        column = "item" if kind == "item-cold" else "user"
        ids = np.sort(inter[column].unique())
        n_out = max(1, int(round(test_fraction * len(ids))))
        held = set(rng.permutation(ids)[:n_out].tolist())
        test_rows = np.flatnonzero(inter[column].isin(held).to_numpy())
    return _build(inter, kind, seed, test_fraction, np.sort(test_rows), leave_last)


def _time_order(inter: pd.DataFrame, kind: str) -> pd.DataFrame:
    """(user, t, pos) sorted by user, time, then row order (the tie-break), with ``from_end``:
    0 for each user's latest interaction."""
    if "timestamp" not in inter.columns or (inter["timestamp"] < 0).all():
        raise DataError(
            f"{kind} split needs timestamps, and these interactions have none; use --split random"
        )
    frame = pd.DataFrame(
        {"user": inter["user"], "t": inter["timestamp"], "pos": np.arange(len(inter))}
    ).sort_values(["user", "t", "pos"], kind="stable")
    return frame.assign(from_end=frame.groupby("user").cumcount(ascending=False).to_numpy())


def _temporal(inter: pd.DataFrame, fraction: float, leave_last: bool,
              kind: str = "temporal") -> np.ndarray:  # fmt: skip
    frame = _time_order(inter, kind)
    size = frame.groupby("user")["pos"].transform("size").to_numpy()
    from_end = frame["from_end"].to_numpy()
    if leave_last:
        n_test = np.ones_like(size)
    else:
        n_test = np.maximum(1, np.round(fraction * size).astype(int))
    n_test = np.minimum(n_test, size - 1)  # every user keeps one training interaction
    return frame["pos"].to_numpy()[from_end < n_test]


def _build(inter, kind, seed, fraction, test_rows, leave_last) -> Split:
    train, test = divide(inter, test_rows, kind)
    train_users, train_items = set(train["user"]), set(train["item"])
    cold_users = frozenset(set(test["user"]) - train_users)
    cold_items = frozenset(set(test["item"]) - train_items)
    next_rows = None
    if kind == "leave-last-out-new":  # the held-out rows that are their user's last one
        order = _time_order(inter, kind)
        last = order["pos"].to_numpy()[order["from_end"].to_numpy() == 0]
        next_rows = np.intersect1d(last, test_rows)
    split = Split(kind, seed, fraction, train, test, test_rows, cold_items, cold_users, {},
                  next_rows)  # fmt: skip
    evaluated = split.evaluation_rows()
    split.report = {
        "split": kind,
        "seed": seed,
        "test_fraction": fraction,
        "leave_last": leave_last,
        "train_interactions": int(len(train)),
        "test_interactions": int(len(test)),
        "test_users_without_training_data": len(cold_users),
        "test_items_without_training_data": len(cold_items),
        "evaluated_test_interactions": int(len(evaluated)),
        "dropped_cold_rows": int(len(test) - len(evaluated)),
        "policy": _POLICY[kind],
    }
    if kind in SEQUENTIAL_KINDS:
        sizes = inter.groupby("user").size()
        split.report["users_with_one_interaction"] = int((sizes == 1).sum())
        split.report["tested_users"] = int(evaluated["user"].nunique())
    if kind == "leave-last-out-new":
        split.report["dropped_cold_rows"] = int(
            len(split.test.loc[next_rows]) - len(evaluated)
        )
        split.report["history_rows_of_new_items"] = int(len(test) - len(next_rows))
    return split


_POLICY = {
    "random": "test rows whose user or item has no training data are dropped from (warm) evaluation",
    "temporal": "test rows whose user or item has no training data are dropped from (warm) evaluation",
    "item-cold": "held-out items are ranked among held-out items (or among training items "
    "too, candidates=mixed), each represented as recfeat.evaluation.coldstart says; test users "
    "with no training data are dropped (no profile to rank for)",
    "user-cold": "held-out users are ranked over training items with each model's "
    "non-personalised fallback (or user features); items with no training data are dropped",
    "leave-last-out": "each user's last interaction (by time, ties by row order) is ranked "
    "against every training item the user has not interacted with; users with one "
    "interaction are not tested; a last item with no training data is dropped",
    "leave-last-out-new": "users whose last interaction is with a held-out item rank the "
    "held-out items (represented as recfeat.evaluation.coldstart says), minus their history",
}


# -- persistence (the file format is recfeat.data.split_files') ---------------------------
def save_split(split: Split, path: str | Path, interactions: pd.DataFrame) -> Path:
    """Write the split's row assignments (test row positions) as JSON, atomically."""
    return write_split_file(
        path, interactions, kind=split.kind, seed=split.seed, test_fraction=split.test_fraction,
        leave_last=split.report.get("leave_last", False), test_rows=split.test_rows,
    )  # fmt: skip


def load_split(path: str | Path, interactions: pd.DataFrame) -> Split:
    """Rebuild a saved split over the same ``interactions`` (checked by fingerprint)."""
    inter, payload, rows = read_split_file(path, interactions)
    if payload["kind"] not in KINDS:
        raise DataError(
            f"split file {path}: unknown kind {payload['kind']!r}; the file was edited or made "
            "by a newer recfeat: make a new split with --save-split"
        )
    return _build(
        inter,
        payload["kind"],
        payload["seed"],
        payload["test_fraction"],
        rows,
        payload["leave_last"],
    )
