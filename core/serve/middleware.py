"""The gate every HTTP request passes first (plain ASGI, so it costs little): counts the
request by route and status, checks the bearer token, refuses new work once shutdown began
(503), reads the body up to the size limit (413) within ``--body-timeout`` (408), checks
that it is UTF-8 and hands it on as JSON whatever its content type, and cancels the route
when the client disconnects before its answer (the batcher then drops the request's work).

No request text reaches a log: an unexpected exception in a route (answered 500 by the
app's handler) is logged here with its type and stack only, not its message, which may
quote the input; the server would otherwise log it whole (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from urllib.parse import unquote_to_bytes

from recfeat.serve.auth import authorized
from recfeat.serve.errors import error_body

ROUTES = ("/v1/embeddings", "/v1/models", "/embed", "/recommend", "/items", "/health", "/ready",
          "/metrics")  # fmt: skip
# Routes a load balancer or monitor polls: still answered while shutting down.
PROBES = frozenset({"/health", "/ready", "/metrics"})
# nginx's code for "client closed the request": counted for a client gone before its answer.
CLIENT_GONE = 499


def route_label(path: str) -> str:
    """The route template (bounded label values for the metrics), ``other`` for the rest."""
    if path in ROUTES:
        return path
    if path.startswith("/items/"):
        return "/items/{id}"
    if path.startswith("/v1/models/"):
        return "/v1/models/{id}"
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
        status = {"code": 500, "started": False}
        start = time.perf_counter()

        async def counted_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        counts = path not in PROBES
        if counts:
            state.in_flight += 1
            state.metrics.in_flight.set(state.in_flight)
        try:
            if await self._handle(scope, receive, counted_send, path) == CLIENT_GONE:
                status["code"] = CLIENT_GONE
        except asyncio.CancelledError:
            if not state.closing:
                raise
            # uvicorn cancels what is still running when its graceful-shutdown timeout is
            # over; say so if nothing was sent yet, and end quietly (re-raising would log a
            # traceback for a shutdown that went as designed)
            if status["code"] == 500:
                status["code"] = 503
                try:
                    await _reply(send, 503, "the server is shutting down; send the request to "
                                 "another replica", "server_error", "shutting_down",
                                 {"Connection": "close"})  # fmt: skip
                except Exception:  # noqa: BLE001 - the connection may be gone too
                    pass
        except Exception as exc:  # noqa: BLE001 - logged without its message, answered 500
            log_internal_error(route, exc)
            status["code"] = 500
            if not status["started"]:
                await _reply(send, 500, f"internal error {type(exc).__name__}; this is a bug in "
                             "recfeat: report it", "server_error", "internal_error")  # fmt: skip
        finally:
            if counts:
                state.in_flight -= 1
                state.metrics.in_flight.set(state.in_flight)
            state.metrics.requests.labels(route, str(status["code"])).inc()
            state.metrics.request_seconds.labels(route).observe(time.perf_counter() - start)

    async def _handle(self, scope, receive, send, path):
        state = self.state
        settings = state.settings
        headers = dict(scope["headers"])
        if not authorized(settings.api_key, path, headers.get(b"authorization")):
            return await _reply(send, 401, "missing or wrong API key; send the header "
                                "'Authorization: Bearer KEY'", "authentication_error",
                                "invalid_api_key", {"WWW-Authenticate": "Bearer"})  # fmt: skip
        if state.closing and path not in PROBES:
            return await _reply(send, 503, "the server is shutting down; send the request to "
                                "another replica", "server_error", "shutting_down",
                                {"Connection": "close"})  # fmt: skip
        if path.startswith("/items/") and not _utf8_path(scope):
            return await _reply(send, 400, "the item id in the path is not UTF-8; %-encode the "
                                "UTF-8 bytes of the id", "invalid_request_error", "invalid_id")  # fmt: skip
        limit = settings.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _too_large(send, int(declared), limit)
        try:
            # One deadline for the whole body: a client that stalls (or trickles a byte at a
            # time) would otherwise hold its request slot, and delay shutdown, forever.
            async with asyncio.timeout(settings.body_timeout):
                body, size = await _read_body(receive, limit)
        except TimeoutError:
            return await _reply(send, 408, f"the request body did not arrive within "
                                f"{settings.body_timeout:g} s (server option --body-timeout); "
                                "send the whole body without pausing", "invalid_request_error",
                                "body_timeout", {"Connection": "close"})  # fmt: skip
        if body is None:
            return CLIENT_GONE if size < 0 else await _too_large(send, size, limit)
        if body:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                return await _reply(send, 400, f"the request body is not UTF-8 (byte {exc.start}"
                                    "); send JSON encoded as UTF-8", "invalid_request_error",
                                    "invalid_json")  # fmt: skip
            # Every body here is JSON, whatever its content type says (curl -d sends a form
            # type, some clients text/plain): the routes parse it as JSON.
            raw = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = dict(scope, headers=[*raw, (b"content-type", b"application/json")])
        return await _run_until_gone(self.app, scope, body, receive, send)


async def _read_body(receive, limit: int) -> tuple[bytes | None, int]:
    """``(body, size)``; ``(None, size)`` past ``limit``, ``(None, -1)`` when the client left."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, -1
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, size
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks), size


async def _run_until_gone(app, scope, body: bytes, receive, send):
    """Run ``app`` with ``body``; when the client disconnects before the response is
    complete, cancel it (its job leaves the batcher's queue) and return ``CLIENT_GONE``.
    The body is already read, so the server's next message can only be the disconnect:
    one task waits for it while the app runs."""
    gone = asyncio.Event()
    complete = False
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def tracked_send(message):
        nonlocal complete
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            complete = True
        await send(message)

    async def watch():
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception:  # noqa: BLE001 - a broken connection: the app's send will say so
            return
        gone.set()

    task = asyncio.ensure_future(app(scope, replay, tracked_send))
    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        if task.done() or complete or not gone.is_set():
            return await task  # (uvicorn also says "disconnect" once the response is sent)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # we are cancelled too: pass it on
                raise
        return CLIENT_GONE
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


def log_internal_error(route: str, exc: BaseException) -> None:
    """An unexpected exception of a route: its type and stack (file, line, code), never its
    message or the values of the chain's causes, which may quote the request."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    causes, seen = [], exc
    while (seen := seen.__cause__ or seen.__context__) is not None and len(causes) < 8:
        causes.append(type(seen).__name__)
    because = f" (raised while handling {' <- '.join(causes)})" if causes else ""
    logging.getLogger("recfeat.serve").error(
        "internal error on %s: %s%s; its message is not logged, as it may quote the request\n%s",
        route, type(exc).__name__, because, stack.rstrip(),
    )  # fmt: skip


def _utf8_path(scope) -> bool:
    """Whether the raw path's %-escapes decode as UTF-8. The server decodes them leniently
    (invalid bytes become U+FFFD), so different ids would collapse into one."""
    raw = scope.get("raw_path")
    if not raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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
