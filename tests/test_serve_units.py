"""The serving parts in process, without HTTP: the engine's per-text token counts, the
micro-batcher (merging, the bounded queue, timeouts, draining), the LRU and the key check.
The HTTP server itself is tested end to end in tests/test_serve.py."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _export_helpers import SAMPLE_TEXTS, make_tiny

from recfeat import get_registry
from recfeat.serve.auth import authorized
from recfeat.serve.batcher import GroupResult, MicroBatcher
from recfeat.serve.cache import LRUCache
from recfeat.serve.errors import ApiError
from recfeat.serve.middleware import route_label

pytest.importorskip("prometheus_client")

LONG = "the tuner clips on well and the strings stay in tune for weeks " * 12  # ~150 tokens


@pytest.mark.parametrize("overlap", [False, True])
def test_engine_reports_tokens_kept_and_dropped_per_text_in_input_order(tmp_path, overlap):
    model = make_tiny("bert", tmp_path / "tiny")
    enc = get_registry("encoder").create("hf", model=str(model), max_length=16, overlap=overlap)
    texts = [LONG, *SAMPLE_TEXTS, LONG[:30]]
    plain = enc.encode(texts)
    plain_stats = dict(enc.last_stats)
    vectors = enc.encode(texts, per_text=True)
    stats = enc.last_stats
    np.testing.assert_array_equal(vectors, plain)  # same vectors, same totals
    assert {k: stats[k] for k in plain_stats} == plain_stats
    want = enc.tokenize(texts)
    assert stats["n_kept"].tolist() == want.lengths.tolist()
    assert stats["n_dropped"].tolist() == want.n_dropped.tolist()
    assert stats["n_dropped"][0] > 100 and stats["n_kept"][0] == 16
    assert int(stats["n_kept"].sum()) == stats["tokens"]
    assert stats["tokenize_seconds"] >= 0
    assert "n_kept" not in plain_stats  # off by default: the statistics keep their keys


def test_exported_encoders_report_tokens_per_text_too(tmp_path):
    pytest.importorskip("onnxruntime")
    from recfeat.exporters.pipeline import ExportSpec, run_export
    from recfeat.serve.embedder import Embedder

    model = make_tiny("bert", tmp_path / "tiny")
    run_export(ExportSpec(model=str(model)), tmp_path / "onnx")
    enc = get_registry("encoder").create("onnx", path=str(tmp_path / "onnx"), max_length=16)
    texts = [LONG, *SAMPLE_TEXTS]
    result = Embedder(enc, None, _Metrics(), cache_size=0, max_inputs=64, max_chars=10_000,
                      budget_tokens=1000, window_s=0.0, max_queue=4, timeout_s=10.0,
                      ).encode_now([*texts, texts[1]])  # fmt: skip
    want = enc.tokenize(texts)
    assert result.kept.tolist() == [*want.lengths.tolist(), int(want.lengths[1])]
    assert result.dropped.tolist() == [*want.n_dropped.tolist(), int(want.n_dropped[1])]
    np.testing.assert_allclose(result.vectors[:-1], enc.encode(texts), atol=1e-6)
    np.testing.assert_array_equal(result.vectors[-1], result.vectors[1])  # repeats: one row


def test_lru_evicts_the_least_recently_used_text():
    cache = LRUCache(2, b"fp")
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and (cache.hits, cache.misses) == (3, 1)
    off = LRUCache(0, b"fp")
    off.put("a", 1)
    assert off.get("a") is None


def test_key_check():
    assert authorized(None, "/embed", None)
    assert authorized("k", "/health", None)
    assert not authorized("k", "/embed", None)
    assert not authorized("k", "/embed", b"Bearer wrong")
    assert not authorized("k", "/embed", b"Basic k")
    assert authorized("k", "/embed", b"Bearer k")
    assert route_label("/items/abc") == "/items/{id}" and route_label("/x") == "other"


class _Metrics:
    """prometheus metrics in their own registry, as the server has them."""

    def __new__(cls):
        from recfeat.serve.metrics import Metrics

        return Metrics()


def _batcher(run_group, **kw):
    opts = dict(estimate=lambda t: len(t), budget_tokens=1000, window_s=0.0, max_queue=64,
                timeout_s=30.0, metrics=_Metrics(), executor=ThreadPoolExecutor(1))  # fmt: skip
    opts.update(kw)
    return MicroBatcher(run_group, **opts)


def _echo_group(calls, release: threading.Event | None = None, seconds: float = 0.0):
    def run(texts):
        if release is not None:
            release.wait(10)
        time.sleep(seconds)
        calls.append(list(texts))
        n = len(texts)
        vecs = np.array([[float(t.split()[-1])] for t in texts], dtype=np.float32)
        return GroupResult(vecs, np.full(n, 3), np.zeros(n, np.int64))

    return run


def test_batcher_merges_queued_jobs_and_answers_each_its_own_rows():
    calls: list[list[str]] = []
    release = threading.Event()

    async def main():
        b = _batcher(_echo_group(calls, release))
        b.start()
        first = asyncio.create_task(b.submit(["t 0"]))
        await asyncio.sleep(0.05)  # the worker holds job 0 (blocked) while the rest queue
        rest = [asyncio.create_task(b.submit([f"t {i}", f"t {i + 100}"])) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *rest)
        await b.drain()
        return results

    results = asyncio.run(main())
    assert calls[0] == ["t 0"]
    assert len(calls) == 2 and len(calls[1]) == 10  # five requests, one engine call
    for i, r in enumerate(results[1:], 1):
        assert r.vectors[:, 0].tolist() == [i, i + 100]


def test_batcher_keeps_groups_under_the_token_budget():
    calls: list[list[str]] = []
    release = threading.Event()

    async def main():
        b = _batcher(_echo_group(calls, release), budget_tokens=10, estimate=lambda t: 4)
        b.start()
        jobs = [asyncio.create_task(b.submit([f"t {i}"])) for i in range(7)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(*jobs)
        await b.drain()

    asyncio.run(main())
    assert sum(len(c) for c in calls) == 7
    assert all(4 * len(c) <= 10 for c in calls)


def test_calls_are_cut_to_the_time_budget_so_a_small_request_waits_one_short_call():
    """A slow engine (2 ms a token): after one timed call the budget falls from 10,000 to
    what the engine does in call_seconds (0.1 s: 50 tokens), so a one-text request sent
    during a 2,000-token request waits for one short call, not for all of it."""
    calls: list[list[str]] = []
    engine = _echo_group(calls)

    def slow(texts):
        time.sleep(0.002 * 10 * len(texts))
        return engine(texts)

    async def main():
        b = _batcher(slow, budget_tokens=10_000, estimate=lambda t: 10, call_seconds=0.1)
        assert b.call_budget == 10_000  # nothing timed yet
        b.observe(0.002 * 300, 300)  # the warm-up's timed call
        assert b.call_budget == 512  # the floor: never below MIN_CALL_TOKENS
        b.observe(0.002 * 300, 100)  # too few tokens to time the engine: ignored
        b.start()
        big = asyncio.create_task(b.submit([f"big {i}" for i in range(200)]))
        await asyncio.sleep(0.05)
        small = await b.submit(["small 7"])
        await big
        await b.drain()
        return small

    small = asyncio.run(main())
    assert small.vectors[:, 0].tolist() == [7.0]
    assert all(10 * len(c) <= 512 for c in calls)  # every call within the timed budget
    assert len(calls) >= 4
    # the small text rode in the call right after the one in progress
    where = next(k for k, c in enumerate(calls) if "small 7" in c)
    assert where <= 2, [len(c) for c in calls]


def test_full_queue_is_refused_with_429_and_retry_after():
    release = threading.Event()

    async def main():
        b = _batcher(_echo_group([], release), max_queue=2)
        b.start()
        jobs = [asyncio.create_task(b.submit(["t 0"]))]
        await asyncio.sleep(0.05)  # job 0 runs (blocked) ...
        jobs += [asyncio.create_task(b.submit([f"t {i}"])) for i in (1, 2)]
        await asyncio.sleep(0.05)  # ... while jobs 1-2 fill the queue
        with pytest.raises(ApiError) as info:
            await b.submit(["t 9"])
        release.set()
        await asyncio.gather(*jobs)
        await b.drain()
        return info.value

    err = asyncio.run(main())
    assert err.status == 429 and int(err.headers["Retry-After"]) >= 1


def test_a_job_waiting_too_long_gets_503_and_is_skipped():
    calls: list[list[str]] = []
    release = threading.Event()

    async def main():
        b = _batcher(_echo_group(calls, release), timeout_s=0.1)
        b.start()
        first = asyncio.create_task(b.submit(["t 0"]))
        await asyncio.sleep(0.02)
        with pytest.raises(ApiError) as info:
            await b.submit(["t 1"])  # queued behind the blocked job 0 past the timeout
        release.set()
        with pytest.raises(ApiError):
            await first  # job 0 also outlived its timeout while running
        await b.drain()
        return info.value

    err = asyncio.run(main())
    assert err.status == 503 and "--request-timeout" in err.message
    assert calls == [["t 0"]]  # the abandoned job never reached the engine


def test_drain_answers_queued_jobs_then_refuses_new_ones():
    calls: list[list[str]] = []

    async def main():
        b = _batcher(_echo_group(calls, seconds=0.02))
        b.start()
        jobs = [asyncio.create_task(b.submit([f"t {i}"])) for i in range(5)]
        await asyncio.sleep(0)
        await b.drain()
        done = await asyncio.gather(*jobs)
        with pytest.raises(ApiError) as info:
            await b.submit(["t 9"])
        return done, info.value

    done, err = asyncio.run(main())
    assert [r.vectors[0, 0] for r in done] == [0, 1, 2, 3, 4]
    assert err.status == 503 and "shutting down" in err.message


def test_engine_errors_reach_every_caller_of_the_group():
    from recfeat.errors import DataError

    def fail(texts):
        raise DataError("text 0 is bad")

    async def main():
        b = _batcher(fail)
        b.start()
        with pytest.raises(ApiError) as info:
            await b.submit(["t 0"])
        await b.drain()
        return info.value

    err = asyncio.run(main())
    assert err.status == 400 and "text 0 is bad" in err.message


def test_a_small_job_joins_the_next_call_while_a_big_one_is_spread_over_several():
    calls: list[list[str]] = []
    release = threading.Event()

    async def main():
        b = _batcher(_echo_group(calls, release), budget_tokens=4, estimate=lambda t: 1)
        b.start()
        big = asyncio.create_task(b.submit([f"b {i}" for i in range(12)]))
        await asyncio.sleep(0.05)  # the first call (4 of the 12 texts) holds the engine
        small = asyncio.create_task(b.submit(["s 99"]))
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(big, small)
        await b.drain()
        return results

    big, small = asyncio.run(main())
    assert calls[0] == ["b 0", "b 1", "b 2", "b 3"]
    assert "s 99" in calls[1] and len(calls[1]) == 4  # not after the rest of the big job
    assert len(calls) == 4 and all(len(c) <= 4 for c in calls)
    assert big.vectors[:, 0].tolist() == list(range(12))  # rows back in request order
    assert small.vectors[:, 0].tolist() == [99]


def test_a_caller_that_goes_away_takes_its_job_out_of_the_queue():
    calls: list[list[str]] = []
    release = threading.Event()

    async def main():
        b = _batcher(_echo_group(calls, release), max_queue=1)
        b.start()
        first = asyncio.create_task(b.submit(["t 0"]))
        await asyncio.sleep(0.05)  # job 0 runs (blocked)
        gone = asyncio.create_task(b.submit(["t 1"]))
        await asyncio.sleep(0.01)
        assert b.depth == 1
        gone.cancel()  # what the gate does when the client disconnects
        await asyncio.sleep(0.01)  # (the engine is still busy with job 0)
        assert b.depth == 0  # its place is free at once ...
        later = asyncio.create_task(b.submit(["t 2"]))  # ... so this is not refused (429)
        await asyncio.sleep(0.01)
        release.set()
        results = await asyncio.gather(first, later)
        await b.drain()
        return results, gone.cancelled()

    (first, later), cancelled = asyncio.run(main())
    assert cancelled and first.vectors[0, 0] == 0 and later.vectors[0, 0] == 2
    assert calls == [["t 0"], ["t 2"]]  # the abandoned job never reached the engine


def test_an_input_the_engine_rejects_fails_only_its_own_job():
    release = threading.Event()
    echo = _echo_group([], release)

    def run(texts):
        if any("bad" in t for t in texts):
            raise TypeError("the tokenizer cannot take this text")
        return echo(texts)

    async def main():
        b = _batcher(run)
        b.start()
        blocker = asyncio.create_task(b.submit(["t 0"]))
        await asyncio.sleep(0.05)
        jobs = [asyncio.create_task(b.submit(texts))
                for texts in (["t 1"], ["t 2", "bad 3"], ["t 4", "t 5"])]  # fmt: skip
        await asyncio.sleep(0.05)  # all three wait: the next call merges them, and fails
        release.set()
        results = await asyncio.gather(blocker, *jobs, return_exceptions=True)
        await b.drain()
        return results

    _, one, bad, two = asyncio.run(main())
    assert one.vectors[:, 0].tolist() == [1] and two.vectors[:, 0].tolist() == [4, 5]
    assert isinstance(bad, ApiError) and bad.status == 400 and bad.code == "rejected_input"
    assert "tokenizer cannot take" in bad.message


# -- token-id input (OpenAI's other form of /v1/embeddings input) ------------------------------
def test_embedding_input_takes_openais_four_forms_and_refuses_the_rest():
    from recfeat.serve.embedder import embedding_input

    assert embedding_input("a text") == (["a text"], None)
    assert embedding_input(["a", "b"]) == (["a", "b"], None)
    assert embedding_input([101, 2307, 102]) == (None, [[101, 2307, 102]])
    assert embedding_input([[101, 7], [8]]) == (None, [[101, 7], [8]])
    refused = [([], "input is an empty list"), ([[101], []], "input.1 is an empty list"),
               ([101, True], "input.1 must be a token id"), ([[101, 2.0]], "input.0.1"),
               (["a", 1], "input.1 must be a text"), ([1, "a"], "input.1"),
               ([None], "input.0"), ([[1], 2], "input.1 must be a list of token ids"),
               ([True], "input.0"), ([[False]], "input.0.0")]  # fmt: skip
    for value, fragment in refused:
        with pytest.raises(ApiError) as info:
            embedding_input(value)
        assert info.value.status == 400 and fragment in info.value.message, (value, info.value.message)


def _embedder(enc, **kw):
    from recfeat.serve.embedder import Embedder

    opts = dict(cache_size=0, max_inputs=4, max_chars=50, budget_tokens=1000, window_s=0.0,
                max_queue=4, timeout_s=10.0)  # fmt: skip
    return Embedder(enc, None, _Metrics(), **{**opts, **kw})


@pytest.mark.parametrize("kind", ["hf", "onnx"])
def test_token_ids_are_decoded_by_the_served_models_own_tokenizer(tmp_path, kind):
    model = make_tiny("bert", tmp_path / "tiny")  # MiniLM's tokenizer: 30522 tokens
    if kind == "onnx":
        pytest.importorskip("onnxruntime")
        from recfeat.exporters.pipeline import ExportSpec, run_export

        run_export(ExportSpec(model=str(model)), tmp_path / "onnx")
        enc = get_registry("encoder").create("onnx", path=str(tmp_path / "onnx"), max_length=16)
    else:
        enc = get_registry("encoder").create("hf", model=str(model), max_length=16)
    embedder = _embedder(enc)
    embedder.warm_up()
    ids = enc.tokenize(["Great strings, bright tone!", "A capo"]).ids
    assert ids[0][0] == 101 and ids[0][-1] == 102  # [CLS] ... [SEP]
    assert embedder.decode(ids) == ["great strings, bright tone!", "a capo"]
    for bad in (30522, -1):
        with pytest.raises(ApiError) as info:
            embedder.decode([[101, 2307], [101, bad]])
        assert info.value.status == 400 and info.value.code == "invalid_token_id"
        assert f"input.1.1: token id {bad}" in info.value.message
        assert "30522 tokens" in info.value.message
    with pytest.raises(ApiError, match="--max-inputs") as info:
        embedder.decode([[101]] * 5)
    assert info.value.status == 413
    with pytest.raises(ApiError, match="--max-chars") as info:
        embedder.decode([[2307] * 51])
    assert info.value.status == 413


def test_an_encoder_without_a_tokenizer_refuses_token_ids():
    from recfeat.components.encoder import Encoder

    class Hashing(Encoder):
        name = "hashing"

        @property
        def dim(self) -> int:
            return 4

        def encode(self, texts, per_text=False):
            self.last_stats = {"n_kept": np.ones(len(texts), np.int64),
                               "n_dropped": np.zeros(len(texts), np.int64)}  # fmt: skip
            return np.ones((len(texts), 4), np.float32)

    embedder = _embedder(Hashing())
    embedder.warm_up()
    with pytest.raises(ApiError, match="has no tokenizer to decode token ids") as info:
        embedder.decode([[101]])
    assert info.value.status == 400
