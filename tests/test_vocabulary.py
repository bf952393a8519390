"""One backend vocabulary: labels, one spelling each, and one way to name an exported model."""

from __future__ import annotations

import json

import pytest
from _export_helpers import SAMPLE_TEXTS, make_tiny
from click.testing import CliRunner

from recfeat.cli.main import cli
from recfeat.encode import vocabulary as v
from recfeat.errors import OptionError, UsageError


def test_labels_parse_into_backend_precision_variant():
    assert v.parse_choice("torch-bf16") == v.BackendChoice("torch", "bf16")
    assert v.parse_choice("onnx-int8").quantization == "dynamic"
    static = v.parse_choice("onnx-int8-static")
    assert (static.backend, static.precision, static.quantization) == ("onnx", "int8", "static")
    assert v.parse_choice("openvino-bf16").label == "openvino-bf16"
    for bad, message in (("torch", "BACKEND-PRECISION"), ("torch-int8", "not available with torch"),
                         ("onnx-bf16", "not available with onnx"), ("cuda-fp16", "unknown backend"),
                         ("onnx-int8-fast", "unknown variant")):  # fmt: skip
        with pytest.raises(OptionError, match=message):
            v.parse_choice(bad)


def test_one_spelling_per_backend_and_label():
    from recfeat.selection import backends as sb

    # the labels and backend names of before 0.1.0 are unknown names, not aliases
    assert sb.get_backend("onnx-int8-static").name == "onnx-int8-static"
    for old in ("onnx-qdq", "onnx-o2"):
        with pytest.raises(UsageError, match=f"unknown backend '{old}'"):
            sb.get_backend(old)
    assert v.check_backend("ONNX") == "onnx"
    for old in ("onnxruntime", "ort", "ov", "pytorch"):
        with pytest.raises(OptionError, match=f"unknown backend '{old}'"):
            v.check_backend(old)


def test_every_recfeat_bench_backend_is_spelled_in_the_vocabulary():
    from recfeat.bench import backends as bb
    from recfeat.selection import backends as sb

    for name, spec in bb.BACKENDS.items():
        if spec.kind == sb.RECFEAT:
            choice = v.parse_choice(name)
            assert (choice.backend, choice.precision, choice.label) == (spec.runtime, spec.precision, name)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    from recfeat.exporters.pipeline import ExportSpec, run_export

    root = tmp_path_factory.mktemp("vocab")
    run_export(ExportSpec(model=str(make_tiny("bert", root / "model"))), root / "onnx")
    return root


def test_an_export_folder_is_a_model_and_its_manifest_names_the_backend(export_dir):
    import recfeat

    name, opts = v.resolve_encoder(str(export_dir / "onnx"), precision="fp32")
    assert (name, opts) == ("onnx", {"path": str(export_dir / "onnx"), "precision": "fp32"})
    enc = recfeat.encoder(str(export_dir / "onnx"))
    assert enc.fingerprint()["backend"] == "onnx"
    assert enc.encode(SAMPLE_TEXTS).shape == (len(SAMPLE_TEXTS), 64)
    with pytest.raises(UsageError, match="is an export folder"):
        v.resolve_encoder(str(export_dir / "onnx"), backend="torch")
    with pytest.raises(UsageError, match="recfeat export --encoder minilm"):
        v.resolve_encoder("minilm", backend="onnx")
    assert v.resolve_encoder(str(export_dir / "model")) == ("hf", {"model": str(export_dir / "model")})
    assert v.resolve_encoder("org/some-model") == ("hf", {"model": "org/some-model"})
    assert v.resolve_encoder("minilm", backend="torch") == ("minilm", {})


def test_extract_takes_an_export_folder_as_the_encoder(export_dir, tmp_path):
    data = tmp_path / "r.csv"
    data.write_text("user,item,rating,review\nu1,b1,5,great strings\nu2,b1,3,ok tuner\n")
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(cli, ["extract", str(data), "--encoder", str(export_dir / "onnx"),
                                   "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["encoder"]["backend"] == "onnx"
    for key in ("truncated_texts", "tokens_dropped"):
        assert key in json.dumps(manifest)


def test_a_config_encoder_with_a_model_option_runs(export_dir, tmp_path):
    assert v.resolve_encoder("hf", model="org/m", precision="bf16") == (
        "hf", {"model": "org/m", "precision": "bf16"})  # fmt: skip
    config = tmp_path / "p.toml"
    config.write_text(f'[encoder]\nuse = "hf"\nmodel = "{export_dir / "model"}"\n')
    data = tmp_path / "r.csv"
    data.write_text("user,item,rating,review\nu1,b1,5,great strings\n")
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(cli, ["extract", str(data), "--config", str(config), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.with_suffix(".manifest.json").read_text())["encoder"]["backend"] == "torch"


def test_onnx_backend_with_an_encoder_folder_that_is_no_export_names_the_folder(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    data = tmp_path / "r.csv"
    data.write_text("user,item,rating,review\nu1,b1,5,great strings\n")
    res = CliRunner().invoke(cli, ["extract", str(data), "--backend", "onnx", "--encoder", str(folder),
                                   "--out", str(tmp_path / "o.parquet")])  # fmt: skip
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "plain" in res.output and "recfeat export" in res.output
