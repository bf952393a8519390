"""Loading plugins: the built-ins in DEFAULT_PLUGINS, then entry points of group ``recfeat``.

``RECFEAT_LOAD_PLUGINS`` limits which third-party plugins load: a comma-separated list of
entry-point or distribution names; set but empty means none (tests set it so a developer's
installed plugins cannot change results). A plugin that fails to import, uses an unknown
hook, or raises inside a registration hook is recorded in ``failures()`` and skipped:
one broken plugin never breaks the CLI or the others.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "recfeat"
LOAD_ENV = "RECFEAT_LOAD_PLUGINS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "recfeat.plugins.cleaners",
    "recfeat.plugins.tokenizers",
    "recfeat.plugins.token_features",
    "recfeat.plugins.encoders",
    "recfeat.plugins.datasets",
    "recfeat.plugins.models",
    "recfeat.plugins.metrics",
    "recfeat.exporters.plugin",
)


@dataclasses.dataclass
class PluginFailure:
    name: str
    distribution: str | None
    error: str


@dataclasses.dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    builtin: bool


_pm: pluggy.PluginManager | None = None
_failures: list[PluginFailure] = []
_info: dict[str, PluginInfo] = {}


def get_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager, with plugins loaded on first call."""
    global _pm
    if _pm is None:
        _pm = pluggy.PluginManager("recfeat")
        _pm.add_hookspecs(hookspecs)
        _load(_pm)
    return _pm


def load_plugins() -> pluggy.PluginManager:
    return get_plugin_manager()


def reset() -> None:
    """Drop the plugin manager and every registry so the next use reloads (for tests)."""
    global _pm
    from .registry import reset_registries

    _pm = None
    _failures.clear()
    _info.clear()
    reset_registries()


def failures() -> list[PluginFailure]:
    get_plugin_manager()
    return list(_failures)


def plugin_info() -> dict[str, PluginInfo]:
    get_plugin_manager()
    return dict(_info)


def _allowed() -> set[str] | None:
    raw = os.environ.get(LOAD_ENV)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _register(pm: pluggy.PluginManager, obj, name: str, dist: str | None) -> bool:
    try:
        pm.register(obj, name=name)
        pm.check_pending()
    except Exception as exc:  # unknown hook names, bad hook signatures
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        _failures.append(PluginFailure(name, dist, f"{type(exc).__name__}: {exc}"))
        return False
    return True


def _load(pm: pluggy.PluginManager) -> None:
    from recfeat import __version__

    for modname in DEFAULT_PLUGINS:
        try:
            mod = importlib.import_module(modname)
        except Exception as exc:
            _failures.append(PluginFailure(modname, "recfeat", f"{type(exc).__name__}: {exc}"))
            continue
        if _register(pm, mod, modname, "recfeat"):
            _info[modname] = PluginInfo(modname, "recfeat", __version__, True)

    allowed = _allowed()
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else None
        if allowed is not None and ep.name not in allowed and (dist or "") not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            obj = ep.load()
        except Exception as exc:
            _failures.append(PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
            continue
        if _register(pm, obj, ep.name, dist):
            version = ep.dist.version if ep.dist else None
            _info[ep.name] = PluginInfo(ep.name, dist, version, False)


def hooks_of(name: str) -> list[str]:
    pm = get_plugin_manager()
    plugin = pm.get_plugin(name)
    if plugin is None:
        return []
    return sorted(c.name for c in pm.get_hookcallers(plugin) or [])


def call_registration_hook(registry) -> None:
    """Call ``registry.hook_name`` on every plugin with a ``register`` bound to that plugin.

    Called per implementation (not through ``pm.hook``) so each component records its
    plugin, and an exception in one plugin is recorded instead of aborting the rest.
    """
    pm = get_plugin_manager()
    caller = getattr(pm.hook, registry.hook_name)
    # pluggy returns implementations last-registered-first; reverse so built-ins register first
    for impl in reversed(caller.get_hookimpls()):
        plugin_name = impl.plugin_name

        def register(cls, name=None, aliases=(), _plugin=plugin_name):
            return registry.register(cls, name=name, aliases=aliases, plugin=_plugin)

        try:
            impl.function(**{arg: register for arg in impl.argnames})
        except Exception as exc:  # duplicates included: the message names both plugins
            dist = _info.get(plugin_name).distribution if plugin_name in _info else None
            _failures.append(
                PluginFailure(plugin_name, dist, f"{registry.hook_name}: {type(exc).__name__}: {exc}")
            )
            print(
                f"recfeat: plugin {plugin_name!r} failed in {registry.hook_name}: {exc}",
                file=sys.stderr,
            )
