"""Joining Ray (:func:`connect`, used by both Ray paths), and the in-memory Ray runner of the
Python API (``extract(data, ray=True)``): chunks of an already loaded dataset go to a pool of
encoder actors and come back to the pipeline, which commits each to the cache as it lands.
The command line's ``--ray`` is the other path, ``recfeat.extraction.ray_data``, where the
workers read the input and write the output themselves.

Each Ray row is one whole chunk (its texts as a list), so a chunk is encoded in one call
exactly as the local runner would, and resuming works the same way with or without Ray.
The actors rebuild the encoder from its registry name and options: a loaded model is never
pickled, and each actor loads its own copy lazily.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from recfeat.errors import UsageError, require


class EncoderActor:
    """Ray Data callable class: one encoder per actor, applied to batches of chunks."""

    def __init__(self, encoder_name: str, options: dict[str, Any]):
        from recfeat.plugin.registry import get_registry

        self.encoder = get_registry("encoder").create(encoder_name, **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out_vectors, out_stats = [], []
        for texts in batch["texts"]:
            vectors = np.asarray(self.encoder.encode([str(t) for t in texts]), dtype=np.float32)
            stats = dict(getattr(self.encoder, "last_stats", None) or {})
            # one object per row: Arrow cannot hold ragged 2-D arrays directly
            out_vectors.append(vectors.tobytes())
            out_stats.append(
                [int(stats.get(k, 0) or 0) for k in ("tokens", "truncated_texts", "tokens_dropped")]
                + [vectors.shape[1] if vectors.ndim == 2 else 0]
            )
        return {
            "chunk": batch["chunk"],
            "vectors": np.array(out_vectors, dtype=object),
            "stats": np.array(out_stats, dtype=np.int64),
        }


def options_for_actor(encoder) -> dict[str, Any]:
    """What an actor rebuilds the encoder from (with its registry name): only options whose
    value differs from None travel; the class's defaults do the rest."""
    return {k: v for k, v in encoder.get_options().items() if v is not None}


def connect(address: str | None = None, *, timeout_s: float = 15.0):
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``), or
    start a local Ray with this machine's CPUs when it is None. An unreachable address is one
    UsageError naming it, raised within ``timeout_s``."""
    ray = require("ray", "ray", "--ray")
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address not in (None, "auto", "local"):
        _check_reachable(address, timeout_s)  # even when this process already joined one
    if ray.is_initialized():
        return ray
    common = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
        # plugins and offline settings must reach the actors too
        "runtime_env": {"env_vars": _forwarded_env()},
    }
    if address in (None, "local"):
        # "local": a new Ray of our own, even when `ray start` left a cluster on this machine
        # (address None would join that one)
        ray.init(address="local", num_cpus=os.cpu_count(), **common)
        return ray
    _token_auth_if_available()
    try:
        ray.init(address=address, **common)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise UsageError(
            f"cannot join a Ray cluster at --ray-address {address} "
            f"({str(exc).strip().splitlines()[0][:160]}); start one with `ray start --head` "
            "or drop --ray-address to run on this machine"
        ) from None
    return ray


def _token_auth_if_available() -> None:
    """Clusters started by ``ray start`` (Ray >= 2.5x) require the token the head wrote
    (``~/.ray/auth_token``, or RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH), and a driver joining
    one only sends it in token mode, which ``ray.init`` turns on by itself only for a Ray it
    starts. An explicit RAY_AUTH_MODE is left alone (Ray's own helper does exactly this)."""
    try:  # private, but it also refreshes the configuration `import ray` already read
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _check_reachable(address: str, timeout_s: float) -> None:
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray-address {address}: give auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot reach a Ray cluster at --ray-address {address} within {timeout_s:g}s "
            f"({exc.strerror or exc}); check the address, or drop --ray-address to run on "
            "this machine"
        ) from None


def ray_runner(encoder, *, actors: int = 1, address: str | None = None):
    """A pipeline runner (see ``recfeat.extraction.pipeline.Runner``) that encodes through Ray Data."""
    ray = require("ray", "ray", "--ray")
    require("ray.data", "ray", "--ray")
    name = encoder.name
    options = options_for_actor(encoder)

    def run(jobs: list[list[str]]) -> Iterator[tuple[int, np.ndarray, dict[str, Any]]]:
        if not jobs:
            return
        import pandas as pd

        connect(address)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.execution_options.preserve_order = True
        frame = pd.DataFrame({"chunk": np.arange(len(jobs)), "texts": jobs})
        ds = ray.data.from_pandas(frame).map_batches(
            EncoderActor,
            fn_constructor_kwargs={"encoder_name": name, "options": options},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for chunk, blob, stats in zip(
                batch["chunk"], batch["vectors"], batch["stats"], strict=True
            ):
                dim = int(stats[3])
                vectors = np.frombuffer(blob, dtype=np.float32).reshape(-1, dim)
                yield (
                    int(chunk),
                    vectors,
                    {
                        "tokens": int(stats[0]),
                        "truncated_texts": int(stats[1]),
                        "tokens_dropped": int(stats[2]),
                    },
                )

    return run


def _forwarded_env() -> dict[str, str]:
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RECFEAT_LOAD_PLUGINS", "RECFEAT_CACHE_DIR")
    return {k: os.environ[k] for k in keys if k in os.environ}
