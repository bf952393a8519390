"""Typed errors. Library code raises these; the CLI prints the message as one line.

Every message says what went wrong and what to do next, so a user never needs the
traceback (``recfeat --debug`` shows it anyway).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RecfeatError(Exception):
    """Base of every error recfeat raises on purpose. ``exit_code`` follows click: 2 usage, 1 failure."""

    exit_code = 1


class UsageError(RecfeatError):
    """The user asked for something that cannot work as written (bad option, unknown name)."""

    exit_code = 2


class UnknownComponentError(UsageError):
    pass


class DuplicateComponentError(RecfeatError):
    pass


class OptionError(UsageError):
    pass


class ConfigError(UsageError):
    pass


class DataError(RecfeatError):
    """Input data is unreadable, malformed or inconsistent."""


class MissingDependencyError(RecfeatError):
    """An optional dependency is not installed; the message names the exact install command."""

    def __init__(self, module: str, extra: str, purpose: str = ""):
        self.module = module
        self.extra = extra
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(
            f"{module} is not installed{what}; install it with: pip install 'recfeat[{extra}]'"
        )


class NotFittedError(RecfeatError, ValueError):
    """A model was used before ``fit``. Subclasses ValueError like scikit-learn's."""


class ArtifactError(RecfeatError):
    """An exported artifact folder is missing, incomplete, corrupted or inconsistent."""


class ModelFormatError(RecfeatError):
    """A fitted model holds a value the safe model file cannot store (names the attribute)."""


class ValidationFailedError(RecfeatError):
    """An exported or converted model does not reproduce the source model closely enough."""


def closest(name: str, known: Iterable[str]) -> str:
    """Return a ' Did you mean X?' hint, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional dependency or raise MissingDependencyError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
