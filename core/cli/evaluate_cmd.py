"""``recfeat evaluate``: train several models on one split, print the model x metric table."""

from __future__ import annotations

import sys

import click

import recfeat.api as api

EPILOG = """\b
Protocol (docs/evaluation.md): --features takes item-level features built from item
texts, or REVIEW-level features (recfeat extract DATA --level review); from reviews, each
split's item vectors are the mean of its training reviews only. Item-cold: a cold item is
its item text, or on review-only data its first --cold-reviews reviews by time (default 3),
which then leave the test set; items with fewer are dropped, so every candidate is built
alike. --candidates mixed ranks cold items among the training items (compare with the
"new items first" reference it prints). Relevant = held-out interactions rated >= 4
(--relevance-threshold none: all); rating-only models show n/a in ranking columns unless
--rank-rating-models. Leak checks run first and print one line each: variant duplicates
(refused at >= 1% of interactions; --merge-variants merges them), held-out texts found in
training, features without provenance (refused; --trust-features) or aggregated from
reviews (refused).
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
    from recfeat.cli.terminal import clean, rich_text

    shown = result.display_table(short=True)
    shown.insert(len(shown.columns), "fit s", [f"{result.fit_seconds[m]:.1f}" for m in shown.index])
    # labels carry -O values and metric names typed by users: nothing raw reaches the terminal
    shown = shown.map(clean)
    shown.index = [clean(m) for m in shown.index]
    shown.columns = [clean(c) for c in shown.columns]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=rich_text(title))
        table.add_column("model")
        for col in shown.columns:
            table.add_column(rich_text(col), justify="right")
        for n, model in enumerate(shown.index):
            table.add_row(rich_text(model), *[rich_text(v) for v in shown.iloc[n]])
        Console().print(table)
    else:
        click.echo(clean(title))
        click.echo(shown.to_string())
    legend = result.na_legend()
    if legend:
        click.echo(f"n/a: {legend}")


def protocol_lines(info) -> list[str]:
    """One line each: relevance, the cold-start representation, references, leak checks."""
    lines = [f"relevance: {info['relevance']}"]
    cold = info.get("cold_start")
    if cold:
        dropped = f"; {cold['dropped_items']} items with fewer reviews dropped" if cold[
            "dropped_items"] else ""  # fmt: skip
        lines.append(f"cold items: {cold['representation']}{dropped}")
    ranking = info["ranking"]
    chance = {k: v for k, v in ranking.items() if k.startswith("expected_random")}
    for key, value in chance.items():
        lines.append(f"chance level: {key.removeprefix('expected_random_')} {value:.4f} (random ranking)")
    for metric, value in (ranking.get("reference_new_items_first") or {}).items():
        lines.append(f"reference (new items first, random order): {metric} {value:.4f}")
    for name, check in (info.get("leaks") or {}).items():
        if check["status"] != "skipped":
            lines.append(f"leak check {name}: {check['status']}: {check['message']}")
    return lines


@click.command("evaluate", epilog=EPILOG)
@click.argument("data")
@click.option("--format", "fmt", default=None,
              help="[default: auto] Dataset format (amazon, movielens-100k, movielens, csv, ...).")  # fmt: skip
@click.option("--features", "features_path", default=None,
              help="Item-level (item texts) or review-level features .parquet from recfeat extract.")  # fmt: skip
@click.option("--user-features", "user_features_path", default=None,
              help="User-level features not derived from interactions (e.g. user descriptions).")  # fmt: skip
@click.option("--models", default=None,
              help=f"Comma-separated registered model names (see recfeat components models) [default: {api.DEFAULT_MODELS}].")  # fmt: skip
@click.option("--peers", default=None, metavar="LIBS",
              help="Also run the field's standard models: implicit, lightfm, cornac (comma-separated; text peers need --features).")  # fmt: skip
@click.option("--split", type=click.Choice(api.SPLITS), default=None, help="[default: random]")
@click.option("--k", type=int, default=None,
              help="Cut-off for the @k metrics [default: 10].")  # fmt: skip
@click.option("--seed", type=int, default=None, help="[default: 0]")
@click.option("--test-fraction", type=float, default=None,
              help="Share of rows (random, temporal) or of items/users (cold splits, leave-last-out-new) held out; leave-last-out holds out each user's last [default: 0.2].")  # fmt: skip
@click.option("--metrics", default=None, help="Comma-separated metric names [default: all].")
@click.option("--relevance-threshold", default=None, metavar="RATING|none",
              help="Held-out interactions rated at least this are relevant; 'none': all [default: 4; leave-last-out splits: none].")  # fmt: skip
@click.option("--cold-reviews", type=int, default=None,
              help="Item-cold, review-only data: reviews (earliest first) that represent a cold item [default: 3].")  # fmt: skip
@click.option("--cold-protocol", type=click.Choice(["first-reviews", "leave-one-out"]), default=None,
              help="leave-one-out: the old, LEAKY rule (for comparison only) [default: first-reviews].")  # fmt: skip
@click.option("--candidates", type=click.Choice(["cold", "mixed"]), default=None,
              help="Item-cold: rank cold items only, or among the training items too [default: cold].")  # fmt: skip
@click.option("--rank-rating-models", is_flag=True,
              help="Also rank with rating-only models (global-mean, bias, mf, regressors).")  # fmt: skip
@click.option("--merge-variants", is_flag=True,
              help="Merge items that share a user's identical review (product variants) first.")  # fmt: skip
@click.option("--trust-features", is_flag=True,
              help="Accept a features file without provenance metadata (it must not come from reviews).")  # fmt: skip
@click.option("--config", "config_path", default=None,
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
@click.option("--tune", is_flag=True,
              help="Choose each model's options on a validation split carved from the training part, then refit.")  # fmt: skip
@click.option("--tune-trials", type=int, default=None,
              help="Candidates tried per model with --tune (the given options included) [default: 10].")  # fmt: skip
def evaluate_command(
    data, fmt, features_path, user_features_path, models, split, k, seed, test_fraction,
    metrics, relevance_threshold, config_path, model_options, save_split, load_split, as_json, out_path,
    plot_path, peers=None, cold_reviews=None, cold_protocol=None, candidates=None,
    rank_rating_models=False, merge_variants=False, trust_features=False, tune=False,
    tune_trials=None,
) -> None:  # fmt: skip
    """Train every model in --models on the same split of DATA and measure them with rating
    and full-ranking metrics; ID-only models show n/a where they cannot score cold items."""
    settings = api.evaluate_settings(
        config_path, data=data, item_features=features_path,
        user_features=user_features_path, format=fmt, models=models, peers=peers,
        model_options=model_options, metrics=metrics, split=split, k=k, seed=seed,
        test_fraction=test_fraction, relevance_threshold=relevance_threshold,
        cold_reviews=cold_reviews, cold_protocol=cold_protocol, candidates=candidates,
        rank_rating_models=rank_rating_models, merge_variants=merge_variants,
        trust_features=trust_features, tune=tune, tune_trials=tune_trials,
        load_split=load_split,
    )  # fmt: skip
    result = api.evaluate(settings=settings, out=out_path, plot=plot_path, save_split=save_split)
    if as_json:
        click.echo(result.to_json())
        return
    print_report(result)
    for path, what in ((out_path, "results"), (plot_path, "chart")):
        if path:
            click.echo(f"wrote {what} to {path}")


def print_report(result) -> None:
    """The table, then one line each: the split, the ranking task, the protocol, notes."""
    from recfeat.cli.terminal import clean

    info = result.info
    rep = info["split"]
    print_table(result, title=f"{info['dataset']} - {rep['split']} split (seed {info['seed']}), "
                              f"k={info['k']}")  # fmt: skip
    click.echo(
        f"split: {rep['train_interactions']} train / {rep['test_interactions']} test interactions; "
        f"{rep['evaluated_test_interactions']} evaluated, {rep['dropped_cold_rows']} dropped "
        f"({rep['policy']})"
    )
    ranking = info["ranking"]
    click.echo(
        f"ranking: {ranking['users']} users x {ranking['candidates']} candidates ({ranking['candidate_set']})"
    )
    for line in protocol_lines(info):
        click.echo(clean(line))
    for model, notes in result.notes.items():
        for note in notes:
            click.echo(clean(f"note [{model}]: {note}"))


def register(cli: click.Group) -> None:
    cli.add_command(evaluate_command)
