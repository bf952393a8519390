"""Fair peers, ceilings and what a throughput run concludes (issue 12), without asserting on
speed: the peers' configurations (hint, request queue, length sorting, batch sizes), the
default peer list, peers not installed reported with the reason, the FLOP math, fractions of
the ceiling, peer ratios and targets on injected rows, and the report's files."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import time
import zlib

import numpy as np
import pytest

from recfeat.bench import backends as bb
from recfeat.bench import ceilings, summary
from recfeat.bench import report as bench_report
from recfeat.bench import suite as bench_suite
from recfeat.errors import UsageError
from recfeat.selection import backends as sb
from recfeat.selection import gate as bench_gate

MINILM = {"hidden": 384, "layers": 6, "heads": 12, "intermediate": 1536}


def need(module: str) -> None:
    """Skip when an optional peer library is missing locally; under CI it must be installed."""
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed (pip install 'recfeat[peers,onnx,openvino]')")
        pytest.skip(f"{module} is not installed")


# -- the peer set-up -------------------------------------------------------------------------
def test_default_peer_list_holds_every_peer_and_bf16_torch():
    assert "st-torch-bf16" in bb.DEFAULT_PEERS
    for name in ("st-torch", "st-onnx", "st-onnx-o3", "st-onnx-qint8", "st-openvino",
                 "st-openvino-qint8", "fastembed", "openvino-peer", "openvino-peer-latency"):
        assert name in bb.DEFAULT_PEERS and bb.BACKENDS[name].kind == sb.PEER
    ok, missing = bb.default_peers("cpu")
    names = {s.name for s in ok} | {m["backend"] for m in missing}
    assert "st-torch-bf16" in names
    assert "st-torch-fp16" not in names  # CUDA only: not a CPU peer at all


def test_a_library_name_stands_for_its_installed_peers():
    """`bench --peers sentence-transformers` is how users name the tool: its CPU peers that
    are installed; a name that is also a peer (fastembed) stays that one peer."""
    got = [s.name for s in bb.parse_backends("sentence-transformers", kind=sb.PEER)]
    want = [n for n in bb.DEFAULT_PEERS if n.startswith("st-") and "cpu" in bb.BACKENDS[n].devices
            and not bb.BACKENDS[n].missing()]  # fmt: skip
    assert got == want and "st-torch" in got and "st-torch-fp16" not in got
    assert [s.name for s in bb.parse_backends("fastembed,st-torch", kind=sb.PEER)] == [
        "fastembed", "st-torch"]
    fake = dict(bb.BACKENDS)
    fake["ghost-peer"] = sb.BackendSpec(
        "ghost-peer", sb.PEER, "ghostlib/torch", "fp32", "peer: not here", ("no_such_module_xyz",),
        "pip install ghostlib", bb.SentenceTransformersRunner, ("cpu",),
    )
    with pytest.raises(UsageError, match="no ghostlib peer is installed.*pip install ghostlib"):
        bb.parse_backends("ghostlib", kind=sb.PEER, backends=fake)


def test_peers_not_installed_are_reported_with_the_reason():
    fake = dict(bb.BACKENDS)
    fake["ghost-peer"] = sb.BackendSpec(
        "ghost-peer", sb.PEER, "ghost", "fp32", "peer: not here", ("no_such_module_xyz",),
        "pip install ghost", bb.SentenceTransformersRunner, ("cpu",),
    )
    ok, missing = bb.default_peers("cpu", fake)
    assert "ghost-peer" not in {s.name for s in ok}
    (entry,) = [m for m in missing if m["backend"] == "ghost-peer"]
    assert "no_such_module_xyz" in entry["reason"] and "pip install ghost" in entry["reason"]


def test_length_sorted_batches_cover_every_text_longest_first():
    lengths = [5, 40, 12, 40, 3, 27, 8]
    batches = bb.length_sorted_batches(lengths, 3)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [3, 3, 1]
    seen = [lengths[i] for i in flat]
    assert seen == sorted(lengths, reverse=True)


@pytest.fixture(scope="module")
def peer_ctx(tmp_path_factory):
    """A build context whose peer artifacts (model copy, ONNX export) live in a temp folder."""
    work = tmp_path_factory.mktemp("bench-work")
    return sb.BuildContext(encoder="minilm", work_dir=work, threads=2)


TEXTS = ["Great strings, bright tone.", "The pedal broke after a week of light use at home.",
         "ok", "Solid stand; folds small, holds my bass and two guitars without wobbling at all.",
         "Cable hums.", "Five stars"]  # fmt: skip


@pytest.fixture(scope="module")
def st_vectors(peer_ctx):
    need("sentence_transformers")
    return bb.BACKENDS["st-torch"].build(peer_ctx).encode(TEXTS)


def _cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_openvino_peer_uses_throughput_hint_with_an_async_queue(peer_ctx, st_vectors):
    need("openvino")
    need("optimum.onnxruntime")
    runner = bb.BACKENDS["openvino-peer"].build(peer_ctx)
    config = runner.describe()
    assert config["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert config["sorted_by_length"] is True and config["batch_size"] == peer_ctx.peer_batch_size
    optimal = int(runner.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    assert config["infer_requests"] == optimal
    assert (runner.queue is not None) == (optimal > 1)  # THROUGHPUT is paired with async requests
    peer_ctx.peer_batch_size, before = 2, peer_ctx.peer_batch_size  # several batches in flight
    try:
        vectors = runner.encode(TEXTS)
    finally:
        peer_ctx.peer_batch_size = before
    # Rows come back in input order although batches ran sorted and asynchronously.
    assert _cos(vectors, st_vectors).min() > 0.995


def test_openvino_peer_forward_splits_one_batch_across_its_requests(peer_ctx):
    need("openvino")
    need("optimum.onnxruntime")
    through = bb.BACKENDS["openvino-peer"].build(peer_ctx)
    latency = bb.BACKENDS["openvino-peer-latency"].build(peer_ctx)
    from recfeat.bench.suite import synthetic_batch

    ids, mask = synthetic_batch(8, 16, 1000)
    mask[3, 9:] = 0  # rows of different lengths keep their own pooling
    got, want = through.forward(ids, mask), latency.forward(ids, mask)
    assert got.shape == want.shape == (8, 384)
    assert _cos(got, want).min() > 0.999  # same rows in the same order (bf16 both ways)


def test_openvino_peer_latency_variant_is_synchronous(peer_ctx, st_vectors):
    need("openvino")
    need("optimum.onnxruntime")
    runner = bb.BACKENDS["openvino-peer-latency"].build(peer_ctx)
    config = runner.describe()
    assert config["PERFORMANCE_HINT"] == "LATENCY" and config["infer_requests"] == 1
    assert runner.queue is None
    assert _cos(runner.encode(TEXTS), st_vectors).min() > 0.995


def test_fastembed_peer_runs_the_same_onnx_from_local_files(peer_ctx, st_vectors, monkeypatch):
    need("fastembed")
    need("optimum.onnxruntime")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any download attempt would fail the build
    runner = bb.BACKENDS["fastembed"].build(peer_ctx)
    config = runner.describe()
    assert config["model_file"] == "onnx/model.onnx"
    assert config["batch_size"] == 256 and config["max_length"] == 256  # its default; model's limit
    assert _cos(runner.encode(TEXTS), st_vectors).min() > 0.9999


def test_st_torch_bf16_loads_the_model_in_bf16(peer_ctx):
    need("sentence_transformers")
    import torch

    runner = bb.BACKENDS["st-torch-bf16"].build(peer_ctx)
    assert runner.describe()["dtype"] == "bf16"
    assert next(runner.model.parameters()).dtype == torch.bfloat16


# -- ceilings and FLOPs ---------------------------------------------------------------------
def test_minilm_flops_from_the_shape():
    assert ceilings.matmul_params(MINILM) == 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    per_seq = ceilings.flops_per_sequence(MINILM, 128)
    assert per_seq == 2 * 10_616_832 * 128 + 4 * 6 * 384 * 128 * 128
    assert per_seq / 1e9 == pytest.approx(2.88, abs=0.02)  # the figure
    lengths = np.array([10, 128, 40])
    assert ceilings.corpus_flops(MINILM, lengths) == pytest.approx(
        sum(ceilings.flops_per_sequence(MINILM, int(n)) for n in lengths))
    # Without an FFN size the standard 4 x hidden is assumed.
    no_ffn = {k: v for k, v in MINILM.items() if k != "intermediate"}
    assert ceilings.matmul_params(no_ffn) == ceilings.matmul_params(MINILM)


def test_model_shape_reads_the_ffn_size_from_the_config():
    shape = bench_suite.model_shape("minilm", "pretrained")
    assert (shape["hidden"], shape["layers"], shape["intermediate"]) == (384, 6, 1536)
    assert shape["gflop_per_128_tokens"] == pytest.approx(2.869, abs=1e-3)


def test_a_kernel_too_slow_to_bound_anything_is_probed_small_and_not_run_at_full_size():
    sizes: dict[str, list[int]] = {"slow": [], "fast": []}

    def kernel(name, seconds_at_probe):
        def build(n, t):
            sizes[name].append(n)
            return lambda: time.sleep(seconds_at_probe * (n / ceilings.PROBE_SIZE) ** 3)
        return build

    kernels = [("int8", "a", "slow", "numpy", kernel("slow", 0.2)),  # ~13 s at 4x the probe
               ("fp32", "b", "fast", "numpy", kernel("fast", 0.0001))]  # fmt: skip
    res = ceilings.measure_ceilings(size=4 * ceilings.PROBE_SIZE, repeats=1, kernels=kernels)
    assert sizes == {"slow": [ceilings.PROBE_SIZE], "fast": [ceilings.PROBE_SIZE, 4 * ceilings.PROBE_SIZE]}
    assert [k["kernel"] for k in res["kernels"]] == ["fast"]
    assert "too slow on this CPU" in {f["kernel"]: f["error"] for f in res["failed"]}["slow"]


def test_ceilings_take_the_fastest_kernel_and_list_failures():
    def broken(n, t):
        raise RuntimeError("op not supported here")

    noop = lambda n, t: (lambda: None)  # noqa: E731
    kernels = [("int8", "a", "ok kernel", "numpy", noop),
               ("int8", "b", "broken kernel", "numpy", broken),
               ("fp32", "c", "missing runtime", "no_such_module_xyz", noop)]  # fmt: skip
    res = ceilings.measure_ceilings(size=8, repeats=1, kernels=kernels)
    assert [k["kernel"] for k in res["kernels"]] == ["ok kernel"]
    errors = {f["kernel"]: f["error"] for f in res["failed"]}
    assert "op not supported" in errors["broken kernel"]
    assert "not installed" in errors["missing runtime"]
    best = ceilings.best_per_precision([
        {"precision": "int8", "kernel": "x", "gflops": 500.0},
        {"precision": "int8", "kernel": "y", "gflops": 700.0},
        {"precision": "bf16", "kernel": "z", "gflops": 300.0},
    ])
    assert best == {"int8": {"gflops": 700.0, "kernel": "y"}, "bf16": {"gflops": 300.0, "kernel": "z"}}
    assert ceilings.fraction_of_ceiling(350e9, "int8", best) == pytest.approx(0.5)
    assert ceilings.fraction_of_ceiling(150e9, "fp16", best) == pytest.approx(0.5)  # judged as bf16
    assert ceilings.fraction_of_ceiling(1e9, "fp32", best) is None  # not measured


def test_ceilings_measured_twice_count_each_kernels_faster_run():
    first = {"size": 8, "repeats": 1, "kernels": [
        {"precision": "bf16", "kernel": "a", "gflops": 300.0},
        {"precision": "bf16", "kernel": "b", "gflops": 700.0},
        {"precision": "int8", "kernel": "c", "gflops": 900.0}]}  # fmt: skip
    second = {"kernels": [{"precision": "bf16", "kernel": "a", "gflops": 800.0},
                          {"precision": "bf16", "kernel": "b", "gflops": 650.0}]}  # fmt: skip
    both = ceilings.combine(first, second)
    assert both["runs"] == 2
    assert both["ceilings"] == {"bf16": {"gflops": 800.0, "kernel": "a"},
                                "int8": {"gflops": 900.0, "kernel": "c"}}  # fmt: skip
    runs = {k["kernel"]: k["gflops_runs"] for k in both["kernels"]}
    assert runs == {"a": [300.0, 800.0], "b": [700.0, 650.0], "c": [900.0]}


def test_every_installed_gemm_kernel_builds_and_runs():
    from recfeat.machine import has_bf16

    res = ceilings.measure_ceilings(size=64, repeats=1)
    # only a missing runtime, or (on a CPU without bf16 units) the bf16 kernels, are skipped
    allowed = [f for f in res["failed"] if "not installed" in f["error"]
               or (not has_bf16() and "no bf16 units" in f["error"])]  # fmt: skip
    assert res["failed"] == allowed, res["failed"]
    assert {"fp32", "int8"} <= set(res["ceilings"])
    assert ("bf16" in res["ceilings"]) == has_bf16()


# -- fractions, ratios and targets on injected rows ----------------------------------------
def _row(backend, kind, workload, seq_s, cos, precision, tokens_s=None, gflops=None, **extra):
    row = {"backend": backend, "kind": kind, "workload": workload, "seq_per_s": seq_s,
           "tokens_per_s": tokens_s if tokens_s is not None else seq_s * 100,
           "cosine_mean": cos, "cosine_min": cos - 0.01, "precision": precision,
           "gflops_per_s": gflops, **extra}  # fmt: skip
    if workload == "fixed":
        row.update(batch=32, seq=128)
    return row


def injected_rows():
    return [
        _row("openvino-bf16", "recfeat", "corpus", 200.0, 0.99998, "bf16", tokens_s=18000.0, gate_passed=True),
        _row("onnx-int8", "recfeat", "corpus", 300.0, 0.992, "int8", gate_passed=False),
        _row("openvino-int8", "recfeat", "corpus", 250.0, 0.996, "int8", gate_passed=False),
        _row("st-torch-bf16", "peer", "corpus", 100.0, 0.9999, "bf16"),
        _row("st-onnx-qint8", "peer", "corpus", 130.0, 0.992, "int8"),
        _row("openvino-bf16", "recfeat", "fixed", 120.0, 0.99997, "bf16", tokens_s=20000.0, gflops=345.0),
        _row("onnx-int8", "recfeat", "fixed", 150.0, 0.99, "int8", gflops=430.0),
        _row("openvino-int8", "recfeat", "fixed", 170.0, 0.997, "int8", gflops=490.0),
        _row("st-torch-bf16", "peer", "fixed", 80.0, 0.9999, "bf16", gflops=230.0),
    ]


CEILINGS = {"fp32": {"gflops": 200.0, "kernel": "f"}, "bf16": {"gflops": 400.0, "kernel": "b"},
            "int8": {"gflops": 700.0, "kernel": "i"}}  # fmt: skip


def test_targets_ratios_and_fractions_on_injected_rows():
    rows = injected_rows()
    targets = {t["id"]: t for t in summary.summarise(rows, CEILINGS)}
    by = {(r["backend"], r["workload"]): r for r in rows}
    # The fastest recfeat path passing the gate is openvino-bf16 (onnx-int8 is faster but fails).
    t1, t2 = targets["corpus_vs_quality_peer"], targets["corpus_vs_any_peer"]
    assert t1["value"] == pytest.approx(2.0) and t1["met"] is True and t1["margin"] == pytest.approx(0.0)
    assert "st-torch-bf16" in t1["detail"] and "openvino-bf16" in t1["detail"]
    assert t2["value"] == pytest.approx(200 / 130) and t2["met"] is True  # st-onnx-qint8 at 0.992
    assert by[("onnx-int8", "corpus")]["quality_peer"] == "st-torch-bf16"
    assert by[("onnx-int8", "corpus")]["vs_any_peer"] == pytest.approx(300 / 130)
    # int8: onnx-int8 fails the 0.995 cosine on the corpus, openvino-int8 holds it.
    t3 = targets["int8_fraction"]
    assert t3["value"] == pytest.approx(490 / 700) and t3["met"] is True
    assert "openvino-int8" in t3["detail"] and "real corpus" in t3["detail"]
    assert by[("openvino-bf16", "fixed")]["fraction_of_ceiling"] == pytest.approx(345 / 400)
    # corpus / fixed tokens per second of the same backend.
    t4 = targets["overlap_ratio"]
    assert t4["value"] == pytest.approx(18000 / 20000) and t4["met"] is True
    assert by[("openvino-bf16", "corpus")]["fixed_ratio"] == pytest.approx(0.9)


def test_targets_missed_and_unmeasured_are_said_so():
    rows = [r for r in injected_rows() if r["backend"] != "openvino-int8"]
    rows[0]["seq_per_s"] = 120.0  # openvino-bf16 now only 1.2x the quality peer
    targets = {t["id"]: t for t in summary.summarise(rows, CEILINGS)}
    t1 = targets["corpus_vs_quality_peer"]
    assert t1["met"] is False and t1["margin"] == pytest.approx(1.2 / 2.0 - 1)
    assert targets["int8_fraction"]["met"] is None  # the only int8 path misses the cosine floor
    # Without any gate verdict the gate's cosine floor alone decides, and the detail says so.
    for r in rows:
        r.pop("gate_passed", None)
    targets = {t["id"]: t for t in summary.summarise(rows, CEILINGS)}
    assert "no downstream gate" in targets["corpus_vs_quality_peer"]["detail"]
    assert "onnx-int8" in targets["corpus_vs_quality_peer"]["detail"]  # 0.992 >= 0.99 floor


# -- the report ------------------------------------------------------------------------------
def test_report_has_targets_ceilings_table_and_speed_quality_plot(tmp_path):
    rows = injected_rows()
    rows[0].update(gate_ndcg10=0.051, gate_rmse=1.02)
    rows[1].update(gate_ndcg10=0.049, gate_rmse=1.05, gate_why=["content ndcg@10 dropped 3.9%"])
    targets = summary.summarise(rows, CEILINGS)
    gemm = {"size": 64, "threads": 2, "repeats": 1, "ceilings": CEILINGS, "failed": [],
            "kernels": [{"precision": p, "kernel": c["kernel"], "gflops": c["gflops"]}
                        for p, c in CEILINGS.items()]}  # fmt: skip
    results = {"mode": "throughput", "encoder": "minilm", "rows": rows, "targets": targets,
               "ceilings": gemm, "reference": "torch-fp32", "failed": [],
               "model_shape": {**MINILM, "matmul_params": 10_616_832, "gflop_per_128_tokens": 2.869},
               "not_installed": [{"backend": "fastembed", "reason": "needs fastembed; install: pip install fastembed"}],
               "environment": {}, "corpus": {"name": "mi", "texts": 10, "mean_tokens": 90.0}}  # fmt: skip
    out = bench_report.write_report(tmp_path / "rep", results)
    assert (out / "speed_quality.png").stat().st_size > 0
    md = (out / "results.md").read_text()
    for text in ("## Targets", "## GEMM ceilings", "x vs best peer cos>=0.999", "% of ceiling",
                 "corpus/fixed tok/s", "fastembed: needs fastembed", "fail: content ndcg@10"):
        assert text in md, text
    assert "MISSED" not in md  # every injected target is met
    data = json.loads((out / "results.json").read_text())
    assert {t["id"] for t in data["targets"]} == {t[0] for t in summary.TARGETS}
    fig = bench_report.speed_quality_plot(results)
    assert len(fig.axes) == 3  # cosine, NDCG@10, RMSE: what the rows carry
    bench_report._close(fig)


# -- run_throughput's plumbing with fake backends --------------------------------------------
class FakeRunner(sb.Runner):
    def __init__(self, spec, ctx):
        self.spec, self.ctx = spec, ctx

    def encode(self, texts):
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                out[row, zlib.crc32(word.encode()) % 16] += 1.0
        out[:, 0] += 0.5 if self.spec.name == "fake-int8" else 0.0  # a little off the reference
        return out

    def forward(self, input_ids, attention_mask):
        return input_ids[:, :4].astype(np.float32)

    def describe(self):
        return {"knob": self.spec.name, "effective_precision": "bf16"} if self.spec.kind == sb.PEER else {}


class FakeGate:
    active = True
    gated = ["content ndcg@10"]
    notes = ["fake gate"]

    def __init__(self, texts):
        self.texts = texts

    def score(self, vectors):
        return {"content ndcg@10": float(np.abs(vectors[:, 1:]).mean())}  # equal unless cols 1+ move


def test_run_throughput_records_config_precision_flops_gate_and_targets():
    spec = lambda name, kind, prec: sb.BackendSpec(name, kind, "fake", prec, name, (), "-", FakeRunner, ("cpu",))  # noqa: E731
    backends = [spec("torch-fp32", sb.RECFEAT, "fp32"), spec("fake-int8", sb.RECFEAT, "int8")]
    peers = [spec("fake-peer", sb.PEER, "auto")]
    texts = [f"review {i} " + "good sound " * (i % 7) for i in range(40)]
    res = bench_suite.run_throughput(
        encoder="minilm", backends=backends, peers=peers, batch_sizes=[32], seq_lens=[128],
        texts=texts, ceiling_size=None, gate=FakeGate(texts[:20]),
        gate_rule=functools.partial(bench_gate.judge, min_cosine=0.99, max_drop=0.01),
        not_installed=[{"backend": "ghost", "reason": "needs ghost"}], repeats=1, warmup=0,
    )
    rows = {(r["backend"], r["workload"]): r for r in res["rows"]}
    assert rows[("fake-peer", "corpus")]["precision"] == "bf16"  # what the runner says it ran
    assert rows[("fake-peer", "corpus")]["config"] == {"knob": "fake-peer"}
    assert rows[("fake-int8", "fixed")]["precision"] == "int8"
    assert rows[("torch-fp32", "fixed")]["gflops_per_s"] > 0
    assert rows[("torch-fp32", "corpus")]["gate_passed"] is True
    assert "gate_ndcg10" in rows[("fake-int8", "corpus")]
    assert "fake-peer" not in res["gate"]["backends"]  # peers are compared, not gated
    assert res["gate"]["min_cosine"] == 0.99 and res["gate"]["notes"] == ["fake gate"]
    assert {t["id"] for t in res["targets"]} == {t[0] for t in summary.TARGETS}
    assert res["not_installed"] == [{"backend": "ghost", "reason": "needs ghost"}]
    assert res["ceilings"] is None
    assert "fixed_ratio" in rows[("torch-fp32", "corpus")]
