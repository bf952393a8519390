"""`--backend auto`: fastest backend passing the accuracy gate, with reasons and a cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recfeat.errors import RecfeatError, UsageError
from recfeat.selection import auto_backend
from recfeat.selection import backends as bb


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def fake_backends(clock, speeds, noise, installed=None, builds=None):
    """Backends whose encode takes len(texts)/speed fake seconds and adds noise to the vectors."""
    base_rng = np.random.default_rng(0)
    base = base_rng.normal(size=(1000, 16))

    def make(name):
        class Fake(bb.Runner):
            def __init__(self, spec, ctx):
                self.spec = spec
                if builds is not None:
                    builds.append(name)

            def encode(self, texts):
                clock.now += len(texts) / speeds[name]
                rng = np.random.default_rng(len(name))
                vecs = base[: len(texts)]
                return vecs + noise[name] * rng.normal(size=vecs.shape)

        return Fake

    installed = installed or {}
    return {
        name: bb.BackendSpec(name, bb.RECFEAT, "fake", "fp32", f"fake {name}",
                             installed.get(name, ()), "pip install fake-extra", make(name))
        for name in speeds
    }


TEXTS = [f"review number {i} " * (1 + i % 7) for i in range(300)]
FP = {"encoder": "fake", "weights_sha256": "abc"}


def test_fastest_passing_wins_and_faster_failing_is_rejected_with_reason(tmp_path):
    clock = Clock()
    speeds = {"torch-fp32": 100.0, "torch-bf16": 300.0, "onnx-int8": 500.0}
    noise = {"torch-fp32": 0.0, "torch-bf16": 0.001, "onnx-int8": 0.3}
    choice = auto_backend.choose_backend(
        "fake", TEXTS, list(speeds), min_cosine=0.999, cache_dir=tmp_path,
        backends=fake_backends(clock, speeds, noise), fingerprint=FP, clock=clock,
    )
    assert choice.backend == "torch-bf16"
    assert not choice.cached
    assert "3.00x torch-fp32" in choice.reason
    assert "rejected faster onnx-int8" in choice.reason and "< 0.999" in choice.reason
    rows = {r["backend"]: r for r in choice.table}
    assert rows["onnx-int8"]["passes"] is False and rows["torch-bf16"]["passes"] is True
    assert rows["torch-bf16"]["seq_per_s"] == pytest.approx(300.0)
    assert "chosen" in auto_backend.format_table(choice)


def test_second_call_is_a_cache_hit_without_measuring(tmp_path):
    clock = Clock()
    speeds = {"torch-fp32": 100.0, "onnx-fp32": 150.0}
    noise = {"torch-fp32": 0.0, "onnx-fp32": 0.0}
    builds = []
    backends = fake_backends(clock, speeds, noise, builds=builds)
    first = auto_backend.choose_backend("fake", TEXTS, list(speeds), cache_dir=tmp_path,
                                        backends=backends, fingerprint=FP, clock=clock)
    assert first.backend == "onnx-fp32" and len(builds) == 2
    cache = json.loads((tmp_path / auto_backend.CACHE_FILE).read_text())
    assert cache[first.key]["backend"] == "onnx-fp32"
    assert cache[first.key]["machine"]["cpu_model"]
    second = auto_backend.choose_backend("fake", TEXTS, list(speeds), cache_dir=tmp_path,
                                         backends=backends, fingerprint=FP, clock=clock)
    assert second.cached and second.backend == "onnx-fp32" and len(builds) == 2
    assert second.reason.startswith("cached choice from")
    # Another model (fingerprint) is measured afresh.
    auto_backend.choose_backend("fake", TEXTS, list(speeds), cache_dir=tmp_path,
                                backends=backends, fingerprint={**FP, "weights_sha256": "other"},
                                clock=clock)
    assert len(builds) == 4


def test_missing_candidate_is_skipped_with_install_hint(tmp_path):
    clock = Clock()
    speeds = {"torch-fp32": 100.0, "openvino-bf16": 900.0}
    noise = {"torch-fp32": 0.0, "openvino-bf16": 0.0}
    backends = fake_backends(clock, speeds, noise,
                             installed={"openvino-bf16": ("no_such_module_xyz",)})
    choice = auto_backend.choose_backend("fake", TEXTS, list(speeds), cache_dir=tmp_path,
                                         backends=backends, fingerprint=FP, clock=clock)
    assert choice.backend == "torch-fp32"
    skipped = {r["backend"]: r for r in choice.table}["openvino-bf16"]["skipped"]
    assert "not installed" in skipped and "pip install fake-extra" in skipped


def test_no_candidate_passing_is_an_error(tmp_path):
    clock = Clock()
    speeds = {"torch-fp32": 100.0, "onnx-int8": 500.0}
    noise = {"torch-fp32": 0.0, "onnx-int8": 1.0}
    with pytest.raises(RecfeatError, match="no candidate backend reached"):
        auto_backend.choose_backend("fake", TEXTS, ["onnx-int8"], cache_dir=tmp_path,
                                    backends=fake_backends(clock, speeds, noise),
                                    fingerprint=FP, clock=clock)


def test_unknown_candidate_lists_available(tmp_path):
    clock = Clock()
    backends = fake_backends(clock, {"torch-fp32": 1.0}, {"torch-fp32": 0.0})
    with pytest.raises(UsageError, match="unknown backend 'torch-fp33'.*Did you mean 'torch-fp32'"):
        auto_backend.choose_backend("fake", TEXTS, ["torch-fp33"], cache_dir=tmp_path,
                                    backends=backends, fingerprint=FP, clock=clock)


def test_sample_texts_spans_lengths():
    texts = ["x" * n for n in range(1, 1001)] + ["", "   "]
    sample = auto_backend.sample_texts(texts, n=50)
    lengths = sorted(len(t) for t in sample)
    assert len(sample) == 50 and lengths[0] < 30 and lengths[-1] > 970


def test_cuda_without_gpu_falls_back_to_cpu_with_a_message(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    clock = Clock()
    speeds = {"torch-fp32": 100.0, "torch-bf16": 200.0}
    noise = {"torch-fp32": 0.0, "torch-bf16": 0.0}
    messages = []
    ctx = bb.BuildContext(encoder="fake", device="cuda")
    choice = auto_backend.choose_backend("fake", TEXTS, list(speeds), cache_dir=tmp_path,
                                         backends=fake_backends(clock, speeds, noise), ctx=ctx,
                                         fingerprint=FP, clock=clock, say=messages.append)
    assert choice.backend == "torch-bf16" and ctx.device == "cpu"
    assert any("no CUDA GPU is visible" in m for m in messages)
