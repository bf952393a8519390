"""recfeat's OpenVINO encoder batches like the fast path it is (issue 26): a token budget
small enough that batches of length-sorted texts pad little and keep every THROUGHPUT
stream busy, with the same vectors as any other budget. No speed is asserted here (that is
benchmarks/bench_openvino_gap.py); what is checked is what the plan makes the model compute."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from _export_helpers import cosines, make_tiny

from recfeat.plugin.registry import get_registry

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                reason="openvino is not installed")  # fmt: skip


@pytest.fixture(scope="module")
def tiny_openvino(tmp_path_factory):
    from recfeat.exporters.pipeline import ExportSpec, run_export

    root = tmp_path_factory.mktemp("ov")
    model = make_tiny("bert", root / "model")
    run_export(ExportSpec(model=str(model), format="openvino"), root / "ov")
    return root / "ov"


def _encoder(path, **options):
    return get_registry("encoder").create("openvino", path=str(path), **options)


def test_default_budget_is_the_small_one_and_below_onnx_runtimes():
    from recfeat.exporters.runtime_onnx import OnnxEncoder
    from recfeat.exporters.runtime_openvino import BATCH_TOKENS, OpenVinoEncoder

    assert OpenVinoEncoder(path="x").batch_tokens == BATCH_TOKENS == 2048
    assert BATCH_TOKENS < OnnxEncoder(path="x").batch_tokens


def test_review_batches_pad_little_and_outnumber_the_streams(tiny_openvino, mi_review_texts):
    """On real reviews the default plan pads far less than the old 16384-token budget and
    cuts the texts into several times the batches; the vectors are the same."""
    texts = [t for t in mi_review_texts if t.strip()][:300]
    default = _encoder(tiny_openvino, precision="fp32")
    wide = _encoder(tiny_openvino, precision="fp32", batch_tokens=16384)
    got, old = default.encode(texts), wide.encode(texts)
    assert cosines(got, old).min() > 0.99999  # batching never changes what a text means
    new_stats, old_stats = default.last_stats, wide.last_stats
    assert new_stats["padding_ratio"] < 0.5 * old_stats["padding_ratio"]
    # several times the batches: enough to share among the queue's requests
    assert new_stats["batches"] >= 3 * old_stats["batches"]
    lengths = default.tokenize(texts).lengths
    for idx in default.plan.batches(lengths):
        assert len(idx) * int(lengths[idx].max()) <= 2048 or len(idx) == 1


def test_an_explicit_budget_is_kept(tiny_openvino):
    enc = _encoder(tiny_openvino, batch_tokens=64, max_batch_size=4)
    assert enc.plan.batch_tokens == 64 and enc.plan.max_batch_size == 4
    vectors = enc.encode(["short", "a somewhat longer text about a guitar strap", "ok"])
    assert vectors.shape == (3, 64) and np.isfinite(vectors).all()
