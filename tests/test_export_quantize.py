"""Optimisation and quantisation: presets, static calibration on real reviews, validation
failures that leave nothing behind, auto-exclusion of sensitive nodes."""

from __future__ import annotations

import re

import pytest
from _export_helpers import make_tiny

from recfeat.errors import DataError, ValidationFailedError


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny("bert", tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="module")
def reviews(mi_review_texts):
    return list(mi_review_texts)


def _export(model, out, **kw):
    from recfeat.exporters.pipeline import ExportSpec, run_export

    return run_export(ExportSpec(model=str(model), **kw), out)


def test_presets_and_detection():
    from recfeat.exporters import quantize as q

    assert set(q.PRESETS) == {"avx2", "avx512", "avx512_vnni", "arm64"}
    assert q.PRESETS["avx2"].reduce_range and not q.PRESETS["avx512_vnni"].reduce_range
    assert q.detect_preset() in q.PRESETS
    assert q.file_suffix("dynamic-int8", q.PRESETS["arm64"]) == "qint8_arm64"
    with pytest.raises(Exception, match="valid presets"):
        q.check_preset("avx9000")


@pytest.mark.parametrize("level", ["O1", "O3"])
def test_optimize_keeps_names_and_accuracy(tiny_bert, tmp_path, level):
    import onnx

    manifest = _export(tiny_bert, tmp_path / "o", optimize=level)
    step = manifest["steps"][-1]
    assert step["file"] == f"model_{level}.onnx" and step["validation"]["cosine_mean"] > 0.9999
    graph = onnx.load(str(tmp_path / "o" / step["file"])).graph
    assert [o.name for o in graph.output] == ["sentence_embedding"]
    ops = {n.op_type for n in graph.node}
    if level == "O3":  # fusions happened, GELU approximated
        assert "Attention" in ops and "FastGelu" in ops or "BiasGelu" not in ops


@pytest.mark.parametrize("per_channel", [True, False])
def test_dynamic_int8_settings_in_manifest(tiny_bert, tmp_path, per_channel):
    manifest = _export(
        tiny_bert, tmp_path / "q", optimize="O2", quantize="dynamic-int8", preset="avx2",
        per_channel=per_channel,
    )  # fmt: skip
    step = manifest["steps"][-1]
    assert step["file"] == "model_qint8_avx2.onnx"  # the plain graph, not --optimize's
    assert step["settings"]["per_channel"] is per_channel and step["settings"]["reduce_range"]
    assert 0.99 <= step["validation"]["cosine_mean"] <= 1.0
    assert manifest["default_file"] == step["file"]
    assert [s["step"] for s in manifest["steps"]] == ["export", "optimize", "quantize"]


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_static_int8_calibrated_on_real_reviews(tiny_bert, tmp_path, reviews, method):
    import onnx

    manifest = _export(
        tiny_bert, tmp_path / "s", quantize="static-int8", texts=reviews,
        calibration_method=method, calibration_size=48,
    )  # fmt: skip
    step = manifest["steps"][-1]
    assert step["settings"]["calibration_method"] == method
    assert step["settings"]["calibration_texts"] == 48
    assert step["validation"]["n_texts"] == 64  # validation sample from the user's texts
    ops = {n.op_type for n in onnx.load(str(tmp_path / "s" / step["file"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_calibration_too_small(tiny_bert, tmp_path):
    with pytest.raises(DataError, match="calibration data too small: 5 distinct"):
        _export(tiny_bert, tmp_path / "s", quantize="static-int8", texts=[f"text {i}" for i in range(5)])
    assert not (tmp_path / "s").exists()


def test_forced_accuracy_drop_fails_with_figures_and_writes_nothing(tiny_bert, tmp_path):
    out = tmp_path / "q"
    with pytest.raises(ValidationFailedError) as err:
        _export(tiny_bert, out, quantize="dynamic-int8", min_cosine=1.0, auto_exclude=False)
    msg = str(err.value)
    assert "step 'quantize dynamic-int8'" in msg
    assert re.search(r"mean cosine 0\.9\d{7} < --min-cosine 1\.0 \(min 0\.9\d{7}", msg)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".q.")]  # no temp leftovers


def test_fp16_conversion_validates(tiny_bert, tmp_path):
    manifest = _export(tiny_bert, tmp_path / "h", quantize="fp16")
    step = manifest["steps"][-1]
    assert step["file"] == "model_fp16.onnx" and step["validation"]["precision"] == "fp16"
    assert step["validation"]["cosine_mean"] >= 0.999


def test_role_groups_from_real_graph_names(tiny_bert, tmp_path):
    from recfeat.exporters.quantize import quantizable_nodes, role_groups

    _export(tiny_bert, tmp_path / "e", optimize="O2")
    plain = role_groups(quantizable_nodes(tmp_path / "e" / "model.onnx"))
    assert plain["/model/encoder/layer.*/output/dense/MatMul"] == [
        "/model/encoder/layer.0/output/dense/MatMul",
        "/model/encoder/layer.1/output/dense/MatMul",
    ]
    assert len(plain) == 6  # q, k, v, attention output, FFN up, FFN down
    fused = role_groups(quantizable_nodes(tmp_path / "e" / "model_O2.onnx"))
    assert "Attention_*" in fused


class _Validation:
    def __init__(self, cos, threshold=0.99):
        self.cosine_mean = self.cosine_min = self.cosine_p1 = cos
        self.max_abs_diff, self.min_cosine, self.n_texts = 0.1, threshold, 8
        self.passed, self.step, self.file = cos >= threshold, "quantize", "m.onnx"


def test_auto_exclude_measures_sensitivity_and_excludes_greedily():
    """The search itself, with a quantiser whose damage per role is known: role C hurts
    most, then A, B least; no single role is enough. Auto-exclude must keep C and A in float, not B."""
    from recfeat.exporters.quantize import quantize_until_valid

    nodes = ["/l.0/A/MatMul", "/l.1/A/MatMul", "/l.0/B/MatMul", "/l.1/B/MatMul", "/l.0/C/MatMul", "/l.1/C/MatMul"]
    damage = {"A": 0.005, "B": 0.001, "C": 0.006}
    state = {}

    def quantize(exclude):
        state["excluded"] = list(exclude)
        return {"excluded_nodes": list(exclude)}

    def validate():
        quantized = [n for n in nodes if n not in state["excluded"]]
        return _Validation(1.0 - sum(damage[n.split("/")[2]] for n in quantized))

    with pytest.raises(ValidationFailedError, match="mean cosine 0.9760"):
        quantize_until_valid(quantize, validate, nodes, auto_exclude=False)
    settings, result = quantize_until_valid(quantize, validate, nodes, auto_exclude=True)
    assert result.passed and settings["auto_excluded"]
    assert sorted(settings["excluded_nodes"]) == sorted(n for n in nodes if "/B/" not in n)


def test_auto_exclude_on_a_real_graph(tiny_bert, tmp_path):
    """A threshold plain int8 cannot meet but float nodes can: auto-exclude finds it."""
    from recfeat.exporters.quantize import quantizable_nodes

    # plain int8's figure on the exporter's own validation sample, with this CPU's preset
    plain = _export(tiny_bert, tmp_path / "plain", quantize="dynamic-int8", min_cosine=0.5,
                    auto_exclude=False)["steps"][-1]  # fmt: skip
    assert plain["settings"]["excluded_nodes"] == [] and "exclusion" not in plain["settings"]
    cos = plain["validation"]["cosine_mean"]
    threshold = 1.0 - (1.0 - cos) / 3  # a third of plain int8's error
    manifest = _export(tiny_bert, tmp_path / "auto", quantize="dynamic-int8", min_cosine=threshold, auto_exclude=True)
    step = manifest["steps"][-1]
    assert step["validation"]["passed"] and step["settings"]["auto_excluded"]
    assert step["settings"]["exclusion"]["int8_cosine_mean"] == pytest.approx(cos)
    excluded = step["settings"]["excluded_nodes"]
    assert 0 < len(excluded) < len(quantizable_nodes(tmp_path / "auto" / "model.onnx"))
    assert set(step["settings"]["excluded_why"]) == set(excluded)


def _clear_optimum_caches():
    from recfeat.exporters import families as fam

    for fn in (fam._optimum_version, fam._onnx_config_constructor, fam.optimum_inputs, fam.optimum_ort_model_type):
        fn.cache_clear()


def test_optimum_settings_equal_the_fallbacks(monkeypatch):
    """With optimum (the ``onnx`` extra) the per-architecture inputs / axes / ORT model type,
    fusion options and quantisation presets come from optimum; without it from recfeat's own
    values. Both must give the same graphs, so the two are compared here."""
    import sys

    from recfeat.exporters import families as fam
    from recfeat.exporters import optimize as opt
    from recfeat.exporters import quantize as q

    factories = {"bert": fam._bert, "distilbert": fam._distilbert, "gpt2": fam._gpt2}

    def snapshot():
        _clear_optimum_caches()
        out = {}
        for name, factory in factories.items():
            f = factory()  # a fresh instance: nothing cached from the other mode
            out[name] = (f.input_names, f.dynamic_axes(), f.ort_model_type)
        for level in ("O1", "O2", "O3"):
            options, only_ort = opt.fusion_settings("bert", level)
            out[level] = (dict(vars(options)), only_ort)
        for name, preset in q.PRESETS.items():
            for static in (False, True):
                c = q.preset_config(preset, is_static=static)
                out[name, static] = (c.per_channel, c.reduce_range, c.weight_type, c.activation_type,
                                     c.weight_symmetric, c.activation_symmetric, c.operators)  # fmt: skip
        return out

    with_optimum = snapshot()
    assert factories["gpt2"]().settings_source.startswith("optimum-onnx")
    assert "position_ids" not in with_optimum["gpt2"][0]  # computed in the graph from the mask
    for key in [k for k in sys.modules if k == "optimum" or k.startswith("optimum.")]:
        monkeypatch.setitem(sys.modules, key, None)
    monkeypatch.setitem(sys.modules, "optimum", None)
    try:
        without = snapshot()
        assert factories["bert"]().settings_source == "recfeat"
        assert q.preset_config(q.PRESETS["avx2"], is_static=False).source == "recfeat"
        assert opt.fusion_source() == "recfeat"
    finally:
        monkeypatch.undo()
        _clear_optimum_caches()
    assert without == with_optimum


def test_requantise_puts_nodes_back_last_layer_first_while_the_margin_holds():
    """After the role search (the FFN down-projection of every layer in float), nodes go
    back to int8 one at a time, last layer first, while mean >= threshold + margin; the
    first miss ends it and the kept set is written again; the manifest says why each
    remaining node stayed in float."""
    from recfeat.exporters.quantize import quantize_until_valid

    layers = range(4)
    nodes = [f"/l.{i}/{r}/MatMul" for i in layers for r in ("attention/dense", "output/dense")]
    # layer 1's FFN output hurts most; layer 0's alone would fit, but the miss at 1 ends it
    damage = {f"/l.{i}/output/dense/MatMul": d for i, d in zip(layers, (0.0005, 0.009, 0.001, 0.0006), strict=True)}
    state = {"written": []}

    def quantize(exclude):
        state["written"].append(list(exclude))
        return {"excluded_nodes": list(exclude)}

    def validate():
        quantized = [n for n in nodes if n not in state["written"][-1]]
        return _Validation(1.0 - 0.0001 - sum(damage.get(n, 0.0) for n in quantized))

    settings, result = quantize_until_valid(quantize, validate, nodes, auto_exclude=True,
                                            requantise_margin=0.002)  # fmt: skip
    ffn = [f"/l.{i}/output/dense/MatMul" for i in layers]
    # plain int8 0.9888; FFN role in float 0.9999; layer 3 back 0.9993, layer 2 back 0.9983,
    # layer 1 back 0.9893 < 0.992: stop, layers 0-1 stay in float
    assert settings["excluded_nodes"] == ffn[:2]
    assert [t["trial"] for t in settings["attempts"]] == [
        "int8", "role /l.*/output/dense/MatMul in float", *(f"re-quantise {n}" for n in ffn[:0:-1]),
        "kept set, written again"]  # fmt: skip
    assert state["written"][-1] == ffn[:2] and result.passed  # the file on disk is the kept set
    assert result.cosine_mean == pytest.approx(0.9983)
    assert list(settings["excluded_why"]) == ffn[:2]
    assert "int8 mean cosine 0.98880 < 0.99" in settings["excluded_why"][ffn[1]]
    assert "in int8 again: 0.98930 < 0.9920" in settings["excluded_why"][ffn[1]]
    assert "not tried in int8" in settings["excluded_why"][ffn[0]]
    requantise = settings["exclusion"]["requantise"]
    assert [r["node"] for r in requantise["requantised"]] == ffn[:1:-1]
    assert requantise["stopped_at"] == ffn[1]

    # --exclude-node's nodes are never put back; no headroom above the floor: no trials
    settings, _ = quantize_until_valid(quantize, validate, nodes, auto_exclude=True,
                                       exclude=[nodes[0]], requantise_margin=0.02)  # fmt: skip
    assert settings["excluded_why"][nodes[0]] == "asked for (--exclude-node)"
    assert "skipped" in settings["exclusion"]["requantise"]
    assert not any(t["trial"].startswith("re-quantise") for t in settings["attempts"])


def test_reuse_previous_goes_back_by_rename(tmp_path):
    from recfeat.exporters.quantize import previous_file, reuse_previous

    dst = tmp_path / "m.onnx"
    calls = []

    def quantize(exclude):
        calls.append(list(exclude))
        dst.write_text(",".join(exclude))
        return {"excluded_nodes": list(exclude)}

    wrapped = reuse_previous(quantize, dst)
    wrapped(["a", "b"])
    wrapped(["a"])
    assert dst.read_text() == "a" and previous_file(dst).read_text() == "a,b"
    assert wrapped(["a", "b"]) == {"excluded_nodes": ["a", "b"]}  # back: no quantisation
    assert calls == [["a", "b"], ["a"]] and dst.read_text() == "a,b"
    assert not previous_file(dst).exists()
    wrapped([])
    assert calls[-1] == [] and dst.read_text() == ""
