"""recfeat.machine: CPU flags, the int8 preset they imply, and the CUDA check."""

from __future__ import annotations

import pytest

from recfeat import machine
from recfeat.errors import OptionError, UsageError

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Test CPU @ 2.00GHz
flags\t\t: fpu sse2 avx2 {extra}

processor\t: 1
model name\t: Test CPU @ 2.00GHz
flags\t\t: fpu sse2
"""


@pytest.fixture
def cpu(tmp_path, monkeypatch):
    """Pretend to be a Linux x86 machine whose /proc/cpuinfo lists the given extra flags."""

    def make(extra: str = "", arch: str = "x86_64"):
        path = tmp_path / "cpuinfo"
        path.write_text(CPUINFO.format(extra=extra))
        monkeypatch.setattr(machine, "CPUINFO", path)
        monkeypatch.setattr(machine.sys, "platform", "linux")
        monkeypatch.setattr(machine.platform, "machine", lambda: arch)
        machine.cpu_flags.cache_clear()
        machine.cpu_model.cache_clear()

    yield make
    machine.cpu_flags.cache_clear()
    machine.cpu_model.cache_clear()


def test_flags_are_the_first_cpus_and_cached(cpu, tmp_path):
    cpu("avx512f avx512_vnni")
    assert machine.cpu_flags() == frozenset({"fpu", "sse2", "avx2", "avx512f", "avx512_vnni"})
    assert machine.cpu_model() == "Test CPU @ 2.00GHz"
    (tmp_path / "cpuinfo").write_text("flags : nothing\n")
    assert "avx2" in machine.cpu_flags()  # cached for the process


@pytest.mark.parametrize(
    "extra,arch,preset",
    [
        ("", "x86_64", "avx2"),
        ("avx512f", "x86_64", "avx512"),
        ("avx512f avx512_vnni", "x86_64", "avx512_vnni"),
        # AVX-VNNI is the 256-bit VEX form: no AVX-512 here, so not the avx512_vnni preset
        ("avx_vnni", "x86_64", "avx2"),
        ("avx512f avx_vnni", "x86_64", "avx512"),
        ("", "aarch64", "arm64"),
    ],
)
def test_int8_preset(cpu, extra, arch, preset):
    cpu(extra, arch)
    assert machine.int8_preset() == preset


def test_quantize_uses_the_same_preset(cpu):
    from recfeat.exporters import quantize

    cpu("avx_vnni")
    assert quantize.detect_preset() == "avx2"
    assert quantize.check_preset(None).reduce_range


def test_vnni_kinds_and_bf16(cpu):
    cpu("avx_vnni")
    assert machine.has_vnni() and machine.has_vnni("avx") and not machine.has_vnni("avx512")
    assert not machine.has_bf16()
    cpu("avx512f avx512_vnni amx_bf16")
    assert machine.has_vnni("avx512") and not machine.has_vnni("avx") and machine.has_bf16()
    with pytest.raises(ValueError, match="unknown VNNI kind"):
        machine.has_vnni("sse")


def test_unreadable_cpuinfo_means_no_flags(cpu, monkeypatch, tmp_path):
    cpu()
    monkeypatch.setattr(machine, "CPUINFO", tmp_path / "missing")
    machine.cpu_flags.cache_clear()
    assert machine.cpu_flags() == frozenset() and machine.int8_preset() == "avx2"


def test_cpu_identity_reads_flags_from_machine(cpu):
    from recfeat.selection.timing import cpu_identity

    cpu("avx512f avx512_bf16 sse4_2")
    ident = cpu_identity()
    assert ident["cpu_model"] == "Test CPU @ 2.00GHz"
    assert ident["cpu_flags"] == ["avx2", "avx512_bf16", "avx512f"]  # those of interest, sorted


def test_check_cuda(monkeypatch):
    import torch

    assert machine.check_cuda("cpu") == "cpu"
    for bad in ("tpu", "cuda:x", "cuda:", "gpu"):
        with pytest.raises(OptionError, match="valid devices: cpu, cuda, cuda:N"):
            machine.check_cuda(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="no CUDA GPU is visible.*--device cpu"):
        machine.check_cuda("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert machine.check_cuda("cuda") == "cuda" and machine.check_cuda("cuda:0") == "cuda:0"
    with pytest.raises(OptionError, match="sees 1 CUDA GPU"):
        machine.check_cuda("cuda:1")
