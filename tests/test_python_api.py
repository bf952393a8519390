"""The Python API: lazy at import, and an extraction result goes straight into models."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _export_helpers import make_tiny

import recfeat


def test_import_recfeat_loads_no_heavy_library():
    code = ("import sys, recfeat; recfeat.encoder; "
            "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'pandas') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves():
    for name in recfeat.__all__:
        assert getattr(recfeat, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        recfeat.nope  # noqa: B018


@pytest.fixture(scope="module")
def sample_and_encoder(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    enc = recfeat.encoder(str(make_tiny("bert", root / "model")), max_length=32)
    return recfeat.load_dataset(format="sample"), enc


def test_an_extraction_result_is_features_for_models_and_evaluate(sample_and_encoder, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path))
    data, enc = sample_and_encoder
    items = recfeat.extract(data, level="item", encoder=enc)
    reviews = recfeat.extract(data, level="review", encoder=enc)
    model = recfeat.get_registry("model").create("content")
    model.fit(data.interactions, item_features=items)  # no AttributeError: FeatureResult works
    assert model.feature_dim_ == 64
    # review vectors become each item's mean over the TRAINING reviews only
    train = data.interactions.iloc[: len(data.interactions) // 2]
    model.fit(train, item_features=reviews)
    trained_items = set(train["item"].astype(str))
    means = reviews.to_features().item_means(train)
    assert set(means.ids) <= trained_items
    scores = model.score_items(train["user"].astype(str).unique()[:3], sorted(trained_items)[:5])
    assert np.isfinite(scores).all()
    result = recfeat.evaluate(data, items, models=["popularity", "content"], split="random", k=5)
    assert "content" in result.display_table().index


def test_model_is_an_unfitted_recommendation_model_for_grid_search():
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    from recfeat.errors import OptionError, RecfeatError

    bias = recfeat.model("bias", reg_user=5.0)
    assert type(bias) is type(recfeat.get_registry("model").create("bias"))
    assert bias.get_params()["reg_user"] == 5.0
    assert not [a for a in vars(bias) if a.endswith("_")]  # unfitted
    assert clone(bias).get_params() == bias.get_params()
    data = recfeat.load_dataset(format="sample").interactions
    search = GridSearchCV(recfeat.model("bias"), {"reg_user": [1.0, 10.0]},
                          scoring=recfeat.rmse_scorer, cv=2)  # fmt: skip
    search.fit(data[["user", "item"]], data["rating"])
    assert search.best_params_["reg_user"] in (1.0, 10.0) and np.isfinite(search.best_score_)
    with pytest.raises(OptionError, match="unknown option"):
        recfeat.model("bias", no_such_option=1)
    with pytest.raises(RecfeatError, match="unknown model 'biass'"):
        recfeat.model("biass")


def test_api_words_match_the_cli():
    """encoder = the text encoder, model = the recommendation model, on every function."""
    import inspect

    for fn in (recfeat.export, recfeat.bench_throughput, recfeat.choose_backend):
        assert next(iter(inspect.signature(fn).parameters)) == "encoder", fn.__name__
    assert "backend" in inspect.signature(recfeat.export).parameters
    assert "format" not in inspect.signature(recfeat.export).parameters
    assert next(iter(inspect.signature(recfeat.train).parameters.values())).name == "data"
    assert list(inspect.signature(recfeat.train).parameters)[1] == "model"
