"""The approximate nearest-neighbour index (``recfeat.serve.index``, ``recfeat serve --index``):
it finds what the exact search finds, leaves excluded items out, returns scores on the exact
scale; the server ranks through it with the exact path's items and scores; a missing faiss
names its install command and a bad ``--index`` is a usage error."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner

from recfeat.errors import MissingDependencyError, OptionError

DIM = 16


def clustered(n: int, seed: int = 0, dim: int = DIM, clusters: int = 40) -> np.ndarray:
    """Unit rows around ``clusters`` centres, with spread enough that neighbours differ."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def vectors():
    x = clustered(4000, dim=48, clusters=60)
    return x[:3800], x[3800:]  # items, queries


def test_hnsw_finds_what_the_exact_search_finds(vectors):
    pytest.importorskip("faiss")
    from recfeat.serve.index import ExactIndex, HNSWIndex, build_index

    items, queries = vectors
    truth, exact_scores = ExactIndex(items).search(queries, 10)
    # the exact index is exact: the same top 10 as a full sort
    full = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :10]
    assert recall(truth, full) == 1.0
    assert np.all(np.diff(exact_scores, axis=1) <= 0)
    hnsw = build_index(items, "hnsw")
    assert isinstance(hnsw, HNSWIndex) and len(hnsw) == len(items)
    found, scores = hnsw.search(queries, 10)
    assert found.shape == scores.shape == (len(queries), 10)
    assert recall(found, truth) >= 0.95
    assert isinstance(build_index(items, "auto"), ExactIndex)  # under AUTO_MIN_ITEMS


def test_excluded_rows_never_come_back_and_k_rows_still_do(vectors):
    pytest.importorskip("faiss")
    from recfeat.serve.index import ExactIndex, HNSWIndex

    items, queries = vectors
    exact, hnsw = ExactIndex(items), HNSWIndex(items)
    truth, _ = exact.search(queries, 10)
    for index in (exact, hnsw):
        for q, best in zip(queries[:50], truth[:50], strict=True):
            seen = best[:5]  # the five best: what a user who has seen them must not get
            ids, scores = index.search(q, 10, exclude=seen)
            assert not set(ids[0]) & set(seen)
            assert (ids[0] >= 0).all() and np.isfinite(scores).all()
    # everything but two rows excluded: the exact index pads with -1 / -inf
    ids, scores = exact.search(queries[0], 5, exclude=np.arange(len(items) - 2))
    assert sorted(ids[0][:2]) == [len(items) - 2, len(items) - 1] and (ids[0][2:] == -1).all()
    assert np.isneginf(scores[0][2:]).all()


def test_hnsw_scores_are_the_exact_inner_products(vectors):
    pytest.importorskip("faiss")
    from recfeat.serve.index import HNSWIndex

    items, queries = vectors
    ids, scores = HNSWIndex(items).search(queries, 10)
    want = np.einsum("qkd,qd->qk", items[ids], queries)
    np.testing.assert_allclose(scores, want, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-7)  # best first


def test_bad_vectors_are_one_data_error():
    from recfeat.errors import DataError
    from recfeat.serve.index import ExactIndex

    with pytest.raises(DataError, match=r"\(n, d\) matrix"):
        ExactIndex(np.zeros(5, np.float32))
    with pytest.raises(DataError, match="NaN or infinite"):
        ExactIndex(np.array([[1.0, np.nan]], np.float32))


# -- the server ---------------------------------------------------------------------------


class _VectorEncoder:
    """A DIM-wide stand-in for the encoder the item vectors came from."""

    name = "vec16"
    backend = "fake"
    dim = DIM

    def fingerprint(self):
        return {"encoder": self.name, "backend": self.backend, "max_length": 64,
                "pooling": "mean", "normalize": True, "precision": "fp32"}  # fmt: skip

    def encode(self, texts, per_text: bool = False):
        texts = list(texts)
        n = len(texts)
        self.last_stats = {"n_kept": np.ones(n, np.int64), "n_dropped": np.zeros(n, np.int64),
                           "tokenize_seconds": 0.0}  # fmt: skip
        rows = [np.random.default_rng(len(t)).standard_normal(DIM) for t in texts]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, DIM), np.float32)


@pytest.fixture(scope="module")
def item_file(tmp_path_factory):
    import pandas as pd

    from recfeat.data.features import write_features

    path = tmp_path_factory.mktemp("ann") / "items.parquet"
    meta = {"level": "item", "encoder": _VectorEncoder().fingerprint(), "backend": "fake",
            "max_length": 64, "pooling": "mean", "precision": "fp32"}  # fmt: skip
    ids = pd.DataFrame({"item": [f"i{j}" for j in range(3000)]})
    return write_features(path, ids, clustered(3000, seed=1), meta)


def _served(item_file, index: str):
    """A loaded server state over ``item_file`` and a client of its app (no socket)."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from recfeat.serve.app import build_app
    from recfeat.serve.server import build_state
    from recfeat.serve.state import ServeSettings

    state, load = build_state(ServeSettings(index=index), encoder="vec16", engine=_VectorEncoder(),
                              item_features=str(item_file), cleaners="none")  # fmt: skip
    line = load()
    state.ready = True
    return state, line, TestClient(build_app(state))


def test_serve_with_hnsw_ranks_the_same_items_with_the_same_scores_as_exact(item_file):
    pytest.importorskip("faiss")
    exact_state, exact_line, exact = _served(item_file, "exact")
    hnsw_state, hnsw_line, hnsw = _served(item_file, "hnsw")
    assert exact_line.endswith("index exact") and "index hnsw (M 32" in hnsw_line
    assert " built in " in hnsw_line
    assert exact.get("/ready").json()["index"] == "exact"
    assert hnsw.get("/ready").json()["index"] == "hnsw"
    assert hnsw_state.recommender.index is not None and exact_state.recommender.index is None
    for j in range(0, 3000, 150):
        history = [f"i{j}", f"i{j + 1}", f"i{j + 7}"]
        body = {"history_items": history, "k": 10}
        want = exact.post("/recommend", json=body).json()
        got = hnsw.post("/recommend", json=body).json()
        assert got["source"] == want["source"] == "text-profile"
        assert [r["item"] for r in got["items"]] == [r["item"] for r in want["items"]]
        # both paths score rows with one float32 product (the stored vectors' precision);
        # BLAS may sum a subset's rows in another order than the whole store's
        np.testing.assert_allclose([r["score"] for r in got["items"]],
                                   [r["score"] for r in want["items"]], rtol=0, atol=1e-6)  # fmt: skip
        assert not set(history) & {r["item"] for r in got["items"]}  # seen: left out
        # one item, not excluded: it is its own nearest neighbour
        alone = hnsw.post("/recommend", json={"history_items": [f"i{j}"], "exclude_seen": False})
        assert alone.json()["items"][0]["item"] == f"i{j}"


def test_items_stored_after_start_are_ranked_with_their_new_vectors(item_file):
    """The index holds the items as they were at start: a new item, and a start-up item
    whose vector was replaced, are scored from the store's current vectors."""
    pytest.importorskip("faiss")
    state, _, _ = _served(item_file, "hnsw")
    store, rec = state.store, state.recommender
    query = store.vectors[10].copy()
    far = -query  # the opposite direction: ranks last wherever it is scored
    before = [r["item"] for r in rec._by_text(query[None, :], 5, set())]
    assert "i10" in before
    store.put_many(["i10", "new-1"], np.stack([far, query + 1e-3]))  # replaced, and new
    after = [r["item"] for r in rec._by_text(query[None, :], 5, set())]
    assert "i10" not in after and after[0] == "new-1"
    # the same ranking as the exact path over the changed store
    rec.index, index = None, rec.index
    assert [r["item"] for r in rec._by_text(query[None, :], 5, set())] == after
    rec.index = index
    # everything excluded but a handful: the index finds too few, every row is scored
    exclude = set(store.ids[8:])
    ranked = rec._by_text(query[None, :], 5, exclude)
    assert [r["item"] for r in ranked] == [i for i in _exact_order(state, query) if i not in exclude][:5]


def _exact_order(state, query):
    rec, index = state.recommender, state.recommender.index
    rec.index = None
    try:
        return [r["item"] for r in rec._by_text(query[None, :], len(state.store), set())]
    finally:
        rec.index = index


# -- without faiss, and bad values ----------------------------------------------------------


@pytest.fixture
def no_faiss(monkeypatch):
    """faiss as if it were not installed: its import fails, find_spec finds nothing."""
    monkeypatch.setitem(sys.modules, "faiss", None)


def test_a_missing_faiss_names_the_install_command(no_faiss, vectors):
    from recfeat.api import serve_settings
    from recfeat.serve.index import AUTO_MIN_ITEMS, HNSWIndex, resolve_index_kind

    with pytest.raises(MissingDependencyError, match=r"pip install 'recfeat\[ann\]'"):
        HNSWIndex(vectors[0])
    with pytest.raises(MissingDependencyError, match=r"recfeat serve --index hnsw.*recfeat\[ann\]"):
        serve_settings(index="hnsw")
    # auto falls back to the exact search without faiss, whatever the size
    assert resolve_index_kind("auto", AUTO_MIN_ITEMS) == "exact"


def test_auto_is_approximate_from_the_threshold_when_faiss_is_installed():
    pytest.importorskip("faiss")
    from recfeat.serve.index import AUTO_MIN_ITEMS, resolve_index_kind

    assert resolve_index_kind("auto", AUTO_MIN_ITEMS) == "hnsw"
    assert resolve_index_kind("auto", AUTO_MIN_ITEMS - 1) == "exact"
    assert resolve_index_kind("exact", 10 * AUTO_MIN_ITEMS) == "exact"


def test_the_command_line_names_the_extra_when_faiss_is_missing(no_faiss, monkeypatch):
    from recfeat.cli.main import cli

    monkeypatch.delenv("RECFEAT_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--index", "hnsw", "--port", "0"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'recfeat[ann]'" in lines[0]


def test_a_bad_index_value_is_a_usage_error(monkeypatch):
    from recfeat.api import serve_settings
    from recfeat.cli.main import cli

    monkeypatch.delenv("RECFEAT_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--index", "hnws", "--port", "0"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "--index 'hnws' is not an index kind; use one of exact, hnsw, auto" in lines[0]
    assert "Did you mean 'hnsw'?" in lines[0]
    with pytest.raises(OptionError, match="--index 3"):
        serve_settings(index=3)


def test_auto_at_start_takes_hnsw_for_a_large_catalogue_or_says_how_to(item_file, monkeypatch,
                                                                       capsys):  # fmt: skip
    """The start-up line names the index ``auto`` chose; a large catalogue without faiss is
    served exactly, with a note naming the install command."""
    import recfeat.serve.index as ann

    monkeypatch.setattr(ann, "AUTO_MIN_ITEMS", 3000)  # the item file's size: "large" here
    if ann.has_faiss():
        state, line, client = _served(item_file, "auto")
        assert "index hnsw" in line and client.get("/ready").json()["index"] == "hnsw"
    monkeypatch.setitem(sys.modules, "faiss", None)
    state, line, client = _served(item_file, "auto")
    assert line.endswith("index exact") and client.get("/ready").json()["index"] == "exact"
    err = capsys.readouterr().err
    assert "3000 items are searched exactly" in err and "pip install 'recfeat[ann]'" in err
    monkeypatch.setattr(ann, "AUTO_MIN_ITEMS", 3001)
    _served(item_file, "auto")
    assert "searched exactly" not in capsys.readouterr().err  # small: nothing to say
