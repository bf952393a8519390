"""Timing, statistics, memory and environment capture for the benchmark harness.

Everything here is independent of what is being timed: a measured thing is a callable.
The timing loop (``time_calls``) and the machine's identity (``cpu_identity``,
``gpu_name``) are ``recfeat.selection.timing``'s, shared with ``--backend auto``.
The clock and the device synchronisation are parameters, so tests drive the loop with a
fake clock and the GPU path waits for queued kernels before reading the time.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from recfeat.errors import OptionError
from recfeat.selection.timing import cpu_identity, gpu_name, time_calls

# Libraries whose versions change the figures; read from metadata, never imported here.
LIBRARIES = (
    "recfeat",
    "torch",
    "transformers",
    "tokenizers",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "optimum",
    "optimum-onnx",
    "sentence-transformers",
    "numpy",
)


# -- statistics ---------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(ordered[lo])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


@dataclasses.dataclass
class LatencyStats:
    """Summary of the timed (post-warm-up) calls, in seconds."""

    repeats: int
    median_s: float
    p95_s: float
    mean_s: float
    min_s: float
    max_s: float

    @classmethod
    def of(cls, latencies: Sequence[float]) -> LatencyStats:
        if not latencies:
            raise ValueError("no timed calls to summarise")
        return cls(
            repeats=len(latencies),
            median_s=percentile(latencies, 50),
            p95_s=percentile(latencies, 95),
            mean_s=sum(latencies) / len(latencies),
            min_s=min(latencies),
            max_s=max(latencies),
        )


@dataclasses.dataclass
class Measurement:
    """One timed workload: latencies, throughput derived from the median call, peak memory."""

    latencies_s: list[float]
    stats: LatencyStats
    sequences: int
    tokens: int
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    result: Any = dataclasses.field(default=None, repr=False)

    @property
    def seq_per_s(self) -> float:
        return self.sequences / self.stats.median_s if self.stats.median_s > 0 else math.inf

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.stats.median_s if self.stats.median_s > 0 else math.inf

    def as_row(self) -> dict[str, Any]:
        """JSON-ready figures (the raw latencies included, so a reader can recompute them)."""
        return {
            "sequences": self.sequences,
            "tokens": self.tokens,
            "repeats": self.stats.repeats,
            "median_ms": self.stats.median_s * 1e3,
            "p95_ms": self.stats.p95_s * 1e3,
            "mean_ms": self.stats.mean_s * 1e3,
            "seq_per_s": self.seq_per_s,
            "tokens_per_s": self.tokens_per_s,
            "peak_rss_mb": self.peak_rss_mb,
            "peak_gpu_mb": self.peak_gpu_mb,
            "latencies_ms": [x * 1e3 for x in self.latencies_s],
        }


def measure(
    fn: Callable[[], Any],
    *,
    sequences: int,
    tokens: int,
    warmup: int = 1,
    repeats: int = 3,
    device: str = "cpu",
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] | None = None,
) -> Measurement:
    """Time ``fn`` (see ``time_calls``) and record the peak memory of the timed calls."""
    reset_peak_memory(device)
    latencies, result = time_calls(fn, warmup=warmup, repeats=repeats, clock=clock, sync=sync)
    rss, gpu = peak_memory_mb(device)
    return Measurement(
        latencies_s=latencies,
        stats=LatencyStats.of(latencies),
        sequences=sequences,
        tokens=tokens,
        peak_rss_mb=rss,
        peak_gpu_mb=gpu,
        result=result,
    )


# -- memory -------------------------------------------------------------------------------
def _torch_if_loaded():
    # Only look at torch when the measured code already imported it: no heavy import here.
    return sys.modules.get("torch")


def reset_peak_memory(device: str = "cpu") -> None:
    """Start a new peak: the process high-water mark (Linux) and CUDA's allocator peak."""
    try:
        # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so each row has its own peak.
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # other systems: the peak is the process's lifetime peak (ru_maxrss)
    torch = _torch_if_loaded()
    if device.startswith("cuda") and torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: str = "cpu") -> tuple[float | None, float | None]:
    """(peak resident set size, peak CUDA memory allocated) in MiB since the last reset."""
    rss = None
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1]) / 1024.0
                    break
    except OSError:
        pass
    if rss is None:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss is KiB on Linux, bytes on macOS.
        rss = maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0
    gpu = None
    torch = _torch_if_loaded()
    if device.startswith("cuda") and torch is not None and torch.cuda.is_available():
        gpu = torch.cuda.max_memory_allocated() / (1024.0 * 1024.0)
    return rss, gpu


def available_memory_bytes(device: str = "cpu") -> int | None:
    """Memory a new workload may still use: MemAvailable on CPU, free device memory on CUDA."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# Peak inference activations relative to one hidden-state tensor per layer: the FFN's
# intermediate (4x hidden), Q/K/V and the residual stream live at once. Deliberately high: a
# refusal should only come for grids that clearly cannot fit.
ACTIVATION_FACTOR = 4


def estimate_memory_bytes(
    *,
    batch: int,
    seq: int,
    hidden: int,
    layers: int,
    heads: int,
    bytes_per_value: int,
    weights_bytes: int = 0,
    factor: int = ACTIVATION_FACTOR,
) -> int:
    """Upper estimate of one forward pass: weights + activations + one layer's attention scores.

    activations = batch * seq * hidden * layers * bytes * factor; attention scores and
    probabilities = 2 * batch * heads * seq^2 * bytes (eager attention materialises them).
    """
    activations = batch * seq * hidden * layers * bytes_per_value * factor
    attention = 2 * batch * heads * seq * seq * bytes_per_value
    return int(weights_bytes + activations + attention)


def check_fits(
    estimate: int, *, device: str, what: str, available: int | None = None
) -> None:
    """Refuse a workload whose memory estimate exceeds what the device has available."""
    if available is None:
        available = available_memory_bytes(device)
    if available is not None and estimate > available:
        where = "GPU memory" if device.startswith("cuda") else "RAM"
        raise OptionError(
            f"{what} needs about {estimate / 2**30:.1f} GiB but only {available / 2**30:.1f} GiB "
            f"of {where} is available; use smaller --batch-sizes or --seq-lens"
        )


# -- environment --------------------------------------------------------------------------
def library_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def capture_environment(*, threads: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Everything a reader needs to compare figures: machine, threads, load, versions, date."""
    env: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **cpu_identity(),
        "threads": threads,
        "device": device,
        "gpu": gpu_name() if device.startswith("cuda") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": library_versions(),
    }
    try:
        env["load_average_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        env["load_average_1m"] = None
    try:
        with open("/proc/meminfo") as fh:
            total_kb = int(fh.readline().split()[1])
        env["ram_gib"] = round(total_kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        env["ram_gib"] = None
    return env
