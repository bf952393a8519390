"""Component registries, one per kind, filled lazily from the plugin hooks.

The first use of a registry loads plugins (``recfeat.plugin_manager.load_plugins``) and
calls that kind's hook with a ``register`` callback bound to each plugin, so every
component knows which plugin provided it and duplicates can name both sides.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import DuplicateComponentError, UnknownComponentError, closest
from .options import option_specs, validate_options


@dataclasses.dataclass
class Entry:
    name: str
    cls: type
    aliases: tuple[str, ...]
    plugin: str

    def doc(self) -> str:
        doc = (self.cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


KINDS = {
    # kind: (hook name, plural used on the command line)
    "cleaner": "register_cleaners",
    "tokenizer": "register_tokenizers",
    "encoder": "register_encoders",
    "model": "register_models",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "exporter": "register_exporters",
}


class Registry:
    """Named components of one kind: ``register``, ``get``, ``create``, ``names``, ``describe``."""

    def __init__(self, kind: str):
        self.kind = kind
        self.hook_name = KINDS[kind]
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = False

    # -- filling ---------------------------------------------------------------------------
    def register(
        self, cls: type, name: str | None = None, aliases=(), *, plugin: str = "(direct)"
    ) -> type:
        """Add ``cls`` under ``name`` (default ``cls.name``) and ``aliases``."""
        name = name or getattr(cls, "name", None) or cls.__name__.lower()
        aliases = tuple(aliases) or tuple(getattr(cls, "aliases", ()) or ())
        for key in (name, *aliases):
            owner = self._owner(key)
            if owner is not None:
                raise DuplicateComponentError(
                    f"{self.kind} name {key!r} is registered twice: by plugin {owner.plugin!r} "
                    f"({owner.cls.__module__}.{owner.cls.__qualname__}) and by plugin {plugin!r} "
                    f"({cls.__module__}.{cls.__qualname__}); rename one or limit plugins with "
                    "RECFEAT_LOAD_PLUGINS"
                )
        self._entries[name] = Entry(name, cls, aliases, plugin)
        for alias in aliases:
            self._aliases[alias] = name
        return cls

    def unregister(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry:
            for alias in entry.aliases:
                self._aliases.pop(alias, None)

    def _owner(self, key: str) -> Entry | None:
        if key in self._entries:
            return self._entries[key]
        if key in self._aliases:
            return self._entries[self._aliases[key]]
        return None

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from .plugin_manager import call_registration_hook

        call_registration_hook(self)

    # -- reading ---------------------------------------------------------------------------
    def entry(self, name: str) -> Entry:
        self._ensure_loaded()
        found = self._owner(name)
        if found is None:
            known = sorted([*self._entries, *self._aliases])
            listing = ", ".join(sorted(self._entries)) or "(none registered)"
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}.{closest(name, known)} Known {self.kind}s: {listing}"
            )
        return found

    def get(self, name: str) -> type:
        """Return the class registered as ``name`` (or one of its aliases)."""
        return self.entry(name).cls

    def create(self, name: str, **options: Any):
        """Validate ``options`` against the component's signature and instantiate it."""
        entry = self.entry(name)
        clean = validate_options(entry.cls, options, what=f"{self.kind} {entry.name!r}")
        return entry.cls(**clean)

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return self._owner(name) is not None

    def describe(self) -> list[dict[str, Any]]:
        """Machine-readable description of every component: name, aliases, plugin, doc, options."""
        self._ensure_loaded()
        out = []
        for name in sorted(self._entries):
            e = self._entries[name]
            out.append(
                {
                    "kind": self.kind,
                    "name": name,
                    "aliases": list(e.aliases),
                    "plugin": e.plugin,
                    "class": f"{e.cls.__module__}.{e.cls.__qualname__}",
                    "doc": e.doc(),
                    "options": {k: _jsonable(v) for k, v in option_specs(e.cls).items()},
                }
            )
        return out


def _jsonable(spec: dict[str, Any]) -> dict[str, Any]:
    default = spec["default"]
    if not isinstance(default, (str, int, float, bool, type(None), list, dict)):
        default = repr(default)
    if isinstance(default, tuple):
        default = list(default)
    return {**spec, "default": default}


_REGISTRIES: dict[str, Registry] = {}


def normalize_kind(kind: str) -> str:
    k = kind.lower().rstrip("s") if kind.lower() not in KINDS else kind.lower()
    if k not in KINDS:
        raise UnknownComponentError(
            f"unknown component kind {kind!r}.{closest(k, KINDS)} Kinds: {', '.join(KINDS)}"
        )
    return k


def get_registry(kind: str) -> Registry:
    """The registry for ``kind`` (singular or plural: ``encoder`` or ``encoders``)."""
    kind = normalize_kind(kind)
    if kind not in _REGISTRIES:
        _REGISTRIES[kind] = Registry(kind)
    return _REGISTRIES[kind]


def reset_registries() -> None:
    """Forget every registry (tests use this after changing which plugins load)."""
    _REGISTRIES.clear()

