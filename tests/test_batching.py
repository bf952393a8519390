"""Token-budget batching: every text once, budget respected, order restorable."""

from __future__ import annotations

import numpy as np
import pytest

from recfeat.encode.batching import padded_width, padding_ratio, plan_batches
from recfeat.errors import OptionError


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("budget,max_batch", [(512, 512), (4096, 64), (100, 3)])
def test_plan_covers_every_index_once_within_budget(seed, budget, max_batch):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 300, size=int(rng.integers(1, 2000)))
    batches = plan_batches(lengths, budget, max_batch)
    flat = np.concatenate(batches)
    assert np.array_equal(np.sort(flat), np.arange(len(lengths)))
    for b in batches:
        assert 1 <= len(b) <= max_batch
        longest = lengths[b].max()
        assert len(b) == 1 or len(b) * longest <= budget


def test_longest_first_and_over_long_text_alone():
    lengths = np.array([3, 900, 10, 10, 4])
    batches = plan_batches(lengths, batch_tokens=40)
    assert batches[0].tolist() == [1]  # over the budget on its own: still encoded
    order = np.concatenate(batches)
    assert (np.diff(lengths[order]) <= 0).all()
    assert [len(b) for b in batches] == [1, 4]


def test_order_restored_by_index_assignment():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 50, size=257)
    values = rng.normal(size=257)
    out = np.empty_like(values)
    for b in plan_batches(lengths, batch_tokens=200, max_batch_size=16):
        out[b] = values[b] * 2  # what an encoder does per batch
    np.testing.assert_array_equal(out, values * 2)


def test_sorting_cuts_padding_waste():
    rng = np.random.default_rng(2)
    lengths = np.concatenate([rng.integers(5, 20, 900), rng.integers(200, 256, 100)])
    rng.shuffle(lengths)
    planned = plan_batches(lengths, batch_tokens=4096, max_batch_size=64)
    naive = [np.arange(i, min(i + 32, len(lengths))) for i in range(0, len(lengths), 32)]
    assert padding_ratio(lengths, planned) < 0.1 < padding_ratio(lengths, naive)


def test_padded_widths_round_up_within_the_cap():
    assert [padded_width(n, 16) for n in (1, 16, 17, 250)] == [16, 16, 32, 256]
    assert padded_width(250, 16, cap=252) == 252  # never past the model's positions
    assert padded_width(300, 16, cap=256) == 300  # an over-long row is not cut here
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 257, size=3000)
    batches = plan_batches(lengths, 4096, 128, pad_multiple=16, cap=256)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(len(lengths)))
    widths = {padded_width(lengths[b].max(), 16, 256) for b in batches}
    assert widths <= set(range(16, 257, 16))  # few distinct shapes
    for b in batches:
        assert len(b) * padded_width(lengths[b].max(), 16, 256) <= 4096


def test_empty_and_bad_arguments():
    assert plan_batches(np.array([], dtype=np.int64), 100) == []
    with pytest.raises(OptionError, match="batch_tokens"):
        plan_batches(np.array([1, 2]), 0)
    with pytest.raises(OptionError, match="max_batch_size"):
        plan_batches(np.array([1, 2]), 10, max_batch_size=0)
    with pytest.raises(OptionError, match="pad_multiple"):
        plan_batches(np.array([1, 2]), 10, pad_multiple=0)
