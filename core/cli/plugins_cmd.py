"""``recfeat plugins``: which plugins loaded, what they provide, and which failed."""

from __future__ import annotations

import json

import click


def plugins_report(include_builtin: bool) -> list[dict]:
    from recfeat.plugin_manager import failures, hooks_of, plugin_info
    from recfeat.registry import KINDS, get_registry

    provided: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        for item in get_registry(kind).describe():
            provided.setdefault(item["plugin"], {}).setdefault(kind, []).append(item["name"])
    rows = []
    for name, info in plugin_info().items():
        if info.builtin and not include_builtin:
            continue
        rows.append(
            {
                "name": name,
                "distribution": info.distribution,
                "version": info.version,
                "builtin": info.builtin,
                "hooks": hooks_of(name),
                "components": provided.get(name, {}),
                "error": None,
            }
        )
    for fail in failures():
        if not include_builtin and fail.distribution == "recfeat":
            continue
        rows.append(
            {
                "name": fail.name,
                "distribution": fail.distribution,
                "version": None,
                "builtin": fail.distribution == "recfeat",
                "hooks": [],
                "components": {},
                "error": fail.error,
            }
        )
    return rows


@click.command("plugins")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
def plugins_command(show_all: bool, as_json: bool) -> None:
    """List installed plugins: name, version, hooks, components (and errors of broken ones)."""
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
            continue
        click.echo(f"  hooks: {', '.join(row['hooks']) or '-'}")
        for kind, names in sorted(row["components"].items()):
            click.echo(f"  {kind}s: {', '.join(names)}")


def register(cli: click.Group) -> None:
    cli.add_command(plugins_command)
