"""Bearer-token check: ``Authorization: Bearer KEY`` on every route but the probes a load
balancer calls without credentials (/health, /ready: they say whether the server is up and
ready, and which model it serves) when the server has a key (``--api-key`` or
``RECFEAT_API_KEY``). Compared in constant time."""

from __future__ import annotations

import hmac

OPEN_PATHS = frozenset({"/health", "/ready"})


def authorized(key: str | None, path: str, header: bytes | None) -> bool:
    if not key or path in OPEN_PATHS:
        return True
    if not header:
        return False
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), key.encode())
