"""``recfeat evaluate``: train several models on one split, print the model x metric table."""

from __future__ import annotations

import click

import recfeat.api as api
from recfeat.cli.tables import wide_option

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
--config FILE: one TOML file holds a whole experiment (examples/experiments/): [data] path,
features or extract_features; [dataset] format and loader options; [pipeline] split, k,
seed, test_fraction, relevance_threshold and the protocol flags; the models with their
options ([models.NAME] or [[models]]) and search spaces ([models.NAME.search]); peers;
[[metrics]]; [tuning] tune, trials, objective; [outputs] dir, json, markdown, plot,
save_split. DATA may then be left out. A flag given on the command line overrides the
file; --models replaces the file's model list (keeping a listed model's options and search
space); -O is applied on top and FIXES the option: a fixed option is never searched.
"""


def print_table(result, *, title: str, wide: bool = False) -> None:
    """The model x metric table fitted to the terminal (recfeat.cli.tables: rich on a
    terminal, plain aligned text for logs, pipes and tests), then the n/a legend."""
    from recfeat.cli import tables

    header, rows = result.display_rows(short=True)
    legend = result.na_legend_entries()
    footer = ["n/a: " + "; ".join(legend)] if legend else []
    if legend and len(footer[0]) > (tables.output_width(wide) or len(footer[0])):
        footer = [("n/a: " if n == 0 else "     ") + e for n, e in enumerate(legend)]
    tables.print_table(header, rows, title=title, wide=wide, footer=footer,
                       **result.table_layout(short=True))  # fmt: skip


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
@click.argument("data", required=False)
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
@click.option("--rank-rating-models/--no-rank-rating-models", default=None,
              help="Also rank with rating-only models (global-mean, bias, mf, regressors).")  # fmt: skip
@click.option("--merge-variants/--no-merge-variants", default=None,
              help="Merge items that share a user's identical review (product variants) first.")  # fmt: skip
@click.option("--trust-features/--no-trust-features", default=None,
              help="Accept a features file without provenance metadata (it must not come from reviews).")  # fmt: skip
@click.option("--config", "config_path", default=None,
              help="TOML experiment: data, split, models and search spaces, peers, tuning, outputs; flags given here override it.")  # fmt: skip
@click.option("--option", "-O", "model_options", multiple=True, metavar="MODEL.KEY=VALUE",
              help="Model option, repeatable.")  # fmt: skip
@click.option("--save-split", default=None, help="Write the split's row assignments to this .json.")
@click.option("--load-split", default=None, help="Reuse a split saved with --save-split.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table."
)
@click.option("--out", "out_path", default=None, help="Also write the JSON result to this file.")
@click.option("--plot", "plot_path", default=None, help="Write a bar chart PNG to this file.")
@click.option("--markdown", "markdown_path", default=None, help="Write a Markdown report to this file.")
@click.option("--out-dir", default=None,
              help="Folder for the config's [outputs] (results.json, .md, .png unless named).")  # fmt: skip
@click.option("--tune/--no-tune", default=None,
              help="Choose each model's options on a validation split carved from the training part, then refit.")  # fmt: skip
@click.option("--tune-trials", type=int, default=None,
              help="Candidates tried per model with --tune (the given options included) [default: 10].")  # fmt: skip
@click.option("--tune-objective", default=None, metavar="METRIC",
              help="Metric --tune maximises (or minimises: rmse, mae) for every model [default: ndcg@k; rmse for rating models].")  # fmt: skip
@wide_option
def evaluate_command(
    data, fmt, features_path, user_features_path, models, split, k, seed, test_fraction,
    metrics, relevance_threshold, config_path, model_options, save_split, load_split, as_json, out_path,
    plot_path, peers=None, cold_reviews=None, cold_protocol=None, candidates=None,
    rank_rating_models=None, merge_variants=None, trust_features=None, tune=None,
    tune_trials=None, wide=False, markdown_path=None, out_dir=None, tune_objective=None,
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
        tune_objective=tune_objective, load_split=load_split, out=out_path,
        markdown=markdown_path, plot=plot_path, save_split=save_split, out_dir=out_dir,
    )  # fmt: skip
    result = api.evaluate(settings=settings)
    if as_json:
        click.echo(result.to_json())
        return
    print_report(result, wide=wide)
    from recfeat.cli.terminal import clean

    for key, what in (("out", "results"), ("markdown", "report"), ("plot", "chart"),
                      ("save_split", "split")):  # fmt: skip
        if settings.outputs.get(key):
            click.echo(clean(f"wrote {what} to {settings.outputs[key]}"))


def print_report(result, *, wide: bool = False) -> None:
    """The table, then one line each: the split, the ranking task, the protocol, notes."""
    from recfeat.cli.terminal import clean

    info = result.info
    rep = info["split"]
    title = f"{info['dataset']} - {rep['split']} split (seed {info['seed']}), k={info['k']}"
    print_table(result, title=title, wide=wide)
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
