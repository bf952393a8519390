"""Where every engine's rows come from: one de-duplication plan over a file or a folder of
shards (``recfeat.extraction.sources``), read whole or one file at a time."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recfeat.extraction.records import source_files
from recfeat.extraction.sources import iter_planned, plan_rows


def _row(user: str, item: str, t: int, text: str) -> dict:
    return {"reviewerID": user, "asin": item, "overall": 4.0, "unixReviewTime": t,
            "reviewText": text, "summary": ""}  # fmt: skip


@pytest.fixture()
def shards(tmp_path):
    """Two shard files; (u1, i1) is in both (the second file's, later, wins), (u2, i2) twice
    in the first with the same time (the later line wins); plus files that are not data."""
    (tmp_path / "a.json").write_text("".join(json.dumps(r) + "\n" for r in [
        _row("u1", "i1", 10, "first"), _row("u2", "i2", 5, "old"), _row("u2", "i2", 5, "new"),
        _row("u3", "i3", 1, "only"),
    ]))  # fmt: skip
    (tmp_path / "b.json").write_text("".join(json.dumps(r) + "\n" for r in [
        _row("u1", "i1", 20, "second"), _row("u4", "i4", 2, ""),
    ]))  # fmt: skip
    (tmp_path / "._a.json").write_bytes(b"\x00\x05macOS resource fork")  # not data
    (tmp_path / "_SUCCESS.json").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.json").write_text(json.dumps(_row("u9", "i9", 1, "nested")) + "\n")
    return tmp_path


def test_hidden_underscore_and_nested_files_are_not_shards(shards):
    assert [p.name for p in source_files(shards, "amazon")] == ["a.json", "b.json"]


def test_plan_keeps_the_latest_row_of_each_pair_across_files(shards):
    plan = plan_rows(shards, "amazon", {}, 2, want_ratings=False)
    assert plan.file_rows == [4, 2]
    assert plan.keep.tolist() == [False, False, True, True, True, True]
    assert plan.report["duplicates_dropped"] == 2
    assert plan.file_keep(1).tolist() == [True, True]


def test_reading_whole_or_file_by_file_gives_the_same_rows(shards):
    plan = plan_rows(shards, "amazon", {}, 2, want_ratings=False)
    whole = pd.concat(list(iter_planned(shards, "amazon", {}, plan.keep, 3)), ignore_index=True)
    parts = []
    for i in range(len(plan.files)):
        batches = list(iter_planned(shards, "amazon", {}, plan.file_keep(i), 1, only_file=i))
        assert all(len(b) == 1 for b in batches)  # batch_rows exactly, file by file
        parts += batches
    by_file = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(whole, by_file)
    assert whole["text"].tolist() == ["new", "only", "second", ""]


def test_a_file_that_changed_between_the_passes_is_an_error(shards):
    from recfeat.errors import DataError

    plan = plan_rows(shards, "amazon", {}, 2, want_ratings=False)
    with open(shards / "b.json", "a") as fh:
        fh.write(json.dumps(_row("u5", "i5", 3, "late")) + "\n")
    with pytest.raises(DataError, match="changed while it was read"):
        list(iter_planned(shards, "amazon", {}, plan.keep, 10))
