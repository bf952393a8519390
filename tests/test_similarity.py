"""One row cosine for every parity gate (recfeat.encode.similarity.cosine_rows).

Rule: two zero rows are identical (1.0); a zero row against a non-zero row has lost the
vector (0.0); otherwise the cosine, clipped to [-1, 1]; NaN rows give NaN (fail any gate).
"""

from __future__ import annotations

import numpy as np
import pytest

from recfeat.encode.similarity import cosine_rows
from recfeat.errors import RecfeatError
from recfeat.exporters import validate
from recfeat.selection import auto_backend, compare
from recfeat.selection import backends as bb


def test_identical_opposite_orthogonal_and_scaled_rows():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [3.0, 4.0, 0.0]])
    b = np.array([[1.0, 2.0, 3.0], [-2.0, 0.0, 0.0], [5.0, 0.0, 0.0], [30.0, 40.0, 0.0]])
    np.testing.assert_allclose(cosine_rows(a, b), [1.0, -1.0, 0.0, 1.0], atol=1e-12)
    assert cosine_rows(a, a).max() <= 1.0  # clipped: rounding never gives 1.0000000002


def test_zero_rows():
    z = np.zeros((1, 4))
    v = np.array([[0.5, -1.0, 2.0, 0.0]])
    assert cosine_rows(z, z).tolist() == [1.0]  # both empty: the same vector, exactly
    assert cosine_rows(z, v).tolist() == [0.0]  # the vector was lost
    assert cosine_rows(v, z).tolist() == [0.0]  # symmetric


def test_float32_input_large_values_and_nan():
    big = np.full((1, 8), 1e200)
    assert cosine_rows(big, big) == pytest.approx([1.0])  # no overflow in the norms or the dot
    f32 = np.array([[1, 2], [3, 4]], dtype=np.float32)
    out = cosine_rows(f32, f32)
    assert out.dtype == np.float64 and out.shape == (2,)
    bad = np.array([[np.nan, 1.0]])
    assert np.isnan(cosine_rows(bad, np.ones((1, 2))))[0]


def test_shape_mismatch_is_an_error():
    with pytest.raises(RecfeatError, match="cannot compare embeddings of shapes"):
        cosine_rows(np.ones((2, 3)), np.ones((3, 3)))


def test_callers_share_the_function():
    assert compare.cosine_rows is cosine_rows


# -- the two gates agree ------------------------------------------------------------------
REF = np.vstack([np.zeros((2, 6)), np.random.default_rng(0).normal(size=(8, 6))])
SAME = REF.copy()  # zeros where the reference has zeros (empty texts), vectors elsewhere
LOST = REF.copy()
LOST[5] = 0.0  # one vector lost


def _exporter_gate(ref, cand, threshold=0.999):
    v = validate.check_step("t", "f", "fp32", ref, cand, threshold, raise_on_fail=False)
    return v.passed, v.cosine_mean


def _auto_gate(ref, cand, threshold=0.999, tmp=None):
    """choose_backend with a reference and one candidate returning fixed vectors."""
    outputs = {"torch-fp32": ref, "cand-x": cand}

    def make(name):
        class Fixed(bb.Runner):
            def __init__(self, spec, ctx):
                self.spec = spec

            def encode(self, texts):
                return outputs[name][: len(texts)]

        return Fixed

    backends = {n: bb.BackendSpec(n, bb.RECFEAT, "fake", "fp32", n, (), "pip install x", make(n))
                for n in outputs}  # fmt: skip
    ticks = iter(range(10_000))
    texts = [f"text {i}" for i in range(len(ref))]
    try:
        choice = auto_backend.choose_backend(
            "fake", texts, ["cand-x"], min_cosine=threshold, cache_dir=tmp, backends=backends,
            fingerprint={"encoder": "fake", "weights_sha256": "z"},
            clock=lambda: float(next(ticks)),
        )
    except RecfeatError:  # no candidate passed
        rows = None
    else:
        rows = {r["backend"]: r for r in choice.table}
    if rows is None:
        return False, compare.parity(ref, cand)["cosine_mean"]
    return rows["cand-x"]["passes"], rows["cand-x"]["cosine_mean"]


@pytest.mark.parametrize("cand,passes", [(SAME, True), (LOST, False)], ids=["zeros-kept", "vector-lost"])
def test_exporter_gate_and_auto_backend_gate_agree_on_zero_rows(tmp_path, cand, passes):
    ex_pass, ex_mean = _exporter_gate(REF, cand)
    auto_pass, auto_mean = _auto_gate(REF, cand, tmp=tmp_path)
    assert ex_pass is auto_pass is passes
    assert ex_mean == pytest.approx(auto_mean, abs=1e-12)
    assert validate.compare(REF, cand)["cosine_min"] == compare.parity(REF, cand)["cosine_min"]
