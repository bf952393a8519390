"""One input, three engines, one answer.

The loaded engine (``extract`` on a ``RecData``), the streamed one (``extract_file``, which
streams) and Ray (``extract_file(..., ray=...)`` on the two-node test cluster) must give equal
ids, equal ``rows_used`` and vectors within 1e-6, at review, item and user level, and
manifests that are byte-identical apart from the fields that name the engine. The inputs
have the awkward cases: Appliances 2018 is mostly repeated rows (2,277 read, 183 kept), and
Musical Instruments has empty texts; a built folder adds ids that collide across files and
a text shared by two users.

The encoder is a tiny random-weight BERT (vectors depend on every token, unlike a hash), at
max_length 32 so the whole Musical Instruments file runs in seconds a level.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _export_helpers import make_tiny

LEVELS = ("review", "item", "user")
ENGINE_FIELDS = ("engine", "shards")  # what the Ray folder's manifest adds, naming its engine
KEYS = {"review": ["user", "item"], "item": ["item"], "user": ["user"]}


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    import recfeat

    folder = make_tiny("bert", tmp_path_factory.mktemp("engines") / "tiny")
    return recfeat.encoder(str(folder), max_length=32)


@pytest.fixture(scope="module")
def collide_folder(musical_instruments, tmp_path_factory) -> Path:
    """Two shard files: the same (user, item) pair in both (the later file's, with a later
    timestamp, wins), the same text under two users, and an empty review."""
    folder = tmp_path_factory.mktemp("collide")
    with gzip.open(musical_instruments, "rt") as fh:
        rows = [json.loads(next(fh)) for _ in range(300)]
    again = dict(rows[5], unixReviewTime=rows[5]["unixReviewTime"] + 10, summary="second look")
    shared = dict(rows[7], reviewerID="ANOTHER-USER")
    blank = dict(rows[9], reviewerID="BLANK-USER", reviewText="", summary="")
    first, second = rows[:150], [*rows[150:], again, shared, blank, rows[20]]  # rows[20] repeats
    for name, part in (("a.json", first), ("b.json", second)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    # the same rows as one file, in the same order, for the loaded engine (loaders read one
    # review file; the streamed and Ray engines read the folder of shards)
    whole = tmp_path_factory.mktemp("collide-whole") / "whole.json"
    whole.write_text("".join(json.dumps(r) + "\n" for r in [*first, *second]))
    return folder, whole


def _table(ids: pd.DataFrame, vectors: np.ndarray, keys: list[str]):
    order = ids.sort_values(keys, kind="stable").index.to_numpy()
    return ids.iloc[order].reset_index(drop=True), vectors[order]


def _same(a, b, level: str) -> None:
    (ids_a, vec_a), (ids_b, vec_b) = a, b
    ids_a, vec_a = _table(ids_a, vec_a, KEYS[level])
    ids_b, vec_b = _table(ids_b, vec_b, KEYS[level])
    assert list(ids_a.columns) == list(ids_b.columns)
    for col in ids_a.columns:
        np.testing.assert_array_equal(ids_a[col].astype(str).to_numpy(),
                                      ids_b[col].astype(str).to_numpy(), err_msg=col)  # fmt: skip
    np.testing.assert_allclose(vec_a, vec_b, rtol=0, atol=1e-6)


def _manifest_bytes(manifest: dict) -> bytes:
    from recfeat.jsonable import jsonable

    kept = {k: v for k, v in manifest.items() if k not in ENGINE_FIELDS}
    return (json.dumps(jsonable(kept), indent=2) + "\n").encode()


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One vector cache for the loaded and streamed runs of this module (each text is encoded
    once; the streamed engine's own encoding is compared in tests/test_stream.py). Ray never
    reads the cache, so its vectors are always its own."""
    return tmp_path_factory.mktemp("engines-cache")


def _run_three(path, level, encoder, tmp_path, ray_address, cache, fmt="auto", whole=None):
    import recfeat
    from recfeat.data.features import manifest_path, read_features
    from recfeat.extraction.ray_shards import read_output

    whole = path if whole is None else whole
    loaded = recfeat.extract(recfeat.load_dataset(whole, fmt), level, encoder, cache=cache,
                             progress=False)  # fmt: skip
    loaded.save(tmp_path / "loaded.parquet")
    streamed = recfeat.extract_file(path, tmp_path / "streamed.parquet", level, encoder,
                                    format=fmt, cache=cache, progress=False,
                                    batch_rows=500)  # fmt: skip
    assert streamed.run["engine"] == "stream"
    recfeat.extract_file(path, tmp_path / "ray", level, encoder, format=fmt,
                         ray={"address": ray_address, "cpus_per_actor": 0.5,
                              "batch_rows": 700})  # fmt: skip
    ids_r, vec_r, man_r = read_output(str(tmp_path / "ray"))
    assert man_r["engine"] == "ray"
    ids_l, vec_l, man_l = read_features(tmp_path / "loaded.parquet")
    ids_s, vec_s, man_s = read_features(tmp_path / "streamed.parquet")
    return {
        "loaded": (ids_l, vec_l, man_l, manifest_path(tmp_path / "loaded.parquet").read_bytes()),
        "streamed": (ids_s, vec_s, man_s,
                     manifest_path(tmp_path / "streamed.parquet").read_bytes()),
        "ray": (ids_r, vec_r, man_r, (tmp_path / "ray" / "manifest.json").read_bytes()),
    }  # fmt: skip


def _renamed(manifest_bytes: bytes, name: str) -> bytes:
    manifest = json.loads(manifest_bytes)
    manifest["dataset"]["name"] = name
    return _manifest_bytes(manifest)


def _check(results, level, *, same_name: bool = True):
    """Every engine against the loaded one; ``same_name`` False: the loaded engine read the
    rows as one file, so only the dataset's name (after the file) may differ."""
    ids_l, vec_l, man_l, bytes_l = results["loaded"]
    for engine in ("streamed", "ray"):
        ids_e, vec_e, man_e, bytes_e = results[engine]
        _same((ids_l, vec_l), (ids_e, vec_e), level)
        assert man_e.get("rows_used") == man_l.get("rows_used"), engine
        got = _manifest_bytes(json.loads(bytes_e)) if engine == "ray" else bytes_e
        if same_name:
            assert got == bytes_l, engine
        else:
            assert _renamed(got, "x") == _renamed(bytes_l, "x"), engine
    # the streamed file and the Ray folder read the same input: byte-identical manifests
    assert _manifest_bytes(json.loads(results["ray"][3])) == results["streamed"][3]
    return man_l


@pytest.mark.parametrize("level", LEVELS)
def test_engines_agree_on_appliances_with_repeated_rows(appliances, tiny_encoder, ray_cluster,
                                                        shared_cache, tmp_path, level):  # fmt: skip
    results = _run_three(appliances, level, tiny_encoder, tmp_path, ray_cluster, shared_cache)
    manifest = _check(results, level)
    assert manifest["dataset"]["rows_read"] == 2277
    assert manifest["text_rows"] == 183 and manifest["dataset"]["duplicates_dropped"] == 2094
    if level != "review":
        assert manifest["rows_used"] == 183


@pytest.mark.parametrize("level", LEVELS)
def test_engines_agree_on_musical_instruments(musical_instruments, tiny_encoder, ray_cluster,
                                              shared_cache, tmp_path, level):  # fmt: skip
    results = _run_three(musical_instruments, level, tiny_encoder, tmp_path, ray_cluster,
                         shared_cache)
    manifest = _check(results, level)
    assert manifest["text_rows"] == 10261
    assert len(results["ray"][0]) == {"review": 10261, "item": 900, "user": 1429}[level]


@pytest.mark.parametrize("level", LEVELS)
def test_engines_agree_on_ids_that_collide_across_shards(collide_folder, tiny_encoder,
                                                         ray_cluster, shared_cache, tmp_path,
                                                         level):  # fmt: skip
    folder, whole = collide_folder
    results = _run_three(folder, level, tiny_encoder, tmp_path, ray_cluster, shared_cache,
                         fmt="amazon", whole=whole)  # fmt: skip
    manifest = _check(results, level, same_name=False)
    assert manifest["dataset"]["duplicates_dropped"] == 2
    assert manifest["empty_texts"] >= 1
