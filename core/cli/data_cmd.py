"""``recfeat data``: inspect a dataset the way ``extract`` will read it; write the sample."""

from __future__ import annotations

import json

import click

import recfeat.api as api

FORMATS_HELP = (
    "auto, amazon, movielens-100k (ml-100k), movielens (ml-latest), csv, jsonl, parquet, sample"
)


@click.group("data")
def data_group() -> None:
    """Inspect datasets and write the built-in SYNTHETIC sample."""


@data_group.command("info")
@click.argument("path")
@click.option("--format", "fmt", default="auto", show_default=True, help=f"Loader: {FORMATS_HELP}.")
@click.option("--encoding", default=None, help="Text encoding of the input (default per format).")
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    default=None,
    help="Skip and count malformed rows instead of failing.",
)
@click.option(
    "--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
    help="Loader option, repeatable (e.g. -o user_col=reader -o rating_scale=[1,10]).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
def info_command(path: str, fmt: str, encoding: str | None, skip_bad_rows: bool | None,
                 options: tuple[str, ...], as_json: bool) -> None:  # fmt: skip
    """Load PATH (or 'sample') and print its counts and load report."""
    summary = api.dataset_info(path, fmt, options=options, encoding=encoding,
                               skip_bad_rows=skip_bad_rows)  # fmt: skip
    from recfeat.cli.terminal import clean, json_text

    if as_json:
        click.echo(json_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str)))
        return
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        click.echo(clean(f"{key:>20}: {value}"))  # keys and names come from the data


@data_group.command("sample")
@click.argument("out_dir")
@click.option("--seed", type=int, default=7, show_default=True,
              help="Random seed (same seed, same files).")  # fmt: skip
@click.option("--force", is_flag=True, help="Replace sample files already in OUT_DIR.")
def sample_command(out_dir: str, seed: int, force: bool) -> None:
    """Write the SYNTHETIC book-review sample (book_reviews.csv, books.csv) to OUT_DIR."""
    path = api.write_sample(out_dir, seed=seed, force=force)
    click.echo(f"Wrote SYNTHETIC sample (seed {seed}, not real data): {path}")
    click.echo(f"Load it with: recfeat data info {path} -o items_path={path.parent / 'books.csv'}")


def register(cli: click.Group) -> None:
    cli.add_command(data_group)
