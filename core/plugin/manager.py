"""Loading plugins: the built-ins in DEFAULT_PLUGINS, then entry points of group ``recfeat``.

``RECFEAT_LOAD_PLUGINS`` limits which third-party plugins load: a comma-separated list of
entry-point or distribution names; set but empty means none (tests set it so a developer's
installed plugins cannot change results). Built-in plugins always load.

A plugin that fails to import, uses an unknown hook name (``pm.check_pending()``), or
raises inside a registration hook (a duplicate component name included) is recorded in
``failures()`` and skipped: one broken plugin never breaks the CLI or the others.

Loading happens in two steps so ``recfeat --help`` stays instant: the CLI needs only the
third-party plugins (for ``register_commands``; built-in commands live in
``recfeat.cli``), while the built-in component modules, which import numpy, pandas or
scikit-learn, load the first time a registry or ``recfeat plugins`` needs them.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import pluggy

from recfeat import __version__
from recfeat.plugin import hookspecs

ENTRY_POINT_GROUP = "recfeat"
LOAD_ENV = "RECFEAT_LOAD_PLUGINS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "recfeat.plugins.cleaners",
    "recfeat.plugins.pii",
    "recfeat.plugins.tokenizers",
    "recfeat.plugins.token_features",
    "recfeat.plugins.sparse_encoder",
    "recfeat.plugins.encoders",
    "recfeat.plugins.datasets",
    "recfeat.plugins.models",
    "recfeat.plugins.peers",
    "recfeat.plugins.metrics",
    "recfeat.exporters.plugin",
)


@dataclasses.dataclass
class PluginFailure:
    """A plugin that could not load, or a hook of it that raised."""

    name: str
    distribution: str | None
    error: str


@dataclasses.dataclass
class PluginInfo:
    """A plugin that loaded."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool


_pm: pluggy.PluginManager | None = None
_builtins_loaded = False
_entry_points_loaded = False
_failures: list[PluginFailure] = []
_info: dict[str, PluginInfo] = {}
# Called whenever the set of plugins changes (reset, add, remove). The registry subscribes
# its reset here, so this module never imports the registry (which imports this one).
_on_change: list[Callable[[], None]] = []


def on_plugins_changed(callback: Callable[[], None]) -> None:
    """Call ``callback()`` after every change to the loaded plugins (idempotent per callback)."""
    if callback not in _on_change:
        _on_change.append(callback)


def _plugins_changed() -> None:
    for callback in list(_on_change):
        callback()


def _manager() -> pluggy.PluginManager:
    global _pm
    if _pm is None:
        _pm = pluggy.PluginManager("recfeat")
        _pm.add_hookspecs(hookspecs)
    return _pm


def get_plugin_manager(*, builtins: bool = True) -> pluggy.PluginManager:
    """The plugin manager with third-party plugins loaded, and the built-ins unless
    ``builtins=False`` (the CLI start-up path, which must not import heavy modules)."""
    global _builtins_loaded, _entry_points_loaded
    pm = _manager()
    if not _entry_points_loaded:
        _entry_points_loaded = True
        _load_entry_points(pm)
    if builtins and not _builtins_loaded:
        _builtins_loaded = True
        _load_builtins(pm)
    return pm


def load_plugins() -> pluggy.PluginManager:
    """Load every plugin (idempotent) and return the plugin manager."""
    return get_plugin_manager()


def reset() -> None:
    """Drop the plugin manager and every registry so the next use reloads (for tests)."""
    global _pm, _builtins_loaded, _entry_points_loaded
    _pm = None
    _builtins_loaded = _entry_points_loaded = False
    _failures.clear()
    _info.clear()
    _plugins_changed()


def failures() -> list[PluginFailure]:
    """Every recorded plugin failure, in the order they happened."""
    get_plugin_manager()
    return list(_failures)


def plugin_info() -> dict[str, PluginInfo]:
    """Plugins that loaded, built-ins first."""
    get_plugin_manager()
    return dict(sorted(_info.items(), key=lambda kv: _order_key(kv[0])))


def add_plugin(obj: Any, name: str, *, distribution: str | None = None, version=None) -> bool:
    """Register ``obj`` (a module or an object with hook methods) as a plugin.

    Used by tests and by programs embedding recfeat. Returns False (and records the
    failure) when ``obj`` uses an unknown hook or a bad hook signature. Registries that
    were already filled are reset so they see the new plugin.
    """
    pm = get_plugin_manager()
    ok = _register(pm, obj, name, distribution)
    if ok:
        _info[name] = PluginInfo(name, distribution, version, False)
    _plugins_changed()
    return ok


def remove_plugin(name: str) -> None:
    """Unregister the plugin ``name`` (if loaded) and reset the registries."""
    pm = _manager()
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    _info.pop(name, None)
    _failures[:] = [f for f in _failures if f.name != name]
    _plugins_changed()


def _add_failure(failure: PluginFailure) -> None:
    # registries refill after a reset, so the same hook error may be reported again
    if failure not in _failures:
        _failures.append(failure)


def record_failure(name: str, error: str) -> None:
    """Record that plugin ``name`` failed (used by the registries and the CLI)."""
    info = _info.get(name)
    dist = info.distribution if info else None
    _add_failure(PluginFailure(name, dist, error))


def _canonical(name: str) -> str:
    # PEP 503 normalisation, so "recfeat_example_plugin" matches "recfeat-example-plugin"
    return re.sub(r"[-_.]+", "-", name).lower()


def allowed_plugins() -> set[str] | None:
    """The names RECFEAT_LOAD_PLUGINS allows (normalised), or None when it is not set."""
    raw = os.environ.get(LOAD_ENV)
    if raw is None:
        return None
    return {_canonical(p.strip()) for p in raw.split(",") if p.strip()}


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _register(pm: pluggy.PluginManager, obj: Any, name: str, dist: str | None) -> bool:
    existing = pm.get_plugin(name)
    if existing is not None:
        other = _info[name].distribution if name in _info else None
        _add_failure(
            PluginFailure(
                name,
                dist,
                f"plugin name {name!r} is already used by distribution {other!r}; "
                "rename the entry point",
            )
        )
        return False
    try:
        pm.register(obj, name=name)
        # A hook implementation whose name matches no spec (a typo such as
        # ``register_cleaner``) would otherwise be silently ignored.
        pm.check_pending()
    except Exception as exc:  # unknown hook names, bad hook signatures, already registered
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        _add_failure(PluginFailure(name, dist, _error_text(exc)))
        return False
    return True


def _load_builtins(pm: pluggy.PluginManager) -> None:
    for modname in DEFAULT_PLUGINS:
        try:
            mod = importlib.import_module(modname)
        except Exception as exc:
            _add_failure(PluginFailure(modname, "recfeat", _error_text(exc)))
            continue
        if _register(pm, mod, modname, "recfeat"):
            _info[modname] = PluginInfo(modname, "recfeat", __version__, True)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    from importlib.metadata import entry_points

    allowed = allowed_plugins()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist else None
        if allowed is not None and not (
            _canonical(ep.name) in allowed or (dist and _canonical(dist) in allowed)
        ):
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # ImportError, SyntaxError, anything the module raises
            _add_failure(PluginFailure(ep.name, dist, f"cannot load {ep.value}: {_error_text(exc)}"))
            continue
        if _register(pm, obj, ep.name, dist):
            version = ep.dist.version if ep.dist else None
            _info[ep.name] = PluginInfo(ep.name, dist, version, False)


def _order_key(plugin_name: str) -> tuple[int, int]:
    # Built-ins first, in DEFAULT_PLUGINS order, then third-party plugins in load order;
    # so on a duplicate name the built-in keeps it and the newcomer is the one that fails.
    if plugin_name in DEFAULT_PLUGINS:
        return (0, DEFAULT_PLUGINS.index(plugin_name))
    names = list(_info)
    return (1, names.index(plugin_name) if plugin_name in names else len(names))


def hooks_of(name: str) -> list[str]:
    """Names of the hooks plugin ``name`` implements."""
    pm = get_plugin_manager()
    plugin = pm.get_plugin(name)
    if plugin is None:
        return []
    return sorted(c.name for c in pm.get_hookcallers(plugin) or [])


def ordered_hookimpls(hook_name: str, *, builtins: bool = True) -> list:
    """The implementations of ``hook_name``, built-ins first, then in plugin load order."""
    pm = get_plugin_manager(builtins=builtins)
    impls = [
        impl
        for impl in getattr(pm.hook, hook_name).get_hookimpls()
        if not (impl.hookwrapper or impl.wrapper)
    ]
    return sorted(impls, key=lambda impl: _order_key(impl.plugin_name))


def call_hook_per_plugin(
    hook_name: str,
    argument: Any,
    *,
    builtins: bool = True,
    on_error: Callable[[str, BaseException], None] | None = None,
) -> None:
    """Call hook ``hook_name`` on each plugin in turn, passing ``argument`` to every
    parameter the implementation asks for.

    ``argument`` may be a ``PerPlugin`` factory to give each plugin its own value. An
    exception in one plugin is passed to ``on_error`` (default: recorded as that plugin's
    failure) and the others still run.
    """
    for impl in ordered_hookimpls(hook_name, builtins=builtins):
        value = argument(impl.plugin_name) if isinstance(argument, PerPlugin) else argument
        try:
            impl.function(**{arg: value for arg in impl.argnames})
        except Exception as exc:
            if on_error is not None:
                on_error(impl.plugin_name, exc)
            else:
                record_failure(impl.plugin_name, f"{hook_name}: {_error_text(exc)}")


class PerPlugin:
    """Wraps ``factory(plugin_name) -> value`` for ``call_hook_per_plugin``."""

    def __init__(self, factory: Callable[[str], Any]):
        self.factory = factory

    def __call__(self, plugin_name: str) -> Any:
        return self.factory(plugin_name)


def call_registration_hook(registry) -> None:
    """Call ``registry.hook_name`` on every plugin with a ``register`` bound to that plugin.

    Called per implementation (not through ``pm.hook``) so each component records its
    plugin, and an exception in one plugin is recorded instead of aborting the rest. When
    a plugin's hook raises, the components it registered in that call are removed again,
    so a half-registered plugin never lingers.
    """

    def make_register(plugin_name: str):
        def register(cls, name=None, aliases=()):
            return registry.register(cls, name=name, aliases=aliases, plugin=plugin_name)

        return register

    def on_error(plugin_name: str, exc: BaseException) -> None:
        registry.unregister_plugin(plugin_name)
        record_failure(plugin_name, f"{registry.hook_name}: {_error_text(exc)}")
        print(
            f"recfeat: plugin {plugin_name!r} failed in {registry.hook_name}: {exc}",
            file=sys.stderr,
        )

    call_hook_per_plugin(registry.hook_name, PerPlugin(make_register), on_error=on_error)
