"""The FastAPI app: routes, and errors as one line of JSON (``recfeat.serve.errors``).

Routes are ``async``: they check and clean the input on the event loop, await the
micro-batcher for vectors (the model runs on its own thread) and build the response by hand
(``json.dumps``), which is several times faster than FastAPI's encoder for float lists; the
vectors themselves are written by ``vector_rows``, a third of ``json.dumps``' time again.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

import numpy as np

from recfeat.serve.embedder import embedding_input
from recfeat.serve.errors import ApiError, error_body, too_large, unavailable
from recfeat.serve.items import check_item_id
from recfeat.serve.middleware import Gate
from recfeat.serve.schemas import (
    EmbeddingsRequest,
    EmbedRequest,
    ItemsRequest,
    ItemText,
    RecommendRequest,
)


def build_app(state, lifespan=None):
    from fastapi import FastAPI
    from starlette.responses import Response

    app = FastAPI(title="recfeat serve", lifespan=lifespan)

    def reply(obj: Any, status: int = 200) -> Response:
        return json_reply(json.dumps(obj, separators=(",", ":")), status)

    def error(status: int, message: str, type_: str, code: str | None, headers=None) -> Response:
        return Response(error_body(message, type_, code), status, headers=headers,
                        media_type="application/json")  # fmt: skip

    def require_ready() -> None:
        if not state.ready:
            raise unavailable(state.load_error or "the model is still loading; retry shortly",
                              "not_ready", retry_after=1)  # fmt: skip

    embedder = state.embedder

    async def encode(texts: list[str]):
        require_ready()
        return await embedder.embed(embedder.check(texts))

    # The helpers are built once per app and shared by the route groups: a request pays for
    # no import.
    _add_error_handlers(app, error)
    _add_embedding_routes(app, state, embedder, encode, require_ready, reply)
    _add_item_routes(app, state, embedder, encode, reply)
    _add_recommend_route(app, state, embedder, encode, require_ready, reply)
    _add_probes(app, state, reply, error, Response)
    return Gate(app, state)


def json_reply(body: str, status: int = 200):
    """A response of JSON text (``json.dumps``, or built by hand around ``vector_rows``)."""
    from starlette.responses import Response

    return Response(body, status, media_type="application/json")


@functools.lru_cache(maxsize=8)
def _row_format(dim: int) -> str:
    return "[" + ",".join(["%.9g"] * dim) + "]"


def vector_rows(vectors) -> list[str]:
    """Each row of a float32 matrix as the text of a JSON array of numbers.

    Why not ``json.dumps(row.tolist())``: it writes each float32 widened to float64, up to
    17 digits found by a shortest-round-trip search per value; for a 384-value row that was
    most of the event loop's work per answer, taken from the cores the model runs on. Nine
    significant digits give the float32 back exactly (``float32(float(text)) == value``, as
    IEEE 754 guarantees for 9), and one %-format over the whole row writes them in about a
    third of the time. Not-finite values, which JSON cannot carry, keep ``json.dumps``'
    NaN / Infinity."""
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2 or not np.isfinite(rows).all():
        return [json.dumps(row) for row in rows.tolist()]
    fmt = _row_format(rows.shape[1])
    return [fmt % tuple(row) for row in rows.tolist()]


def _add_error_handlers(app, error) -> None:
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return error(exc.status, exc.message, exc.type, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return error(400, f"malformed JSON: {first.get('ctx', {}).get('error', 'cannot parse')}"
                         "; send a JSON object", "invalid_request_error", "invalid_json")  # fmt: skip
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        if first.get("type") == "extra_forbidden" and request.url.path == "/v1/embeddings":
            # what the OpenAI API answers to an argument it does not know
            return error(400, f"Unrecognized request argument supplied: {where}; the fields are "
                         "input, model, encoding_format, dimensions and user",
                         "invalid_request_error", "unknown_parameter")  # fmt: skip
        return error(422, f"{where}: {first.get('msg', 'invalid')}{more}", "invalid_request_error",
                     "invalid_body")  # fmt: skip

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail), "invalid_request_error", "not_found"
                     if exc.status_code == 404 else None, getattr(exc, "headers", None))  # fmt: skip

    @app.exception_handler(Exception)
    async def internal(request, exc: Exception):
        return error(500, f"internal error {type(exc).__name__}: {exc}; this is a bug in "
                     "recfeat: report it", "server_error", "internal_error")  # fmt: skip


def _add_embedding_routes(app, state, embedder, encode, require_ready, reply) -> None:
    @app.post("/v1/embeddings")
    async def embeddings(req: EmbeddingsRequest):
        if req.model is not None and req.model not in state.model_names:
            raise ApiError(404, f"model {req.model!r} is not served here; this server serves "
                           f"{state.model_label!r}", code="model_not_found")  # fmt: skip
        if req.dimensions is not None and req.dimensions != embedder.dim:
            raise ApiError(400, f"model {state.model_label!r} does not support dimensions="
                           f"{req.dimensions}: its vectors have {embedder.dim} values and it was "
                           "not trained to be cut shorter; omit dimensions or send "
                           f"{embedder.dim}", code="unsupported_dimensions")  # fmt: skip
        texts, ids = embedding_input(req.input)
        if ids is not None:
            require_ready()  # the tokenizer that decodes them is set by the warm-up
            texts = embedder.decode(ids)
        out = await encode(texts)
        if req.encoding_format == "base64":
            rows = [f'"{base64.b64encode(v.astype("<f4").tobytes()).decode()}"'
                    for v in out.vectors]  # fmt: skip
        else:
            rows = vector_rows(out.vectors)
        tokens = int(out.kept.sum())
        data = ",".join(f'{{"object":"embedding","index":{i},"embedding":{r}}}'
                        for i, r in enumerate(rows))  # fmt: skip
        rest = json.dumps({"model": req.model or state.model_label,
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                          separators=(",", ":"))  # fmt: skip
        return json_reply(f'{{"object":"list","data":[{data}],{rest[1:]}')

    def model_card() -> dict:
        # OpenAI's model object; "created" is unknown for a local model, so 0
        return {"id": state.model_label, "object": "model", "created": 0, "owned_by": "recfeat"}

    @app.get("/v1/models")
    async def models():
        return reply({"object": "list", "data": [model_card()]})

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        if model_id not in state.model_names:
            raise ApiError(404, f"model {model_id!r} is not served here; this server serves "
                           f"{state.model_label!r}", code="model_not_found")  # fmt: skip
        return reply(model_card())

    @app.post("/embed")
    async def embed(req: EmbedRequest):
        out = await encode(req.texts)
        rest = json.dumps({
            "items": [
                {"tokens": int(k), "truncated": bool(d > 0), "tokens_dropped": int(d)}
                for k, d in zip(out.kept, out.dropped, strict=True)
            ],
            "model": state.model_label,
            "backend": state.backend,
        }, separators=(",", ":"))  # fmt: skip
        return json_reply(f'{{"vectors":[{",".join(vector_rows(out.vectors))}],{rest[1:]}')


def _add_item_routes(app, state, embedder, encode, reply) -> None:
    @app.put("/items/{item_id}")
    async def put_item(item_id: str, req: ItemText):
        check_item_id(item_id)  # the gate already refused a path that is not UTF-8
        state.store.room_for([item_id])  # before encoding: a full store costs no engine time
        out = await encode([req.text])
        created = state.store.put_many([item_id], out.vectors) == 1
        return reply({"id": item_id, "created": created, "tokens": int(out.kept[0]),
                      "truncated": bool(out.dropped[0] > 0), "items": len(state.store)})  # fmt: skip

    @app.post("/items")
    async def put_items(req: ItemsRequest):
        if len(req.items) > embedder.max_inputs:
            raise too_large(f"{len(req.items)} items in one request", embedder.max_inputs,
                            "--max-inputs")  # fmt: skip
        ids = [item.id for item in req.items]
        for i, item_id in enumerate(ids):
            check_item_id(item_id, f"items.{i}.id")
        state.store.room_for(ids)
        out = await encode([item.text for item in req.items])
        created = state.store.put_many(ids, out.vectors)
        return reply({"stored": len(req.items), "created": created, "items": len(state.store),
                      "truncated": int((out.dropped > 0).sum())})  # fmt: skip


def _add_recommend_route(app, state, embedder, encode, require_ready, reply) -> None:
    @app.post("/recommend")
    async def recommend(req: RecommendRequest):
        require_ready()
        user = req.user.strip() if req.user and req.user.strip() else None
        vectors = (await encode(req.history_texts)).vectors if req.history_texts else None
        if len(req.history_items) > embedder.max_inputs:
            raise too_large(f"{len(req.history_items)} history items", embedder.max_inputs,
                            "--max-inputs")  # fmt: skip
        sentences, texts = None, []
        if req.explain and req.history_texts:
            sentences, texts = await _own_sentences(req.history_texts, embedder, encode)
        return reply(state.recommender.recommend(
            user, req.k, exclude_seen=req.exclude_seen, history_items=req.history_items,
            history_vectors=vectors, explain=req.explain, sentences=sentences, texts=texts,
        ))  # fmt: skip


async def _own_sentences(history_texts: list[str], embedder, encode):
    """The request's own texts, cleaned as the server cleans what it encodes, split into
    sentences (at most --max-inputs) and encoded: what ``"explain": true`` quotes."""
    from recfeat.explanations.text import UserSentences, split_sentences

    texts = embedder.clean(history_texts)
    found = list(dict.fromkeys(s for t in texts for s in split_sentences(t)))
    found = found[: embedder.max_inputs]
    if not found:
        return None, texts
    vectors = (await encode(found)).vectors
    return UserSentences(found, [None] * len(found), vectors), texts


def _add_probes(app, state, reply, error, Response) -> None:
    @app.get("/health")
    async def health():
        return reply({"status": "ok"})

    @app.get("/ready")
    async def ready():
        if state.ready and not state.closing:
            return reply({"status": "ready", "model": state.model_label, "backend": state.backend,
                          "items": len(state.store), "index": state.index})  # fmt: skip
        why = "shutting down" if state.closing else state.load_error or "loading"
        return error(503, f"not ready: {why}", "server_error", "not_ready")

    @app.get("/metrics")
    async def metrics():
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)
