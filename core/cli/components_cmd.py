"""``recfeat components``: every registered component with its options."""

from __future__ import annotations

import json

import click

import recfeat.api as api

# The JSON schema of one item; tests/test_cli_core.py pins it.
ITEM_KEYS = api.COMPONENT_KEYS


@click.command("components")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
def components_command(kind: str | None, as_json: bool) -> None:
    """List components (optionally of one KIND: cleaners, tokenizers, encoders, models,
    datasets, metrics, exporters) with aliases, plugin, doc and options."""
    by_kind = api.list_components(kind)
    if as_json:
        items = [item for of_kind in by_kind.values() for item in of_kind]
        click.echo(json.dumps(items, indent=2, default=repr))
        return
    for n, (k, of_kind) in enumerate(by_kind.items()):
        if n:
            click.echo("")
        click.echo(f"{k}s:")
        if not of_kind:
            click.echo("  (none registered)")
        for item in of_kind:
            alias = f" (aliases: {', '.join(item['aliases'])})" if item["aliases"] else ""
            plugin = "" if api.is_builtin_plugin(item["plugin"]) else f" [{item['plugin']}]"
            click.echo(f"  {item['name']}{alias}{plugin}: {item['doc']}")
            opts = ", ".join(
                f"{name} (required)" if spec["required"] else f"{name}={spec['default']!r}"
                for name, spec in item["options"].items()
            )
            if opts:
                click.echo(f"      options: {opts}")


def register(cli: click.Group) -> None:
    cli.add_command(components_command)
