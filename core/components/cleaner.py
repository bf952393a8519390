"""Text cleaners: str -> str, composable into a chain configured by name."""

from __future__ import annotations

from collections.abc import Iterable

from .base import Component


class Cleaner(Component):
    """Subclasses implement ``clean_text``; ``clean`` maps it over many texts."""

    def clean_text(self, text: str) -> str:
        raise NotImplementedError

    def clean(self, texts: Iterable[str]) -> list[str]:
        return [self.clean_text(t) for t in texts]
