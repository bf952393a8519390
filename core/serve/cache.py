"""An in-memory LRU of encoded texts, keyed by a hash of (encoder fingerprint, cleaned text).

Item titles and short queries repeat constantly; a hit skips the queue and the model. The
server touches it only from the event loop (lookups before queueing, stores after a batch),
so it needs no lock. Size 0 turns it off.

The key is ``sha256(fingerprint digest + text)``, as in the on-disk vector cache
(``recfeat.extraction.cache.text_keys``): the cache keeps no request text alive after the
request, only vectors and hashes (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any


def _key(fingerprint: bytes, text: str) -> bytes:
    h = hashlib.sha256(fingerprint)
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.digest()


class LRUCache:
    """At most ``size`` entries; the least recently used one goes first."""

    def __init__(self, size: int, fingerprint: bytes):
        self.size = max(int(size), 0)
        self.fingerprint = fingerprint  # one encoder per server; kept in the key all the same
        self._data: OrderedDict[bytes, Any] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, text: str):
        key = _key(self.fingerprint, text)
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
        key = _key(self.fingerprint, text)
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
