"""The harness's logic: timing loop, statistics, memory estimate, ratios and report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recfeat.bench import measure as benchmarking
from recfeat.bench import report as bench_report
from recfeat.bench import suite as bench_suite
from recfeat.errors import OptionError, UsageError
from recfeat.selection import compare, timing


class FakeClock:
    """A clock that only moves when the fake workload says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_time_calls_excludes_warmup_and_times_each_call():
    clock = FakeClock()
    durations = iter([100.0, 50.0, 1.0, 2.0, 3.0, 4.0])  # two slow warm-up calls first
    calls = []

    def work():
        d = next(durations)
        calls.append(d)
        clock.now += d
        return d

    latencies, last = timing.time_calls(work, warmup=2, repeats=4, clock=clock)
    assert latencies == [1.0, 2.0, 3.0, 4.0]
    assert last == 4.0
    assert len(calls) == 6


def test_time_calls_runs_sync_inside_the_timed_region():
    clock = FakeClock()
    events = []

    def work():
        events.append("call")

    def sync():
        events.append("sync")
        clock.now += 0.5  # device work finishing counts in the latency

    latencies, _ = timing.time_calls(work, warmup=0, repeats=2, clock=clock, sync=sync)
    assert latencies == [0.5, 0.5]
    assert events == ["sync", "call", "sync", "call", "sync"]


def test_time_calls_rejects_bad_counts():
    with pytest.raises(OptionError, match="repeats"):
        timing.time_calls(lambda: None, repeats=0)
    with pytest.raises(OptionError, match="warm-up"):
        timing.time_calls(lambda: None, warmup=-1)


@pytest.mark.parametrize("q", [0, 5, 50, 90, 95, 100])
def test_percentile_matches_numpy(q):
    values = [3.0, 1.0, 7.0, 2.0, 10.0, 4.5, 6.0]
    assert benchmarking.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_latency_stats_and_measurement_rates():
    stats = benchmarking.LatencyStats.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats.median_s == 3.0
    assert stats.p95_s == pytest.approx(np.percentile([1, 2, 3, 4, 100], 95))
    assert stats.mean_s == pytest.approx(22.0)
    m = benchmarking.Measurement([1.0, 2.0, 3.0, 4.0, 100.0], stats, sequences=30, tokens=3000)
    assert m.seq_per_s == pytest.approx(10.0)  # from the median call: the outlier does not count
    assert m.tokens_per_s == pytest.approx(1000.0)
    row = m.as_row()
    assert row["median_ms"] == pytest.approx(3000.0) and row["latencies_ms"][-1] == 100000.0


def test_measure_records_peak_memory_of_the_workload():
    def allocate():
        return np.ones(40 * 2**20 // 8)  # 40 MiB, touched

    m = benchmarking.measure(allocate, sequences=1, tokens=1, warmup=0, repeats=1)
    assert m.peak_rss_mb is not None and m.peak_rss_mb > 40
    assert m.peak_gpu_mb is None


def test_memory_estimate_and_refusal():
    est = benchmarking.estimate_memory_bytes(batch=2, seq=8, hidden=4, layers=3, heads=2,
                                             bytes_per_value=4, weights_bytes=100, factor=4)
    assert est == 100 + 2 * 8 * 4 * 3 * 4 * 4 + 2 * 2 * 2 * 8 * 8 * 4
    benchmarking.check_fits(10, device="cpu", what="x", available=11)
    with pytest.raises(OptionError, match=r"needs about .* GiB but only .* GiB of RAM"):
        benchmarking.check_fits(2**33, device="cpu", what="batch 1 x seq 1", available=2**30)


def test_check_grid_refuses_long_sequences_and_huge_grids():
    shape = {"hidden": 384, "layers": 6, "heads": 12, "vocab": 30522, "max_positions": 512,
             "params_estimate": 22_000_000}
    with pytest.raises(OptionError, match="512 positions"):
        bench_suite.check_grid(shape, [1], [1024], device="cpu")
    with pytest.raises(OptionError, match="batch 100000 x seq 512"):
        bench_suite.check_grid(shape, [1, 100000], [512], device="cpu", available=8 * 2**30)
    bench_suite.check_grid(shape, [1, 32], [128], device="cpu", available=8 * 2**30)


def test_environment_names_cpu_flags_and_versions():
    env = benchmarking.capture_environment(threads=2)
    assert env["cpu_model"] and env["cpu_count"] >= 1
    assert set(env["cpu_flags"]) <= set(timing.CPU_FLAGS_OF_INTEREST)
    assert env["libraries"]["numpy"] == np.__version__
    assert env["threads"] == 2 and env["date"]


def test_synthetic_batch_is_exact_and_deterministic():
    ids, mask = bench_suite.synthetic_batch(4, 16, vocab=30522)
    assert ids.shape == mask.shape == (4, 16) and mask.all()
    assert ids.min() >= 1000 and ids.max() < 30522
    again, _ = bench_suite.synthetic_batch(4, 16, vocab=30522)
    assert (ids == again).all()


def test_cosine_rows_and_parity():
    a = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    b = np.array([[2.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    assert bench_suite.cosine_rows(a, b) == pytest.approx([1.0, np.sqrt(0.5)])
    p = compare.parity(a, b)
    assert p["cosine_min"] == pytest.approx(np.sqrt(0.5))
    assert compare.parity(None, b) == {"cosine_mean": None, "cosine_min": None}


def test_peer_ratios_match_workloads():
    rows = [
        {"backend": "torch-bf16", "kind": "recfeat", "workload": "fixed", "batch": 8, "seq": 32, "seq_per_s": 300.0},
        {"backend": "torch-bf16", "kind": "recfeat", "workload": "corpus", "seq_per_s": 90.0},
        {"backend": "st-torch", "kind": "peer", "workload": "fixed", "batch": 8, "seq": 32, "seq_per_s": 100.0},
        {"backend": "st-torch", "kind": "peer", "workload": "fixed", "batch": 1, "seq": 32, "seq_per_s": 7.0},
        {"backend": "st-torch", "kind": "peer", "workload": "corpus", "seq_per_s": 30.0},
    ]
    bench_suite.add_peer_ratios(rows)
    assert rows[0]["vs_peers"] == {"st-torch": pytest.approx(3.0)}
    assert rows[1]["vs_peers"] == {"st-torch": pytest.approx(3.0)}
    assert "vs_peers" not in rows[2]


def test_drops_are_flagged_in_the_right_direction():
    rows = [
        {"backend": "torch-fp32", "model": "m", "metrics": {"ndcg@10": 0.50, "rmse": 1.00}},
        {"backend": "onnx-int8", "model": "m", "metrics": {"ndcg@10": 0.49, "rmse": 1.001}},
        {"backend": "torch-bf16", "model": "m", "metrics": {"ndcg@10": 0.499, "rmse": 1.02}},
    ]
    bench_suite.flag_drops(rows, "torch-fp32", max_drop=0.01)
    assert rows[0]["flagged"] is False and rows[0]["worst_drop"] == 0.0
    assert rows[1]["worst_drop"] == pytest.approx(0.02) and rows[1]["flagged"]
    assert rows[2]["drops"]["rmse"] == pytest.approx(0.02) and rows[2]["flagged"]  # higher RMSE is worse


def _results(**extra):
    rows = [
        {"backend": b, "kind": k, "workload": "fixed", "batch": bt, "seq": 16, "median_ms": 10.0,
         "p95_ms": 12.0, "seq_per_s": s, "tokens_per_s": s * 16, "peak_rss_mb": 500.0,
         "cosine_mean": 1.0, "cosine_min": 0.99}
        for b, k, bt, s in [("torch-fp32", "recfeat", 2, 50.0), ("torch-fp32", "recfeat", 8, 80.0),
                            ("st-torch", "peer", 2, 25.0), ("st-torch", "peer", 8, 40.0)]
    ]
    rows.append({"backend": "torch-fp32", "kind": "recfeat", "workload": "corpus",
                 "batching": "token budget 16384", "seq_per_s": 70.0, "median_ms": 1.0})
    bench_suite.add_peer_ratios(rows)
    return {"mode": "throughput", "encoder": "minilm", "command": "recfeat bench throughput",
            "environment": benchmarking.capture_environment(), "rows": rows, "failed": [],
            "corpus": {"name": "reviews", "texts": 10, "mean_tokens": 12.0},
            "reference": "torch-fp32", **extra}


def test_report_writes_json_markdown_and_pngs(tmp_path):
    out = bench_report.write_report(tmp_path / "r", _results(random_weights=True))
    data = json.loads((out / "results.json").read_text())
    assert data["marker"] == bench_report.MARKER and len(data["rows"]) == 5
    md = (out / "results.md").read_text()
    assert "random weights" in md and "x vs st-torch" in md and "| 2.00 |" in md
    for png in ("throughput_fixed.png", "throughput_corpus.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_refuses_existing_and_foreign_folders(tmp_path):
    out = bench_report.write_report(tmp_path / "r", _results())
    with pytest.raises(UsageError, match="already exists; pass --force"):
        bench_report.write_report(out, _results())
    bench_report.write_report(out, _results(notes=["second run"]), force=True)
    assert "second run" in (out / "results.md").read_text()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    with pytest.raises(UsageError, match="not from a recfeat benchmark run"):
        bench_report.write_report(foreign, _results(), force=True)
    assert (foreign / "thesis.txt").read_text() == "precious"


def test_accuracy_report_has_pareto_plot(tmp_path):
    rows = [
        {"backend": "torch-fp32", "model": "m", "seq_per_s": 10.0, "cosine_mean": 1.0, "metrics": {"ndcg@10": 0.5}},
        {"backend": "onnx-int8", "model": "m", "seq_per_s": 30.0, "cosine_mean": 0.99, "metrics": {"ndcg@10": 0.45}},
    ]
    bench_suite.flag_drops(rows, "torch-fp32", 0.01)
    res = {"mode": "accuracy", "encoder": "minilm", "rows": rows, "failed": [],
           "reference": "torch-fp32", "max_drop": 0.01, "split": "item-cold",
           "pareto_metric": "ndcg@10", "environment": {}}
    out = bench_report.write_report(tmp_path / "acc", res)
    assert (out / "pareto.png").stat().st_size > 1000
    assert "DROP > max" in (out / "results.md").read_text()


def test_pareto_front():
    pts = [(10, 0.9), (20, 0.8), (5, 0.95), (15, 0.7), (20, 0.85)]
    assert bench_report.pareto_front(pts) == [2, 0, 4]
