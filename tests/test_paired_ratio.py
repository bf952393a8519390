"""Issue 22: the fine-tuning benchmark's ratio of mean NDCG@10 over seeds, with a paired,
stratified bootstrap interval (recfeat.evaluation.paired.ratio_interval); and the hf
encoder reading a sentence-transformers folder's Normalize module from untrusted JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recfeat.encode.hf_models import declares_normalize
from recfeat.evaluation.paired import ratio_interval


def test_uniform_gain_gives_a_tight_interval_at_the_gain():
    rng = np.random.default_rng(0)
    ref = [rng.random(300), rng.random(250), rng.random(280)]
    up = ratio_interval(ref, [r * 1.2 for r in ref])
    assert up.ratio == pytest.approx(1.2) and up.low == pytest.approx(1.2)
    assert up.high == pytest.approx(1.2) and up.strata == 3 and up.units == 830
    same = ratio_interval(ref, [r.copy() for r in ref])
    assert same.ratio == same.low == same.high == 1.0


def test_noise_widens_the_interval_around_the_point_and_strata_average_means():
    rng = np.random.default_rng(1)
    ref = [(rng.random(400) < 0.1).astype(float) for _ in range(3)]
    cand = [(rng.random(400) < 0.12).astype(float) for _ in range(3)]
    found = ratio_interval(ref, cand)
    assert found.low < found.ratio < found.high
    expected = np.mean([c.mean() for c in cand]) / np.mean([r.mean() for r in ref])
    assert found.ratio == pytest.approx(expected)
    # a single array is one stratum
    one = ratio_interval(ref[0], cand[0])
    assert one.strata == 1 and one.ratio == pytest.approx(cand[0].mean() / ref[0].mean())


def test_unpaired_or_degenerate_inputs_give_none():
    a = np.ones(10)
    assert ratio_interval([a], [np.ones(9)]) is None  # not the same users
    assert ratio_interval([a, a], [a]) is None  # not the same seeds
    assert ratio_interval([np.zeros(10)], [a]) is None  # reference zero: no ratio
    assert ratio_interval([np.ones(1)], [np.ones(1)]) is None  # nothing to resample


@pytest.mark.parametrize(
    "content, expected",
    [
        ([{"type": "sentence_transformers.models.Transformer"},
          {"type": "sentence_transformers.models.Normalize"}], True),
        ([{"type": "sentence_transformers.models.Pooling"}], False),
        ({"type": "sentence_transformers.models.Normalize"}, False),  # not a list
        (["Normalize"], False),  # entries must be objects
        ("x" * 70_000, False),  # over the size cap: not read
    ],
)
def test_modules_json_is_read_as_untrusted_data(tmp_path, content, expected):
    (tmp_path / "modules.json").write_text(json.dumps(content))
    assert declares_normalize(tmp_path) is expected


def test_missing_or_broken_modules_json_means_no(tmp_path):
    assert declares_normalize(tmp_path) is False
    (tmp_path / "modules.json").write_bytes(b"\xff\xfe not json")
    assert declares_normalize(tmp_path) is False
    (tmp_path / "modules.json").unlink()
    (tmp_path / "modules.json").mkdir()
    assert declares_normalize(tmp_path) is False
