"""Component registries, one per kind, filled lazily from the plugin hooks.

The first use of a registry loads plugins (``recfeat.plugin.manager.load_plugins``) and
calls that kind's hook with a ``register`` callback bound to each plugin, so every
component knows which plugin provided it and duplicates can name both sides.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from recfeat.errors import DuplicateComponentError, RecfeatError, UnknownComponentError, closest
from recfeat.jsonable import jsonable
from recfeat.plugin import manager as _manager
from recfeat.plugin.options import option_specs, validate_options


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
    # kind: the hook that fills its registry
    "cleaner": "register_cleaners",
    "tokenizer": "register_tokenizers",
    "encoder": "register_encoders",
    "model": "register_models",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "exporter": "register_exporters",
}

# kind: base classes a registered class must subclass, as (module, class name). Imported
# only when something registers, so using the cleaner registry never imports scikit-learn.
BASES: dict[str, tuple[tuple[str, str], ...]] = {
    "cleaner": (("recfeat.components.cleaner", "Cleaner"),),
    "tokenizer": (
        ("recfeat.components.tokenizer", "Tokenizer"),
        ("recfeat.components.tokenizer", "TokenFeaturizer"),
    ),
    "encoder": (("recfeat.components.encoder", "Encoder"),),
    "model": (("recfeat.components.model", "RecModel"),),
    "dataset": (("recfeat.components.dataset", "Dataset"),),
    "metric": (("recfeat.components.metric", "Metric"),),
    "exporter": (("recfeat.components.exporter", "Exporter"),),
}


def base_classes(kind: str) -> tuple[type, ...]:
    """The classes a component of ``kind`` must subclass."""
    import importlib

    return tuple(getattr(importlib.import_module(m), c) for m, c in BASES[kind])


class Registry:
    """Named components of one kind: ``register``, ``get``, ``create``, ``names``, ``describe``."""

    def __init__(self, kind: str, *, autoload: bool = True):
        """``autoload=False`` gives a standalone registry that never calls the plugin hooks
        (for tests and programs that want only what they register themselves)."""
        self.kind = normalize_kind(kind)
        self.hook_name = KINDS[self.kind]
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = not autoload

    # -- filling ---------------------------------------------------------------------------
    def register(
        self, cls: type, name: str | None = None, aliases=(), *, plugin: str = "(direct)"
    ) -> type:
        """Add ``cls`` under ``name`` (default ``cls.name``) and ``aliases`` (default
        ``cls.aliases``); return ``cls`` so this also works as a decorator's body.

        Raises DuplicateComponentError naming both plugins when a name or alias is taken,
        and RecfeatError when ``cls`` is not a subclass of this kind's base class.
        """
        if not isinstance(cls, type):
            raise RecfeatError(
                f"plugin {plugin!r} registered {cls!r} as a {self.kind}; register the class itself"
            )
        bases = base_classes(self.kind)
        if not issubclass(cls, bases):
            wanted = " or ".join(f"recfeat.components.{b.__name__}" for b in bases)
            raise RecfeatError(
                f"plugin {plugin!r} registered {cls.__module__}.{cls.__qualname__} as a "
                f"{self.kind}, but it is not a subclass of {wanted}"
            )
        name = name or getattr(cls, "name", None) or cls.__name__.lower()
        aliases = tuple(aliases) or tuple(getattr(cls, "aliases", ()) or ())
        if not isinstance(name, str) or not all(isinstance(a, str) and a for a in aliases):
            raise RecfeatError(
                f"plugin {plugin!r}: {self.kind} names and aliases must be non-empty strings, "
                f"got name={name!r}, aliases={aliases!r}"
            )
        aliases = tuple(dict.fromkeys(a for a in aliases if a != name))
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
        """Remove ``name`` and its aliases (no error when absent)."""
        entry = self._entries.pop(name, None)
        if entry:
            for alias in entry.aliases:
                self._aliases.pop(alias, None)

    def unregister_plugin(self, plugin: str) -> None:
        """Remove every component that ``plugin`` registered here."""
        for name in [n for n, e in self._entries.items() if e.plugin == plugin]:
            self.unregister(name)

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
        _manager.call_registration_hook(self)

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
        component = entry.cls(**clean)
        # __init__ only stores (scikit-learn's rule, so clone works); value checks that need
        # more than a type (a file exists, a GPU is visible) run here, before any work.
        check = getattr(component, "validate", None)
        if callable(check):
            check()
        return component

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
                    "options": jsonable(option_specs(e.cls), nonfinite="repr"),  # NaN default: "nan"
                }
            )
        return out




_REGISTRIES: dict[str, Registry] = {}


def normalize_kind(kind: str) -> str:
    """``"encoders"``/``"Encoder"`` -> ``"encoder"``; UnknownComponentError for other words."""
    if not isinstance(kind, str):  # get_registry(5) from a script: one line, not AttributeError
        raise UnknownComponentError(f"component kind must be a name such as 'encoder', got {kind!r}; "
                                    f"kinds: {', '.join(KINDS)}")  # fmt: skip
    k = kind.lower()
    if k not in KINDS and k.endswith("s"):
        k = k[:-1]
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


# The manager resets the registries whenever plugins are added, removed or reset.
_manager.on_plugins_changed(reset_registries)

