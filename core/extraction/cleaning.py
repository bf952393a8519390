"""Cleaner chains: several cleaners, configured by name, applied in order.

A chain is described by a list of names or ``{"use": name, **options}`` tables (the TOML
``cleaners = [...]`` section), or a comma-separated string (``"html,whitespace"``) on the
command line. ``CleanerChain.spec()`` gives back a canonical, JSON-able description with
every option spelled out, for feature manifests and cache keys.

The default chain masks personal data (the ``pii`` cleaner, ``recfeat.plugins.pii``) before
texts are encoded, cached or served; ``keep_pii`` (``--keep-pii``) leaves it out
(:func:`with_keep_pii`). ``CleanerChain.clean_counted`` also says how many values each
masking cleaner replaced, by kind: counts for run records and metrics, never the values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from recfeat.errors import DataError, UsageError
from recfeat.jsonable import jsonable
from recfeat.plugin.registry import get_registry

# pii after nfkc (full-width digits and @ are plain by then) and before whitespace (its
# placeholders need no spacing of their own).
PII_CLEANER = "pii"
DEFAULT_CLEANERS: tuple[str, ...] = ("html", "control-chars", "nfkc", PII_CLEANER, "whitespace")

CleanerSpec = str | dict[str, Any]


class CleanerChain:
    """Apply cleaners in order. ``clean(texts)`` runs each cleaner over the whole batch."""

    def __init__(self, cleaners: Sequence[Any], names: Sequence[str]):
        self.cleaners = list(cleaners)
        self.names = list(names)

    @property
    def masks(self) -> tuple[str, ...]:
        """The kinds of value the chain's masking cleaners replace (and count)."""
        return tuple(dict.fromkeys(k for c in self.cleaners for k in getattr(c, "masks", ())))

    def clean(self, texts: Iterable[str | None]) -> list[str]:
        """Clean many texts. ``None`` (a missing review) becomes ``""``; other non-strings are refused."""
        batch = self._texts(texts)
        for cleaner in self.cleaners:
            batch = cleaner.clean(batch)
        return batch

    def clean_counted(self, texts: Iterable[str | None]) -> tuple[list[str], dict[int, dict[str, int]]]:
        """``clean(texts)`` and, for the texts in which masking cleaners replaced values,
        how many of each kind: ``{text index: {kind: count}}``."""
        batch = self._texts(texts)
        hits: dict[int, dict[str, int]] = {}
        for cleaner in self.cleaners:
            if not getattr(cleaner, "masks", ()):
                batch = cleaner.clean(batch)
                continue
            batch, found = cleaner.clean_counted(batch)
            for i, counts in found.items():
                mine = hits.setdefault(i, {})
                for kind, n in counts.items():
                    mine[kind] = mine.get(kind, 0) + n
        return batch, hits

    @staticmethod
    def _texts(texts: Iterable[str | None]) -> list[str]:
        batch = []
        for i, text in enumerate(texts):
            if text is None:
                text = ""
            elif not isinstance(text, str):
                raise DataError(
                    f"text {i} is a {type(text).__name__}, not a string; convert the column to text first"
                )
            batch.append(text)
        return batch

    def clean_text(self, text: str) -> str:
        return self.clean([text])[0]

    __call__ = clean_text

    def spec(self) -> list[dict[str, Any]]:
        """``[{"use": name, **options}, ...]`` with canonical names and every option value."""
        return [
            {"use": name, **jsonable(cleaner.get_options())}
            for name, cleaner in zip(self.names, self.cleaners, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.cleaners)

    def __repr__(self) -> str:
        return f"CleanerChain({', '.join(self.names) or 'no cleaners'})"


def parse_cleaner_specs(specs: str | Sequence[CleanerSpec] | None) -> list[tuple[str, dict[str, Any]]]:
    """Normalise any accepted form to ``[(name, options), ...]``; ``None`` means the default chain."""
    if specs is None:
        specs = DEFAULT_CLEANERS
    if isinstance(specs, str):
        specs = [part.strip() for part in specs.split(",") if part.strip()]
    parsed = []
    for i, spec in enumerate(specs):
        if isinstance(spec, str):
            parsed.append((spec, {}))
        elif isinstance(spec, dict):
            if "use" not in spec:
                raise UsageError(
                    f"cleaner {i} has no 'use' key: write it as {{use = \"name\", ...options}}; "
                    "see `recfeat components cleaners`"
                )
            parsed.append((spec["use"], {k: v for k, v in spec.items() if k != "use"}))
        else:
            raise UsageError(
                f"cleaner {i} must be a name or a {{use = \"name\", ...}} table, not {type(spec).__name__}"
            )
    return parsed


def build_cleaner_chain(specs: str | Sequence[CleanerSpec] | None = None) -> CleanerChain:
    """Build a chain from names, ``{"use": name, **options}`` dicts or ``"html,whitespace"``.

    ``None`` gives ``DEFAULT_CLEANERS``; an empty list or string gives a chain that changes
    nothing. Unknown names and bad options raise the registry's errors.
    """
    registry = get_registry("cleaner")
    cleaners, names = [], []
    for name, options in parse_cleaner_specs(specs):
        cleaners.append(registry.create(name, **options))
        names.append(registry.entry(name).name)
    return CleanerChain(cleaners, names)


def with_keep_pii(specs: Any, keep_pii: bool, flag: str = "--keep-pii") -> Any:
    """``specs`` (as :func:`build_cleaner_chain` or ``make_cleaner`` take them) with
    personal data kept when ``keep_pii``: None (the default chain) becomes the default
    chain less ``pii``; a chain that names ``pii`` contradicts it (UsageError); any other
    chain is returned as is."""
    if not keep_pii:
        return specs
    if specs is None:
        return [name for name in DEFAULT_CLEANERS if name != PII_CLEANER]
    if hasattr(specs, "clean"):
        names = list(getattr(specs, "names", ()))
    else:
        registry = get_registry("cleaner")
        names = [registry.entry(name).name if name in registry else name
                 for name, _ in parse_cleaner_specs(specs)]  # fmt: skip
    if PII_CLEANER in names:
        raise UsageError(f"{flag} asks to keep personal data, but the cleaners "
                         f"({', '.join(names)}) include {PII_CLEANER!r}, which masks it; drop "
                         f"{PII_CLEANER!r} from the cleaners or drop {flag}")  # fmt: skip
    return specs
