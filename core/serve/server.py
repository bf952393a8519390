"""Build the server's state, bind, run uvicorn, shut down gracefully.

Start-up order: options and files are checked first (a bad model name, model file or port is
one error line before anything loads); then the socket is bound and uvicorn serves at once
(``/health`` answers, ``/ready`` says 503) while the encode thread loads the model, warms
it up and encodes the start-up item texts; then one line says backend, precision, device,
the measured warm-up latency and the URL, and ``/ready`` turns 200.

Shutdown (SIGTERM or SIGINT): requests that arrive from then on get 503; uvicorn stops
listening, closes idle connections and waits for the requests it holds, whose jobs the
micro-batcher still runs; then the batcher drains and the process exits 0. Nothing accepted
is dropped, and nothing waits forever: a body must arrive within --body-timeout (408) and
vectors within --request-timeout (503), so a stalled client cannot hold the shutdown up.
"""

from __future__ import annotations

import math
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
                trust: bool = False, engine: Any = None, adaptor: Any = None,
                ) -> tuple[ServeState, Callable[[], str]]:  # fmt: skip
    """The state the routes share and the loader to run on the encode thread (it returns
    the start-up line). ``encoder`` is the text encoder (``--encoder``), ``model`` the
    recommendation model file (``--model``). ``engine``: the encoder object already made
    (``recfeat.serve`` passes the one its settings resolved); ``encoder`` is then only the
    name responses carry, and backend, precision, device and threads are not used.
    ``adaptor``: the adaptor the --item-features were made with (``transform``, ``out_dim``,
    ``identity()``; ``recfeat.finetuning.adaptors.adaptor_of_features`` finds it): applied to
    every text the server encodes.
    ``cleaners``: specs ("a,b", a list; None: the default chain; "none" or []: raw texts).
    Raises RecfeatError for options or files that cannot work."""
    from recfeat.extraction.stages import make_cleaner
    from recfeat.serve.embedder import Embedder
    from recfeat.serve.index import check_index_kind, require_faiss
    from recfeat.serve.items import ItemStore, vector_manifest
    from recfeat.serve.recommender import Recommender

    check_installed()
    if check_index_kind(settings.index) == "hnsw":
        require_faiss("recfeat serve --index hnsw")
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
        max_queue=settings.max_queue, timeout_s=settings.request_timeout, adaptor=adaptor,
    )  # fmt: skip
    store = ItemStore(embedder.dim, vector_manifest(embedder.fingerprint), settings.max_items)
    bundle = None
    if model:
        bundle = load_model(model, trust=trust)
    if item_features:
        served = cleaner.spec() if hasattr(cleaner, "spec") else None if cleaner else []
        for note in _load_item_features(store, item_features, served):
            print(f"recfeat serve: note: {note}", file=sys.stderr, flush=True)
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
    if len(store) + len(texts) > settings.max_items:
        raise UsageError(f"{len(store) + len(texts)} start-up items (--data, --item-features) are "
                         f"over --max-items {settings.max_items}; raise --max-items")  # fmt: skip

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
        what = f"{len(store)} items" + (f", model {bundle.name}" if bundle else "")
        return (f"backend {state.backend}, precision {state.precision}, device {state.device}, "
                f"warm-up {warm_ms:.1f} ms per single text; {what}; {_build_index(state)}")  # fmt: skip

    return state, load


def _build_index(state: ServeState) -> str:
    """Build the text-profile search that ``--index`` resolves to for the loaded items;
    returns what the start-up line says about it."""
    from recfeat.serve.index import AUTO_MIN_ITEMS, StoreIndex, resolve_index_kind

    store, asked = state.store, state.settings.index
    state.index = resolve_index_kind(asked, len(store))
    if state.index == "exact":
        if asked == "auto" and len(store) >= AUTO_MIN_ITEMS:
            print(f"recfeat serve: note: {len(store)} items are searched exactly; install "
                  "faiss (pip install 'recfeat[ann]') for an approximate index",
                  file=sys.stderr, flush=True)  # fmt: skip
        return "index exact"
    start = time.perf_counter()
    state.recommender.index = index = StoreIndex(store)
    params = ", ".join(f"{k} {v}" for k, v in index.index.params.items())
    return f"index {state.index} ({params}) built in {time.perf_counter() - start:.1f} s"


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


# Encoder settings that change the vectors: item vectors made with any other value are not
# comparable with the served encoder's (another max_length cuts long texts elsewhere).
VECTOR_SETTINGS = ("weights_sha256", "tokenizer_files_sha256", "pooling", "normalize",
                   "max_length", "precision", "random_init")  # fmt: skip


def _load_item_features(store, path: str, cleaners: Any) -> list[str]:
    """Item vectors from ``recfeat extract --level item`` into ``store``: a UsageError when
    they are not item vectors or another encoder (or encoder settings) made them; returns
    notes for differences that change vectors only slightly (backend, cleaners)."""
    import numpy as np

    from recfeat.data.features import Features

    feats = Features.from_file(path)
    theirs = feats.manifest
    level = theirs.get("level")
    if level != "item":
        raise UsageError(f"--item-features {path} holds {level}-level vectors, not one vector per "
                         "item (its ids would be served as item ids); make item vectors with "
                         "`recfeat extract DATA --level item`")  # fmt: skip
    if feats.dim != store.dim:
        raise UsageError(f"--item-features {path} has dimension {feats.dim} but the served "
                         f"encoder gives {store.dim}; extract them with the served encoder")  # fmt: skip
    encoder = theirs.get("encoder")  # the full vector fingerprint (normalize is only there)
    made = {**(encoder if isinstance(encoder, dict) else {}),
            **{k: v for k, v in theirs.items() if k in VECTOR_SETTINGS}}  # fmt: skip
    ours = store.manifest["encoder"]  # the served encoder's vector fingerprint
    clash = [f"{k} {_short(made[k])} vs {_short(ours[k])} served" for k in VECTOR_SETTINGS
             if made.get(k) is not None and ours.get(k) is not None and made[k] != ours[k]]  # fmt: skip
    if clash:
        raise UsageError(f"--item-features {path} were made with other encoder settings "
                         f"({'; '.join(clash)}); extract them with the served model and settings "
                         "(recfeat extract DATA --level item), or serve with theirs")  # fmt: skip
    if len(feats) > store.max_items:
        raise UsageError(f"--item-features {path} has {len(feats)} items, over --max-items "
                         f"{store.max_items}; raise --max-items")  # fmt: skip
    notes = []
    backend, served = theirs.get("backend"), ours.get("backend")
    if backend and served and backend != served:
        notes.append(f"--item-features {path} were made by backend {backend}, the server runs "
                     f"{served}: vectors agree closely but not bit for bit")  # fmt: skip
    made_with = theirs.get("cleaners")
    if isinstance(made_with, list) and cleaners is not None and made_with != cleaners:
        notes.append(f"--item-features {path} were extracted with cleaners "
                     f"{_cleaner_names(made_with)}, the server cleans input texts with "
                     f"{_cleaner_names(cleaners)}; pass --cleaners {_cleaner_names(made_with)} "
                     "to clean new texts alike")  # fmt: skip
    has = np.abs(feats.vectors).sum(axis=1) > 0  # extract writes zeros for empty texts
    store.put_many(list(feats.ids[has]), feats.vectors[has], added=False)
    return notes


def _short(value: Any) -> str:
    """A setting for a one-line message: hashes cut to 12 characters."""
    text = str(value)
    return f"{text[:12]}..." if len(text) > 40 else text


def _cleaner_names(spec: list[Any]) -> str:
    return ",".join(str(c.get("use", c)) if isinstance(c, dict) else str(c) for c in spec) or "none"


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
        # A last resort: every request ends by itself within --body-timeout (reading the
        # body) + --request-timeout (waiting for vectors), and the gate answers the ones
        # cut off here with 503, without a traceback.
        timeout_graceful_shutdown=math.ceil(state.settings.body_timeout
                                            + state.settings.request_timeout) + 5,
        timeout_keep_alive=5, server_header=False,
    )  # fmt: skip
    server = Server(config)
    server.run(sockets=[sock])
    if state.load_error:
        raise RecfeatError(state.load_error)
