"""Issue 12: int8 that keeps recommendation quality, and the downstream-quality gate.

The gate logic runs on injected measurements (no model); the sensitive-layer search on an
injected scorer; one real OpenVINO int8 export of MiniLM calibrated on real reviews. No
timing is asserted anywhere.
"""

from __future__ import annotations

import pytest

from recfeat.errors import ValidationFailedError


# -- the sensitive-layer fallback ----------------------------------------------------------
class _Validation:
    def __init__(self, cos, threshold=0.995):
        self.cosine_mean = self.cosine_min = self.cosine_p1 = cos
        self.max_abs_diff, self.min_cosine, self.n_texts = 0.1, threshold, 8
        self.passed, self.step, self.file = cos >= threshold, "openvino static-int8", "m.xml"


BERT_NODES = [
    f"/model/encoder/layer.{i}/{role}/MatMul"
    for i in range(3)
    for role in ("attention/self/query", "attention/self/key", "attention/self/value",
                 "attention/output/dense", "intermediate/dense", "output/dense")
]


def _scorer(damage):
    """A quantiser + validator whose cosine loss per quantised node role is ``damage``."""
    state = {"attempts": []}

    def role(node):
        return node.split("/", 4)[4].rsplit("/", 1)[0]

    def quantize(exclude):
        state["excluded"] = list(exclude)
        state["attempts"].append(list(exclude))
        return {"excluded_nodes": list(exclude)}

    def validate():
        quantized = [n for n in BERT_NODES if n not in state["excluded"]]
        return _Validation(1.0 - sum(damage.get(role(n), 0.0) for n in quantized))

    return quantize, validate, state


def test_fallback_keeps_the_ffn_output_in_float_first_and_stops_when_the_floor_holds():
    from recfeat.exporters.quantize import quantize_until_valid

    # The FFN down-projection does most of the damage: leaving it in float is enough.
    quantize, validate, state = _scorer({"output/dense": 0.003, "intermediate/dense": 0.0005})
    settings, result = quantize_until_valid(quantize, validate, BERT_NODES, auto_exclude=True)
    assert result.passed and settings["auto_excluded"]
    assert sorted(settings["excluded_nodes"]) == sorted(n for n in BERT_NODES if n.endswith("/output/dense/MatMul")
                                                        and "attention" not in n)
    assert len(state["attempts"]) == 2  # plain int8, then the FFN output in float: done


def test_fallback_measures_roles_and_excludes_greedily_until_the_floor_holds():
    from recfeat.exporters.quantize import quantize_until_valid

    # No single role is enough; value and query hurt most, key barely.
    damage = {"attention/self/value": 0.003, "attention/self/query": 0.002,
              "attention/self/key": 0.0003}
    quantize, validate, _ = _scorer(damage)
    settings, result = quantize_until_valid(quantize, validate, BERT_NODES, auto_exclude=True)
    assert result.passed and result.cosine_mean >= 0.995
    kept = {n.split("/", 4)[4].rsplit("/", 1)[0] for n in settings["excluded_nodes"]}
    assert kept == {"attention/self/value", "attention/self/query"}


def test_fallback_gives_up_with_a_clear_message():
    from recfeat.exporters.quantize import quantize_until_valid

    # Damage nothing can remove (e.g. the embeddings): every role in float still misses.
    quantize, validate, _ = _scorer({"output/dense": 0.001})
    validate_all = lambda: _Validation(validate().cosine_mean - 0.02)  # noqa: E731
    with pytest.raises(ValidationFailedError, match=r"mean cosine .* < --min-cosine 0.995.*auto-exclude left 18 of 18 nodes"):
        quantize_until_valid(quantize, validate_all, BERT_NODES, auto_exclude=True)
    with pytest.raises(ValidationFailedError, match="try --auto-exclude"):
        quantize_until_valid(quantize, validate_all, BERT_NODES, auto_exclude=False)


# -- one real OpenVINO int8 export ---------------------------------------------------------
def test_openvino_int8_export_of_minilm_calibrated_on_reviews_passes_the_floor(
    minilm_path, mi_review_texts, tmp_path
):
    pytest.importorskip("nncf")
    from recfeat.exporters.openvino_export import int8_companion_precision
    from recfeat.exporters.pipeline import ExportSpec, run_export
    from recfeat.plugin.registry import get_registry

    out = tmp_path / "ov-int8"
    spec = ExportSpec(model=str(minilm_path), pooling="mean", normalize=True, max_length=128,
                      format="openvino", quantize="static-int8", texts=mi_review_texts[:200],
                      calibration_size=32, min_cosine=0.995, auto_exclude=True)
    manifest = run_export(spec, out)
    step = manifest["steps"][-1]
    assert step["step"] == "quantize" and step["file"] == "openvino_model_int8.xml"
    assert step["validation"]["passed"] and step["validation"]["cosine_mean"] >= 0.995
    assert step["settings"]["inference_precision"] == int8_companion_precision()
    assert step["settings"]["model_type"] == "transformer"
    assert step["settings"]["attempts"]  # the search is recorded, failures included
    enc = get_registry("encoder").create("openvino", path=str(out), precision="int8")
    assert enc.fingerprint()["precision"] == "int8"
    held_out = mi_review_texts[300:332]  # texts neither calibration nor validation saw
    ref = get_registry("encoder").create("openvino", path=str(out), precision="fp32")
    from recfeat.encode.similarity import cosine_rows

    assert cosine_rows(ref.encode(held_out), enc.encode(held_out)).mean() >= 0.99


# -- the downstream gate, on injected measurements -------------------------------------------
class _Clock:
    now = 0.0

    def __call__(self):
        return self.now


def _fake_world(speeds, noise, metrics):
    """Fake backends (encode takes len/speed fake seconds, adds ``noise``) and a TaskGate
    whose score of a backend's vectors is ``metrics[backend]``."""
    import numpy as np

    from recfeat.selection import backends as bb
    from recfeat.selection.gate import TaskGate

    clock = _Clock()
    base = np.random.default_rng(0).normal(size=(400, 32))
    last: dict[str, object] = {}

    def make(name):
        class Fake(bb.Runner):
            def __init__(self, spec, ctx):
                self.spec = spec

            def encode(self, texts):
                clock.now += len(texts) / speeds[name]
                vecs = base[: len(texts)] + noise[name] * np.random.default_rng(7).normal(size=(len(texts), 32))
                last[name] = vecs
                return vecs

        return Fake

    backends = {n: bb.BackendSpec(n, bb.RECFEAT, "fake", "fp32", n, (), "pip install x", make(n))
                for n in speeds}  # fmt: skip

    def score(vectors):
        name = next(n for n, v in last.items() if v is vectors)
        return dict(metrics[name])

    texts = [f"review {i} " * (1 + i % 5) for i in range(300)]
    gate = TaskGate(texts, score, ["content ndcg@10", "ridge rmse"], ["downstream gate: fake"],
                    {"dataset": "fake", "texts_sha256": "x"})  # fmt: skip
    return clock, backends, gate


REF = {"content ndcg@10": 0.100, "ridge rmse": 0.900}
SPEEDS = {"torch-fp32": 100.0, "openvino-bf16": 250.0, "onnx-int8": 400.0,
          "openvino-int8": 500.0, "onnx-int8-static": 600.0}
NOISE = {"torch-fp32": 0.0, "openvino-bf16": 0.005, "onnx-int8": 0.05, "openvino-int8": 0.05,
         "onnx-int8-static": 0.5}


def _choose(tmp_path, metrics, *, max_drop=0.01, min_cosine=0.99, speeds=SPEEDS, noise=NOISE):
    from recfeat.selection import auto_backend

    clock, backends, gate = _fake_world(speeds, noise, metrics)
    return auto_backend.choose_backend(
        "fake", gate.texts, list(speeds), min_cosine=min_cosine, max_drop=max_drop, gate=gate,
        cache_dir=tmp_path, backends=backends, fingerprint={"encoder": "fake"}, clock=clock,
    )  # fmt: skip


def test_gate_rejects_on_cosine_and_on_metric_drops_both_ways_and_picks_fastest_passing(tmp_path):
    metrics = {
        "torch-fp32": REF,
        "openvino-bf16": REF,
        "onnx-int8": {"content ndcg@10": 0.0995, "ridge rmse": 0.903},  # within 1%: passes
        "openvino-int8": {"content ndcg@10": 0.100, "ridge rmse": 0.92},  # RMSE up 2.2%
        "onnx-int8-static": REF,  # metrics fine, cosine far below the floor
    }
    choice = _choose(tmp_path, metrics)
    rows = {r["backend"]: r for r in choice.table}
    assert rows["onnx-int8-static"]["cosine_mean"] < 0.99  # the fake noise does what it says
    assert rows["onnx-int8"]["cosine_mean"] >= 0.99
    assert choice.backend == "onnx-int8"
    assert rows["onnx-int8-static"]["passes"] is False
    assert any("mean cosine" in w and "< 0.99 (floor)" in w for w in rows["onnx-int8-static"]["why"])
    assert rows["openvino-int8"]["why"] == ["ridge rmse rose 2.22% > max-drop 1% (0.9200 vs 0.9000)"]
    # every other candidate is explained: rejected (why) or slower
    assert "rejected faster openvino-int8 (500.0 seq/s): ridge rmse rose 2.22%" in choice.reason
    assert "rejected faster onnx-int8-static (600.0 seq/s): mean cosine" in choice.reason
    # slower than the choice: never chosen, so never gated (the slow part is skipped)
    assert "openvino-bf16 (250.0 seq/s) is slower, so it was not gated" in choice.reason
    assert rows["openvino-bf16"]["unscored"] and "metrics" not in rows["openvino-bf16"]
    assert "content ndcg@10, ridge rmse within 1% of torch-fp32" in choice.reason
    from recfeat.selection.auto_backend import format_table

    table = format_table(choice)
    assert "ridge rmse" in table and "rejected: ridge rmse rose" in table and "chosen" in table

    # NDCG falling is a drop too (higher is better).
    metrics["onnx-int8"] = {"content ndcg@10": 0.097, "ridge rmse": 0.900}
    choice = _choose(tmp_path / "2", metrics)  # a fresh cache: same settings would be a hit
    rows = {r["backend"]: r for r in choice.table}
    assert choice.backend == "openvino-bf16"
    assert rows["onnx-int8"]["why"] == ["content ndcg@10 dropped 3.00% > max-drop 1% (0.0970 vs 0.1000)"]
    # a *better* metric is never a drop
    metrics["openvino-int8"] = {"content ndcg@10": 0.12, "ridge rmse": 0.85}
    assert _choose(tmp_path / "3", metrics).backend == "openvino-int8"


def test_gate_settings_are_in_the_cache_key(tmp_path):
    metrics = dict.fromkeys(SPEEDS, REF)
    first = _choose(tmp_path, metrics)
    assert not first.cached
    again = _choose(tmp_path, metrics)
    assert again.cached and again.key == first.key and again.backend == first.backend
    looser = _choose(tmp_path, metrics, max_drop=0.05)
    stricter = _choose(tmp_path, metrics, min_cosine=0.995)
    assert not looser.cached and not stricter.cached
    assert len({first.key, looser.key, stricter.key}) == 3


def test_no_passing_candidate_says_why_each_failed(tmp_path):
    from recfeat.errors import RecfeatError

    speeds = {"torch-fp32": 100.0, "onnx-int8": 400.0}
    metrics = {"torch-fp32": REF, "onnx-int8": {"content ndcg@10": 0.05, "ridge rmse": 0.9}}
    from recfeat.selection import auto_backend

    clock, backends, gate = _fake_world(speeds, NOISE, metrics)
    with pytest.raises(RecfeatError, match=r"onnx-int8: rejected: content ndcg@10 dropped 50.00%"):
        auto_backend.choose_backend("fake", gate.texts, ["onnx-int8"], gate=gate, cache_dir=tmp_path,
                                    backends=backends, fingerprint={"e": 1}, clock=clock)  # fmt: skip


def test_judge_skips_metrics_the_data_cannot_measure():
    """No ratings: the reference has no RMSE, so RMSE is not gated (the gate's notes say so)."""
    from recfeat.selection import gate

    rows = [
        {"backend": "torch-fp32", "seq_per_s": 1.0, "cosine_mean": 1.0,
         "metrics": {"content ndcg@10": 0.1, "ridge rmse": float("nan")}},
        {"backend": "x", "seq_per_s": 2.0, "cosine_mean": 0.995,
         "metrics": {"content ndcg@10": 0.1, "ridge rmse": 5.0}},
        {"backend": "y", "seq_per_s": 3.0, "cosine_mean": 0.995,
         "metrics": {"content ndcg@10": float("nan"), "ridge rmse": 5.0}},
    ]  # fmt: skip
    gate.judge(rows, "torch-fp32", min_cosine=0.99, max_drop=0.01)
    assert rows[1]["passes"] and rows[1]["drops"] == {"content ndcg@10": 0.0}
    assert rows[2]["why"] == ["content ndcg@10 could not be measured"]
    assert gate.pick(rows)["backend"] == "x"
    assert gate.parse_drop("1%") == pytest.approx(0.01) and gate.parse_drop("0.02") == 0.02
    with pytest.raises(Exception, match="--max-drop must look like"):
        gate.parse_drop("lots")


def test_task_gate_on_real_reviews_scores_and_says_what_it_gates(musical_instruments):
    import numpy as np

    from recfeat.components.dataset import load_dataset
    from recfeat.selection import gate

    data = load_dataset(str(musical_instruments), "amazon")
    g = gate.task_gate(data, limit=800, seed=0)
    assert g.active and g.gated == ["content ndcg@10", "ridge rmse"]
    assert len(g.texts) == 800 and g.notes[0].startswith("downstream gate:")
    vectors = np.random.default_rng(0).normal(size=(len(g.texts), 16)).astype(np.float32)
    scores = g.score(vectors)
    assert set(scores) == {"content ndcg@10", "ridge rmse"}
    assert all(np.isfinite(v) for v in scores.values())
    assert g.score(vectors) == scores  # seeded: the same vectors score the same
    # Without ratings only NDCG is gated, and the gate says so.
    implicit = data.__class__(**{**data.__dict__, "interactions": data.interactions.assign(rating=np.nan)})
    g2 = gate.task_gate(implicit, limit=800, seed=0)
    assert g2.gated == ["content ndcg@10"] and any("no ratings" in n for n in g2.notes)
    # Too few interactions for a split: cosine only, said.
    tiny = gate.task_gate(data, limit=3, seed=0)
    assert not tiny.active and any("cosine only" in n for n in tiny.notes)


def test_task_gate_without_reviews_gates_on_item_texts(movielens_100k):
    from recfeat.components.dataset import load_dataset
    from recfeat.selection import gate

    data = load_dataset(str(movielens_100k), "auto")
    assert data.reviews is None and data.items is not None
    g = gate.task_gate(data, level="item", limit=1500, seed=0)
    assert g.active and "item texts" in g.notes[0]
    assert len(g.texts) == len(gate.subset(data, 1500, 0).items)


# -- recfeat export --gate -----------------------------------------------------------------
def test_export_gate_records_the_verdict_and_a_failing_check_writes_nothing(
    tmp_path, musical_instruments, monkeypatch
):
    import json

    from _export_helpers import make_tiny
    from click.testing import CliRunner

    from recfeat.cli.main import cli
    from recfeat.errors import ValidationFailedError
    from recfeat.exporters.pipeline import ExportSpec, run_export
    from recfeat.selection import gate as gate_module

    monkeypatch.setattr(gate_module, "GATE_INTERACTIONS", 600)  # a smaller sample: seconds
    model = make_tiny("bert", tmp_path / "tiny")
    out = tmp_path / "gated"
    res = CliRunner().invoke(cli, ["export", "--encoder", str(model), "--out", str(out),
                                   "--gate", str(musical_instruments), "--gate-format", "amazon"])  # fmt: skip
    assert res.exit_code == 0, res.output
    gate = json.loads((out / "manifest.json").read_text())["gate"]
    assert gate["passed"] and gate["file"] == "model.onnx" and gate["max_drop"] == 0.01
    assert gate["gated"] == ["content ndcg@10", "ridge rmse"]
    assert set(gate["drops"]) == {"content ndcg@10", "ridge rmse"}
    assert "gate: model.onnx passes" in res.output

    def failing(folder, manifest):
        raise ValidationFailedError("downstream gate failed for model.onnx: ridge rmse rose")

    with pytest.raises(ValidationFailedError, match="downstream gate failed"):
        run_export(ExportSpec(model=str(model)), tmp_path / "never", check=failing)
    assert not (tmp_path / "never").exists()
    bad = CliRunner().invoke(cli, ["export", "--encoder", str(model),
                                   "--out", str(tmp_path / "x"), "--max-drop", "lots"])  # fmt: skip
    assert bad.exit_code == 2 and "--max-drop must look like" in bad.output


def test_bench_accuracy_gives_each_backend_the_gate_verdict(musical_instruments):
    import zlib

    import numpy as np

    from recfeat.bench import accuracy as bench_accuracy
    from recfeat.selection import backends as bb

    def make(noise):
        class Hashed(bb.Runner):  # hashed words: a cheap deterministic stand-in encoder
            def __init__(self, spec, ctx):
                self.spec = spec

            def encode(self, texts):
                vecs = np.zeros((len(texts), 64), dtype=np.float32)
                for row, text in enumerate(texts):
                    for word in text.lower().split():
                        vecs[row, zlib.crc32(word.encode()) % 64] += 1.0
                return vecs + noise * np.random.default_rng(1).normal(size=vecs.shape).astype(np.float32)

        return Hashed

    specs = [bb.BackendSpec(name, bb.RECFEAT, "fake", "fp32", name, (), "-", make(noise))
             for name, noise in (("torch-fp32", 0.0), ("exact-copy", 0.0), ("noisy", 50.0))]  # fmt: skip
    res = bench_accuracy.run_accuracy(
        data=str(musical_instruments), fmt="auto", encoder="minilm", backends=specs,
        models=["content", "ridge"], split="item-cold", max_drop=0.01, min_cosine=0.99, limit=600,
    )  # fmt: skip
    verdicts = {r["backend"]: r for r in res["gate"]["backends"]}
    assert verdicts["exact-copy"]["passes"] and verdicts["torch-fp32"]["passes"]
    assert not verdicts["noisy"]["passes"]
    assert any("< 0.99 (floor)" in w for w in verdicts["noisy"]["why"])
    assert "content ndcg@10" in verdicts["noisy"]["metrics"] and "ridge rmse" in verdicts["noisy"]["metrics"]
    # Metrics are judged with their paired interval (none where the reference scores 0, as
    # a relative drop from 0 has none); an exact copy's is exactly zero.
    exact = verdicts["exact-copy"]["intervals"]
    ref = verdicts["torch-fp32"]["metrics"]
    assert set(exact) == {m for m in ("content ndcg@10", "ridge rmse") if ref[m] != 0}
    assert "ridge rmse" in exact and all(iv["low"] == iv["high"] == 0 for iv in exact.values())
    assert set(verdicts["noisy"]["intervals"]) == set(exact)
    assert res["gate"]["choice"] in ("torch-fp32", "exact-copy")
    assert "rejected" in res["gate"]["summary"] and "noisy" in res["gate"]["summary"]
    assert res["gate"]["summary"] in res["notes"]
