"""Joining Ray (:func:`connect`) for the Ray Data engine (``recfeat.extraction.ray_data``),
and what an actor rebuilds its encoder from (:func:`options_for_actor`: a loaded model is
never pickled; each actor loads its own copy from the registry name and options).
"""

from __future__ import annotations

import os
from typing import Any

from recfeat.errors import UsageError, require


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
    if address != "auto":
        _check_speaks_ray(address, timeout_s)  # the probe sends the token as ray.init will
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


def _host_port(address: str) -> tuple[str, int]:
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray-address {address}: give auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    return host.strip("[]"), int(port)


def _check_reachable(address: str, timeout_s: float) -> None:
    import socket

    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot reach a Ray cluster at --ray-address {address} within {timeout_s:g}s "
            f"({exc.strerror or exc}); check the address, or drop --ray-address to run on "
            "this machine"
        ) from None


# What an HTTP/2 client sends first (RFC 9113 3.4): the preface and an empty SETTINGS frame
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_H2_SETTINGS = 4  # frame type


def _check_speaks_ray(address: str, timeout_s: float) -> None:
    """Refuse, within ``timeout_s``, an address whose port is open but does not answer as
    Ray does (an HTTP server, Redis, a listener that never replies): ``ray.init`` retries
    such a port for many minutes. Ray's GCS and Ray Client server are gRPC servers, which
    open every connection with an HTTP/2 SETTINGS frame; anything else is not Ray.
    A TLS cluster (RAY_USE_TLS) is left to ``ray.init``: its handshake needs Ray's certificates."""
    import socket

    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(_H2_PREFACE)
            head = b""
            while len(head) < 9:  # a frame header: length (3), type, flags, stream (4)
                part = sock.recv(9 - len(head))
                if not part:
                    break
                head += part
    except TimeoutError:
        why = f"no answer within {timeout_s:g}s"
    except OSError as exc:
        why = f"the connection failed: {exc.strerror or exc}"
    else:
        if len(head) == 9 and head[3] == _H2_SETTINGS:
            return
        shown = head.decode("ascii", "replace").strip()
        why = f"it answered {shown[:20]!r}, not Ray's gRPC" if shown else "it hung up at once"
    hint = ("the Ray Client port (10001 by default)" if address.startswith("ray://")
            else "the head's GCS port (6379 by default; `ray status` on the head shows it)")  # fmt: skip
    raise UsageError(
        f"--ray-address {address} does not answer as a Ray cluster ({why}); give {hint}, "
        "or drop --ray-address to run on this machine"
    )


def _forwarded_env() -> dict[str, str]:
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RECFEAT_LOAD_PLUGINS", "RECFEAT_CACHE_DIR")
    return {k: os.environ[k] for k in keys if k in os.environ}
