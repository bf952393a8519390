"""``recfeat plugins``: which plugins loaded, what they provide, and which failed."""

from __future__ import annotations

import json
from typing import Any

import click

# The JSON schema of one row; tests/test_cli_core.py pins it.
ROW_KEYS = ("name", "distribution", "version", "builtin", "hooks", "components", "error")


def plugins_report(include_builtin: bool) -> list[dict[str, Any]]:
    """One row per plugin: ``ROW_KEYS``. ``error`` is None for a healthy plugin, else every
    failure of it joined by "; " (a plugin that failed to import has no hooks)."""
    from recfeat.plugin.manager import DEFAULT_PLUGINS, failures, hooks_of, plugin_info
    from recfeat.plugin.registry import KINDS, get_registry

    provided: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:  # filling every registry also records failures inside hooks
        for item in get_registry(kind).describe():
            provided.setdefault(item["plugin"], {}).setdefault(kind, []).append(item["name"])

    # keyed by (name, distribution): a second distribution reusing a loaded plugin's name
    # is its own broken row, not an error on the healthy one
    rows: dict[tuple[str, str | None], dict[str, Any]] = {}
    for name, info in plugin_info().items():
        rows[(name, info.distribution)] = {
            "name": name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "hooks": hooks_of(name),
            "components": provided.get(name, {}),
            "error": None,
        }
    for fail in failures():
        row = rows.setdefault(
            (fail.name, fail.distribution),
            {
                "name": fail.name,
                "distribution": fail.distribution,
                "version": None,
                "builtin": fail.name in DEFAULT_PLUGINS,
                "hooks": [],
                "components": {},
                "error": None,
            },
        )
        row["error"] = f"{row['error']}; {fail.error}" if row["error"] else fail.error
    return [row for row in rows.values() if include_builtin or not row["builtin"]]


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
