"""``recfeat plugins``: which plugins loaded, what they provide, and which failed."""

from __future__ import annotations

import json
from typing import Any

import click

import recfeat.api as api

# The JSON schema of one row; tests/test_cli_core.py pins it.
ROW_KEYS = api.PLUGIN_ROW_KEYS


def plugins_report(include_builtin: bool) -> list[dict[str, Any]]:
    """One row per plugin: ``ROW_KEYS`` (``recfeat.api.list_plugins``)."""
    return api.list_plugins(include_builtin)


@click.command("plugins")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
def plugins_command(show_all: bool, as_json: bool) -> None:
    """List installed plugins: name, version, hooks, components (and errors of broken ones).

    RECFEAT_LOAD_PLUGINS=a,b limits which installed plugins load (empty: none).
    """
    rows = plugins_report(show_all)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No third-party plugins installed (use --all to list the built-ins).")
        return
    for row in rows:
        head = f"{row['name']} {row['version'] or ''}".rstrip()
        if row["distribution"] and row["distribution"] != row["name"]:
            head += f" (from {row['distribution']})"
        click.echo(head)
        if row["error"]:
            click.echo(f"  BROKEN: {row['error']}")
        if row["hooks"]:
            click.echo(f"  hooks: {', '.join(row['hooks'])}")
        for kind, names in sorted(row["components"].items()):
            click.echo(f"  {kind}s: {', '.join(names)}")


def register(cli: click.Group) -> None:
    cli.add_command(plugins_command)
