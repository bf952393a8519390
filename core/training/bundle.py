"""The trained model of ``recfeat train`` / ``recfeat recommend``: fit one model on all of a
dataset, write it with what ranking needs later, read it back and rank items per user.

``train_model`` returns a ``TrainedModel``: the fitted estimator (``.model``), the header
(model name and options, dataset, counts, the feature dimension and encoder fingerprint, so
``recommend`` refuses vectors from another encoder or dimension, and the lineage: the
training rows' fingerprint and the split they came from), each user's training items
(``.seen``) and the item snippets. The file format (``save_model`` / ``load_model``) lives
in ``recfeat.training.model_file``, which reads and writes the same fields as a plain dict:
loading it executes nothing. Old pickle (joblib) files are opened only with ``trust=True``
(``--trust``).
"""

from __future__ import annotations

import dataclasses
import numbers
import time
import warnings
from pathlib import Path
from typing import Any

from recfeat import __version__
from recfeat.data import checks
from recfeat.data.validation import check_ratings
from recfeat.errors import DataError, UsageError
from recfeat.plugin.registry import get_registry
from recfeat.training import model_file

FORMAT = "recfeat-model"
SNIPPET_CHARS = 80


def item_snippets(data) -> dict[str, str]:
    """Item text (titles, genres) or, for review-only data, the start of the item's first review."""
    table = data.items if data.items is not None and len(data.items) else None
    if table is None and data.reviews is not None:
        table = data.reviews.drop_duplicates("item")  # first review of each item
    if table is None or "text" not in table.columns:
        return {}
    text = (
        table["text"]
        .fillna("")
        .astype(str)
        .str.replace(r"\s+", " ", regex=True)
        .str.slice(0, SNIPPET_CHARS)
    )
    return dict(zip(table["item"].astype(str), text, strict=False))


def fit_features(item_features, interactions):
    """Review-level vectors become item means over ALL reviews: fine for a deployed model."""
    from recfeat.data.features import ReviewVectors

    if isinstance(item_features, ReviewVectors):
        return item_features.item_means(interactions)
    return item_features


def train_model(dataset, model_name: str, options: dict[str, Any] | None = None, *,
                item_features=None, user_features=None,
                lineage: dict[str, Any] | None = None) -> TrainedModel:  # fmt: skip
    """Fit ``model_name`` on every interaction of ``dataset``; return the model to save.
    ``lineage``: where the rows came from (``data``: the path read; ``split``: the split
    whose training part they are), recorded in the header with the rows' fingerprint."""
    from recfeat.components.model import feature_fingerprint
    from recfeat.data.features import Features, ReviewVectors, check_matches_dataset
    from recfeat.data.recdata import RecData
    from recfeat.data.split_files import fingerprint

    if not isinstance(dataset, RecData):
        raise checks.refuse("data", "a RecData", dataset, "load one with recfeat.load_dataset")
    checks.text(model_name, "model", example="popularity")
    if options is not None and not isinstance(options, dict):
        raise checks.refuse("options", "a dict of the model's options", options,
                            "pass e.g. options={'factors': 50}")  # fmt: skip
    for name, features in (("item_features", item_features), ("user_features", user_features)):
        if features is not None and not isinstance(features, (Features, ReviewVectors)):
            raise checks.refuse(name, "Features or ReviewVectors (or None)", features,
                                "read a feature file with recfeat.read_features(path)")  # fmt: skip
    model = get_registry("model").create(model_name, **(options or {}))
    check_ratings(dataset)
    check_matches_dataset(dataset, item_features, user_features)
    if model.uses_text and item_features is None and user_features is None:
        raise UsageError(f"model {model_name!r} uses text features; pass --features FILE.parquet")
    inter = dataset.interactions
    fit_items = fit_features(item_features, inter) if model.uses_text else None
    start = time.perf_counter()
    model.fit(
        inter, item_features=fit_items, user_features=user_features if model.uses_text else None
    )
    seconds = time.perf_counter() - start
    feats = fit_items if fit_items is not None else user_features if model.uses_text else None
    header = {
        "recfeat": __version__,
        "model": model_name,
        "options": model.get_params(),
        "dataset": dataset.name,
        "users": int(len(model.users_)),
        "items": int(len(model.items_)),
        "interactions": int(len(inter)),
        "feature_dim": None if feats is None else int(feats.dim),
        "features": None if feats is None else feature_fingerprint(feats),
        "fit_seconds": round(seconds, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "lineage": {"data": None, "split": None, **(lineage or {}),
                    "rows": int(len(inter)), "fingerprint": fingerprint(inter)},  # fmt: skip
    }
    seen = inter.assign(user=inter["user"].astype(str), item=inter["item"].astype(str))
    return TrainedModel(model=model, header=header,
                        seen=seen.groupby("user")["item"].apply(list).to_dict(),
                        snippets=item_snippets(dataset))  # fmt: skip


_MADE = "train one with recfeat.train(data, model) or read one with recfeat.load_model(path)"


@dataclasses.dataclass(eq=False, repr=False)
class TrainedModel:
    """A model fitted by ``recfeat.train`` or read back by ``recfeat.load_model``, with what
    ranking needs later: ``model`` (the fitted estimator), ``header`` (what it was trained
    on and how, as the model file stores it), ``seen`` (user -> training items, left out of
    rankings) and ``snippets`` (item -> the text shown beside it). The properties read the
    header; ``recommend`` ranks, ``save`` writes the safe model file, ``TrainedModel.load``
    reads one. Checked when made: parts of the wrong type are one UsageError here, not a
    KeyError deep inside ranking."""

    model: Any
    header: dict[str, Any]
    seen: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    snippets: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        header, model = self.header, self.model
        if not isinstance(header, dict) or not isinstance(header.get("model"), str):
            raise UsageError(f"the trained model's header names no model; {_MADE}")
        if not (hasattr(model, "score_items") and hasattr(model, "items_")):
            raise UsageError(f"the trained model's model is {checks.shown(model)}, not a fitted "
                             f"recfeat model; {_MADE}")  # fmt: skip
        for key in ("seen", "snippets"):
            if not isinstance(getattr(self, key), dict):
                raise UsageError(f"the trained model's {key} is "
                                 f"{checks.shown(getattr(self, key))}, not a dict; {_MADE}")  # fmt: skip

    @property
    def name(self) -> str:
        """The registered model name (``recfeat components model``)."""
        return self.header["model"]

    @property
    def options(self) -> dict[str, Any]:
        """The model's options, as fitted."""
        return dict(self.header.get("options") or {})

    @property
    def dataset(self) -> str | None:
        """The name of the dataset it was trained on."""
        return self.header.get("dataset")

    @property
    def item_ids(self) -> list[str]:
        """The items the model can rank without new features."""
        return [str(i) for i in self.model.items_]

    @property
    def user_ids(self) -> list[str]:
        """The users it knows (others get its non-personalised fallback, if any)."""
        return [str(u) for u in getattr(self.model, "users_", ())]

    @property
    def interactions(self) -> int | None:
        """How many interactions it was fitted on."""
        return self.header.get("interactions")

    @property
    def feature_dim(self) -> int | None:
        """The dimension of the text features it was trained with (None: none)."""
        return self.header.get("feature_dim")

    @property
    def features(self) -> dict[str, Any] | None:
        """What identifies the vectors it was trained with (dim, encoder, pooling...): later
        ``features`` must match it. None: trained without text features."""
        return self.header.get("features")

    @property
    def lineage(self) -> dict[str, Any] | None:
        """Where its training rows came from: ``data`` (the path read, when one was),
        ``split`` (the split file whose training part they are: path, kind, seed,
        test_fraction; None: every interaction), ``rows`` and ``fingerprint`` (of the (user,
        item) sequence, as split files record it). None for files saved before it existed."""
        return self.header.get("lineage")

    @property
    def fit_seconds(self) -> float | None:
        """How long ``fit`` took, in seconds."""
        return self.header.get("fit_seconds")

    def recommend(self, users: Any, k: int = 10, *, features: Any = None,
                  include_seen: bool = False) -> list[Ranking]:  # fmt: skip
        """Top-``k`` items for each of ``users`` (one id, or a list), as
        ``recfeat.recommend(self, users, k)`` ranks them; ``features``: item features of new
        items to rank too (Features, a DataFrame or a feature file path, same encoder as
        training). For snippets from another dataset use ``recfeat.recommend(..., data=)``."""
        from recfeat.data.features import as_features

        return recommend(self, users, k, extra_features=as_features(features, "features"),
                         include_seen=include_seen)  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Write it to ``path`` (one file, atomically, in the safe format); returns the path."""
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path, *, trust: bool = False) -> TrainedModel:
        """Read a model file (``recfeat.load_model``)."""
        return load_model(path, trust=trust)

    def to_dict(self) -> dict[str, Any]:
        """The fields the model file stores: ``format``, ``header``, ``model``, ``seen``,
        ``snippets`` (the plain dict ``recfeat.train`` returned in earlier versions)."""
        return {"format": FORMAT, "header": self.header, "model": self.model, "seen": self.seen,
                "snippets": self.snippets}  # fmt: skip

    @classmethod
    def from_dict(cls, bundle: Any) -> TrainedModel:
        """The model of a bundle dict (``to_dict``'s shape), checked; anything else is one
        UsageError naming what is missing."""
        if not isinstance(bundle, dict):
            raise checks.refuse("bundle", "a TrainedModel (what recfeat.train returns)", bundle,
                                _MADE)  # fmt: skip
        missing = [key for key in ("format", "header", "model") if key not in bundle]
        if missing:
            raise UsageError(f"bundle lacks {', '.join(map(repr, missing))}: it is not a trained "
                             f"model bundle; {_MADE}")  # fmt: skip
        if bundle["format"] != FORMAT:
            raise UsageError(f"bundle has format {bundle['format']!r}, not {FORMAT!r}; {_MADE}")
        return cls(model=bundle["model"], header=bundle["header"], seen=bundle.get("seen", {}),
                   snippets=bundle.get("snippets", {}))  # fmt: skip

    # The dict this replaced, read the old way: kept for scripts written against it.
    def __getitem__(self, key: str) -> Any:
        fields = self.to_dict()
        if key not in fields:
            raise KeyError(key)
        warnings.warn(f"trained[{key!r}] is deprecated; use the attribute (.{key}, .name, "
                      ".options...) of the TrainedModel recfeat.train returns",
                      DeprecationWarning, stacklevel=_outside_recfeat())  # fmt: skip
        return fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Deprecated dict-style access (see ``__getitem__``)."""
        if key not in self.to_dict():
            return default
        return self[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    __iter__ = None  # without it, __getitem__ would make iter() try keys 0, 1, 2...

    def __repr__(self) -> str:
        return (f"TrainedModel(name={self.name!r}, dataset={self.dataset!r}, "
                f"users={self.header.get('users')}, items={self.header.get('items')}, "
                f"feature_dim={self.feature_dim})")  # fmt: skip


def check_bundle(bundle: Any) -> TrainedModel:
    """``bundle`` as a TrainedModel: one as it is, or a bundle dict (the shape ``train``
    returned in earlier versions, deprecated) checked and wrapped; anything else is one
    UsageError."""
    if isinstance(bundle, TrainedModel):
        return bundle
    made = TrainedModel.from_dict(bundle)
    warnings.warn("a bundle dict is deprecated; pass the TrainedModel recfeat.train or "
                  "recfeat.load_model returns", DeprecationWarning,
                  stacklevel=_outside_recfeat())  # fmt: skip
    return made


def _outside_recfeat() -> int:
    """The ``stacklevel`` of the first caller outside recfeat's own files: Python shows a
    DeprecationWarning only when it points at the user's code (3.12's skip_file_prefixes)."""
    import os
    import sys

    root = os.path.join(Path(__file__).resolve().parents[1], "")  # with its separator
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(root):
        frame, level = frame.f_back, level + 1
    return level


def save_model(bundle: TrainedModel, path: str | Path) -> Path:
    """Write ``bundle`` (from ``train_model``) atomically to ``path`` in the safe format."""
    from recfeat.outputs_guard import check_out_file

    trained = check_bundle(bundle)
    out = checks.path(path, "path", what="a model file path", fix="pass e.g. path='model.recfeat'")
    check_out_file(out, "path")  # a folder or a file as its parent: refused before encoding
    return model_file.save_bundle(trained.to_dict(), out)


def load_model(path: str | Path, *, trust: bool = False) -> TrainedModel:
    """Read a file written by ``save_model`` (DataError when it is not one). Loading it runs
    no code from the file; an old pickle (joblib) file is refused unless ``trust=True``,
    because unpickling runs whatever the file contains."""
    where = checks.path(path, "path", what="a model file path", fix="pass the file recfeat train wrote")
    bundle = model_file.load_bundle(where, trust=checks.flag(trust, "trust"))
    try:
        return TrainedModel.from_dict(bundle)
    except UsageError as exc:  # the file's parts, not the caller's argument
        raise DataError(f"model file {where}: {exc}") from None


def check_same_encoder(header: dict[str, Any], features) -> None:
    """Features for another encoder or dimension than the model's are a clear error."""
    from recfeat.components.model import describe_source, feature_fingerprint

    trained = header.get("features")
    if trained is None:
        raise UsageError(
            f"model {header['model']!r} was trained without text features; drop --features"
        )
    given = feature_fingerprint(features)
    clash = [k for k in trained if k in given and trained[k] != given[k] and k not in ("level",)]
    if clash:
        raise DataError(
            f"features differ from the ones the model was trained with ({', '.join(clash)}): "
            f"model: {describe_source(trained)}; features: {describe_source(given)}; "
            "extract features with the model's encoder"
        )


def user_ids(users: Any) -> list[str]:
    """The users to rank: one id (a str or an int is ONE user: "196" is user 196, not users
    1, 9 and 6) or a list of them; blanks dropped, an empty result refused."""

    def is_id(value: Any) -> bool:
        return isinstance(value, (str, numbers.Integral)) and not isinstance(value, bool)

    if is_id(users):
        users = [users]
    elif isinstance(users, (dict, bytes)) or not hasattr(users, "__iter__"):
        raise checks.refuse("users", "a user id or a list of user ids", users, "pass e.g. ['196']")
    found = []
    for user in users:
        if not is_id(user):
            raise checks.refuse("each of users", "a user id (a str or an int)", user,
                                "pass e.g. ['196', '197']")  # fmt: skip
        if str(user).strip():
            found.append(str(user).strip())
    if not found:
        raise UsageError("--users is empty; pass user ids separated by commas")
    return found


@dataclasses.dataclass
class Ranking:
    """The top items for one user: ``items``/``scores`` best first, ``snippets`` per item."""

    user: str
    known_user: bool
    items: list[str]
    scores: list[float]
    snippets: list[str]
    available: int  # items this user could be shown (fewer than k: a note for the user;
    # 0: the user has already interacted with every item the model can rank)


def recommend(bundle: TrainedModel, users, k: int = 10, *, extra_features=None,
              include_seen: bool = False, snippets: dict[str, str] | None = None) -> list[Ranking]:  # fmt: skip
    """Top-``k`` items per user of ``users`` (one id, or a list of ids) from a trained model.

    ``extra_features``: item-level features of new items to consider too (same encoder as
    training; only cold-start-capable models rank them). Seen items are left out unless
    ``include_seen``. A user the model cannot score any item for is a DataError."""
    import numpy as np

    from recfeat.data.features import ReviewVectors

    trained = check_bundle(bundle)
    model, header = trained.model, trained.header
    snippets = trained.snippets if snippets is None else snippets
    k = checks.integer(k, "--k", low=1, example=10)
    user_list = user_ids(users)
    include_seen = checks.flag(include_seen, "include_seen")
    candidates = list(model.items_)
    if extra_features is not None:
        from recfeat.data.features import Features

        if not isinstance(extra_features, (Features, ReviewVectors)):
            raise checks.refuse("features", "item-level Features (or None)", extra_features,
                                "read a feature file with recfeat.read_features(path)")  # fmt: skip
        if isinstance(extra_features, ReviewVectors):
            raise UsageError("recommend --features takes item-level features (one vector per item)")
        check_same_encoder(header, extra_features)
        if model.cold_start_items:
            known = set(candidates)
            candidates += [i for i in extra_features.ids if i not in known]
    candidates_arr = np.asarray(candidates, dtype=object)
    out = []
    for user in user_list:
        scores = model.score_items([user], candidates_arr, item_features=extra_features)[0]
        mask = np.ones(len(candidates_arr), dtype=bool)
        if not include_seen:
            seen = set(trained.seen.get(user, ()))
            mask &= np.fromiter(
                (c not in seen for c in candidates_arr), dtype=bool, count=len(mask)
            )
        scorable = ~np.isnan(scores)
        mask &= scorable
        available = int(mask.sum())
        if available == 0 and not scorable.any():
            raise DataError(
                f"user {user!r}: model {header['model']!r} cannot score any item for this user "
                "(unknown user and no non-personalised fallback)"
            )
        idx = np.flatnonzero(mask)
        best = idx[np.argsort(-scores[idx], kind="stable")[: min(k, available)]]
        items = [candidates_arr[j] for j in best]
        out.append(
            Ranking(
                user=user, known_user=user in model.user_index_, items=items,
                scores=[float(scores[j]) for j in best],
                snippets=[snippets.get(i, "") for i in items], available=available,
            )
        )  # fmt: skip
    return out
