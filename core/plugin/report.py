"""What is installed, as data: the plugins (``recfeat plugins``) and the components
(``recfeat components``). ``recfeat.api.plugins`` / ``recfeat.api.components`` are these."""

from __future__ import annotations

from typing import Any

from recfeat.plugin.manager import DEFAULT_PLUGINS, failures, hooks_of, plugin_info
from recfeat.plugin.registry import KINDS, get_registry, normalize_kind

# The JSON schema of one plugin row and one component item; tests/test_cli_core.py pins them.
PLUGIN_ROW_KEYS = ("name", "distribution", "version", "builtin", "hooks", "components", "error")
COMPONENT_KEYS = ("kind", "name", "aliases", "plugin", "class", "doc", "options")


def plugins_report(include_builtin: bool = False) -> list[dict[str, Any]]:
    """One row per plugin: ``PLUGIN_ROW_KEYS``. ``error`` is None for a healthy plugin, else
    every failure of it joined by "; " (a plugin that failed to import has no hooks)."""
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


def components(kind: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """kind -> its registered components (``COMPONENT_KEYS`` each), for every kind or the
    one named (``cleaners``, ``encoder``...: singular or plural; an unknown kind is a
    UsageError with the valid ones)."""
    kinds = [normalize_kind(kind)] if kind else list(KINDS)
    return {k: list(get_registry(k).describe()) for k in kinds}


def is_builtin(plugin: str) -> bool:
    """True for a plugin that ships with recfeat (a module of the ``recfeat`` package)."""
    return plugin.split(".", 1)[0] == "recfeat"
