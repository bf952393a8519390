"""`recfeat bench`: bad input gets one clear line; a real smoke run writes a whole report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from recfeat.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, ["bench", *args])


def test_unknown_backend_lists_available_and_install_hints(tmp_path):
    res = run("throughput", "--backends", "torch-fp32,onnx-int9", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert "unknown backend 'onnx-int9'" in res.output and "Did you mean 'onnx-int8'" in res.output
    assert "Available backends: torch-fp32" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_missing_backend_names_the_install(tmp_path, monkeypatch):
    from recfeat.bench import backends as bb
    from recfeat.selection import backends as sb

    spec = bb.BACKENDS["openvino-bf16"]
    monkeypatch.setitem(bb.BACKENDS, "openvino-bf16",
                        sb.BackendSpec(**{**spec.__dict__, "modules": ("no_such_module_xyz",)}))
    res = run("throughput", "--backends", "openvino-bf16", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert "needs no_such_module_xyz" in res.output
    assert "pip install 'recfeat[onnx,openvino]'" in res.output


def test_peer_in_backends_is_refused(tmp_path):
    res = run("throughput", "--backends", "st-torch", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "put it in --peers" in res.output


def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    res = run("throughput", "--device", "cuda", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert "no CUDA GPU is visible" in res.output and "--device cpu" in res.output


def test_fp16_on_cpu_is_refused(tmp_path):
    res = run("throughput", "--backends", "torch-fp16", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "runs on cuda, not cpu" in res.output


def test_grid_too_big_for_memory_is_refused_with_estimate(tmp_path):
    res = run("throughput", "--backends", "torch-fp32", "--peers", "none",
              "--batch-sizes", "1,2000000", "--seq-lens", "256", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert "batch 2000000 x seq 256" in res.output and "GiB but only" in res.output
    assert not (tmp_path / "o").exists()


def test_seq_len_past_model_positions_is_refused(tmp_path):
    res = run("throughput", "--backends", "torch-fp32", "--peers", "none", "--seq-lens", "4096",
              "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "512 positions" in res.output


def test_bad_lists_and_options(tmp_path):
    res = run("throughput", "--batch-sizes", "8,x", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "comma-separated integers" in res.output
    res = run("throughput", "--no-fixed", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "--no-fixed leaves nothing" in res.output
    res = run("accuracy", "x.csv", "--max-drop", "lots", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "--max-drop must look like 1%" in res.output


def test_existing_out_folder_is_refused_before_any_work(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    res = run("throughput", "--out", str(out))
    assert res.exit_code == 2 and "already exists; pass --force" in res.output
    res = run("throughput", "--out", str(out), "--force")
    assert res.exit_code == 2 and "not from a recfeat benchmark run" in res.output
    assert (out / "notes.txt").read_text() == "keep me"


# -- the default backends: every recfeat path that can run here ------------------------------
def test_default_backends_are_every_recfeat_path_but_the_slow_static_int8(monkeypatch):
    """As the peers default to every installed peer, the recfeat paths default to every one
    installed for the device (OpenVINO, its fastest, among them), the calibrated
    onnx-int8-static left out (slow to export and to run); the same paths --backend auto
    chooses among."""
    import recfeat.machine
    from recfeat.bench import backends as bb
    from recfeat.bench.runs import DEFAULT_CPU_BACKENDS, default_backends
    from recfeat.selection import backends as sb
    from recfeat.selection.auto_backend import DEFAULT_CANDIDATES

    monkeypatch.setattr(recfeat.machine, "has_bf16", lambda: True)
    cpu_paths = [s.name for s in sb.BACKENDS.values() if "cpu" in s.devices]
    assert set(DEFAULT_CPU_BACKENDS.split(",")) == set(cpu_paths) - {"onnx-int8-static"}
    assert set(DEFAULT_CPU_BACKENDS.split(",")) == set(DEFAULT_CANDIDATES)
    got = default_backends("cpu").split(",")
    assert got == [n for n in DEFAULT_CPU_BACKENDS.split(",") if bb.BACKENDS[n].available]
    if bb.BACKENDS["openvino-int8"].available:
        assert {"openvino-fp32", "openvino-bf16", "openvino-int8"} <= set(got)
    assert default_backends("cuda:1") == "torch-fp32,torch-bf16,torch-fp16"


def test_default_backends_leave_out_what_this_machine_or_run_cannot_do(monkeypatch):
    """bf16 only where the CPU has bf16 units (elsewhere torch emulates it and OpenVINO runs
    f32), openvino-int8 only with a corpus to calibrate on, and only installed paths."""
    import recfeat.machine
    from recfeat.bench import backends as bb
    from recfeat.bench.runs import DEFAULT_CPU_BACKENDS, default_backends
    from recfeat.selection import backends as sb

    monkeypatch.setattr(recfeat.machine, "has_bf16", lambda: False)
    got = default_backends("cpu").split(",")
    assert "torch-bf16" not in got and "openvino-bf16" not in got and "torch-fp32" in got
    assert default_backends("cuda").split(",") == ["torch-fp32", "torch-bf16", "torch-fp16"]
    monkeypatch.setattr(recfeat.machine, "has_bf16", lambda: True)
    assert "openvino-int8" not in default_backends("cpu", corpus=False).split(",")
    assert "torch-bf16" in default_backends("cpu", corpus=False).split(",")
    spec = bb.BACKENDS["onnx-fp32"]
    monkeypatch.setitem(bb.BACKENDS, "onnx-fp32",
                        sb.BackendSpec(**{**spec.__dict__, "modules": ("no_such_module_xyz",)}))
    got = default_backends("cpu").split(",")
    assert "onnx-fp32" not in got and len(got) < len(DEFAULT_CPU_BACKENDS.split(","))


def test_throughput_without_backends_runs_the_defaults(tmp_path, monkeypatch):
    """No --backends: the run gets default_backends (no corpus, so no calibrated path)."""
    import recfeat
    import recfeat.machine
    from recfeat.bench import suite as bench_suite
    from recfeat.bench.runs import default_backends

    class Captured(Exception):
        pass

    def capture(**kwargs):
        raise Captured([s.name for s in kwargs["backends"]])

    monkeypatch.setattr(recfeat.machine, "has_bf16", lambda: True)
    monkeypatch.setattr(bench_suite, "run_throughput", capture)
    with pytest.raises(Captured) as got:
        recfeat.bench_throughput_report(tmp_path / "o", peers="none")
    assert got.value.args[0] == default_backends("cpu", corpus=False).split(",")
    assert "openvino-int8" not in got.value.args[0]


def test_help_names_the_default_backends():
    from recfeat.bench.runs import DEFAULT_CPU_BACKENDS

    res = CliRunner().invoke(cli, ["bench", "throughput", "--help"], terminal_width=400,
                             max_content_width=400)  # no line breaks inside the names
    assert res.exit_code == 0
    assert "openvino-bf16" in res.output and "onnx-int8-static" in res.output
    assert DEFAULT_CPU_BACKENDS.split(",")[-1] in res.output


def test_backends_listing():
    res = run("backends")
    assert res.exit_code == 0
    assert "torch-bf16" in res.output and "st-onnx-qint8" in res.output


@pytest.mark.slow
def test_smoke_run_writes_report(tmp_path, musical_instruments, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))  # the peer's model copy
    out = tmp_path / "smoke"
    res = run("throughput", "--encoder", "minilm", "--backends", "torch-fp32,torch-bf16",
              "--peers", "st-torch", "--batch-sizes", "2", "--seq-lens", "16", "--repeats", "1",
              "--data", str(musical_instruments), "--limit", "12", "--out", str(out),
              "--ceiling-size", "128", "--no-gate")  # ceilings / gate: tests/test_bench_peers.py
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert data["failed"] == []
    rows = {(r["backend"], r["workload"]): r for r in data["rows"]}
    assert set(rows) == {(b, w) for b in ("torch-fp32", "torch-bf16", "st-torch")
                         for w in ("fixed", "corpus")}
    assert rows[("torch-fp32", "fixed")]["cosine_mean"] == pytest.approx(1.0)
    # Same model and texts: the peer's vectors match recfeat fp32 and bf16 stays close.
    assert rows[("st-torch", "corpus")]["cosine_mean"] > 0.9999
    assert rows[("torch-bf16", "corpus")]["cosine_mean"] > 0.99
    assert "st-torch" in rows[("torch-bf16", "corpus")]["vs_peers"]
    assert data["corpus"]["texts"] == 12 and data["random_weights"] is False
    assert data["environment"]["libraries"]["torch"]
    assert (out / "throughput_fixed.png").exists() and (out / "throughput_corpus.png").exists()
    assert "x vs st-torch" in (out / "results.md").read_text()


def _hashed_vectors(texts, dim=64):
    """A cheap deterministic text embedding (hashed words) standing in for a real encoder."""
    import zlib

    import numpy as np

    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, zlib.crc32(word.encode()) % dim] += 1.0
    return out


def test_accuracy_run_flags_a_backend_that_hurts_downstream(tmp_path, musical_instruments):
    import numpy as np

    from recfeat.bench import accuracy as bench_accuracy
    from recfeat.bench import report as bench_report
    from recfeat.selection import backends as bb

    def make(noise):
        class Hashed(bb.Runner):
            def __init__(self, spec, ctx):
                self.spec = spec

            def encode(self, texts):
                vecs = _hashed_vectors(texts)
                rng = np.random.default_rng(1)
                return vecs + noise * rng.normal(size=vecs.shape).astype(np.float32)

        return Hashed

    specs = [bb.BackendSpec(name, bb.RECFEAT, "fake", "fp32", name, (), "-", make(noise))
             for name, noise in (("torch-fp32", 0.0), ("exact-copy", 0.0), ("noisy", 50.0))]
    res = bench_accuracy.run_accuracy(
        data=str(musical_instruments), fmt="auto", encoder="minilm", backends=specs,
        models=["content"], split="item-cold", max_drop=0.01, limit=600,
    )
    rows = {r["backend"]: r for r in res["rows"]}
    assert rows["exact-copy"]["cosine_mean"] == pytest.approx(1.0)
    assert rows["exact-copy"]["flagged"] is False
    assert rows["noisy"]["cosine_mean"] < 0.5
    assert rows["noisy"]["flagged"] is True and rows["noisy"]["worst_drop"] > 0.01
    assert set(rows["torch-fp32"]["metrics"]) >= {"ndcg@10", "recall@10"}
    out = bench_report.write_report(tmp_path / "acc", res)
    assert (out / "pareto.png").exists()
    assert "DROP > max" in (out / "results.md").read_text()
