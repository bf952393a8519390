"""Evaluation metrics. ``kind`` is 'rating' (predictions vs true ratings) or 'ranking'
(ranked lists vs relevant sets)."""

from __future__ import annotations

from typing import ClassVar

from .base import Component


class Metric(Component):
    kind: ClassVar[str] = "rating"
    higher_is_better: ClassVar[bool] = True

    def __call__(self, *args, **kwargs) -> float:
        raise NotImplementedError
