"""Base classes of every pluggable component kind. Subclass one and register it from a hook."""

from .base import Component
from .cleaner import Cleaner
from .dataset import Dataset
from .encoder import Encoder
from .exporter import Exporter
from .metric import Metric
from .model import RecModel
from .tokenizer import TokenBatch, TokenFeaturizer, Tokenizer

__all__ = [
    "Component",
    "Cleaner",
    "Dataset",
    "Encoder",
    "Exporter",
    "Metric",
    "RecModel",
    "TokenBatch",
    "TokenFeaturizer",
    "Tokenizer",
]
