"""An in-memory LRU of encoded texts, keyed by (encoder fingerprint, cleaned text).

Item titles and short queries repeat constantly; a hit skips the queue and the model. The
server touches it only from the event loop (lookups before queueing, stores after a batch),
so it needs no lock. Size 0 turns it off.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class LRUCache:
    """At most ``size`` entries; the least recently used one goes first."""

    def __init__(self, size: int, fingerprint: bytes):
        self.size = max(int(size), 0)
        self.fingerprint = fingerprint  # one encoder per server; kept in the key all the same
        self._data: OrderedDict[tuple[bytes, str], Any] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, text: str):
        key = (self.fingerprint, text)
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, text: str, value) -> None:
        if self.size == 0:
            return
        key = (self.fingerprint, text)
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
