"""Text cleaners: str -> str, composable into a chain configured by name."""

from __future__ import annotations

from collections.abc import Iterable

from .base import Component


class Cleaner(Component):
    """Subclasses implement ``clean_text``; ``clean`` maps it over many texts.

    A cleaner that replaces values with placeholders (e-mail addresses, phone numbers...)
    names their kinds in ``masks`` and implements ``mask_text``: the extraction run record
    and the server's metrics then count what it masked, by kind, never the values."""

    #: Kinds of value this cleaner masks and counts (``mask_text``); empty for the rest.
    masks: tuple[str, ...] = ()

    def clean_text(self, text: str) -> str:
        raise NotImplementedError

    def clean(self, texts: Iterable[str]) -> list[str]:
        return [self.clean_text(t) for t in texts]

    def mask_text(self, text: str) -> tuple[str, dict[str, int]]:
        """The cleaned text and how many values of each kind were masked in it (only the
        kinds found). Masking cleaners override it; the others mask nothing."""
        return self.clean_text(text), {}

    def clean_counted(self, texts: Iterable[str]) -> tuple[list[str], dict[int, dict[str, int]]]:
        """``clean(texts)`` and, for the texts in which values were masked, how many of each
        kind: ``{text index: {kind: count}}`` (sparse: most texts have none)."""
        if not self.masks:
            return self.clean(texts), {}
        out: list[str] = []
        hits: dict[int, dict[str, int]] = {}
        for i, text in enumerate(texts):
            cleaned, found = self.mask_text(text)
            out.append(cleaned)
            if found:
                hits[i] = found
        return out, hits
