"""Build the server's state, bind, run uvicorn, shut down gracefully.

Start-up order: options and files are checked first (a bad model name, model file or port is
one error line before anything loads); then the socket is bound and uvicorn serves at once
(``/health`` answers, ``/ready`` says 503) while the encode thread loads the model, warms
it up and encodes the start-up item texts; then one line says backend, precision, device,
the measured warm-up latency and the URL, and ``/ready`` turns 200.

Shutdown (SIGTERM or SIGINT): requests that arrive from then on get 503; uvicorn stops
listening and waits for the requests it holds, whose jobs the micro-batcher still runs;
then the batcher drains and the process exits 0. Nothing accepted is dropped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from recfeat.encode.hub import _PACKAGED_ALIASES, DEFAULT_MODEL
from recfeat.encode.vocabulary import resolve_encoder
from recfeat.errors import RecfeatError, UsageError, require
from recfeat.plugin.registry import get_registry
from recfeat.serve.app import build_app
from recfeat.serve.metrics import Metrics
from recfeat.serve.state import ServeSettings, ServeState
from recfeat.training.bundle import load_model

ITEM_CHUNK = 256  # start-up item texts per engine call (the engine batches within it)


def check_installed() -> None:
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, "serve", "recfeat serve")


def build_state(settings: ServeSettings, *, encoder: str = "minilm", backend: str | None = None,
                precision: str | None = None, device: str | None = None,
                threads: int | None = None, model: str | None = None, item_texts: dict[str, str] | None = None,
                item_features: str | None = None, cleaners: Any = None,
                trust: bool = False, engine: Any = None,
                ) -> tuple[ServeState, Callable[[], str]]:  # fmt: skip
    """The state the routes share and the loader to run on the encode thread (it returns
    the start-up line). ``encoder`` is the text encoder (``--encoder``), ``model`` the
    recommendation model file (``--model``). ``engine``: the encoder object already made
    (``recfeat.serve`` passes the one its settings resolved); ``encoder`` is then only the
    name responses carry, and backend, precision, device and threads are not used.
    ``cleaners``: specs ("a,b", a list; None: the default chain; "none" or []: raw texts).
    Raises RecfeatError for options or files that cannot work."""
    from recfeat.extraction.stages import make_cleaner
    from recfeat.serve.embedder import Embedder
    from recfeat.serve.items import ItemStore, vector_manifest
    from recfeat.serve.recommender import Recommender

    check_installed()
    if engine is None:
        options: dict[str, Any] = {}
        if device:
            options["device"] = device
        if threads:
            options["threads"] = threads
        name, opts = resolve_encoder(encoder, backend=backend, precision=precision, **options)
        engine = get_registry("encoder").create(name, **opts)
    cleaner = None if cleaners in ("none", "", []) else make_cleaner(cleaners)
    metrics = Metrics()
    embedder = Embedder(
        engine, cleaner, metrics, cache_size=settings.cache_size,
        max_inputs=settings.max_inputs, max_chars=settings.max_chars,
        budget_tokens=settings.max_batch_tokens, window_s=settings.batch_window_ms / 1000,
        max_queue=settings.max_queue, timeout_s=settings.request_timeout,
    )  # fmt: skip
    store = ItemStore(embedder.dim, vector_manifest(embedder.fingerprint))
    bundle = None
    if model:
        bundle = load_model(model, trust=trust)
    if item_features:
        _load_item_features(store, item_features, embedder.fingerprint)
    rec = Recommender(bundle, store)
    fp = embedder.fingerprint
    state = ServeState(
        settings=settings, embedder=embedder, store=store, recommender=rec, metrics=metrics,
        model_label=encoder, model_names=frozenset(_model_names(encoder, engine, fp)),
        backend=str(fp.get("backend", getattr(engine, "backend", "?"))),
        precision=str(fp.get("precision") or "fp32"),
        device=str(getattr(engine, "device", None) or getattr(engine, "provider", "cpu")),
    )  # fmt: skip
    texts = {k: v for k, v in (item_texts or {}).items() if k not in store}

    def load() -> str:
        warm_ms = embedder.warm_up()
        if texts:
            ids = list(texts)
            clean = embedder.cleaner.clean if embedder.cleaner is not None else list
            for start in range(0, len(ids), ITEM_CHUNK):
                part = ids[start : start + ITEM_CHUNK]
                pairs = [(i, t) for i, t in zip(part, clean([texts[i] for i in part]), strict=True)
                         if t.strip()]  # an item without text has nothing to rank it by
                if pairs:
                    vectors = embedder.encode_now([t for _, t in pairs]).vectors
                    store.put_many([i for i, _ in pairs], vectors, added=False)
        note = rec.check_encoder()
        if note:
            print(f"recfeat serve: note: {note}", file=sys.stderr, flush=True)
        what = f"{len(store)} items" + (f", model {bundle['header']['model']}" if bundle else "")
        return (f"backend {state.backend}, precision {state.precision}, device {state.device}, "
                f"warm-up {warm_ms:.1f} ms per single text; {what}")  # fmt: skip

    return state, load


def item_texts(dataset, where: str) -> dict[str, str]:
    """item id -> text of ``dataset`` (``--data``), encoded at start; a UsageError when it
    has no item texts."""
    table = dataset.items
    if table is None or not len(table) or "text" not in table.columns:
        raise UsageError(
            f"--data {where} has no item texts (review-only data); give item vectors with "
            "--item-features FILE.parquet (recfeat extract DATA --level item)"
        )
    text = table["text"].fillna("").astype(str)
    return dict(zip(table["item"].astype(str), text, strict=True))


def _model_names(model: str, encoder, fp: dict[str, Any]) -> set[str]:
    """Names a client may send as ``model``: what was served, the encoder's registry name
    and aliases, and the Hugging Face id of the packaged default."""
    names = {model, getattr(encoder, "name", model), *getattr(encoder, "aliases", ())}
    source = str(fp.get("source") or fp.get("model") or "")
    if model in _PACKAGED_ALIASES or getattr(encoder, "name", "") == "minilm":
        names |= _PACKAGED_ALIASES | {DEFAULT_MODEL}
    if source:
        names |= {source, source.rstrip("/").rsplit("/", 1)[-1]}
    return {n for n in names if n}


def _load_item_features(store, path: str, fingerprint: dict[str, Any]) -> None:
    """Item vectors from ``recfeat extract --level item``, refused when another encoder made them."""
    import numpy as np

    from recfeat.data.features import Features

    feats = Features.from_file(path)
    if feats.dim != store.dim:
        raise UsageError(f"--item-features {path} has dimension {feats.dim} but the served "
                         f"encoder gives {store.dim}; extract them with the served encoder")  # fmt: skip
    theirs = feats.manifest
    clash = [k for k in ("weights_sha256", "pooling", "precision")
             if theirs.get(k) is not None and theirs.get(k) != fingerprint.get(k)]  # fmt: skip
    if clash:
        raise UsageError(f"--item-features {path} were made with another encoder ({', '.join(clash)} "
                         "differ); extract them with the served model, backend and precision")  # fmt: skip
    has = np.abs(feats.vectors).sum(axis=1) > 0  # extract writes zeros for empty texts
    store.put_many(list(feats.ids[has]), feats.vectors[has], added=False)


def bind(host: str, port: int):
    """A listening socket on ``host:port`` (0: a free port), or a one-line UsageError."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio switches Nagle off (TCP_NODELAY) only on sockets that
    # say they are TCP, and accepted sockets copy this one's proto. With Nagle on, a response
    # written as headers then body waits ~40 ms for the client's delayed ACK on every
    # keep-alive request. The option itself is set too; Linux copies it to accepted sockets.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another "
                         "--port (0 picks a free one) or --host") from None  # fmt: skip
    sock.listen(2048)
    return sock


def url_of(sock) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(state: ServeState, load: Callable[[], str], sock, out=print) -> None:
    """Serve until a shutdown signal (or a failed load: RecfeatError with its message)."""
    import asyncio
    import contextlib

    import uvicorn

    url = url_of(sock)
    server: uvicorn.Server | None = None

    async def load_model() -> None:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            line = await loop.run_in_executor(state.embedder.executor, load)
        except Exception as exc:  # reported after the server stops, as the command's error
            state.load_error = (str(exc) if isinstance(exc, RecfeatError)
                                else f"loading failed: {type(exc).__name__}: {exc}")  # fmt: skip
            server.should_exit = True
            return
        state.ready = True
        out(f"recfeat serve: {line}; loaded in {time.perf_counter() - start:.1f} s; "
            f"ready on {url}")  # fmt: skip
        sys.stdout.flush()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.embedder.batcher.start()
        task = asyncio.get_running_loop().create_task(load_model())
        yield
        state.closing = True
        if not task.done():
            task.cancel()
        await state.embedder.batcher.drain()
        state.embedder.executor.shutdown(wait=False, cancel_futures=True)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            state.closing = True  # new requests get 503 from now on; held ones finish
            super().handle_exit(sig, frame)
            self._captured_signals.clear()  # a graceful stop exits 0, not by the signal

    config = uvicorn.Config(
        build_app(state, lifespan), log_level="warning", access_log=False, lifespan="on",
        timeout_graceful_shutdown=int(state.settings.request_timeout) + 10,
        timeout_keep_alive=5, server_header=False,
    )  # fmt: skip
    server = Server(config)
    server.run(sockets=[sock])
    if state.load_error:
        raise RecfeatError(state.load_error)
