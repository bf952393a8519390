"""Errors the server answers with: a status code and one line of JSON in OpenAI's shape,
``{"error": {"message": ..., "type": ..., "code": ...}}``, so every client (the OpenAI SDK
included) shows the message."""

from __future__ import annotations

import json


class ApiError(Exception):
    """Raised by a route or the batcher; the app turns it into a response."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, headers: dict[str, str] | None = None):  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = " ".join(str(message).split())  # one line, whatever the cause said
        self.type = type_
        self.code = code
        self.headers = headers or {}


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None) -> bytes:
    one_line = " ".join(str(message).split())
    return json.dumps({"error": {"message": one_line, "type": type_, "code": code}}).encode()


def too_large(what: str, limit: int, flag: str) -> ApiError:
    return ApiError(413, f"{what}; the limit is {limit} (server option {flag})",
                    code="payload_too_large")  # fmt: skip


def queue_full(depth: int, retry_after: int) -> ApiError:
    return ApiError(
        429, f"the queue is full ({depth} requests waiting); retry after {retry_after} s",
        type_="rate_limit_error", code="queue_full", headers={"Retry-After": str(retry_after)},
    )  # fmt: skip


def unavailable(message: str, code: str, retry_after: int | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return ApiError(503, message, type_="server_error", code=code, headers=headers)


def check_text(text: str, what: str) -> None:
    """ApiError 400 for a string that is not text: a JSON escape such as "\\ud800" gives a lone
    surrogate, which no tokenizer takes (it would fail the engine call it is batched in)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(400, f"{what} is not valid Unicode text (a lone surrogate "
                       f"{text[exc.start]!r} at character {exc.start}); send UTF-8 text",
                       code="invalid_text") from None  # fmt: skip
