"""What this machine can do: CPU instruction-set flags, the int8 preset that fits, CUDA.

One place for feature detection, so the benchmark harness, the exporters and the encoders
agree. Standard library only: flags come from ``/proc/cpuinfo`` on Linux and from
``sysctlbyname`` (through ctypes, no subprocess) on macOS; elsewhere they are empty and the
callers fall back to the most portable choice. Results are cached for the process
(``cpu_flags.cache_clear()`` in tests). torch is imported only when a CUDA device is asked for.
"""

from __future__ import annotations

import functools
import platform
import sys
from pathlib import Path

from recfeat.errors import OptionError

CPUINFO = Path("/proc/cpuinfo")
ARM_MACHINES = ("arm64", "aarch64")
# macOS spells the CPUID features in capitals without separators; the Linux names win.
_DARWIN_NAMES = {
    "avx1.0": "avx",
    "avx512vnni": "avx512_vnni",
    "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16",
    "avxvnni": "avx_vnni",
}


def _read_cpuinfo() -> tuple[str | None, frozenset[str], str | None]:
    """(model name, flags, vendor id) of the first CPU from /proc/cpuinfo; (None, {}, None)
    when unreadable.

    x86 kernels call the flags line ``flags``, arm64 kernels ``Features``."""
    found: dict[str, str] = {}
    names = {"model name": "model", "flags": "flags", "Features": "flags", "vendor_id": "vendor"}
    try:
        with CPUINFO.open(errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                field = names.get(key.strip())
                if field is not None and field not in found:
                    found[field] = value.strip()
                if len(found) == 3 or (line.strip() == "" and found):
                    break  # the first CPU's block ends at its blank line
    except OSError:
        pass
    return found.get("model"), frozenset(found.get("flags", "").split()), found.get("vendor")


def _sysctl(name: str) -> str | None:
    """A string sysctl (macOS) through libc, without starting a process."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        size = ctypes.c_size_t(0)
        if libc.sysctlbyname(name.encode(), None, ctypes.byref(size), None, 0) != 0 or not size.value:
            return None
        buf = ctypes.create_string_buffer(size.value)
        if libc.sysctlbyname(name.encode(), buf, ctypes.byref(size), None, 0) != 0:
            return None
        return buf.value.decode(errors="replace")
    except (OSError, AttributeError, TypeError, ValueError):
        return None


def _darwin_flags() -> frozenset[str]:
    words: set[str] = set()
    for key in ("machdep.cpu.features", "machdep.cpu.leaf7_features", "machdep.cpu.extfeatures"):
        words.update((_sysctl(key) or "").lower().split())
    return frozenset(_DARWIN_NAMES.get(w, w) for w in words)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags in Linux /proc/cpuinfo spelling (``avx2``, ``avx512_vnni``...).

    Empty where the platform does not say (callers then pick the portable choice)."""
    if sys.platform.startswith("linux"):
        return _read_cpuinfo()[1]
    if sys.platform == "darwin":
        return _darwin_flags()
    return frozenset()


@functools.cache
def cpu_model() -> str:
    """The CPU's marketing name (``model name`` / ``machdep.cpu.brand_string``), or a fallback."""
    model = None
    if sys.platform.startswith("linux"):
        model = _read_cpuinfo()[0]
    elif sys.platform == "darwin":
        model = _sysctl("machdep.cpu.brand_string")
    return model or platform.processor() or platform.machine()


@functools.cache
def cpu_vendor() -> str:
    """The x86 CPUID vendor (``GenuineIntel``, ``AuthenticAMD``...), or '' where not said."""
    if sys.platform.startswith("linux"):
        return _read_cpuinfo()[2] or ""
    if sys.platform == "darwin":
        return _sysctl("machdep.cpu.vendor") or ""
    return ""


def fp32_gemm_default() -> str:
    """Which GEMMs the torch encoders run fp32 with on this CPU: ``blas`` (torch's own
    Linear, MKL's sgemm on x86) or ``onednn`` (Linear layers prepacked for oneDNN).

    A fixed function of the machine, never a timing: the two paths differ by ~1e-7 per
    value, so a choice timed in each process flipped under load and made two runs of one
    input write different bytes. Measured on machines of this project's kind: on AMD EPYC
    (AVX-512, no AMX) oneDNN's prepacked GEMMs ran twice as fast as MKL, whose tuned kernels
    are dispatched on Intel CPUs only; on an Intel Xeon with AMX and avx_vnni MKL was 7-25%
    faster (separate runs). So: MKL on Intel and on non-x86 CPUs, oneDNN on other x86 CPUs."""
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
    return "onednn" if x86 and cpu_vendor() not in ("", "GenuineIntel") else "blas"


def is_arm64() -> bool:
    return platform.machine().lower() in ARM_MACHINES


def has_bf16() -> bool:
    """Native bf16 matrix units: AMX-BF16 tiles or AVX-512-BF16 (what makes bf16 autocast fast)."""
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def has_vnni(kind: str = "any") -> bool:
    """int8 dot-product instructions (VPDPBUSD).

    ``kind="avx512"``: AVX-512 VNNI (512-bit, EVEX; needs AVX-512F as well);
    ``kind="avx"``: AVX-VNNI (the 256-bit VEX encoding of Alder Lake and later, often on CPUs
    without AVX-512); ``kind="any"``: either."""
    flags = cpu_flags()
    avx512 = "avx512_vnni" in flags and "avx512f" in flags
    avx = "avx_vnni" in flags
    if kind == "avx512":
        return avx512
    if kind == "avx":
        return avx
    if kind == "any":
        return avx512 or avx
    raise ValueError(f"unknown VNNI kind {kind!r}; valid kinds: any, avx512, avx")


def int8_preset() -> str:
    """The ONNX Runtime dynamic-quantisation preset (optimum / sentence-transformers names)
    for this CPU: ``arm64``, ``avx512_vnni``, ``avx512`` or ``avx2``.

    ``avx512_vnni`` (full 8-bit weights) needs AVX-512 VNNI. A CPU with only AVX-VNNI (256-bit)
    has no AVX-512, so it gets ``avx2``: its 7-bit weights (``reduce_range``) are correct on
    every AVX2 machine, which the file may well be copied to."""
    if is_arm64():
        return "arm64"
    if has_vnni("avx512"):
        return "avx512_vnni"
    if "avx512f" in cpu_flags():
        return "avx512"
    return "avx2"


def check_cuda(device: str) -> str:
    """``device`` when it can run here: ``cpu``, or ``cuda``/``cuda:N`` with a visible GPU.

    Otherwise an OptionError (a UsageError, exit code 2) in one line with the fix. torch is
    imported only for a CUDA device."""
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch

        if not torch.cuda.is_available():
            raise OptionError(
                f"--device {device} asked for but no CUDA GPU is visible to torch "
                f"{torch.__version__}; use --device cpu (or install a CUDA build of torch)"
            )
        index = int(device[5:]) if ":" in device else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise OptionError(
                f"--device {device} asked for but torch sees {count} CUDA GPU(s) "
                f"(cuda:0..cuda:{count - 1}); use one of those or --device cpu"
            )
        return device
    raise OptionError(f"unknown device {device!r}; valid devices: cpu, cuda, cuda:N")


__all__ = ["check_cuda", "cpu_flags", "cpu_model", "has_bf16", "has_vnni", "int8_preset", "is_arm64"]
