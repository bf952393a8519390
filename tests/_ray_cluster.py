"""A two-node Ray cluster on this machine for the Ray engine tests (fixture ``ray_cluster``,
shared through conftest.py).

The cluster is the one CI starts (``.ci/run`` exports RECFEAT_TEST_RAY_ADDRESS: a head and a
second worker node, loopback only); without it (a developer machine) the fixture starts the
same two nodes itself with ``ray start --block`` and stops them by pid afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

RAY = Path(sys.executable).with_name("ray")
OBJECT_STORE = str(150 * 2**20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_env() -> dict[str, str]:
    # The head turns token authentication on (Ray >= 2.5x, token in ~/.ray/auth_token); a
    # joining node and `ray status` only send the token when told to
    return {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}


def _wait_for_nodes(address: str, nodes: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([str(RAY), "status", "--address", address], capture_output=True,
                             text=True, env=_status_env())  # fmt: skip
        if out.returncode == 0 and out.stdout.count("node_") >= nodes:
            return
        time.sleep(2)
    raise RuntimeError(f"the test Ray cluster at {address} did not come up with {nodes} nodes")


@pytest.fixture(scope="session")
def ray_cluster():
    """The address of a two-node Ray cluster on this machine (CI's, or one started here)."""
    given = os.environ.get("RECFEAT_TEST_RAY_ADDRESS")
    if given:
        _wait_for_nodes(given, 2)  # the worker node may still be joining
        yield given
        return
    # a fresh machine has no token yet; token mode (``_status_env``) needs one on every node
    subprocess.run([str(RAY), "get-auth-token", "--generate"], capture_output=True, check=True)
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", f"--object-store-memory={OBJECT_STORE}", "--disable-usage-stats",
              "--block"]  # fmt: skip
    procs = [subprocess.Popen(
        [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--include-dashboard=false", *common],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env=_status_env(),
    )]  # fmt: skip
    try:
        _wait_for_nodes(address, 1)
        procs.append(subprocess.Popen(
            [str(RAY), "start", f"--address={address}", "--node-ip-address=127.0.0.1", *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env=_status_env(),
        ))  # fmt: skip
        _wait_for_nodes(address, 2)
        yield address
    finally:
        import ray

        ray.shutdown()
        for proc in reversed(procs):  # `ray start --block` stops its node on SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


