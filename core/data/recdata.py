"""The in-memory shape every dataset loader produces and every later stage consumes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")


@dataclasses.dataclass
class RecData:
    """One recommendation dataset, normalised.

    - ``interactions``: columns ``user`` (str), ``item`` (str), ``rating`` (float, NaN for
      implicit feedback), ``timestamp`` (int64 unix seconds, or -1 when unknown); one row per
      (user, item) pair after de-duplication.
    - ``reviews``: ``user``, ``item``, ``rating``, ``timestamp``, ``text`` (one row per review),
      or None when the data has no per-interaction text.
    - ``items``: ``item``, ``text`` (item-level text: titles, genres, tags, descriptions), or None.
    - ``users``: ``user``, ``text``, or None.
    - ``report``: counts a user should see (duplicates dropped, bad rows skipped, empty texts...).
    - ``rating_scale``: (min, max) of valid ratings, or None for implicit data.
    """

    name: str
    interactions: pd.DataFrame
    reviews: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    rating_scale: tuple[float, float] | None = None

    def texts(self, level: str) -> pd.DataFrame | None:
        """The text table for ``level`` ('review', 'item' or 'user')."""
        return {"review": self.reviews, "item": self.items, "user": self.users}[level]

    def summary(self) -> dict[str, Any]:
        inter = self.interactions
        return {
            "name": self.name,
            "interactions": int(len(inter)),
            "users": int(inter["user"].nunique()),
            "items": int(inter["item"].nunique()),
            "reviews": None if self.reviews is None else int(len(self.reviews)),
            "item_texts": None if self.items is None else int(len(self.items)),
            **self.report,
        }
