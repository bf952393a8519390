"""Base classes of every pluggable component kind. Subclass one and register it from a hook.

The names are imported lazily (PEP 562): ``from recfeat.components import Cleaner`` loads
only the cleaner base, so a cleaner plugin never pays for scikit-learn (``RecModel``) or
pandas (``Dataset``), and ``recfeat --help`` stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    "Component": "base",
    "Cleaner": "cleaner",
    "Dataset": "dataset",
    "Encoder": "encoder",
    "Exporter": "exporter",
    "Metric": "metric",
    "RankingMetric": "metric",
    "RatingMetric": "metric",
    "RecModel": "model",
    "TokenBatch": "tokenizer",
    "TokenFeaturizer": "tokenizer",
    "Tokenizer": "tokenizer",
}

__all__ = [
    "Component",
    "Cleaner",
    "Dataset",
    "Encoder",
    "Exporter",
    "Metric",
    "RankingMetric",
    "RatingMetric",
    "RecModel",
    "TokenBatch",
    "TokenFeaturizer",
    "Tokenizer",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below does this
    from .base import Component
    from .cleaner import Cleaner
    from .dataset import Dataset
    from .encoder import Encoder
    from .exporter import Exporter
    from .metric import Metric, RankingMetric, RatingMetric
    from .model import RecModel
    from .tokenizer import TokenBatch, TokenFeaturizer, Tokenizer


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
