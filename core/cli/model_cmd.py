"""``recfeat train`` (fit one model on all of DATA, save it) and ``recfeat recommend`` (top-K
items per user from a saved model, with a text snippet per item when the data has text).

A saved model is a joblib file holding ``{"format": "recfeat-model", "header": {...},
"model": <fitted estimator>, "seen": {user: [items]}, "snippets": {item: text}}``; the header
records the model name and options, the feature dimension and the encoder fingerprint, so
``recommend --features`` refuses vectors from another encoder or dimension. joblib files are
pickles: load only files you made or trust.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .evaluate_cmd import load_optional_features, parse_model_options

FORMAT = "recfeat-model"
SNIPPET_CHARS = 80


def _snippets(data) -> dict[str, str]:
    """Item text (titles, genres) or, for review-only data, the item's most helpful-looking review start."""
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


def _fit_features(item_features, interactions):
    """Review-level vectors become item means over ALL reviews: fine for a deployed model."""
    from recfeat.evaluate.evaluation import ReviewVectors

    if isinstance(item_features, ReviewVectors):
        return item_features.item_means(interactions)
    return item_features


@click.command("train")
@click.argument("data")
@click.option("--format", "fmt", default="auto", show_default=True, help="Dataset format.")
@click.option(
    "--model",
    "model_name",
    required=True,
    help="Registered model name (recfeat components models).",
)
@click.option(
    "--features",
    "features_path",
    default=None,
    help="Item-level or review-level features .parquet.",
)
@click.option(
    "--user-features", "user_features_path", default=None, help="User-level features .parquet."
)
@click.option(
    "--option",
    "-O",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Model option, repeatable.",
)
@click.option("--out", "out_path", required=True, help="Where to write the fitted model (.joblib).")
def train_command(
    data, fmt, model_name, features_path, user_features_path, options, out_path
) -> None:
    """Fit --model on every interaction of DATA and save it to --out."""
    import time

    import joblib

    from recfeat import __version__
    from recfeat.atomic import atomic_path
    from recfeat.components.model import feature_fingerprint
    from recfeat.evaluate.evaluation import check_ratings
    from recfeat.plugin.registry import get_registry
    from recfeat.plugins.datasets import load_dataset

    opts = parse_model_options([f"{model_name}.{o}" for o in options]).get(model_name, {})
    model = get_registry("model").create(model_name, **opts)
    dataset = load_dataset(data, format=fmt)
    check_ratings(dataset)
    item_features = load_optional_features(features_path)
    user_features = load_optional_features(user_features_path)
    if model.uses_text and item_features is None and user_features is None:
        from recfeat.errors import UsageError

        raise UsageError(f"model {model_name!r} uses text features; pass --features FILE.parquet")
    inter = dataset.interactions
    fit_items = _fit_features(item_features, inter) if model.uses_text else None
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
    }
    seen = inter.assign(user=inter["user"].astype(str), item=inter["item"].astype(str))
    bundle = {
        "format": FORMAT,
        "header": header,
        "model": model,
        "seen": seen.groupby("user")["item"].apply(list).to_dict(),
        "snippets": _snippets(dataset),
    }
    out = Path(out_path)
    with atomic_path(out) as tmp:
        joblib.dump(bundle, tmp)
    click.echo(
        f"trained {model_name} on {header['interactions']} interactions "
        f"({header['users']} users, {header['items']} items) in {seconds:.1f} s; wrote {out}"
    )


def load_bundle(path: str) -> dict[str, Any]:
    """Read a file written by ``recfeat train`` (DataError when it is not one)."""
    import joblib

    from recfeat.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"model file {p} does not exist; create it with recfeat train")
    try:
        bundle = joblib.load(p)
    except Exception as exc:  # noqa: BLE001 - any unreadable pickle is the same user error
        raise DataError(f"cannot read model file {p}: {type(exc).__name__}: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise DataError(f"{p} is not a recfeat model file (write one with recfeat train)")
    return bundle


def check_same_encoder(header: dict[str, Any], features) -> None:
    """Features for another encoder or dimension than the model's are a clear error."""
    from recfeat.components.model import describe_source, feature_fingerprint
    from recfeat.errors import DataError, UsageError

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


@click.command("recommend")
@click.argument("model_path")
@click.option("--users", required=True, help="Comma-separated user ids.")
@click.option("--k", type=int, default=10, show_default=True)
@click.option(
    "--data",
    default=None,
    help="Dataset for item text snippets (default: the ones saved with the model).",
)
@click.option("--format", "fmt", default="auto", show_default=True, help="Format of --data.")
@click.option("--features", "features_path", default=None,
              help="Item features of new items to consider too (same encoder as training).")  # fmt: skip
@click.option(
    "--include-seen",
    is_flag=True,
    help="Also recommend items the user interacted with in training.",
)
def recommend_command(model_path, users, k, data, fmt, features_path, include_seen) -> None:
    """Print the top-K items for each user in --users from a model saved by recfeat train."""
    import numpy as np

    from recfeat.errors import DataError, UsageError

    bundle = load_bundle(model_path)
    model, header = bundle["model"], bundle["header"]
    snippets = bundle.get("snippets", {})
    if data:
        from recfeat.plugins.datasets import load_dataset

        snippets = _snippets(load_dataset(data, format=fmt))
    if k < 1:
        raise UsageError(f"--k must be at least 1 (got {k})")
    extra = None
    candidates = list(model.items_)
    if features_path:
        extra = load_optional_features(features_path)
        from recfeat.evaluate.evaluation import ReviewVectors

        if isinstance(extra, ReviewVectors):
            raise UsageError("recommend --features takes item-level features (one vector per item)")
        check_same_encoder(header, extra)
        if model.cold_start_items:
            known = set(candidates)
            candidates += [i for i in extra.ids if i not in known]
    candidates_arr = np.asarray(candidates, dtype=object)
    user_list = [u.strip() for u in users.split(",") if u.strip()]
    if not user_list:
        raise UsageError("--users is empty; pass user ids separated by commas")
    for user in user_list:
        scores = model.score_items([user], candidates_arr, item_features=extra)[0]
        mask = np.ones(len(candidates_arr), dtype=bool)
        if not include_seen:
            seen = set(bundle["seen"].get(user, ()))
            mask &= np.fromiter(
                (c not in seen for c in candidates_arr), dtype=bool, count=len(mask)
            )
        mask &= ~np.isnan(scores)
        available = int(mask.sum())
        if available == 0:
            raise DataError(
                f"user {user!r}: model {header['model']!r} cannot score any item for this user "
                "(unknown user and no non-personalised fallback)"
            )
        known_user = user in model.user_index_
        top_k = k
        if k > available:
            top_k = available
            click.echo(
                f"note: --k {k} is more than the {available} items available for {user}; showing {available}",
                err=True,
            )
        idx = np.flatnonzero(mask)
        best = idx[np.argsort(-scores[idx], kind="stable")[:top_k]]
        label = "" if known_user else " (unknown user: non-personalised)"
        click.echo(f"{user}{label}:")
        for rank, j in enumerate(best, 1):
            item = candidates_arr[j]
            snippet = snippets.get(item, "")
            click.echo(
                f"  {rank:>3}. {item}  {scores[j]:.4f}" + (f"  {snippet}" if snippet else "")
            )


def register(cli: click.Group) -> None:
    cli.add_command(train_command)
    cli.add_command(recommend_command)
