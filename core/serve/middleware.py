"""The gate every HTTP request passes first (plain ASGI, so it costs little): counts the
request by route and status, checks the bearer token, refuses new work once shutdown began
(503), and reads the body up to the size limit (413) before the routes see it."""

from __future__ import annotations

import time

from recfeat.serve.auth import authorized
from recfeat.serve.errors import error_body

ROUTES = ("/v1/embeddings", "/embed", "/recommend", "/items", "/health", "/ready", "/metrics")
# Routes a load balancer or monitor polls: still answered while shutting down.
PROBES = frozenset({"/health", "/ready", "/metrics"})
# Content types read as JSON all the same (none given, or curl -d's default).
FORM_TYPES = frozenset({b"", b"application/x-www-form-urlencoded"})


def route_label(path: str) -> str:
    """The route template (bounded label values for the metrics), ``other`` for the rest."""
    if path in ROUTES:
        return path
    if path.startswith("/items/"):
        return "/items/{id}"
    return "other"


class Gate:
    def __init__(self, app, state):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state, path = self.state, scope["path"]
        route = route_label(path)
        status = {"code": 500}
        start = time.perf_counter()

        async def counted_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        counts = path not in PROBES
        if counts:
            state.in_flight += 1
            state.metrics.in_flight.set(state.in_flight)
        try:
            await self._handle(scope, receive, counted_send, path)
        finally:
            if counts:
                state.in_flight -= 1
                state.metrics.in_flight.set(state.in_flight)
            state.metrics.requests.labels(route, str(status["code"])).inc()
            state.metrics.request_seconds.labels(route).observe(time.perf_counter() - start)

    async def _handle(self, scope, receive, send, path):
        state = self.state
        headers = dict(scope["headers"])
        if not authorized(state.settings.api_key, path, headers.get(b"authorization")):
            return await _reply(send, 401, "missing or wrong API key; send the header "
                                "'Authorization: Bearer KEY'", "authentication_error",
                                "invalid_api_key", {"WWW-Authenticate": "Bearer"})  # fmt: skip
        if state.closing and path not in PROBES:
            return await _reply(send, 503, "the server is shutting down; send the request to "
                                "another replica", "server_error", "shutting_down",
                                {"Connection": "close"})  # fmt: skip
        limit = state.settings.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _too_large(send, int(declared), limit)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _too_large(send, size, limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False
        if body and headers.get(b"content-type", b"").split(b";")[0] in FORM_TYPES:
            # curl -d sends a form content type by default; every body here is JSON
            raw = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = dict(scope, headers=[*raw, (b"content-type", b"application/json")])

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _too_large(send, size: int, limit: int):
    return await _reply(send, 413, f"request body of {size}+ bytes is over the limit of {limit} "
                        "bytes (server option --max-body-bytes)", "invalid_request_error",
                        "payload_too_large")  # fmt: skip


async def _reply(send, status: int, message: str, type_: str, code: str, headers=None):
    body = error_body(message, type_, code)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
