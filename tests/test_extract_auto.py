"""`recfeat extract --backend auto`: measures candidates on the user's corpus, says what it
picked and why, and writes the same vectors as the chosen backend would."""

from __future__ import annotations

import gzip
import json

import numpy as np
from click.testing import CliRunner

from recfeat.cli.main import cli
from recfeat.data.features import read_features


def _subset(src, dst, n=40):
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(n)]
    dst.write_text("".join(lines), encoding="utf-8")
    return dst


def test_backend_auto_picks_a_passing_backend_and_caches_choice(
    tmp_path, musical_instruments, monkeypatch
):
    import recfeat.selection.auto_backend as ab

    # Only the torch candidates: exporting ONNX/OpenVINO is covered by the exporter tests.
    monkeypatch.setattr(ab, "DEFAULT_CANDIDATES", ("torch-fp32", "torch-bf16"))
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))
    data = _subset(musical_instruments, tmp_path / "mi.json")
    out = tmp_path / "items.parquet"
    args = ["extract", str(data), "--format", "amazon", "--level", "item",
            "--backend", "auto", "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "backend auto -> torch-" in res.output
    assert "fastest passing the accuracy gate" in res.output
    ids, vectors, manifest = read_features(out)
    assert vectors.shape[1] == 384 and len(ids) > 0
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    cached = json.loads((tmp_path / "cache" / "auto_backend.json").read_text())
    assert cached  # the choice is remembered per machine and model

    # second run: the cached choice is reused, not re-measured
    res2 = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "items2.parquet")])
    assert res2.exit_code == 0, res2.output
    assert "measuring" not in res2.output


def test_backend_auto_rejects_precision(tmp_path):
    res = CliRunner().invoke(
        cli, ["extract", "sample", "--backend", "auto", "--precision", "bf16",
              "--out", str(tmp_path / "x.parquet")],  # fmt: skip
    )
    assert res.exit_code == 2
    assert "--backend auto chooses the precision itself" in res.output
    assert not (tmp_path / "x.parquet").exists()
