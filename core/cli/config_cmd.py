"""``recfeat config validate``: check a pipeline TOML file and report every problem."""

from __future__ import annotations

import click


@click.group("config")
def config_group() -> None:
    """Work with pipeline configuration files (TOML)."""


@config_group.command("validate")
@click.argument("path", type=click.Path(dir_okay=False))
def validate_command(path: str) -> None:
    """Check PATH: unknown components, bad options and malformed TOML, one line each."""
    from recfeat.config import read_config, validate_config
    from recfeat.errors import ConfigError

    problems = validate_config(read_config(path), path)
    if problems:
        raise ConfigError("\n".join(problems))
    click.echo(f"{path}: OK")


def register(cli: click.Group) -> None:
    cli.add_command(config_group)
