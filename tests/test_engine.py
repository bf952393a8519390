"""The one encode loop: every backend reports the same statistics (truncation included),
overlap changes nothing, and encoders behave as scikit-learn transformers."""

from __future__ import annotations

import numpy as np
import pytest
from _export_helpers import SAMPLE_TEXTS, make_tiny

from recfeat import get_registry
from recfeat.encode import engine

pytest.importorskip("onnxruntime")

LONG = "the tuner clips on well and the strings stay in tune for weeks " * 12  # ~150 tokens


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny BERT-shaped model with its ONNX and OpenVINO exports."""
    from recfeat.exporters.pipeline import ExportSpec, run_export

    root = tmp_path_factory.mktemp("engine")
    model = make_tiny("bert", root / "model")
    run_export(ExportSpec(model=str(model)), root / "onnx")
    formats = {"onnx": root / "onnx"}
    try:
        import openvino  # noqa: F401

        run_export(ExportSpec(model=str(model), format="openvino"), root / "ov")
        formats["openvino"] = root / "ov"
    except ImportError:
        pass
    return model, formats


def _encoders(tiny, max_length):
    model, formats = tiny
    reg = get_registry("encoder")
    yield "torch", reg.create("hf", model=str(model), max_length=max_length, pooling="mean")
    for backend, folder in formats.items():
        yield backend, reg.create(backend, path=str(folder), max_length=max_length)


@pytest.mark.parametrize("max_length", [16, 512])
def test_every_backend_reports_the_same_statistics(tiny, max_length):
    texts = [*SAMPLE_TEXTS, LONG, ""]
    want = None
    seen = set()
    for backend, enc in _encoders(tiny, max_length):
        enc.encode(texts)
        stats = enc.last_stats
        assert set(stats) == set(engine.STAT_KEYS), backend
        assert stats["texts"] == len(texts)
        if max_length == 16:
            # LONG and the long review are cut at 16 tokens; every backend must say so
            assert stats["truncated_texts"] >= 2, (backend, stats)
            assert stats["tokens_dropped"] > 100, (backend, stats)
        else:
            assert stats["truncated_texts"] == 0 and stats["tokens_dropped"] == 0, backend
        counts = (stats["tokens"], stats["truncated_texts"], stats["tokens_dropped"])
        want = want or counts
        assert counts == want, f"{backend} counts {counts}, torch counted {want}"
        seen.add(backend)
    assert {"torch", "onnx"} <= seen


def test_exported_backends_match_torch_through_the_same_loop(tiny):
    encoders = dict(_encoders(tiny, 64))
    ref = encoders.pop("torch").encode(SAMPLE_TEXTS)
    for backend, enc in encoders.items():
        got = enc.encode(SAMPLE_TEXTS)
        cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
        assert cos.min() > 0.99, backend


def test_overlap_gives_the_same_vectors_and_statistics(tiny):
    model, _ = tiny
    texts = [t for _ in range(5) for t in SAMPLE_TEXTS] + [LONG]
    reg = get_registry("encoder")
    plain = reg.create("hf", model=str(model), max_length=32)
    overlapped = reg.create("hf", model=str(model), max_length=32, overlap=True)
    a = plain.encode(texts)
    b = overlapped.encode(texts)
    np.testing.assert_allclose(a, b, atol=1e-5)
    for key in ("texts", "tokens", "truncated_texts", "tokens_dropped"):
        assert plain.last_stats[key] == overlapped.last_stats[key], key


def test_overlap_raises_tokenizer_errors_in_the_caller(tiny, monkeypatch):
    model, _ = tiny
    enc = get_registry("encoder").create("hf", model=str(model), overlap=True)
    enc.load()

    def broken(*args, **kwargs):
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr(engine, "tokenize", broken)
    with pytest.raises(RuntimeError, match="tokenizer exploded"):
        enc.encode(["a", "b"])


def test_plan_rounds_widths_and_caps_at_max_length():
    plan = engine.BatchPlan(batch_tokens=64, max_batch_size=8, pad_multiple=16, max_length=20)
    lengths = np.array([3, 20, 17, 5])
    batches = plan.batches(lengths)
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3]
    assert plan.width(lengths[[1, 2]]) == 20  # 32 rounded, capped at the position limit
    assert plan.width(lengths[[0, 3]]) == 16


# -- scikit-learn -----------------------------------------------------------------------------
def test_encoder_clone_params_and_transform(tiny):
    import pandas as pd
    from sklearn.base import clone

    model, formats = tiny
    enc = get_registry("encoder").create("hf", model=str(model), max_length=32)
    copy = clone(enc)
    assert copy.get_params() == enc.get_params() and copy is not enc
    series = pd.Series(SAMPLE_TEXTS)
    np.testing.assert_allclose(copy.fit(series).transform(series), enc.encode(SAMPLE_TEXTS),
                               atol=1e-6)  # fmt: skip
    frame = pd.DataFrame({"text": SAMPLE_TEXTS})
    assert enc.fit_transform(frame).shape == (len(SAMPLE_TEXTS), 64)
    exported = get_registry("encoder").create("onnx", path=str(formats["onnx"]))
    assert clone(exported).get_params() == exported.get_params()


def test_set_params_drops_the_loaded_model(tiny):
    model, _ = tiny
    enc = get_registry("encoder").create("hf", model=str(model), max_length=32)
    enc.encode(["x"])
    assert enc._loaded is not None
    enc.set_params(max_length=8)
    assert enc._loaded is None
    enc.encode([LONG])
    assert enc.last_stats["truncated_texts"] == 1


def test_bad_option_through_set_params_is_caught_before_work(tiny):
    from recfeat.errors import OptionError

    model, _ = tiny
    enc = get_registry("encoder").create("hf", model=str(model))
    enc.set_params(pooling="average")
    with pytest.raises(OptionError, match="valid poolings"):
        enc.encode(["x"])


def test_encoder_as_first_step_of_a_pipeline(mi_review_texts):
    """minilm -> logistic regression predicting a review's star rating band from its text."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = mi_review_texts[:120]
    # a label text alone determines: mentions of price words vs not (learnable, not random)
    labels = np.array(["price" in t.lower() or "cheap" in t.lower() for t in texts])
    if labels.all() or not labels.any():
        pytest.fail("fixture texts give one class only")
    pipe = make_pipeline(
        get_registry("encoder").create("minilm", max_length=64),
        LogisticRegression(max_iter=1000),
    )
    pipe.fit(texts, labels)
    assert pipe.score(texts, labels) > 0.75


def test_openvino_run_of_one_batch_uses_every_request_and_keeps_row_order(tiny):
    """Under THROUGHPUT one big batch is cut into a slice per request (a single synchronous
    request would run on one stream); the rows come back as one request would give them."""
    _, formats = tiny
    if "openvino" not in formats:
        pytest.skip("openvino is not installed")
    enc = get_registry("encoder").create("openvino", path=str(formats["openvino"]), precision="fp32")
    backend = enc.open_backend()
    tokens = enc.tokenize([*SAMPLE_TEXTS, LONG] * 3)
    from recfeat.encode.batching import pad_batch

    idx = np.arange(len(tokens.lengths))
    feed = pad_batch(tokens.ids, idx, int(tokens.lengths.max()), 0)
    one_request = backend._infer({k: v for k, v in feed.items() if k in backend.names})
    calls = []
    real_submit = backend.submit
    backend.submit = lambda f: calls.append(len(next(iter(f.values())))) or real_submit(f)
    split = backend.run(feed)
    if backend.requests > 1:
        assert len(calls) == backend.requests and sum(calls) == len(idx)
    np.testing.assert_allclose(split, one_request, rtol=1e-4, atol=1e-5)
