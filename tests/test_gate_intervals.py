"""Issue 12: the downstream gate judges a metric's drop with its paired-bootstrap interval.

On a few hundred cold-start test users NDCG@10 moves by more than 1% with sampling noise, so
the gate asks for the drop to be *shown* within --max-drop (the interval's upper end), not
only for the point estimate to land there. Synthetic per-user scores pin the rule; one real
split checks that the evaluation keeps the per-user scores the mean is made of.
"""

from __future__ import annotations

import numpy as np
import pytest

from recfeat.evaluation.paired import drop_interval
from recfeat.selection import gate


def _row(name, metrics, units, cos=0.999):
    return {"backend": name, "seq_per_s": 100.0, "cosine_mean": cos,
            "metrics": gate.Scores(metrics, units)}  # fmt: skip


def test_identical_units_give_a_zero_interval_and_a_uniform_loss_a_tight_one():
    rng = np.random.default_rng(0)
    ref = rng.random(400)
    same = drop_interval("content ndcg@10", ref, ref.copy(), lower_is_better=False)
    assert same.drop == 0 and same.low == 0 and same.high == 0 and same.units == 400
    worse = drop_interval("content ndcg@10", ref, ref * 0.95, lower_is_better=False)
    # every user lost 5%: the relative drop is 5% in every resample
    assert worse.drop == pytest.approx(0.05) and worse.low == pytest.approx(0.05)
    assert worse.high == pytest.approx(0.05)
    better = drop_interval("content ndcg@10", ref, ref * 1.02, lower_is_better=False)
    assert better.drop == pytest.approx(-0.02) and better.high < 0


def test_noisy_units_give_an_interval_around_the_point_that_narrows_with_more_users():
    rng = np.random.default_rng(1)

    def width(n):
        ref = (rng.random(n) < 0.1).astype(float)  # hit or miss per user, like NDCG@10
        flip = rng.random(n) < 0.05  # a perturbation flips 5% of the users either way
        cand = np.where(flip, 1 - ref, ref)
        iv = drop_interval("content ndcg@10", ref, cand, lower_is_better=False)
        assert iv.low <= iv.drop <= iv.high
        return iv.high - iv.low

    assert width(4000) < width(250) / 2


def test_rmse_pairs_resample_true_and_predicted_ratings_together():
    rng = np.random.default_rng(2)
    true = rng.integers(1, 6, 600).astype(float)
    ref = true + rng.normal(0, 1.0, 600)
    cand = true + rng.normal(0, 1.3, 600)  # clearly worse predictions
    iv = drop_interval("ridge rmse", (true, ref), (true, cand), lower_is_better=True)
    rmse = lambda p: np.sqrt(np.mean((true - p) ** 2))  # noqa: E731
    assert iv.drop == pytest.approx(rmse(cand) / rmse(ref) - 1)
    assert iv.low > 0.1  # higher RMSE is a drop, and this one is beyond doubt
    # Different test pairs cannot be paired, nor can different lengths.
    assert drop_interval("ridge rmse", (true, ref), (true[::-1], cand), lower_is_better=True) is None
    assert drop_interval("content ndcg@10", ref, cand[:-1], lower_is_better=False) is None
    assert drop_interval("ridge r2", (true, ref), (true, cand), lower_is_better=False) is None


def test_judge_passes_a_drop_shown_within_max_drop_and_rejects_one_only_noise_allows():
    rng = np.random.default_rng(3)
    n = 300
    ref_units = (rng.random(n) < 0.2).astype(float)
    noisy = ref_units + rng.normal(0, 0.3, n)  # no loss on average, a lot of noise per user
    ref = _row("torch-fp32", {"content ndcg@10": ref_units.mean()}, {"content ndcg@10": ref_units}, 1.0)
    close = _row("openvino-bf16", {"content ndcg@10": ref_units.mean()},
                 {"content ndcg@10": ref_units.copy()})  # fmt: skip
    shaky = _row("openvino-int8", {"content ndcg@10": noisy.mean()}, {"content ndcg@10": noisy})
    rows = [ref, close, shaky]
    gate.judge(rows, "torch-fp32", min_cosine=0.99, max_drop=0.01)
    assert ref["passes"] and ref["intervals"] == {}
    assert close["passes"] and close["intervals"]["content ndcg@10"]["high"] == 0
    assert not shaky["passes"]
    (why,) = shaky["why"]
    iv = shaky["intervals"]["content ndcg@10"]
    assert iv["high"] > 0.01 and "95% CI" in why and f"over {n} test units" in why
    if iv["low"] <= 0.01:
        assert why.startswith("content ndcg@10 not shown within max-drop 1%")
    # The same measurements without units (a cached table) fall back to the point rule.
    plain = [{**r, "metrics": dict(r["metrics"])} for r in rows]
    gate.judge(plain, "torch-fp32", min_cosine=0.99, max_drop=0.01)
    point = (ref_units.mean() - noisy.mean()) / ref_units.mean()
    assert plain[2]["passes"] == (point <= 0.01) and plain[2]["intervals"] == {}


def test_a_drop_beyond_max_drop_with_certainty_says_dropped_and_its_interval():
    ref_units = np.linspace(0.1, 1.0, 200)
    ref = _row("torch-fp32", {"content ndcg@10": ref_units.mean()}, {"content ndcg@10": ref_units}, 1.0)
    bad = _row("x", {"content ndcg@10": (ref_units * 0.9).mean()}, {"content ndcg@10": ref_units * 0.9})
    gate.judge([ref, bad], "torch-fp32", min_cosine=0.99, max_drop=0.01)
    assert bad["why"][0].startswith("content ndcg@10 dropped 10.00% > max-drop 1%")
    assert "95% CI +10.00% .. +10.00%" in bad["why"][0]


def test_the_gate_keeps_per_user_scores_whose_mean_is_the_metric(musical_instruments):
    from recfeat.components.dataset import load_dataset

    data = load_dataset(str(musical_instruments), "amazon")
    g = gate.task_gate(data, limit=1500, seed=0)
    vectors = np.random.default_rng(0).normal(size=(len(g.texts), 16)).astype(np.float32)
    scores = g.score(vectors)
    per_user = scores.units["content ndcg@10"]
    assert per_user.ndim == 1 and len(per_user) > 10
    assert per_user.mean() == pytest.approx(scores["content ndcg@10"])
    true, pred = scores.units["ridge rmse"]
    assert np.sqrt(np.mean((true - pred) ** 2)) == pytest.approx(scores["ridge rmse"])
    # Scored twice, the same users in the same order: the pair's interval is exactly zero.
    again = g.score(vectors)
    iv = drop_interval("content ndcg@10", per_user, again.units["content ndcg@10"],
                       lower_is_better=False)  # fmt: skip
    assert (iv.low, iv.high) == (0, 0)


def test_the_cli_default_sample_is_the_gates():
    from recfeat.cli.params import GATE_INTERACTIONS_DEFAULT

    assert GATE_INTERACTIONS_DEFAULT == gate.GATE_INTERACTIONS


@pytest.mark.parametrize("command", [["bench", "throughput", "--out", "x"], ["extract", "sample", "--out", "x.parquet"],
                                     ["export", "--out", "x"]])  # fmt: skip
def test_gate_interactions_is_checked_when_the_command_line_is_read(command):
    from click.testing import CliRunner

    from recfeat.cli.main import cli

    result = CliRunner().invoke(cli, [*command, "--gate-interactions", "10"])
    assert result.exit_code == 2 and "--gate-interactions" in result.output
