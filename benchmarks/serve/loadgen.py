"""A bounded, closed-loop HTTP load generator for loopback servers.

``concurrency`` worker threads each hold one keep-alive ``http.client`` connection and send
the next prepared request as soon as their previous one is answered, until ``max_requests``
were sent or ``time_limit_s`` passed (whichever comes first; requests in flight then finish,
each bounded by ``timeout_s``). Threads + the standard library's client rather than asyncio +
httpx: the client shares the machine's CPUs with the server, and http.client's per-request
cost (one send of pre-encoded bytes, one read) is a fraction of httpx's, while the socket
waits release the GIL. The client's own CPU time is measured and reported so a reader can see
how much of the machine it took.

Server memory and CPU are sampled from the server's process tree (psutil when importable,
else ``/proc/PID/status`` of the main process only).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import resource
import threading
import time
from collections.abc import Callable, Sequence


@dataclasses.dataclass
class Sample:
    """One request: its timing (perf_counter seconds), outcome and size."""

    start: float
    end: float
    status: str  # "200", "429", ..., "bad-body", or "error:ExceptionName"
    texts: int
    tokens: int | None = None

    @property
    def latency_s(self) -> float:
        return self.end - self.start


@dataclasses.dataclass
class LoadRun:
    """Everything one load level measured."""

    concurrency: int
    max_requests: int
    time_limit_s: float
    samples: list[Sample]
    client_cpu_s: float
    server_cpu_s: float | None
    #: (seconds since the start, requests answered so far, server tree RSS bytes)
    rss: list[tuple[float, int, int]]
    stopped_by: str  # "count" or "time"


# -- the server's process tree ------------------------------------------------------------
def _proc_status_rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _tree_sum(pid: int, measure):
    """``measure(process)`` summed over ``pid`` and its live descendants (None when ``pid``
    is gone); psutil must be importable."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for proc in procs:
        try:
            total += measure(proc)
        except psutil.Error:
            pass  # a child that just exited
    return total


def tree_rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` and all its descendants (shared pages count once per
    process, so a forking server reads high; the servers measured here run one process)."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        return _proc_status_rss(pid)
    return _tree_sum(pid, lambda p: p.memory_info().rss)


def tree_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its live descendants (None without psutil)."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        return None

    def cpu(proc):
        times = proc.cpu_times()
        return times.user + times.system

    return _tree_sum(pid, cpu)


def client_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- request bodies and response checks ----------------------------------------------------
def openai_body(text: str | Sequence[str], model: str | None) -> bytes:
    """An OpenAI-compatible /v1/embeddings request, encoded once before the run."""
    body: dict = {"input": text, "encoding_format": "float"}
    if model:
        body["model"] = model
    return json.dumps(body).encode()


def check_openai(payload: bytes, texts: int) -> int | None:
    """Validate an OpenAI-style embeddings answer; return its prompt tokens (None if absent).
    Raises ValueError when the answer is not one non-empty vector per input text."""
    doc = json.loads(payload)
    data = doc.get("data")
    if not isinstance(data, list) or len(data) != texts:
        raise ValueError(f"expected {texts} embeddings, got {type(data).__name__}")
    for row in data:
        vec = row.get("embedding") if isinstance(row, dict) else None
        if not isinstance(vec, list) or not vec:
            raise ValueError("an embedding is missing or empty")
    usage = doc.get("usage") or {}
    tokens = usage.get("prompt_tokens")
    return int(tokens) if isinstance(tokens, (int, float)) else None


# -- the load itself -----------------------------------------------------------------------
class _Dispenser:
    """Hands out request indices until the count or the deadline is reached."""

    def __init__(self, max_requests: int):
        self.max_requests = max_requests
        self.next = 0
        self.deadline = float("inf")
        self.stopped_by = "count"
        self.lock = threading.Lock()

    def take(self) -> int | None:
        with self.lock:
            if self.next >= self.max_requests:
                return None
            if time.perf_counter() >= self.deadline:
                self.stopped_by = "time"
                return None
            self.next += 1
            return self.next - 1


def run_load(
    host: str,
    port: int,
    path: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    max_requests: int,
    time_limit_s: float,
    texts_per_body: int = 1,
    headers: dict[str, str] | None = None,
    server_pid: int | None = None,
    rss_interval_s: float = 0.5,
    timeout_s: float = 60.0,
    check: Callable[[bytes, int], int | None] = check_openai,
) -> LoadRun:
    """Send ``bodies`` (cycled) as POSTs to ``path`` with ``concurrency`` workers."""
    if concurrency < 1 or max_requests < 1 or not bodies:
        raise ValueError("run_load needs concurrency >= 1, max_requests >= 1 and bodies")
    head = {"Content-Type": "application/json", **(headers or {})}
    dispenser = _Dispenser(max_requests)
    per_worker: list[list[Sample]] = [[] for _ in range(concurrency)]
    barrier = threading.Barrier(concurrency + 1)
    finished = threading.Event()

    def worker(out: list[Sample]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            conn.connect()  # connect before the clock starts: a real client keeps a pool
        except OSError:
            pass  # the first request reconnects and reports the error
        barrier.wait()
        while (i := dispenser.take()) is not None:
            body = bodies[i % len(bodies)]
            start = time.perf_counter()
            try:
                conn.request("POST", path, body, head)
                resp = conn.getresponse()
                payload = resp.read()
                status = str(resp.status)
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()  # http.client reconnects on the next request
            except (OSError, http.client.HTTPException) as exc:
                end = time.perf_counter()
                out.append(Sample(start, end, f"error:{type(exc).__name__}", texts_per_body))
                conn.close()
                continue
            end = time.perf_counter()
            tokens = None
            if status == "200":
                try:
                    tokens = check(payload, texts_per_body)
                except (ValueError, TypeError, AttributeError):
                    status = "bad-body"
            out.append(Sample(start, end, status, texts_per_body, tokens))
        conn.close()

    threads = [threading.Thread(target=worker, args=(out,), daemon=True) for out in per_worker]
    for t in threads:
        t.start()
    rss: list[tuple[float, int, int]] = []

    def sampler(t0: float) -> None:
        while not finished.is_set():
            value = tree_rss_bytes(server_pid)
            if value is not None:
                rss.append((time.perf_counter() - t0, sum(map(len, per_worker)), value))
            finished.wait(rss_interval_s)

    cpu0 = client_cpu_s()
    server0 = tree_cpu_s(server_pid) if server_pid else None
    barrier.wait()
    t0 = time.perf_counter()
    dispenser.deadline = t0 + time_limit_s
    watcher = None
    if server_pid:
        watcher = threading.Thread(target=sampler, args=(t0,), daemon=True)
        watcher.start()
    for t in threads:
        t.join()
    finished.set()
    if watcher:
        watcher.join()
    server1 = tree_cpu_s(server_pid) if server_pid else None
    if server_pid:  # one last sample at the very end of the level
        value = tree_rss_bytes(server_pid)
        if value is not None:
            rss.append((time.perf_counter() - t0, sum(map(len, per_worker)), value))
    samples = sorted((s for out in per_worker for s in out), key=lambda s: s.start)
    return LoadRun(
        concurrency=concurrency,
        max_requests=max_requests,
        time_limit_s=time_limit_s,
        samples=samples,
        client_cpu_s=client_cpu_s() - cpu0,
        server_cpu_s=None if server0 is None or server1 is None else server1 - server0,
        rss=rss,
        stopped_by=dispenser.stopped_by,
    )


def get(host: str, port: int, path: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """One GET (readiness polls, /metrics); raises OSError when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()

