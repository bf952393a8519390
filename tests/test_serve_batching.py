"""How the server turns concurrent requests into engine calls: requests merged by the
micro-batcher, their texts cut into calls of similar length on the CPU (so a random mix of
lengths is not padded to its longest), repeats encoded once, and every request answered
with its own rows; and the JSON the vectors are written as."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest
from _export_helpers import make_tiny

from recfeat import get_registry
from recfeat.encode.batching import padded_width, plan_batches
from recfeat.serve.embedder import BATCH_COST_TOKENS, BatchCost, length_groups

pytest.importorskip("prometheus_client")

SHORT = ["ok", "Great strings.", "Five stars!!! Would buy again :)"]
MEDIUM = "The tuner clips on well and is accurate, but the battery door feels flimsy."
LONG = "the tuner clips on well and the strings stay in tune for weeks " * 12  # past 64 tokens


def _cost(lengths, groups, pad=16, cap=256, budget=4096, rows=128) -> int:
    """Padded tokens plus the fixed cost per batch of ``groups``, each cut as the engine does."""
    total = 0
    for g in groups:
        for b in plan_batches(lengths[g], budget, rows, pad_multiple=pad, cap=cap):
            total += len(b) * padded_width(lengths[g][b].max(), pad, cap) + BATCH_COST_TOKENS
    return total


def test_length_groups_cut_a_mix_of_lengths_and_cover_every_row_once():
    # the concurrency-8 case: one long review among short ones no longer pads them all
    lengths = np.array([12, 256, 9, 14, 10, 11, 13, 8])
    groups = length_groups(lengths, pad_multiple=16, cap=256, budget_tokens=4096, max_rows=128)
    assert [g.tolist() for g in groups] == [[1], [0, 2, 3, 4, 5, 6, 7]]  # longest first
    # one length, or lengths within one padded width: one call, as before
    for same in ([100] * 20, [97, 100, 99, 110, 112]):
        assert len(length_groups(np.array(same), pad_multiple=16, cap=256, budget_tokens=4096,
                                 max_rows=128)) == 1  # fmt: skip
    assert [g.tolist() for g in length_groups(np.array([5]), budget_tokens=10, max_rows=4)] == [[0]]
    # a realistic mix (long-tailed like review texts): every row once, never costlier than
    # the engine's one call, and far less padded
    rng = np.random.default_rng(0)
    for n in (8, 60, 300):
        lengths = np.minimum(rng.lognormal(4.3, 0.8, n).astype(np.int64) + 2, 256)
        groups = length_groups(lengths, pad_multiple=16, cap=256, budget_tokens=4096, max_rows=128)
        assert sorted(np.concatenate(groups).tolist()) == list(range(n))
        one = [np.arange(n)]
        assert _cost(lengths, groups) <= _cost(lengths, one)
        if n == 60:
            assert _cost(lengths, groups) < 0.85 * _cost(lengths, one)
    # a long max_length is planned over coarser classes: still every row, still quick
    lengths = rng.integers(1, 8192, 2000)
    groups = length_groups(lengths, pad_multiple=1, cap=8192, budget_tokens=16384, max_rows=256)
    assert sorted(np.concatenate(groups).tolist()) == list(range(2000))


def test_the_cost_of_a_batch_is_learned_from_timed_calls():
    cost = BatchCost()
    rng = np.random.default_rng(0)
    for _ in range(7):  # too few calls: the quiet-machine default
        cost.observe(1, 100, 0.02)
    assert cost.tokens == BATCH_COST_TOKENS
    for _ in range(50):  # every call alike: nothing to tell the two costs apart
        cost.observe(1, 100, 0.02)
    assert cost.tokens == BATCH_COST_TOKENS
    for a, b in ((0.006, 0.0001), (0.08, 0.0001)):  # a quiet machine, then a busy one
        for _ in range(400):  # the old calls are forgotten
            batches, padded = int(rng.integers(1, 6)), float(rng.integers(16, 4096))
            cost.observe(batches, padded, (a * batches + b * padded) * rng.uniform(0.95, 1.05))
        assert abs(cost.tokens - a / b) < 0.15 * a / b, (cost.tokens, a / b)
    assert BatchCost(fixed=7).tokens == 7


def _counting(enc) -> list[list[str]]:
    """Record the texts of each ``enc.encode`` call (the engine calls), same signature."""
    calls: list[list[str]] = []
    real = enc.encode

    def encode(texts, progress=False, per_text=False):
        calls.append(list(texts))
        return real(texts, progress=progress, per_text=per_text)

    enc.encode = encode
    return calls


def _embedder(enc, **kw):
    from recfeat.serve.embedder import Embedder
    from recfeat.serve.metrics import Metrics

    opts = dict(cache_size=0, max_inputs=64, max_chars=10_000, budget_tokens=100_000,
                window_s=0.0, max_queue=16, timeout_s=60.0)  # fmt: skip
    return Embedder(enc, None, Metrics(), **{**opts, **kw})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny("bert", tmp_path_factory.mktemp("tiny") / "bert")


def test_concurrent_requests_merge_into_length_groups_and_each_gets_its_own_rows(tiny):
    enc = get_registry("encoder").create("hf", model=str(tiny), max_length=64)
    reference = {t: enc.encode([t])[0] for t in [*SHORT, MEDIUM, LONG, LONG[:200]]}
    embedder = _embedder(enc)
    embedder.warm_up()
    # the quiet-machine cost of a batch: the tiny model's own timings on a busy test machine
    # could make any plan the cheapest
    embedder.batch_cost = BatchCost(fixed=BATCH_COST_TOKENS)
    engine_calls = _counting(enc)
    groups: list[list[str]] = []
    run_group = embedder.batcher.run_group
    embedder.batcher.run_group = lambda texts: groups.append(list(texts)) or run_group(texts)
    requests = [
        [SHORT[0]],  # the first call, alone: the engine thread is held meanwhile
        [LONG, SHORT[1]],
        [SHORT[1], MEDIUM, SHORT[1]],  # a repeat inside the request and across requests
        [LONG[:200]],
        [SHORT[2], LONG],  # LONG again, from another request
        [SHORT[0]],  # the same one-text request as the first
    ]
    hold = threading.Event()

    async def main():
        embedder.batcher.start()
        embedder.executor.submit(hold.wait, 30)  # the engine is busy ...
        first = asyncio.create_task(embedder.embed(requests[0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(embedder.embed(r)) for r in requests[1:]]
        await asyncio.sleep(0.05)  # ... while the other five requests queue up
        hold.set()
        answers = await asyncio.gather(first, *rest)
        await embedder.batcher.drain()
        return answers

    answers = asyncio.run(main())
    assert len(groups) == 2 and groups[0] == [SHORT[0]]  # the five others: one group
    merged = groups[1]
    # each request's distinct texts (a request's own repeats are looked up once)
    assert sorted(merged) == sorted(t for r in requests[1:] for t in dict.fromkeys(r))
    # that group went to the engine in calls of similar length, each text once
    assert engine_calls[0] == [SHORT[0]]
    calls = engine_calls[1:]
    assert sorted(t for call in calls for t in call) == sorted(set(merged)) and len(calls) >= 2
    assert not any(LONG in call and SHORT[1] in call for call in calls)
    tokens = {t: int(n) for t, n in zip(reference, enc.tokenize(list(reference)).lengths,
                                        strict=True)}  # fmt: skip
    for texts, answer in zip(requests, answers, strict=True):
        assert answer.vectors.shape == (len(texts), enc.dim)
        for row, text in enumerate(texts):
            np.testing.assert_allclose(answer.vectors[row], reference[text], atol=1e-5)
            assert answer.kept[row] == tokens[text]
        assert answer.dropped[texts.index(LONG)] > 0 if LONG in texts else not answer.dropped.any()


def test_empty_and_repeated_texts_in_one_group_get_their_rows(tiny):
    enc = get_registry("encoder").create("hf", model=str(tiny), max_length=64)
    embedder = _embedder(enc)
    embedder.warm_up()
    texts = ["", LONG, "", SHORT[0], LONG, MEDIUM]  # the engine takes "" (routes refuse it)
    result = embedder.encode_now(texts)
    want = enc.encode(texts)
    np.testing.assert_allclose(result.vectors, want, atol=1e-5)
    np.testing.assert_array_equal(result.vectors[0], result.vectors[2])
    assert result.kept.tolist() == enc.tokenize(texts).lengths.tolist()
    assert result.kept[0] == 2  # [CLS] [SEP]
    from recfeat.serve.errors import ApiError

    with pytest.raises(ApiError, match="input 1 is empty"):
        embedder.check(["fine", "  "])


def test_encoders_that_batch_by_exact_length_keep_one_call(tiny):
    from recfeat.machine import fp32_gemm_default

    if fp32_gemm_default() != "onednn":
        pytest.skip("onednn=True batches by exact length only where oneDNN runs fp32")
    enc = get_registry("encoder").create("hf", model=str(tiny), max_length=64, onednn=True)
    assert enc.plan.uniform
    embedder = _embedder(enc)
    embedder.warm_up()
    calls = _counting(enc)
    embedder.encode_now([LONG, SHORT[0], MEDIUM])
    assert len(calls) == 1  # its engine already makes batches without padding


def test_vector_rows_give_float32_back_exactly():
    from recfeat.serve.app import vector_rows

    rng = np.random.default_rng(1)
    vectors = (rng.standard_normal((50, 384)) * rng.choice([1e-6, 0.05, 3.0], (50, 1)))
    vectors = vectors.astype(np.float32)
    vectors[0, :3] = [0.0, -0.0, 1.0]
    rows = vector_rows(vectors)
    back = np.array([json.loads(r) for r in rows], dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(back, vectors)
    assert max(len(x) for r in rows for x in r.strip("[]").split(",")) <= 15  # 9 digits
    odd = np.array([[np.nan, np.inf, 1.5]], dtype=np.float32)
    assert vector_rows(odd) == ["[NaN, Infinity, 1.5]"]  # what json.dumps wrote before
    assert vector_rows(np.zeros((0, 4), np.float32)) == []
