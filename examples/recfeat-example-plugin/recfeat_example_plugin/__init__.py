"""recfeat example plugin: the hook implementations recfeat finds through the entry point.

Each hook receives a ``register`` callback (or the root ``click.Group`` for commands).
Heavy modules are imported inside the hooks, so installing this plugin never slows down
``recfeat --help``: the model (numpy, scikit-learn) loads only when recfeat needs models.
"""

from __future__ import annotations

from recfeat.plugin.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_cleaners(register):
    from .prices import StripPrices

    register(StripPrices)  # name and aliases come from the class: "strip-prices", ("prices",)


@hookimpl
def register_models(register):
    from .recency import RecentPopularity

    register(RecentPopularity, name="recent-popularity", aliases=("recency",))


@hookimpl
def register_commands(cli):
    import click

    @cli.command("strip-prices")
    @click.argument("texts", nargs=-1)
    @click.option("--replacement", default="[PRICE]", show_default=True)
    def strip_prices_command(texts: tuple[str, ...], replacement: str) -> None:
        """Mask prices in TEXTS (or in each line of stdin) with a placeholder."""
        from recfeat.plugin.registry import get_registry

        cleaner = get_registry("cleaner").create("strip-prices", replacement=replacement)
        lines = texts or click.get_text_stream("stdin")
        for line in lines:
            click.echo(cleaner.clean_text(line.rstrip("\n")))
