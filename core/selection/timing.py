"""Timing a candidate backend and naming the machine it ran on: what ``--backend auto``
measures (``recfeat.selection.auto_backend``) and what the benchmark harness builds its
statistics on (``recfeat.bench.measure``).

The clock and the device synchronisation are parameters, so tests drive the loop with a
fake clock and the GPU path waits for queued kernels before reading the time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from recfeat.errors import OptionError
from recfeat.machine import cpu_flags, cpu_model

# CPU features that decide which backend wins (int8 dot products, bf16 matmuls, AMX tiles).
CPU_FLAGS_OF_INTEREST = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "avx512_fp16",
)


def time_calls(
    fn: Callable[[], Any],
    *,
    warmup: int = 1,
    repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] | None = None,
) -> tuple[list[float], Any]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns the latencies of the timed calls and the last call's result. ``sync`` runs
    before each clock read so asynchronous devices (CUDA) are timed to completion.
    """
    if repeats < 1:
        raise OptionError(f"repeats must be at least 1 (got {repeats})")
    if warmup < 0:
        raise OptionError(f"warm-up calls cannot be negative (got {warmup})")
    result = None
    for _ in range(warmup):
        result = fn()
    if sync:
        sync()
    latencies = []
    for _ in range(repeats):
        start = clock()
        result = fn()
        if sync:
            sync()
        latencies.append(clock() - start)
    return latencies, result


def cpu_identity() -> dict[str, Any]:
    """CPU model, logical cores and the flags of interest (what decides the fastest backend)."""
    flags = cpu_flags()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": sorted(f for f in CPU_FLAGS_OF_INTEREST if f in flags),
    }


def gpu_name() -> str | None:
    """Name of CUDA device 0, or None without a usable GPU (torch imported only if present)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0)
