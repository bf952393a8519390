"""``recfeat demo``: flags -> ``recfeat.api.demo_settings`` -> ``recfeat.api.run_demo`` (the
steps live in ``recfeat.demo``)."""

from __future__ import annotations

import click

import recfeat.api as api


@click.command("demo")
@click.option(
    "--data", "data_path", default=None, help="Run on this dataset instead of the SYNTHETIC sample."
)
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    help="Format of --data (see `recfeat extract --help`).",
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Loader option, repeatable.",
)
@click.option(
    "--out", "out_dir", default=api.DEMO_OUT, show_default=True, help="Folder for the outputs."
)
@click.option(
    "--cache",
    "cache_dir",
    default=None,
    help="Vector cache folder [default: $RECFEAT_CACHE_DIR or ~/.cache/recfeat].",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the vector cache.")
def demo_command(data_path, fmt, options, out_dir, cache_dir, no_cache) -> None:  # fmt: skip
    """Extract features with the default encoder and evaluate recommendation models on them.

    Without --data it uses the SYNTHETIC book-review sample recfeat generates itself."""
    from recfeat.errors import UsageError

    if cache_dir and no_cache:
        raise UsageError("--cache DIR and --no-cache contradict each other; pass one")
    settings = api.demo_settings(data=data_path, format=fmt, loader_options=options, out=out_dir,
                                 cache=False if no_cache else cache_dir)  # fmt: skip
    api.run_demo(settings=settings, echo=click.echo, table=_demo_table)


def _demo_table(result) -> str:
    """The result table with short n/a labels, fitted to the terminal less the demo's
    indent; the JSON keeps every column and the full reasons."""
    from recfeat.cli.tables import fit, output_width

    header, rows = result.display_rows(digits=3, short=True)
    table = fit(header, rows, width=output_width() - 4, hint="the JSON has every column",
                footer=["n/a: " + e for e in result.na_legend_entries()],
                **result.table_layout(short=True))  # fmt: skip
    return table.text()


def register(cli: click.Group) -> None:
    cli.add_command(demo_command)
