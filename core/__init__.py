"""recfeat: language-model features for recommender systems, and proof of what they are worth.

The package root stays light (no torch, no transformers) so the CLI starts instantly.
"""

from __future__ import annotations

__version__ = "0.1.0"

from recfeat.plugin.hookspecs import hookimpl  # noqa: E402
from recfeat.plugin.registry import get_registry  # noqa: E402

from .errors import RecfeatError  # noqa: E402

__all__ = ["__version__", "RecfeatError", "hookimpl", "get_registry"]
