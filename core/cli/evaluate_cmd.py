"""``recfeat evaluate``: train several models on one split, print the model x metric table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

SPLITS = ("random", "temporal", "item-cold", "user-cold")
DEFAULT_MODELS = "global-mean,bias,popularity,random"
EPILOG = """\b
Features: --features takes item-level features built from item texts, or REVIEW-level
features (recfeat extract DATA --level review); from reviews, each split's item vectors are
the mean of its training reviews only, and cold items are represented leave-one-out (the
target user's own review is excluded). Item or user files aggregated from all reviews are
refused because they contain the held-out reviews.
\b
Model options: -O MODEL.KEY=VALUE, repeatable (e.g. -O hybrid.loss=rating -O mf.factors=50).
"""


def parse_model_options(pairs) -> dict[str, dict[str, Any]]:
    """``["mf.factors=50", ...]`` -> ``{"mf": {"factors": "50"}}`` (values coerced by the model)."""
    from recfeat.errors import UsageError

    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        model, dot, option = key.partition(".")
        if not sep or not dot or not model or not option:
            raise UsageError(f"-O {pair!r}: write MODEL.KEY=VALUE, e.g. -O mf.factors=50")
        out.setdefault(model.strip(), {})[option.strip()] = _value(value.strip())
    return out


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def split_names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def load_optional_features(path: str | None):
    if not path:
        return None
    from recfeat.evaluate.evaluation import load_features

    return load_features(path)


def print_table(result, *, title: str) -> None:
    """A rich table on a terminal, plain aligned text otherwise (logs, pipes, tests)."""
    shown = result.display_table(short=True)
    shown.insert(len(shown.columns), "fit s", [f"{result.fit_seconds[m]:.1f}" for m in shown.index])
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        table.add_column("model")
        for col in shown.columns:
            table.add_column(col, justify="right")
        for model in shown.index:
            table.add_row(model, *[str(v) for v in shown.loc[model]])
        Console().print(table)
    else:
        click.echo(title)
        click.echo(shown.to_string())
    legend = result.na_legend()
    if legend:
        click.echo(f"n/a: {legend}")


@click.command("evaluate", epilog=EPILOG)
@click.argument("data")
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Dataset format (amazon, movielens-100k, movielens, csv, ...).")  # fmt: skip
@click.option("--features", "features_path", default=None,
              help="Item-level (item texts) or review-level features .parquet from recfeat extract.")  # fmt: skip
@click.option("--user-features", "user_features_path", default=None,
              help="User-level features not derived from interactions (e.g. user descriptions).")  # fmt: skip
@click.option("--models", default=DEFAULT_MODELS, show_default=True,
              help="Comma-separated registered model names (see recfeat components models).")  # fmt: skip
@click.option("--split", type=click.Choice(SPLITS), default="random", show_default=True)
@click.option("--k", type=int, default=10, show_default=True, help="Cut-off for the @k metrics.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--test-fraction", type=float, default=0.2, show_default=True,
              help="Share of rows (random, temporal) or of items/users (cold splits) held out.")  # fmt: skip
@click.option("--metrics", default=None, help="Comma-separated metric names [default: all].")
@click.option("--relevance-threshold", type=float, default=None,
              help="Only held-out interactions rated at least this count as relevant.")  # fmt: skip
@click.option("--option", "-O", "model_options", multiple=True, metavar="MODEL.KEY=VALUE",
              help="Model option, repeatable.")  # fmt: skip
@click.option("--save-split", default=None, help="Write the split's row assignments to this .json.")
@click.option("--load-split", default=None, help="Reuse a split saved with --save-split.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table."
)
@click.option("--out", "out_path", default=None, help="Also write the JSON result to this file.")
@click.option("--plot", "plot_path", default=None, help="Write a bar chart PNG to this file.")
def evaluate_command(
    data, fmt, features_path, user_features_path, models, split, k, seed, test_fraction,
    metrics, relevance_threshold, model_options, save_split, load_split, as_json, out_path,
    plot_path,
) -> None:  # fmt: skip
    """Train every model in --models on the same split of DATA and measure them with rating
    and full-ranking metrics; ID-only models show n/a where they cannot score cold items."""
    from recfeat.atomic import write_text
    from recfeat.evaluate.evaluation import evaluate, plot_result
    from recfeat.evaluate.splits import load_split as read_split
    from recfeat.evaluate.splits import make_split
    from recfeat.evaluate.splits import save_split as write_split
    from recfeat.plugins.datasets import load_dataset

    per_model = parse_model_options(model_options)
    names = split_names(models)
    unknown_opts = set(per_model) - set(names)
    if unknown_opts:
        from recfeat.errors import UsageError

        raise UsageError(f"-O names model(s) not in --models: {', '.join(sorted(unknown_opts))}")
    specs = [(n, per_model[n]) if n in per_model else n for n in names]
    dataset = load_dataset(data, format=fmt)
    item_features = load_optional_features(features_path)
    user_features = load_optional_features(user_features_path)
    if load_split:
        split_obj = read_split(load_split, dataset.interactions)
    else:
        split_obj = make_split(dataset.interactions, split, seed=seed, test_fraction=test_fraction)
    if save_split:
        write_split(split_obj, save_split, dataset.interactions)
    result = evaluate(
        dataset, item_features, specs, split_obj, k=k, seed=seed, user_features=user_features,
        metrics=split_names(metrics) if metrics else None, relevance_threshold=relevance_threshold,
    )  # fmt: skip
    if out_path:
        write_text(Path(out_path), result.to_json() + "\n")
    if plot_path:
        plot_result(result, plot_path, title=f"{dataset.name}: {split_obj.kind} split, k={k}")
    if as_json:
        click.echo(result.to_json())
        return
    rep = split_obj.report
    print_table(result, title=f"{dataset.name} - {split_obj.kind} split (seed {seed}), k={k}")
    click.echo(
        f"split: {rep['train_interactions']} train / {rep['test_interactions']} test interactions; "
        f"{rep['evaluated_test_interactions']} evaluated, {rep['dropped_cold_rows']} dropped "
        f"({rep['policy']})"
    )
    ranking = result.info["ranking"]
    click.echo(
        f"ranking: {ranking['users']} users x {ranking['candidates']} candidates ({ranking['candidate_set']})"
    )
    for model, notes in result.notes.items():
        for note in notes:
            click.echo(f"note [{model}]: {note}")
    for path, what in ((out_path, "results"), (plot_path, "chart")):
        if path:
            click.echo(f"wrote {what} to {path}")


def register(cli: click.Group) -> None:
    cli.add_command(evaluate_command)
