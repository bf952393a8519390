"""Nothing lost, nothing half-written, nothing silently wrong on the output side.

- an output that is an input (same path, symlink, hard link) is refused before any work,
  by every command, and the input is left byte for byte as it was;
- the same input and settings give byte-identical feature files, fresh, cached or resumed,
  with the same truncation counts (timings and cache hits live in the run record);
- an edited file in an export folder is refused on load and never served from the cache;
- a multi-file output fails as a unit: a disk-full error on the second file leaves the
  complete earlier set;
- temporaries of a killed run are removed once their process is gone, never before.
"""

from __future__ import annotations

import errno
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error
from test_cache import CountingEncoder, catalogue

from recfeat.atomic import (
    JOURNAL_PREFIX,
    TMP_PREFIX,
    atomic_files,
    clean_stale,
    temp_sibling,
    write_file,
)
from recfeat.cli.main import cli
from recfeat.data.features import manifest_path, read_features
from recfeat.extraction.manifest import run_record_path
from recfeat.extraction.pipeline import extract

REVIEWS_CSV = """user,item,rating,review
ann,b1,5,"A gripping mystery, I read it in one night and could not put it down at all."
ann,b2,2,Too slow for me.
bob,b1,4,Clever plot and a satisfying ending.
bob,b3,5,"Beautiful prose; the <b>best</b> novel this year, with characters that stay with you."
cat,b2,3,Fine.
cat,b3,4,Lovely characters.
dan,b1,1,Not my kind of book at all.
"""
RUN_ONLY_KEYS = {"elapsed_s", "encode_seconds", "cache", "encoded_texts", "cached_texts"}


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RECFEAT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture()
def reviews_csv(tmp_path):
    path = tmp_path / "book_reviews.csv"
    path.write_text(REVIEWS_CSV)
    return path


@pytest.fixture()
def ratings_csv(tmp_path):
    """60 users x 25 items, enough for `evaluate` and `train` to run in a second."""
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}", int(rng.integers(1, 6)))
            for u in range(60) for i in rng.choice(25, size=8, replace=False)]  # fmt: skip
    path = tmp_path / "ratings.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating"]).to_csv(path, index=False)
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- outputs never overwrite inputs -----------------------------------------------------------


def _alias(kind: str, target, where):
    """A second name for ``target``: the same path, a symlink or a hard link."""
    if kind == "same":
        return target
    link = where / f"alias-{kind}{target.suffix}"
    if kind == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)
    return link


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_extract_refuses_to_overwrite_its_input(tmp_path, reviews_csv, kind):
    data = tmp_path / "reviews.parquet"  # a Parquet dataset, so --out may name it
    pd.read_csv(reviews_csv).rename(columns={"review": "text"}).to_parquet(data)
    before = sha(data)
    out = _alias(kind, data, tmp_path)
    result = run("extract", data, "--format", "parquet", "--out", out, "--no-cache")
    assert_one_line_error(result, 2, "is the same file as DATA", "choose another path")
    assert sha(data) == before


def test_extract_refuses_the_train_file_config_and_the_cache(tmp_path, reviews_csv):
    train = tmp_path / "train.parquet"
    pd.read_csv(reviews_csv)[["user", "item"]].to_parquet(train)
    before = sha(train)
    result = run("extract", reviews_csv, "--level", "user", "--train", train, "--out", train)
    assert_one_line_error(result, 2, "--train")
    assert sha(train) == before
    # the manifest written beside --out may not be an input either
    cfg = tmp_path / "feats.manifest.json"
    cfg.write_text("{}")
    result = run("extract", reviews_csv, "--config", cfg, "--out", tmp_path / "feats.parquet")
    assert_one_line_error(result, 2, "--config")
    assert cfg.read_text() == "{}"
    # an output inside the dataset folder could overwrite what the loader reads
    folder = tmp_path / "ds"
    folder.mkdir()
    shutil.copy(reviews_csv, folder / "reviews.csv")
    result = run("extract", folder, "--out", folder / "x.parquet", "--no-cache")
    assert_one_line_error(result, 2, "inside the input folder DATA")


@pytest.mark.parametrize("flag", ["--out", "--plot", "--save-split"])
def test_evaluate_refuses_to_overwrite_an_input(tmp_path, ratings_csv, flag):
    before = sha(ratings_csv)
    result = run("evaluate", ratings_csv, "--models", "popularity", flag, ratings_csv)
    assert_one_line_error(result, 2, f"{flag} {ratings_csv} is the same file as DATA")
    assert sha(ratings_csv) == before
    split = tmp_path / "split.json"
    split.write_text("{}")
    result = run("evaluate", ratings_csv, "--load-split", split, flag, split)
    assert_one_line_error(result, 2, "--load-split")
    assert split.read_text() == "{}"


def test_evaluate_refuses_two_outputs_on_one_file(tmp_path, ratings_csv):
    out = tmp_path / "result.json"
    result = run("evaluate", ratings_csv, "--out", out, "--save-split", out)
    assert_one_line_error(result, 2, "name the same output")
    assert not out.exists()


def test_train_refuses_to_overwrite_data_or_features(tmp_path, ratings_csv):
    before = sha(ratings_csv)
    result = run("train", ratings_csv, "--model", "popularity", "--out", ratings_csv)
    assert_one_line_error(result, 2, "is the same file as DATA")
    assert sha(ratings_csv) == before
    feats = tmp_path / "f.parquet"
    feats.write_bytes(b"not really features")
    link = _alias("symlink", feats, tmp_path)
    result = run("train", ratings_csv, "--model", "popularity", "--features", feats, "--out", link)
    assert_one_line_error(result, 2, "--features")
    assert feats.read_bytes() == b"not really features"


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_clean_refuses_to_overwrite_its_input(tmp_path, kind):
    texts = tmp_path / "texts.txt"
    texts.write_text("<b>one</b>\n two \n")
    before = sha(texts)
    result = run("clean", texts, "--out", _alias(kind, texts, tmp_path))
    assert_one_line_error(result, 2, "is the same file as INPUT")
    assert sha(texts) == before


def test_export_refuses_a_folder_that_holds_its_inputs(tmp_path):
    model = tmp_path / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    calib = tmp_path / "texts.txt"
    calib.write_text("a\nb\n")
    # --force would replace the folder holding the model: refused before anything loads
    result = run(
        "export", "--encoder", model, "--out", tmp_path / "models", "--force"
    )
    assert_one_line_error(result, 2, "contains --encoder")
    assert (model / "config.json").read_text() == "{}"
    result = run("export", "--encoder", model, "--calibration", calib, "--out", calib, "--force")
    assert_one_line_error(result, 2, "--calibration")
    assert calib.read_text() == "a\nb\n"


# -- deterministic artefacts ------------------------------------------------------------------


def test_fresh_cached_and_resumed_runs_write_identical_files(tmp_path):
    data = catalogue(40)
    data.items.loc[::3, "text"] = [f"short {k}" for k in range(len(data.items.loc[::3]))]
    truncated = sum(len(t.split()) > 5 for t in data.items["text"])  # CountingEncoder keeps 5
    assert 0 < truncated < 40
    outs = {}
    # two fresh runs (no cache), then a cached re-run
    for name, cache in (("fresh1", False), ("fresh2", False), ("first", tmp_path / "c1"),
                        ("cached", tmp_path / "c1")):  # fmt: skip
        res = extract(data, "item", CountingEncoder(), [], cache=cache, chunk_size=8)
        outs[name] = res.save(tmp_path / f"{name}.parquet")
    # a run that crashes on its third chunk, resumed from what it committed
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract(
            data, "item", CountingEncoder(fail_on_call=3), [], cache=tmp_path / "c2", chunk_size=8
        )
    resumed = extract(data, "item", CountingEncoder(), [], cache=tmp_path / "c2", chunk_size=8)
    assert 0 < resumed.run["cached_texts"] < 40 and resumed.run["encoded_texts"] > 0
    outs["resumed"] = resumed.save(tmp_path / "resumed.parquet")

    base = outs["fresh1"]
    manifest = read_features(base)[2]
    assert manifest["truncated_texts"] == truncated and manifest["truncation_unknown"] == 0
    assert not RUN_ONLY_KEYS & set(manifest)
    for name, path in outs.items():
        assert filecmp.cmp(base, path, shallow=False), name
        assert filecmp.cmp(manifest_path(base), manifest_path(path), shallow=False), name
        assert read_features(path)[2]["truncated_texts"] == truncated, name
    records = {n: json.loads(run_record_path(p).read_text()) for n, p in outs.items()}
    assert records["cached"]["cached_texts"] == 40 and records["first"]["cached_texts"] == 0
    assert records["cached"]["cache"]["path"].endswith("vectors.sqlite")


def test_vectors_cached_without_statistics_get_them_by_tokenizing(tmp_path):
    """A cache written before token statistics were kept: the counts are filled in by
    tokenizing (no model run), so the cached run reports what a fresh run does."""
    import sqlite3

    data = catalogue(12)
    data.items.loc[::2, "text"] = [f"short {k}" for k in range(6)]
    fresh = extract(data, "item", CountingEncoder(), [], cache=tmp_path)
    db = sqlite3.connect(tmp_path / "vectors.sqlite")
    db.execute("DELETE FROM text_stats")
    db.commit()
    db.close()
    enc = CountingEncoder()
    again = extract(data, "item", enc, [], cache=tmp_path)
    assert enc.texts_encoded == 0
    assert again.manifest == fresh.manifest and again.manifest["truncated_texts"] == 6


def test_two_fresh_cli_runs_and_a_cached_one_are_byte_identical(reviews_csv, tmp_path):
    outs = []
    for name, extra in (("a", ["--no-cache"]), ("b", ["--no-cache"]), ("c", []), ("d", [])):
        out = tmp_path / f"{name}.parquet"
        r = run("extract", reviews_csv, "--max-length", "12", "--out", out, *extra)
        assert r.exit_code == 0, r.output
        outs.append(out)
    assert "0 texts encoded, 7 from cache" in r.output
    manifest = read_features(outs[0])[2]
    assert manifest["truncated_texts"] > 0 and not RUN_ONLY_KEYS & set(manifest)
    for out in outs[1:]:
        assert filecmp.cmp(outs[0], out, shallow=False), out
        assert filecmp.cmp(manifest_path(outs[0]), manifest_path(out), shallow=False), out
    assert json.loads(run_record_path(outs[3]).read_text())["cached_texts"] == 7


# -- export folders are verified whole --------------------------------------------------------


def _onnx(path, **options):
    from recfeat.plugin.registry import get_registry

    return get_registry("encoder").create("onnx", path=str(path), **options)


@pytest.mark.parametrize("name", ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"])
def test_an_edited_tokenizer_file_is_refused_and_never_hits_the_cache(tiny_export, tmp_path, name):
    from recfeat.errors import ArtifactError
    from recfeat.extraction.stages import encode_texts

    texts = ["a first text", "and a second one"]
    caches = [tmp_path / "c1", tmp_path / "c2"]  # each holds the genuine folder's vectors
    for cache in caches:
        genuine, stats = encode_texts(texts, _onnx(tiny_export), cache)
        assert stats.encoded == 2
    edited = tmp_path / "edited"
    shutil.copytree(tiny_export, edited)
    target = edited / name
    assert target.exists(), sorted(p.name for p in edited.iterdir())
    if name == "vocab.txt":
        words = target.read_text().splitlines()
        words[1000], words[1001] = words[1001], words[1000]
        target.write_text("\n".join(words) + "\n")
    else:
        cfg = json.loads(target.read_text())
        cfg["recfeat_edit"] = True
        target.write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match=f"{name} is .* was edited.*re-run `recfeat export`"):
        encode_texts(texts, _onnx(edited), caches[0])
    # with its manifest entry rewritten to match, the folder loads, but as another encoder:
    # nothing of the genuine folder's cache is served to it
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["files"][name] = {"bytes": target.stat().st_size,
                               "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}  # fmt: skip
    (edited / "manifest.json").write_text(json.dumps(manifest))
    _, stats = encode_texts(texts, _onnx(edited), caches[0])
    assert (stats.cached, stats.encoded) == (0, 2)
    # and without verification the key follows the files on disk, not the manifest
    shutil.copy(tiny_export / "manifest.json", edited / "manifest.json")
    _, stats = encode_texts(texts, _onnx(edited, verify=False), caches[1])
    assert (stats.cached, stats.encoded) == (0, 2)
    again, stats = encode_texts(texts, _onnx(tiny_export), caches[0])
    assert stats.cached == 2
    np.testing.assert_array_equal(again, genuine)


def test_extract_with_an_edited_export_folder_fails_in_one_line(tiny_export, tmp_path, reviews_csv):
    folder = tmp_path / "edited"
    shutil.copytree(tiny_export, folder)
    (folder / "special_tokens_map.json").write_text("{}")
    out = tmp_path / "f.parquet"
    result = run("extract", reviews_csv, "--encoder", folder, "--out", out)
    assert_one_line_error(result, 1, "special_tokens_map.json", "re-run `recfeat export`")
    assert not out.exists()
    # and no output may land inside the export folder the encoder reads
    result = run(
        "extract", reviews_csv, "--encoder", tiny_export, "--out", tiny_export / "f.parquet"
    )
    assert_one_line_error(result, 2, "inside the input folder --encoder")


def test_an_unlisted_file_in_an_export_folder_is_refused(tiny_export, tmp_path):
    from recfeat.errors import ArtifactError

    folder = tmp_path / "extra"
    shutil.copytree(tiny_export, folder)
    (folder / "added_tokens.json").write_text('{"zzz": 5}')
    with pytest.raises(ArtifactError, match="added_tokens.json is not listed"):
        _onnx(folder).encode(["a text"])


# -- multi-file outputs are all or nothing ----------------------------------------------------


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_on_the_manifest_leaves_the_previous_feature_set(tmp_path, monkeypatch):
    import recfeat.data.features as features

    out = tmp_path / "items.parquet"
    extract(catalogue(6), "item", CountingEncoder(), [], cache=False).save(out)
    family = [out, manifest_path(out), run_record_path(out)]
    before = {p: p.read_bytes() for p in family}
    monkeypatch.setattr(features, "write_file", _enospc)  # the second file of the set
    with pytest.raises(OSError, match="No space"):
        extract(catalogue(9), "item", CountingEncoder(), [], cache=False).save(out)
    assert {p: p.read_bytes() for p in family} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in family)


def test_disk_full_on_the_chart_leaves_the_previous_evaluation(tmp_path, ratings_csv, monkeypatch):
    import recfeat.evaluation.protocol as protocol

    outs = [tmp_path / "r.json", tmp_path / "r.png", tmp_path / "split.json"]
    args = ["evaluate", ratings_csv, "--models", "popularity", "--out", outs[0], "--plot", outs[1],
            "--save-split", outs[2]]  # fmt: skip
    first = run(*args)
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for p in outs}
    monkeypatch.setattr(protocol, "plot_result", _enospc)
    again = run(*args, "--seed", "1")  # a different split: every file would change
    assert again.exit_code != 0 and "Traceback" not in again.output
    assert {p: p.read_bytes() for p in outs} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".recfeat-")]


def test_a_commit_killed_after_its_journal_is_finished_by_the_next_run(tmp_path):
    """Simulate SIGKILL between the renames: the journal of a dead pid is rolled forward."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    b.write_text("old b")
    pid = dead_pid()
    marker = f"{pid}.deadbeef"
    ta, tb = temp_sibling(a, marker=marker), temp_sibling(b, marker=marker)
    ta.write_text("new a")
    tb.write_text("new b")
    journal = tmp_path / f"{JOURNAL_PREFIX}{marker}.json"
    entries = [{"tmp": str(t), "final": str(f), "old": str(tmp_path / f".recfeat-old.{marker}.{f.name}")}
               for t, f in ((ta, a), (tb, b))]  # fmt: skip
    journal.write_text(json.dumps({"entries": entries, "journals": [str(journal)]}))
    os.replace(ta, a)  # killed after the first rename
    clean_stale(tmp_path)
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_a_commit_killed_before_its_journal_is_undone(tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("old a")
    marker = f"{dead_pid()}.cafe0001"
    temp_sibling(a, marker=marker).write_text("half")
    clean_stale(tmp_path)
    assert a.read_text() == "old a" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_files_writes_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    with atomic_files([a, b]) as temps:
        write_file(temps[a], b"1")
        write_file(temps[b], b"2")
    assert (a.read_text(), b.read_text()) == ("1", "2")
    with pytest.raises(OSError), atomic_files([a, b]) as temps:
        write_file(temps[a], b"new")
        _enospc()
    assert (a.read_text(), b.read_text()) == ("1", "2")
    leftovers = [
        p for p in (*tmp_path.iterdir(), *b.parent.iterdir()) if p.name.startswith(".recfeat")
    ]
    assert not leftovers


# -- stale temporaries ------------------------------------------------------------------------


def test_stale_temporaries_of_a_dead_run_are_removed_and_a_live_runs_are_kept(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("<i>a</i>\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dead = out_dir / f"{TMP_PREFIX}{dead_pid()}.0badf00d.onnx"  # a killed export's folder
    dead.mkdir()
    (dead / "model.onnx").write_bytes(b"x" * 1000)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = out_dir / f"{TMP_PREFIX}{sleeper.pid}.0000beef.onnx"
        live.mkdir()
        other = out_dir / ".onnx.abc123.tmp"  # not recfeat's: never touched
        other.mkdir()
        # a dead pid of another machine sharing the folder: its pid means nothing here
        foreign = out_dir / f"{TMP_PREFIX}{dead_pid()}.zzzzzz-0001.onnx"
        foreign.mkdir()
        result = run("clean", texts, "--out", out_dir / "clean.txt")
        assert result.exit_code == 0, result.output
        assert not dead.exists()
        assert live.is_dir() and other.is_dir() and foreign.is_dir()
        assert (out_dir / "clean.txt").read_text() == "a\n"
    finally:
        sleeper.kill()
        sleeper.wait()
    clean_stale(out_dir)  # its owner is gone now
    assert not live.exists() and other.exists()


def test_a_failed_export_leaves_no_temporary_folder(tmp_path, monkeypatch):
    from _export_helpers import make_tiny

    import recfeat.exporters.pipeline as pipeline

    model = make_tiny("bert", tmp_path / "bert")

    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline.mf, "write_manifest", broken)
    with pytest.raises(OSError):
        pipeline.run_export(pipeline.ExportSpec(model=str(model)), tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".recfeat-")]
