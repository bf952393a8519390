"""The exported folder as an encoder backend: real MiniLM parity, integrity checks, OpenVINO."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from _export_helpers import SAMPLE_TEXTS, cosines, make_tiny

from recfeat.errors import OptionError
from recfeat.exporters.manifest import ArtifactError
from recfeat.plugin.registry import get_registry


@pytest.fixture(scope="module")
def minilm_export(tmp_path_factory, minilm_path, mi_review_texts):
    """The real all-MiniLM-L6-v2: export -> O2 -> dynamic int8, validated on real reviews."""
    from recfeat.exporters.plugin import OnnxExporter

    texts = list(mi_review_texts)
    out = tmp_path_factory.mktemp("minilm") / "onnx"
    OnnxExporter(optimize="O2", quantize="dynamic-int8").export("minilm", out, texts=texts[:300])
    return out, texts[300:]  # held out: never seen by validation


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory):
    from recfeat.exporters.pipeline import ExportSpec, run_export

    root = tmp_path_factory.mktemp("tiny")
    out = {}
    for kind in ("bert", "gpt2"):
        model = make_tiny(kind, root / f"{kind}-model")
        out[kind] = root / f"{kind}-onnx"
        run_export(ExportSpec(model=str(model)), out[kind])
    return out


def test_minilm_backend_matches_torch_within_manifest_figures(minilm_export):
    minilm_export, texts = minilm_export
    manifest = json.loads((minilm_export / "manifest.json").read_text())
    assert manifest["default_file"].startswith("model_qint8_")  # the plain graph quantised
    assert manifest["source"]["random_init"] is False and manifest["normalize"] is True
    torch_vecs = get_registry("encoder").create("minilm").encode(texts)

    int8 = get_registry("encoder").create("onnx", path=str(minilm_export))
    got = int8.encode(texts)
    quant = manifest["steps"][-1]["validation"]
    assert got.shape == torch_vecs.shape == (len(texts), 384)
    # the figures the manifest promises hold on reviews it did not validate on
    cos = cosines(got, torch_vecs)
    assert cos.mean() >= quant["min_cosine"]
    assert abs(cos.mean() - quant["cosine_mean"]) < 0.003 and cos.min() > quant["cosine_min"] - 0.02
    assert int8.fingerprint()["backend"] == "onnx"
    assert int8.fingerprint()["weights_sha256"] == manifest["files"][manifest["default_file"]]["sha256"]
    assert int8.fingerprint()["precision"] == "int8"

    fp32 = get_registry("encoder").create("onnx", path=str(minilm_export), precision="fp32")
    assert fp32.model_file.name == "model_O2.onnx"
    assert cosines(fp32.encode(texts), torch_vecs).min() > 0.9999


def test_batching_keeps_input_order(tiny_exports):
    texts = SAMPLE_TEXTS * 3
    big = get_registry("encoder").create("onnx", path=str(tiny_exports["bert"])).encode(texts)
    small = get_registry("encoder").create(
        "onnx", path=str(tiny_exports["bert"]), batch_tokens=40, max_batch_size=2
    )
    vecs = small.encode(texts)
    assert small.last_stats["batches"] > 5
    np.testing.assert_allclose(vecs, big, atol=1e-5)
    single = np.concatenate([small.encode([t]) for t in texts[:4]])
    np.testing.assert_allclose(vecs[:4], single, atol=1e-5)


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_model_file_is_refused(tiny_exports, tmp_path, damage):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_exports["bert"], folder)
    model = folder / "model.onnx"
    data = bytearray(model.read_bytes())
    if damage == "truncate":
        model.write_bytes(bytes(data[: len(data) // 2]))
        match = "truncated"
    else:
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
        match = "corrupted"
    enc = get_registry("encoder").create("onnx", path=str(folder))
    with pytest.raises(ArtifactError, match=match):
        enc.encode(["a text"])


def test_manifest_from_another_tokenizer_is_refused(tiny_exports, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(tiny_exports["bert"], folder)
    # the GPT-2 export's manifest dropped into the BERT folder
    shutil.copy(tiny_exports["gpt2"] / "manifest.json", folder / "manifest.json")
    enc = get_registry("encoder").create("onnx", path=str(folder))
    with pytest.raises(ArtifactError, match="tokenizer .* does not match its manifest"):
        enc.encode(["a text"])


@pytest.mark.parametrize("field", ["max_length", "steps", "source", "hidden_size"])
def test_manifest_missing_a_field_names_it(tiny_exports, tmp_path, field):
    import json

    folder = tmp_path / "edited"
    shutil.copytree(tiny_exports["bert"], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest[field]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=f"lacks the field '{field}'; re-run `recfeat export`"):
        get_registry("encoder").create("onnx", path=str(folder)).encode(["a text"])


def test_missing_folder_and_options_baked_into_the_graph(tiny_exports, tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        get_registry("encoder").create("onnx", path=str(tmp_path / "nope"))
    with pytest.raises(OptionError, match="pooling 'mean' is built into"):
        get_registry("encoder").create("onnx", path=str(tiny_exports["bert"]), pooling="cls")
    with pytest.raises(OptionError, match="no int8 model"):
        get_registry("encoder").create("onnx", path=str(tiny_exports["bert"]), precision="int8")
    with pytest.raises(OptionError, match="openvino"):
        get_registry("encoder").create("onnx", path=str(tiny_exports["bert"]), precision="bf16")


def test_openvino_export_and_backend(tmp_path):
    from recfeat.exporters.pipeline import ExportSpec, run_export

    model = make_tiny("distilbert", tmp_path / "m")
    out = tmp_path / "ov"
    manifest = run_export(ExportSpec(model=str(model), format="openvino"), out)
    assert [s["step"] for s in manifest["steps"]] == ["export", "openvino", "openvino"]
    assert (out / "openvino_model.xml").exists() and (out / "openvino_model.bin").exists()
    want = get_registry("encoder").create("hf", model=str(model)).encode(SAMPLE_TEXTS)
    for precision, floor in (("fp32", 0.9999), ("bf16", 0.99)):
        enc = get_registry("encoder").create("openvino", path=str(out), precision=precision)
        assert enc.fingerprint()["backend"] == "openvino"
        assert cosines(enc.encode(SAMPLE_TEXTS), want).min() > floor
    with pytest.raises(OptionError, match="no onnx model|no int8"):
        get_registry("encoder").create("openvino", path=str(out), precision="int8")
