"""docs/python.md runs: every python block, in order, in one namespace, in a fresh folder."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

GUIDE = REPO / "docs" / "python.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)


def test_guide_has_the_whole_job():
    text = "\n".join(blocks())
    for call in ("load_dataset", "encoder(", "extract(", "make_split", "evaluate(", "train(",
                 "save_model", "load_model", "recommend(", "export(", "verify_export",
                 "GridSearchCV", "bench_throughput"):  # fmt: skip
        assert call in text, f"docs/python.md shows no {call}"


@pytest.mark.slow
def test_guide_runs(tmp_path, monkeypatch, data_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECFEAT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))
    namespace: dict = {"__name__": "docs_python"}
    for i, block in enumerate(blocks()):
        try:
            exec(compile(block, f"docs/python.md block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the block that broke
            raise AssertionError(f"docs/python.md block {i + 1} failed: {exc!r}") from exc
