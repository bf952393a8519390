"""ONNX export: one graph (encoder + pooling + norm), dynamic axes, parity per family."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _export_helpers import SAMPLE_TEXTS, cosines, make_tiny

from recfeat.errors import UsageError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {kind: make_tiny(kind, root / kind) for kind in ("bert", "distilbert", "gpt2")}


def _export(model, out, **kw):
    from recfeat.exporters.pipeline import ExportSpec, run_export

    return run_export(ExportSpec(model=str(model), **kw), out)


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def bert_export(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "bert"
    _export(tiny["bert"], out, max_length=512)
    return out


def test_graph_has_family_inputs_and_stable_output(bert_export, tiny, tmp_path):
    import onnx

    graph = onnx.load(str(bert_export / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.output] == ["sentence_embedding"]
    # the pooled output keeps a dynamic batch axis, every input dynamic batch and sequence
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for inp in graph.input:
        dims = inp.type.tensor_type.shape.dim
        assert (dims[0].dim_param, dims[1].dim_param) == ("batch", "sequence")
    manifest = json.loads((bert_export / "manifest.json").read_text())
    assert manifest["family"] == "bert" and manifest["pooling"] == "mean"
    assert manifest["steps"][0]["validation"]["cosine_mean"] > 0.9999
    assert set(manifest["versions"]) >= {"torch", "onnx", "onnxruntime"}
    assert "model.onnx" in manifest["files"] and "tokenizer.json" in manifest["files"]


@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("length", [3, 77, 512])
def test_dynamic_shapes_match_torch(bert_export, tiny, batch, length):
    import torch

    from recfeat.encode.hf_models import load_transformer
    from recfeat.exporters.convert import build_pooled_module
    from recfeat.exporters.families import get_family

    loaded = load_transformer(str(tiny["bert"]), sdpa=False)
    module = build_pooled_module(loaded, get_family("bert"), "mean", False)
    rng = np.random.default_rng(batch * 1000 + length)
    ids = rng.integers(1000, 20000, (batch, length)).astype(np.int64)
    mask = np.ones_like(ids)
    for row in range(batch):  # ragged real lengths: padding inside every batch
        mask[row, rng.integers(1, length + 1) :] = 0
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    got = _session(bert_export / "model.onnx").run(None, feed)[0]
    with torch.inference_mode():
        want = module(**{k: torch.from_numpy(v) for k, v in feed.items()}).numpy()
    assert got.shape == (batch, 64)
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize(
    "kind,pooling,normalize",
    [
        ("bert", "cls", True),
        ("bert", "max", False),
        ("distilbert", "mean", True),
        ("gpt2", "last-token", False),
    ],
)
def test_pooling_parity_with_torch_encoder(tiny, tmp_path, kind, pooling, normalize):
    from recfeat.plugin.registry import get_registry

    out = tmp_path / kind
    manifest = _export(tiny[kind], out, pooling=pooling, normalize=normalize)
    assert manifest["inputs"] == (
        ["input_ids", "attention_mask", "token_type_ids"] if kind == "bert"
        else ["input_ids", "attention_mask"]
    )  # fmt: skip
    torch_enc = get_registry("encoder").create(
        "hf", model=str(tiny[kind]), pooling=pooling, normalize=normalize
    )
    onnx_enc = get_registry("encoder").create("onnx", path=str(out))
    want = torch_enc.encode(SAMPLE_TEXTS)
    got = onnx_enc.encode(SAMPLE_TEXTS)
    assert cosines(got, want).min() > 0.9999
    np.testing.assert_allclose(got, want, atol=5e-4)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_gpt2_left_and_right_padding_give_the_same_vectors(tiny, tmp_path):
    import transformers

    out = tmp_path / "gpt2"
    _export(tiny["gpt2"], out)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    tok.pad_token = tok.eos_token
    sess = _session(out / "model.onnx")
    results = {}
    for side in ("left", "right"):
        tok.padding_side = side
        enc = tok(SAMPLE_TEXTS, padding=True, return_tensors="np")
        results[side] = sess.run(None, {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")})[0]
    alone = np.concatenate([
        sess.run(None, {k: v.astype(np.int64) for k, v in tok([t], return_tensors="np").items()
                        if k in ("input_ids", "attention_mask")})[0]
        for t in SAMPLE_TEXTS
    ])  # fmt: skip
    np.testing.assert_allclose(results["left"], results["right"], atol=1e-4)
    np.testing.assert_allclose(results["right"], alone, atol=1e-4)


def test_unsupported_architecture_lists_families(tmp_path):
    from recfeat.exporters.families import UnsupportedArchitectureError

    model = make_tiny("electra", tmp_path / "electra")
    with pytest.raises(UnsupportedArchitectureError) as err:
        _export(model, tmp_path / "out")
    msg = str(err.value)
    assert "'electra'" in msg and "bert" in msg and "distilbert" in msg and "gpt2" in msg
    assert not (tmp_path / "out").exists()


def test_opset_too_old_is_a_clear_error(tiny, tmp_path):
    from recfeat.exporters.convert import OpsetError

    with pytest.raises(OpsetError, match=r"opset 9 is too old .* use --opset 17"):
        _export(tiny["bert"], tmp_path / "out", opset=9)
    assert not (tmp_path / "out").exists()


def test_external_data_on_request(tiny, tmp_path):
    from recfeat.plugin.registry import get_registry

    out = tmp_path / "ext"
    manifest = _export(tiny["distilbert"], out, external_data=True)
    assert (out / "model.onnx.data").stat().st_size > (out / "model.onnx").stat().st_size
    assert "model.onnx.data" in manifest["files"]
    vectors = get_registry("encoder").create("onnx", path=str(out)).encode(["a text", "another"])
    assert vectors.shape == (2, 64) and np.isfinite(vectors).all()


def test_existing_output_is_refused_without_force(tiny, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="--force"):
        _export(tiny["distilbert"], out)
    assert (out / "keep.txt").read_text() == "mine"
