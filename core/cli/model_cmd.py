"""``recfeat train`` (fit one model on all of DATA, save it) and ``recfeat recommend`` (top-K
items per user from a saved model, with a text snippet per item when the data has text).

The commands parse flags and print; ``recfeat.api`` does the work (``train_settings`` /
``train``, ``load_model``, ``recommend_settings`` / ``recommend``). Loading a model file runs
no code from it. Old pickle (joblib) files from earlier versions are opened only with
``--trust``.
"""

from __future__ import annotations

from pathlib import Path

import click

import recfeat.api as api


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
@click.option("--load-split", default=None, metavar="FILE",
              help="Fit on the training part of a split saved with evaluate --save-split "
              "(checked against DATA), not on every interaction.")  # fmt: skip
@click.option("--out", "out_path", required=True,
              help="Where to write the fitted model (one file, e.g. model.recfeat).")  # fmt: skip
def train_command(
    data, fmt, model_name, features_path, user_features_path, options, load_split, out_path
) -> None:
    """Fit --model on every interaction of DATA (or on a saved split's training part) and
    save it to --out."""
    from recfeat.cli.terminal import echo

    settings = api.train_settings(
        data=data, format=fmt, model=model_name, options=options,
        item_features=features_path, user_features=user_features_path, load_split=load_split,
    )  # fmt: skip
    trained = api.train(settings=settings, out=out_path)
    part = f" (the training part of {load_split})" if load_split else ""
    echo(
        f"trained {model_name} on {trained.interactions} interactions{part} "
        f"({len(trained.user_ids)} users, {len(trained.item_ids)} items) in "
        f"{trained.fit_seconds:.1f} s; wrote {Path(out_path)}"
    )


@click.command("recommend")
@click.argument("model_path")
@click.option("--users", required=True, help="Comma-separated user ids.")
@click.option("--k", type=int, default=10, show_default=True,
              help="Items per user.")  # fmt: skip
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
@click.option(
    "--trust",
    is_flag=True,
    help="Also open an OLD model file (a joblib pickle, what recfeat train wrote before its "
    "safe format). Loading a pickle runs any code stored in it, so pass this only for a file "
    "you made yourself. "
    "Files recfeat train writes now need no --trust: loading them runs nothing.",
)
@click.option("--explain", is_flag=True,
              help="Say why, from each user's own history: the history items that add most "
              "to an item's score and, for text models with --data, the user's own review "
              "sentences closest to it and the words they share (docs/explain.md).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def recommend_command(model_path, users, k, data, fmt, features_path, include_seen, trust,
                      explain, as_json) -> None:  # fmt: skip
    """Print the top-K items for each user in --users from a model saved by recfeat train."""
    from recfeat.cli.terminal import clean, echo

    bundle = api.load_model(model_path, trust=trust)
    if explain:
        _explain(bundle, users, k, data, fmt, features_path, include_seen, as_json)
        return
    settings = api.recommend_settings(users=users, k=k, features=features_path,
                                      data=data or None, format=fmt,
                                      include_seen=include_seen)  # fmt: skip
    rankings = api.recommend(bundle, settings=settings)
    if as_json:
        import dataclasses
        import json

        from recfeat.cli.terminal import json_text

        click.echo(json_text(json.dumps([dataclasses.asdict(r) for r in rankings], indent=2)))
        return
    for r in rankings:
        if r.available == 0:
            echo(
                f"note: {clean(r.user)} has interacted with every item the model can rank; "
                "pass --include-seen to rank those too",
                err=True,
            )
        elif k > r.available:
            echo(
                f"note: --k {k} is more than the {r.available} items available for "
                f"{clean(r.user)}; showing {r.available}",
                err=True,
            )
        label = "" if r.known_user else " (unknown user: non-personalised)"
        echo(f"{clean(r.user)}{label}:")
        for rank, (item, score, snippet) in enumerate(zip(r.items, r.scores, r.snippets, strict=True), 1):
            line = f"  {rank:>3}. {clean(item)}  {score:.4f}"
            echo(line + (f"  {clean(snippet)}" if snippet else ""))


def _explain(bundle, users, k, data, fmt, features_path, include_seen, as_json) -> None:
    """recommend --explain: one explanation per user (recfeat.explain), as JSON or a table.
    No item snippets here: on review-only data they quote other users' reviews, and an
    explanation quotes only the user's own."""
    import json

    from recfeat.cli.explain_cmd import explanation_lines
    from recfeat.cli.terminal import echo, json_text

    settings = api.recommend_settings(users=users, k=k, features=features_path,
                                      data=data or None, format=fmt,
                                      include_seen=include_seen)  # fmt: skip
    dataset = api.load_dataset(settings.data, format=fmt) if settings.data else None
    out = [api.explain(bundle, user, k=settings.k, data=dataset, features=settings.features,
                       include_seen=settings.include_seen) for user in settings.users]  # fmt: skip
    if as_json:
        click.echo(json_text(json.dumps(out, indent=2)))
        return
    for expl in out:
        for line in explanation_lines(expl):
            echo(line)


def register(cli: click.Group) -> None:
    cli.add_command(train_command)
    cli.add_command(recommend_command)
