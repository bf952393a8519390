"""``recfeat evaluate``: train several models on one split, print the model x metric table."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from recfeat.evaluation.settings import DEFAULT_MODELS, SPLITS

EPILOG = """\b
Features: --features takes item-level features built from item texts, or REVIEW-level
features (recfeat extract DATA --level review); from reviews, each split's item vectors are
the mean of its training reviews only, and cold items are represented leave-one-out (the
target user's own review is excluded). Item or user files aggregated from all reviews are
refused because they contain the held-out reviews.
\b
Model options: -O MODEL.KEY=VALUE, repeatable (e.g. -O hybrid.loss=rating -O mf.factors=50).
\b
--config FILE: [[models]] and [[metrics]] (with their options), [dataset] (format and
loader options) and [pipeline] split, k, seed, test_fraction, relevance_threshold. A flag
given on the command line overrides the file; --models replaces the file's model list
(keeping a listed model's options), -O is applied on top.
"""


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
@click.option("--format", "fmt", default=None,
              help="[default: auto] Dataset format (amazon, movielens-100k, movielens, csv, ...).")  # fmt: skip
@click.option("--features", "features_path", default=None,
              help="Item-level (item texts) or review-level features .parquet from recfeat extract.")  # fmt: skip
@click.option("--user-features", "user_features_path", default=None,
              help="User-level features not derived from interactions (e.g. user descriptions).")  # fmt: skip
@click.option("--models", default=None,
              help=f"Comma-separated registered model names (see recfeat components models) [default: {DEFAULT_MODELS}].")  # fmt: skip
@click.option("--split", type=click.Choice(SPLITS), default=None, help="[default: random]")
@click.option("--k", type=int, default=None, help="Cut-off for the @k metrics [default: 10].")
@click.option("--seed", type=int, default=None, help="[default: 0]")
@click.option("--test-fraction", type=float, default=None,
              help="Share of rows (random, temporal) or of items/users (cold splits) held out [default: 0.2].")  # fmt: skip
@click.option("--metrics", default=None, help="Comma-separated metric names [default: all].")
@click.option("--relevance-threshold", type=float, default=None,
              help="Only held-out interactions rated at least this count as relevant.")  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML pipeline: models, metrics, dataset, [pipeline] split settings; flags override it.")  # fmt: skip
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
    metrics, relevance_threshold, config_path, model_options, save_split, load_split, as_json, out_path,
    plot_path,
) -> None:  # fmt: skip
    """Train every model in --models on the same split of DATA and measure them with rating
    and full-ranking metrics; ID-only models show n/a where they cannot score cold items."""
    from recfeat.atomic import write_text
    from recfeat.config import load_config, parse_key_values
    from recfeat.evaluation import settings
    from recfeat.evaluation.protocol import evaluate, load_optional_features, plot_result
    from recfeat.evaluation.splits import load_split as read_split
    from recfeat.evaluation.splits import make_split
    from recfeat.evaluation.splits import save_split as write_split
    from recfeat.plugins.datasets import load_dataset

    plan = settings.resolve(
        load_config(config_path) if config_path else {}, models=models, metrics=metrics,
        model_options=parse_key_values(model_options, flag="-O", example="mf.factors=50", scoped=True),
        fmt=fmt, split=split, k=k, seed=seed, test_fraction=test_fraction,
        relevance_threshold=relevance_threshold,
    )  # fmt: skip
    k, seed = plan.k, plan.seed
    ds_fmt, ds_options = plan.dataset
    dataset = load_dataset(data, format=ds_fmt, **ds_options)
    item_features = load_optional_features(features_path)
    user_features = load_optional_features(user_features_path)
    if load_split:
        split_obj = read_split(load_split, dataset.interactions)
    else:
        split_obj = make_split(
            dataset.interactions, plan.split, seed=seed, test_fraction=plan.test_fraction
        )
    if save_split:
        write_split(split_obj, save_split, dataset.interactions)
    result = evaluate(
        dataset, item_features, plan.models, split_obj, k=k, seed=seed,
        user_features=user_features, metrics=plan.metrics,
        relevance_threshold=plan.relevance_threshold,
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
