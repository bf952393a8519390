"""Streaming extraction (``recfeat.extraction.stream``) equals the in-memory path.

Real Musical Instruments reviews; most checks use a small deterministic encoder (vectors
from a hash of each text, so every text has its own vector and the checks run in seconds)
and compare the streamed file with ``extract(load_dataset(...)).save()`` row for row and
manifest for manifest; one check runs the real MiniLM on a slice.
"""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recfeat.components import Encoder
from recfeat.data.features import manifest_path, read_features
from recfeat.errors import DataError
from recfeat.extraction.manifest import run_record_path
from recfeat.extraction.pipeline import extract
from recfeat.extraction.records import iter_review_batches, normalize_frame, stream_format
from recfeat.extraction.stream import stream_extract, why_not_streamed
from recfeat.plugins.datasets import load_dataset

N_SLICE = 1200  # reviews in the small files built from the real one


class HashEncoder(Encoder):
    """dim-8 vectors from sha256 of the text; records every batch it was given."""

    name = "hash-test"
    backend = "test"

    def __init__(self, normalize: bool = True):
        self.normalize = normalize
        self.jobs: list[list[str]] = []
        self.last_stats: dict = {}

    @property
    def dim(self) -> int:
        return 8

    def encode(self, texts, progress=False):
        self.jobs.append(list(texts))
        # per-text token counts, so cached and fresh texts report the same statistics
        self.last_stats = {"n_kept": [len(t.split()) for t in texts], "n_dropped": [0] * len(texts)}
        out = (
            np.array(
                [
                    np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8)
                    for t in texts
                ],
                dtype=np.float32,
            ).reshape(len(texts), 8)
            - 127.5
        )
        if self.normalize:
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def fingerprint(self):
        return {"encoder": self.name, "weights_sha256": "h", "normalize": self.normalize,
                "backend": "test", "pooling": "none", "precision": "fp32", "max_length": 99}  # fmt: skip


def _in_memory(path, out, level="review", fmt="auto", cache=False, **options):
    data = load_dataset(path, format=fmt)
    result = extract(data, level, HashEncoder(), cache=cache, progress=False, **options)
    result.save(out)
    return result


def _same_files(a, b, *, sort: str | None = None) -> None:
    ids_a, vec_a, man_a = read_features(a)
    ids_b, vec_b, man_b = read_features(b)
    assert man_a == man_b
    assert manifest_path(a).read_bytes() == manifest_path(b).read_bytes()  # key order too
    pd.testing.assert_frame_equal(ids_a, ids_b)
    np.testing.assert_allclose(vec_a, vec_b, rtol=0, atol=1e-6)
    assert pq.read_schema(a) == pq.read_schema(b)
    assert pq.read_schema(a).metadata == pq.read_schema(b).metadata


@pytest.fixture(scope="module")
def mi_slice(musical_instruments, tmp_path_factory):
    """The first N_SLICE lines of the real file, with one review repeated (a duplicate
    (user, item) with a later timestamp) and one text reused by another user."""
    folder = tmp_path_factory.mktemp("mi")
    with gzip.open(musical_instruments, "rt") as fh:
        rows = [json.loads(next(fh)) for _ in range(N_SLICE)]
    again = dict(rows[3], unixReviewTime=rows[3]["unixReviewTime"] + 1, summary="changed mind")
    reuse = dict(rows[10], reviewerID="SOMEONE-ELSE", asin=rows[20]["asin"])
    rows = [*rows, again, reuse]
    path = folder / "mi.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def test_record_batches_equal_the_loader(musical_instruments):
    data = load_dataset(musical_instruments)
    report: dict = {}
    batches = list(iter_review_batches(musical_instruments, batch_rows=1000, report=report))
    assert max(len(b) for b in batches) == 1000
    streamed = pd.concat(batches, ignore_index=True)
    expected = data.reviews[["user", "item", "rating", "timestamp", "text"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(streamed, expected)
    assert {k: report[k] for k in ("rows_read", "schema", "empty_fields")} == {
        k: data.report[k] for k in ("rows_read", "schema", "empty_fields")
    }


def test_normalize_frame_maps_a_raw_amazon_batch(musical_instruments):
    raw = pd.read_json(musical_instruments, lines=True, nrows=50, dtype=False)
    got = normalize_frame(raw, "amazon", where="part-0")
    expected = next(iter_review_batches(musical_instruments, batch_rows=50))
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("level", ["review", "item", "user"])
def test_stream_equals_in_memory_on_musical_instruments(musical_instruments, tmp_path, level):
    mem, st = tmp_path / "mem.parquet", tmp_path / "st.parquet"
    _in_memory(musical_instruments, mem, level)
    enc = HashEncoder()
    result = stream_extract(musical_instruments, st, level, enc, cache=False, batch_rows=1500,
                            progress=False)  # fmt: skip
    _same_files(mem, st)
    assert result.rows == {"review": 10261, "item": 900, "user": 1429}[level]
    assert all(len(j) <= 2048 for j in enc.jobs)
    assert json.loads(run_record_path(st).read_text())["engine"] == "stream"


def test_same_chunks_as_in_memory(mi_slice, tmp_path):
    """The encoder sees exactly the in-memory path's batches (so vectors are identical)."""
    mem_enc, st_enc = HashEncoder(), HashEncoder()
    data = load_dataset(mi_slice)
    extract(data, "review", mem_enc, cache=False, chunk_size=100, progress=False)
    stream_extract(mi_slice, tmp_path / "s.parquet", "review", st_enc, cache=False,
                   chunk_size=100, batch_rows=77, progress=False)  # fmt: skip
    assert st_enc.jobs == mem_enc.jobs


@pytest.mark.parametrize("aggregate", ["mean", "rating-weighted"])
@pytest.mark.parametrize("level", ["item", "user"])
def test_aggregates_with_duplicates(mi_slice, tmp_path, level, aggregate):
    mem, st = tmp_path / "mem.parquet", tmp_path / "st.parquet"
    _in_memory(mi_slice, mem, level, aggregate=aggregate, chunk_size=128)
    stream_extract(mi_slice, st, level, HashEncoder(), aggregate=aggregate, cache=False,
                   chunk_size=128, batch_rows=100, progress=False)  # fmt: skip
    _same_files(mem, st)
    assert read_features(st)[2]["dataset"]["duplicates_dropped"] == 1


def test_csv_parquet_jsonl_and_shards(mi_slice, tmp_path):
    data = load_dataset(mi_slice)
    table = data.reviews[["user", "item", "rating", "timestamp", "text"]]
    csv, pqt, jsonl = tmp_path / "r.csv", tmp_path / "r.parquet", tmp_path / "r.jsonl"
    table.to_csv(csv, index=False)
    table.to_parquet(pqt, index=False)
    table.to_json(jsonl, orient="records", lines=True)
    for path in (csv, pqt, jsonl):
        mem, st = (
            tmp_path / f"mem-{path.suffix[1:]}.parquet",
            tmp_path / f"st-{path.suffix[1:]}.parquet",
        )
        _in_memory(path, mem)
        stream_extract(path, st, "review", HashEncoder(), cache=False, batch_rows=250,
                       progress=False)  # fmt: skip
        _same_files(mem, st)
    # a folder of shards = its files in sorted order, same rows as the whole file
    shards = tmp_path / "shards"
    shards.mkdir()
    for n, start in enumerate(range(0, len(table), 500)):
        table.iloc[start : start + 500].to_csv(shards / f"part-{n:03d}.csv", index=False)
    assert stream_format(shards) == "csv"
    st = tmp_path / "shards.parquet"
    stream_extract(shards, st, "review", HashEncoder(), cache=False, progress=False)
    ids, vectors, manifest = read_features(st)
    ids_mem, vectors_mem, _ = read_features(tmp_path / "mem-csv.parquet")
    pd.testing.assert_frame_equal(ids, ids_mem)
    np.testing.assert_array_equal(vectors, vectors_mem)
    assert manifest["dataset"]["rows_read"] == len(table)


def test_bad_line_names_file_and_line(mi_slice, tmp_path):
    lines = gzip.open(mi_slice, "rt").read().splitlines()
    lines[700] = '{"reviewerID": "x", "asin": '  # cut off
    bad = tmp_path / "bad.json.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad\.json\.gz line 701: malformed JSON"):
        stream_extract(bad, tmp_path / "o.parquet", "review", HashEncoder(), cache=False,
                       progress=False)  # fmt: skip
    rating = dict(json.loads(lines[0]), overall="five")
    lines[700] = json.dumps(rating)
    with gzip.open(bad, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"bad\.json\.gz line 701: rating is missing or not a number"
    ):
        stream_extract(bad, tmp_path / "o.parquet", "review", HashEncoder(), cache=False,
                       progress=False)  # fmt: skip
    assert not (tmp_path / "o.parquet").exists()


def test_resume_after_interrupted_stream(mi_slice, tmp_path):
    """A run that dies after some chunks leaves no output; the rerun takes those chunks from
    the cache and writes the same file as an uninterrupted run."""

    class Dies(HashEncoder):
        def encode(self, texts, progress=False):
            if len(self.jobs) == 3:
                raise KeyboardInterrupt
            return super().encode(texts, progress)

    cache, out = tmp_path / "cache", tmp_path / "out.parquet"
    with pytest.raises(KeyboardInterrupt):  # without a cache: its private one goes too
        stream_extract(mi_slice, out, "review", Dies(), cache=False, chunk_size=200,
                       progress=False)  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".recfeat-tmp")]
    with pytest.raises(KeyboardInterrupt):
        stream_extract(mi_slice, out, "review", Dies(), cache=cache, chunk_size=200,
                       batch_rows=150, progress=False)  # fmt: skip
    assert not out.exists() and not manifest_path(out).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".recfeat-tmp")]
    again = HashEncoder()
    result = stream_extract(mi_slice, out, "review", again, cache=cache, chunk_size=200,
                            batch_rows=150, progress=False)  # fmt: skip
    fresh, whole = tmp_path / "fresh.parquet", HashEncoder()
    stream_extract(mi_slice, fresh, "review", whole, cache=False, chunk_size=200,
                   progress=False)  # fmt: skip
    assert result.run["cached_texts"] == 600  # the three chunks committed before the kill
    assert again.jobs == whole.jobs[3:]
    _same_files(fresh, out)


def test_when_it_streams(musical_instruments, movielens_100k):
    assert why_not_streamed(musical_instruments) is None
    assert why_not_streamed(movielens_100k) is not None
    assert "train" in why_not_streamed(musical_instruments, train=pd.DataFrame())
    assert why_not_streamed(musical_instruments, token_features="tfidf") is not None
    assert why_not_streamed(musical_instruments, level="user", user_from="items") is not None


def test_minilm_slice_matches(mi_slice, tmp_path, minilm_path):
    from recfeat.plugin.registry import get_registry

    def enc():
        return get_registry("encoder").create("minilm", max_length=32)

    small = tmp_path / "small.jsonl"
    with gzip.open(mi_slice, "rt") as fh:
        small.write_text("".join(next(fh) for _ in range(300)))
    mem, st = tmp_path / "mem.parquet", tmp_path / "st.parquet"
    extract(load_dataset(small, format="amazon"), "item", enc(), cache=False, chunk_size=64,
            progress=False).save(mem)  # fmt: skip
    stream_extract(small, st, "item", enc(), fmt="amazon", cache=False, chunk_size=64,
                   batch_rows=50, progress=False)  # fmt: skip
    _same_files(mem, st)
    assert pa.types.is_fixed_size_list(pq.read_schema(st).field("vector").type)


def test_skipped_bad_rows_counted_alike(mi_slice, tmp_path):
    lines = gzip.open(mi_slice, "rt").read().splitlines()
    lines[5] = "not json"
    lines[50] = json.dumps(dict(json.loads(lines[50]), overall=9))  # outside (1, 5)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    mem, st = tmp_path / "mem.parquet", tmp_path / "st.parquet"
    extract(load_dataset(bad, format="amazon", skip_bad_rows=True), "review", HashEncoder(),
            cache=False, progress=False).save(mem)  # fmt: skip
    stream_extract(bad, st, "review", HashEncoder(), fmt="amazon", options={"skip_bad_rows": True},
                   cache=False, batch_rows=20, progress=False)  # fmt: skip
    _same_files(mem, st)
    assert read_features(st)[2]["dataset"]["bad_rows_skipped"] == 2


def test_extract_file_streams_or_loads(mi_slice, tmp_path):
    import recfeat

    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    streamed = recfeat.extract_file(mi_slice, a, "user", HashEncoder(), cache=False, progress=False)
    loaded = recfeat.extract_file(mi_slice, b, "user", HashEncoder(), cache=False, progress=False,
                                  stream=False)  # fmt: skip
    assert streamed.run["engine"] == "stream" and "engine" not in loaded.run
    _same_files(a, b)
    from recfeat.errors import UsageError

    with pytest.raises(UsageError, match="token features"):
        recfeat.extract_file(mi_slice, a, "review", HashEncoder(), stream=True,
                             token_features="hashed-bow")  # fmt: skip


def test_cli_streams_by_default_and_matches_no_stream(mi_slice, tmp_path, minilm_path):
    from click.testing import CliRunner

    from recfeat.cli.main import cli

    small = tmp_path / "small.json"
    with gzip.open(mi_slice, "rt") as fh:
        small.write_text("".join(next(fh) for _ in range(120)))
    args = ["extract", str(small), "--level", "item", "--max-length", "16", "--no-cache"]
    runner = CliRunner()
    st = runner.invoke(cli, [*args, "--out", str(tmp_path / "st.parquet")])
    assert st.exit_code == 0, st.output
    assert "streaming amazon:small.json" in st.output
    mem = runner.invoke(cli, [*args, "--no-stream", "--out", str(tmp_path / "mem.parquet")])
    assert mem.exit_code == 0, mem.output
    assert "loaded amazon:small.json" in mem.output
    _same_files(tmp_path / "st.parquet", tmp_path / "mem.parquet")
    refused = runner.invoke(cli, [*args, "--stream", "--token-features", "hashed-bow",
                                  "--out", str(tmp_path / "x.parquet")])  # fmt: skip
    assert refused.exit_code == 2 and "cannot stream (token features" in refused.output


def test_seen_set_matches_a_python_set(monkeypatch):
    """The hash set that fixes first-seen order: same answers as a set, across merges."""
    import recfeat.extraction.stream as stream

    monkeypatch.setattr(stream, "RECENT_HASHES", 50)
    rng = np.random.default_rng(0)
    seen, reference = stream._Seen(), set()
    for _ in range(40):
        batch = np.unique(rng.integers(0, 3000, size=rng.integers(1, 120)).astype(np.uint64))
        rng.shuffle(batch)
        expected = np.array([int(h) not in reference for h in batch])
        reference.update(int(h) for h in batch)
        np.testing.assert_array_equal(seen.add_new(batch), expected)
    assert len(seen.base) > 0 and np.all(np.diff(seen.base.astype(np.int64)) > 0)
