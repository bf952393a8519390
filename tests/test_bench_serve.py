"""The pure parts of benchmarks/bench_serve.py: percentiles and summaries of load samples,
the soak memory comparison, the issue-14 target checks, the report, and the helpers that cut
texts and read /metrics. No server is started and nothing is timed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import bench_serve  # noqa: E402
from benchmarks.serve import loadgen, servers  # noqa: E402
from benchmarks.serve import report as rep  # noqa: E402
from benchmarks.serve.loadgen import LoadRun, Sample  # noqa: E402

MB = 1024 * 1024


def run_of(samples, concurrency=1, rss=(), client_cpu=0.5, server_cpu=1.5):
    return LoadRun(concurrency=concurrency, max_requests=len(samples), time_limit_s=60.0,
                   samples=list(samples), client_cpu_s=client_cpu, server_cpu_s=server_cpu,
                   rss=list(rss), stopped_by="count")  # fmt: skip


def ok(start, ms, status="200", tokens=10):
    return Sample(start, start + ms / 1e3, status, 1, tokens if status == "200" else None)


def test_latency_percentiles_use_answered_requests_only():
    samples = [ok(i, ms) for i, ms in enumerate(range(1, 101))]  # 1..100 ms
    samples.append(ok(200, 10_000, status="503"))  # a failure must not move the percentiles
    assert rep.latency_ms(samples, 50) == pytest.approx(50.5)
    assert rep.latency_ms(samples, 99) == pytest.approx(99.01)
    assert rep.latency_ms([ok(0, 5, status="429")], 50) is None


def test_summarize_counts_statuses_failures_and_throughput():
    samples = [ok(0.0, 1000), ok(1.0, 1000), ok(2.0, 1000), ok(3.0, 500, "429"),
               ok(3.0, 500, "error:ConnectionResetError"), ok(3.5, 500, "bad-body")]  # fmt: skip
    row = rep.summarize(run_of(samples, concurrency=8, rss=[(0, 0, 100 * MB), (1, 3, 120 * MB)]))
    assert row["requests"] == 6 and row["ok"] == 3
    assert row["statuses"] == {"200": 3, "429": 1, "bad-body": 1, "error:ConnectionResetError": 1}
    assert row["designed_refusals"] == 1
    assert row["failures"] == 2  # the reset and the bad body, not the 429
    assert row["span_s"] == pytest.approx(4.0)  # first start 0.0 -> last end 4.0
    assert row["req_per_s"] == pytest.approx(0.75) and row["texts_per_s"] == pytest.approx(0.75)
    assert row["client_cpu_pct"] == pytest.approx(12.5)
    assert row["server_cpu_pct"] == pytest.approx(37.5)
    assert (row["rss_mb_min"], row["rss_mb_max"]) == (100.0, 120.0)
    assert row["mean_tokens"] == 10


def test_soak_rss_compares_first_and_last_windows():
    # 40,000 requests; RSS 100 MiB while the first 10,000 were answered, 108 MiB at the end
    rss = [(t, done, (100 if done <= 10_000 else 104 if done < 30_000 else 108) * MB)
           for t, done in enumerate(range(0, 40_001, 500))]  # fmt: skip
    out = rep.soak_rss(rss, 40_000)
    assert out["window"] == 10_000
    assert (out["first_mb"], out["last_mb"]) == (100.0, 108.0)
    assert out["change_pct"] == pytest.approx(8.0)
    short = rep.soak_rss([(0, 0, 100 * MB), (1, 600, 130 * MB), (2, 1000, 130 * MB)], 1000)
    assert short["window"] == 500  # half of a soak shorter than two windows
    assert short["change_pct"] == pytest.approx(30.0)
    assert rep.soak_rss([], 0)["change_pct"] is None


def level_row(c, texts_per_s, p50, p99, failures=0, refusals=0):
    return {"concurrency": c, "texts_per_s": texts_per_s, "p50_ms": p50, "p99_ms": p99,
            "failures": failures, "designed_refusals": refusals, "requests": 10, "ok": 10,
            "statuses": {"200": 10}, "client_cpu_pct": 5.0, "server_cpu_pct": 150.0,
            "rss_mb_max": 800.0, "stopped_by": "count", "p95_ms": p99}  # fmt: skip


def results_of(*, served64=90.0, p50_c1=14.0, failures=0, change=3.0, peer64=80.0, peer_p99=900.0):
    ours = {"name": "recfeat serve torch-fp32", "kind": "recfeat", "backend": "torch-fp32",
            "status": "ok", "ready_s": 10.0, "config": {},
            "levels": [level_row(1, 70.0, p50_c1, 20.0), level_row(8, 85.0, 90.0, 150.0),
                       level_row(64, served64, 700.0, 800.0, failures=failures, refusals=4)],
            "soak": {"requests": 20000, "concurrency": 64, "ok": 20000, "statuses": {"200": 20000},
                     "failures": 0, "designed_refusals": 0, "texts_per_s": 90.0,
                     "rss": {"window": 10000, "first_mb": 800.0, "last_mb": 800.0 * (1 + change / 100),
                             "change_pct": change, "peak_mb": 850.0}}}  # fmt: skip
    peer = {"name": "infinity optimum", "kind": "peer", "status": "ok", "ready_s": 20.0,
            "config": {"engine": "optimum"},
            "levels": [level_row(1, 60.0, 16.0, 25.0), level_row(8, 80.0, 95.0, 140.0),
                       level_row(64, peer64, 750.0, peer_p99)]}  # fmt: skip
    missing = {"name": "infinity torch", "kind": "peer", "status": "not installed",
               "reason": "venv missing"}  # fmt: skip
    return {"offline": {"torch-fp32": {"texts": 1500, "texts_per_s": 100.0,
                                       "batch1": {"n": 100, "p50_ms": 10.0, "p95_ms": 12.0}}},
            "servers": [ours, peer, missing]}  # fmt: skip


def by_name(targets, fragment):
    hits = [t for t in targets if fragment in t["target"]]
    assert len(hits) == 1, [t["target"] for t in targets]
    return hits[0]


def test_targets_met():
    targets = rep.check_targets(results_of())
    assert by_name(targets, "80% of offline")["met"] is True  # 90 >= 0.8 * 100
    assert by_name(targets, "p50 at concurrency 1")["met"] is True  # 14 <= 10 + 5
    assert by_name(targets, "no failed request")["met"] is True  # 4 x 429 are by design
    assert by_name(targets, "RSS flat")["met"] is True
    assert by_name(targets, "at concurrency 64: texts/s >= peer")["met"] is True
    # the 8-client level: faster (85 >= 80) but a longer tail (150 > 140 ms) -> missed
    assert by_name(targets, "at concurrency 8: texts/s >= peer")["met"] is False
    assert not any("infinity torch" in t["target"] for t in targets)  # not installed: no row


def test_targets_missed_and_not_measured():
    targets = rep.check_targets(results_of(served64=79.0, p50_c1=15.5, failures=1, change=-11.0,
                                           peer64=95.0))  # fmt: skip
    assert by_name(targets, "80% of offline")["met"] is False
    assert by_name(targets, "p50 at concurrency 1")["met"] is False
    assert by_name(targets, "no failed request")["met"] is False
    assert by_name(targets, "RSS flat")["met"] is False
    assert by_name(targets, "at concurrency 64: texts/s >= peer")["met"] is False
    res = results_of()
    del res["servers"][0]["soak"]
    assert by_name(rep.check_targets(res), "RSS flat")["met"] is None


def test_markdown_reports_every_target_and_why_a_peer_is_missing():
    res = results_of(served64=50.0)
    res.update(command="python benchmarks/bench_serve.py --quick", wall_s=180.0, load_start=0.5,
               load_end=0.7, notes=["a note"],
               environment={"date": "2026-12-01", "cpu_model": "cpu", "cpu_count": 2,
                            "ram_gib": 24, "cpu_flags": ["avx2"], "libraries": {"torch": "2.13"}},
               corpus={"name": "MI", "texts": 10259, "mean_chars": 510.0},
               settings={"route": "/v1/embeddings", "seed": 0, "requests": [1, 2, 3],
                         "time_limit_s": 60, "warmup_requests": 8})  # fmt: skip
    targets = rep.check_targets(res)
    text = rep.markdown(res, targets)
    assert "**MISSED**" in text and "**met**" in text
    assert text.count("| recfeat serve torch-fp32 |") == 3  # one served row per level
    assert "infinity torch** (peer): not installed: venv missing" in text
    assert "`python benchmarks/bench_serve.py --quick`" in text
    json.dumps(targets)  # the targets go into serve.json as they are


def test_slices_are_disjoint_and_soak_texts_are_new():
    texts = [f"t{i}" for i in range(100)]
    warm, levels = bench_serve.slices(texts, 5, [10, 20, 30])
    seen = warm + [t for lv in levels for t in lv]
    assert [len(lv) for lv in levels] == [10, 20, 30] and len(set(seen)) == len(seen) == 65
    soak = bench_serve.soak_texts(texts, 250)
    assert len(set(soak)) == 250 and not set(soak) & set(texts)
    assert soak[0] == "t0 #1" and soak[100] == "t0 #2"


def test_prometheus_deltas_give_texts_per_engine_call():
    before = bench_serve.prom_values("# HELP x\nrecfeat_batch_size_count 10\n"
                                     "recfeat_batch_size_sum 10\nrecfeat_batch_requests_sum 10\n")  # fmt: skip
    after = bench_serve.prom_values('recfeat_batch_size_count 14\nrecfeat_batch_size_sum 210\n'
                                    'recfeat_batch_requests_sum 170\nrecfeat_cache_hits_total 3\n'
                                    'recfeat_inference_seconds_sum 1.5\nrecfeat_tokenize_seconds_sum 0.25\n'
                                    'recfeat_requests_total{route="/v1/embeddings",status="200"} 9\n')  # fmt: skip
    assert after['recfeat_requests_total{route="/v1/embeddings",status="200"}'] == 9.0
    delta = bench_serve.batching_delta(before, after)
    # engine_s: the encode thread's busy seconds, tokenising included
    assert delta == {"engine_calls": 4, "mean_texts_per_call": 50.0,
                     "mean_requests_per_call": 40.0, "cache_hits": 3, "engine_s": 1.75}  # fmt: skip
    assert bench_serve.batching_delta(after, after) is None


def test_openai_answer_check_and_port_parsing():
    good = json.dumps({"data": [{"embedding": [0.1, 0.2], "index": 0}],
                       "usage": {"prompt_tokens": 7}}).encode()  # fmt: skip
    assert loadgen.check_openai(good, 1) == 7
    with pytest.raises(ValueError):
        loadgen.check_openai(good, 2)
    with pytest.raises(ValueError):
        loadgen.check_openai(b'{"data": [{"embedding": []}]}', 1)
    assert json.loads(loadgen.openai_body("hi", "m")) == {"input": "hi", "model": "m",
                                                          "encoding_format": "float"}  # fmt: skip
    line = "recfeat serve: backend torch, ...; ready on http://127.0.0.1:43125"
    assert servers.port_in(line) == 43125
    assert servers.port_in("Uvicorn running on http://localhost:7997 (Press CTRL+C)") == 7997
    assert servers.port_in("warm-up 12.5 ms per single text") is None


def test_agreement_is_the_smallest_row_cosine():
    import numpy as np

    ref = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    same = ref * 3
    assert bench_serve.agreement(ref, same) == pytest.approx(1.0)
    turned = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    assert bench_serve.agreement(ref, turned) == pytest.approx(2 ** -0.5, abs=1e-6)
    assert bench_serve.agreement(ref, None) is None
    assert bench_serve.agreement(ref, ref[:1]) is None
