"""Issue 26: `recfeat export --encoder minilm --quantize dynamic-int8`, no other flag, holds
its own 0.99 gate on any CPU (the built-in validation texts, whose very short ones pulled
plain int8 under it) and on real reviews, and the manifest says what stayed in float and why."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from recfeat.cli.main import cli


@pytest.mark.slow
def test_default_dynamic_int8_export_of_minilm_passes_its_gate(tmp_path, minilm_path, mi_review_texts):
    from recfeat.encode.similarity import cosine_rows
    from recfeat.exporters.quantize import detect_preset
    from recfeat.exporters.validate import BUILTIN_TEXTS, validation_texts
    from recfeat.plugin.registry import get_registry

    out = tmp_path / "minilm-int8"
    result = CliRunner().invoke(cli, ["export", "--encoder", "minilm", "--quantize", "dynamic-int8",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    step = manifest["steps"][-1]
    # the plain graph quantised (no --optimize here, and none would change it)
    assert step["file"] == manifest["default_file"] == f"model_qint8_{detect_preset()}.onnx"
    v, settings = step["validation"], step["settings"]
    assert v["passed"] and v["cosine_mean"] >= v["min_cosine"] == 0.99
    assert v["n_texts"] == len(BUILTIN_TEXTS)
    attempts = settings["attempts"]
    assert attempts[0]["trial"] == "int8" and settings["exclusion"]["int8_cosine_mean"] == attempts[0]["cosine_mean"]
    assert settings["auto_excluded"] == (not attempts[0]["passed"])  # float only when plain int8 missed
    assert set(settings["excluded_why"]) == set(settings["excluded_nodes"])
    assert all("int8 mean cosine" in why for why in settings["excluded_why"].values())
    if settings["auto_excluded"]:  # the kept set is the file on disk: its row is the last attempt
        assert attempts[-1]["excluded_nodes"] == len(settings["excluded_nodes"])
        assert attempts[-1]["cosine_mean"] == v["cosine_mean"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no scratch left

    # the gate holds on real reviews too: the sample the exporter would validate them on
    texts = validation_texts(mi_review_texts)
    int8 = get_registry("encoder").create("onnx", path=str(out)).encode(texts)
    torch_vecs = get_registry("encoder").create("minilm").encode(texts)
    assert cosine_rows(int8, torch_vecs).mean() >= v["min_cosine"]
