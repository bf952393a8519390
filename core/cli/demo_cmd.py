"""``recfeat demo``: flags -> ``recfeat.demo.run_demo`` (the steps live there)."""

from __future__ import annotations

from pathlib import Path

import click

from recfeat.demo import DEFAULT_OUT


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
    "--out", "out_dir", default=DEFAULT_OUT, show_default=True, help="Folder for the outputs."
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
    from recfeat.errors import RecfeatError, UsageError

    if cache_dir and no_cache:
        raise UsageError("--cache DIR and --no-cache contradict each other; pass one")
    from recfeat.outputs_guard import guard_outputs

    guard_outputs({"--out": out_dir}, {"--data": data_path, "--cache": cache_dir})
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RecfeatError(f"--out {out} is a file; give a folder")
    data = None
    if data_path is not None:
        from recfeat.config import parse_key_values
        from recfeat.plugins.datasets import load_dataset

        data = load_dataset(data_path, format=fmt, **parse_key_values(options))
    elif fmt not in ("auto", "sample", "synthetic-books") or options:
        raise UsageError("--format and --option describe --data; pass --data PATH with them")
    from recfeat.demo import run_demo

    try:
        run_demo(data, out, cache=False if no_cache else cache_dir)
    except OSError as exc:
        raise RecfeatError(f"cannot write to {out}: {exc.strerror or exc}") from None


def register(cli: click.Group) -> None:
    cli.add_command(demo_command)
