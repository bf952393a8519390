"""`recfeat export`: the validation table, the folder contract and every bad input."""

from __future__ import annotations

import json

import pytest
from _export_helpers import make_tiny
from click.testing import CliRunner

from recfeat.cli.main import cli


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {kind: make_tiny(kind, root / kind) for kind in ("distilbert", "electra")}


def run(*args):
    result = CliRunner().invoke(cli, list(args))
    return result


def test_export_optimize_quantize_prints_table_and_writes_folder(tiny, tmp_path):
    out = tmp_path / "out"
    result = run("export", "--encoder", str(tiny["distilbert"]), "--out", str(out),
                 "--optimize", "O2", "--quantize", "dynamic-int8", "--preset", "avx512_vnni")  # fmt: skip
    assert result.exit_code == 0, result.output
    for needle in ("cosine mean", "cosine min", "cosine p1", "max abs diff", "export", "optimize O2",
                   "quantize dynamic-int8", "model_qint8_avx512_vnni.onnx"):  # fmt: skip
        assert needle in result.output
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "model_O2.onnx", "model_qint8_avx512_vnni.onnx", "tokenizer.json",
            "manifest.json"} <= names  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert manifest["steps"][-1]["settings"]["preset"] == "avx512_vnni"

    # an existing folder is refused, untouched, unless --force
    again = run("export", "--encoder", str(tiny["distilbert"]), "--out", str(out))
    assert again.exit_code == 2 and "already exists; pass --force" in again.output
    assert (out / "model_O2.onnx").exists()
    forced = run("export", "--encoder", str(tiny["distilbert"]), "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert not (out / "model_O2.onnx").exists()  # replaced as a whole


def test_forced_accuracy_drop_on_real_minilm_fails_and_writes_nothing(tmp_path, minilm_path):
    out = tmp_path / "minilm"
    # --no-auto-exclude: with the default search every MatMul would end up in float and pass
    result = run("export", "--encoder", "minilm", "--out", str(out), "--quantize", "dynamic-int8",
                 "--min-cosine", "0.99999", "--no-auto-exclude")  # fmt: skip
    assert result.exit_code == 1
    assert "validation failed at step 'quantize dynamic-int8'" in result.output
    assert "< --min-cosine 0.99999" in result.output and "max abs diff" in result.output
    assert "NO" in result.output  # the table shows the failing row
    assert not out.exists()
    assert not list(tmp_path.glob(".minilm.*"))
    assert not list(tmp_path.glob(".recfeat-*"))  # no temporary folder left behind


def test_unsupported_architecture(tiny, tmp_path):
    result = run("export", "--encoder", str(tiny["electra"]), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "cannot export architecture 'electra'" in result.output and "distilbert" in result.output


def test_calibration_too_small(tiny, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("one review\ntwo reviews\nthree\n", encoding="utf-8")
    result = run("export", "--encoder", str(tiny["distilbert"]), "--out", str(tmp_path / "o"),
                 "--quantize", "static-int8", "--calibration", str(texts))  # fmt: skip
    assert result.exit_code == 1
    assert "calibration data too small: 3 distinct non-empty texts" in result.output
    assert not (tmp_path / "o").exists()


def test_opset_too_old(tiny, tmp_path):
    result = run("export", "--encoder", str(tiny["distilbert"]), "--out", str(tmp_path / "o"),
                 "--opset", "9")  # fmt: skip
    assert result.exit_code == 2
    assert "opset 9 is too old" in result.output and "--opset 17" in result.output


def test_calibration_from_a_dataset_file(tiny, tmp_path, musical_instruments):
    from recfeat.components.dataset import read_texts

    texts = read_texts(str(musical_instruments), "auto")
    assert len(texts) > 10000 and all(t.strip() for t in texts[:100])


def test_an_export_folder_is_not_exported_again(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    result = run("export", "--encoder", str(folder), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "is already an export folder" in result.output
    assert not (tmp_path / "o").exists()
