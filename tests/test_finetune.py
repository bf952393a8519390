"""recfeat finetune: pairs from training rows only, seeded and resumable training, the output
folder (a model recfeat loads unchanged, with its manifest, split and lineage), and the leak
refusal.

Training runs use a 2-layer, 64-wide random BERT (tests/_export_helpers.make_tiny) on a slice
of Musical Instruments (40 users), so each takes seconds; the pair-builder tests use
hand-made data with the awkward cases (repeated rows, empty texts, ids shared by a user and
an item) and real data (Musical Instruments, MovieLens 100k with item texts).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _export_helpers import make_tiny
from click.testing import CliRunner
from conftest import assert_one_line_error

from recfeat.data.recdata import RecData
from recfeat.errors import DataError, OptionError, UsageError
from recfeat.evaluation.splits import load_split, make_split
from recfeat.finetuning import TrainingLeakError, check_no_leak, finetune_settings, read_lineage
from recfeat.finetuning.pairs import build_pairs

CLI = "from recfeat.cli.main import cli; cli(prog_name='recfeat')"
N_USERS = 40
# Small and quick: 8 pairs a batch, 32 tokens.
QUICK = {"batch_size": 8, "max_length": 32, "checkpoint_every": 3}


# -- data ----------------------------------------------------------------------------------------
def awkward_data() -> RecData:
    """Every text names its (user, item) so a pair's texts can be traced back; ids collide
    between users and items ("x1" is both); u1 reviewed i1 twice (the later text counts);
    empty and blank texts; item texts for every item, a cold one included."""
    rows = [  # user, item, timestamp
        ("u1", "i1", 10), ("u1", "i2", 20), ("u1", "x1", 30), ("u1", "i3", 40),
        ("x1", "i1", 11), ("x1", "i2", 21), ("x1", "i4", 31), ("x1", "i5", 41),
        ("u2", "i1", 12), ("u2", "i3", 22), ("u2", "x1", 32), ("u2", "i5", 42),
        ("u3", "i2", 13), ("u3", "i4", 23), ("u3", "i5", 33), ("u3", "x1", 43),
        ("u4", "i1", 14), ("u4", "i2", 24), ("u4", "i3", 34), ("u4", "i4", 44),
        ("i1", "i5", 15), ("i1", "x1", 25), ("i1", "i4", 35), ("i1", "i3", 45),
    ]
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).assign(rating=4.0)
    texts = {(u, i): f"review by {u} of {i}" for u, i, _ in rows}
    texts[("u2", "i3")] = ""  # empty
    texts[("x1", "i4")] = "   "  # blank
    reviews = pd.DataFrame([(u, i, t, texts[(u, i)]) for u, i, t in rows],
                           columns=["user", "item", "timestamp", "text"])  # fmt: skip
    # a repeated row: the older review of (u1, i1) must never be used
    older = pd.DataFrame([("u1", "i1", 1, "OLD review by u1 of i1")], columns=reviews.columns)
    reviews = pd.concat([older, reviews], ignore_index=True).assign(rating=4.0)
    items = pd.DataFrame({"item": ["i1", "i2", "i3", "i4", "i5", "x1", "i6"],
                          "text": ["item text i1", "item text i2", "item text i3", "",
                                   "item text i5", "item text x1", "item text i6 never rated"]})  # fmt: skip
    return RecData("awkward", inter, reviews=reviews, items=items)


def _sides(pairs):
    """Every (user, item) interaction and every item behind a pair's texts."""
    f = pairs.frame
    rows = set(zip(f["anchor_user"], f["anchor_item"], strict=True)) | set(
        zip(f["positive_user"], f["positive_item"], strict=True))
    rows = {(u, i) for u, i in rows if u}
    return rows, set(f["anchor_item"]) | set(f["positive_item"])


def _texts(pairs) -> set[str]:
    return set(pairs.frame["anchor"]) | set(pairs.frame["positive"])


@pytest.mark.parametrize("kind", ["random", "item-cold", "user-cold", "temporal"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairs_never_touch_a_test_row_or_cold_item(kind, seed):
    data = awkward_data()
    split = make_split(data.interactions, kind, seed=seed, test_fraction=0.3)
    pairs = build_pairs(data, split.train, seed=seed)
    assert set(pairs.counts) == {"next-item", "same-item", "review-item"}
    test_rows = set(zip(split.test["user"], split.test["item"], strict=True))
    train_rows = set(zip(split.train["user"], split.train["item"], strict=True))
    rows, items = _sides(pairs)
    assert rows and rows <= train_rows and not rows & test_rows
    assert not items & set(split.cold_items)
    # the texts themselves: only training reviews and the item texts of training items
    allowed = {f"review by {u} of {i}" for u, i in train_rows}
    allowed |= {f"item text {i}" for i in set(split.train["item"])}
    assert _texts(pairs) <= allowed, _texts(pairs) - allowed
    forbidden = {f"review by {u} of {i}" for u, i in test_rows} | {"item text i6 never rated"}
    forbidden |= {f"item text {i}" for i in split.cold_items}
    assert not _texts(pairs) & forbidden
    # the lineage lists exactly what entered
    assert set(zip(pairs.rows["user"], pairs.rows["item"], strict=True)) == rows
    assert set(pairs.items) == items


def test_pairs_use_the_latest_review_and_skip_empty_texts():
    data = awkward_data()
    pairs = build_pairs(data, data.interactions)
    texts = _texts(pairs)
    assert "OLD review by u1 of i1" not in texts
    assert "review by u1 of i1" in texts
    assert not any(not t.strip() for t in texts)
    assert "item text i4" not in texts  # i4's item text is empty
    assert pairs.dropped == {"identical_texts": 0}
    assert sum(pairs.counts.values()) == len(pairs)
    # repeated interaction rows in a hand-made training table are one interaction each
    repeated = pd.concat([data.interactions, data.interactions.iloc[[0, 5, 5]]], ignore_index=True)
    assert build_pairs(data, repeated).digest() == pairs.digest()


def test_next_item_pairs_follow_time_and_colliding_ids_stay_apart():
    data = awkward_data()
    pairs = build_pairs(data, data.interactions, kinds=["next-item"])
    f = pairs.frame
    assert pairs.text_source == "item"  # the data has item texts
    chain = f[f["anchor_user"] == "x1"][["anchor_item", "positive_item"]].values.tolist()
    # x1 the USER: i1 -> i2 -> i4 (no item text: left out) -> i5
    assert chain == [["i1", "i2"], ["i2", "i5"]]
    # i1 the USER: i5 -> x1 -> i4 (left out) -> i3; nothing of x1's or i1's items leaks in
    chain = f[f["anchor_user"] == "i1"][["anchor_item", "positive_item"]].values.tolist()
    assert chain == [["i5", "x1"], ["x1", "i3"]]
    # without item texts the user's own reviews are the texts
    no_items = RecData("no-items", data.interactions, reviews=data.reviews)
    reviews = build_pairs(no_items, data.interactions, kinds=["next-item"])
    assert reviews.text_source == "review"
    first = reviews.frame[reviews.frame["anchor_user"] == "u1"].iloc[0]
    assert (first["anchor"], first["positive"]) == ("review by u1 of i1", "review by u1 of i2")


def test_pair_caps_are_seeded_samples():
    data = awkward_data()
    a = build_pairs(data, data.interactions, max_pairs=3, seed=0)
    b = build_pairs(data, data.interactions, max_pairs=3, seed=0)
    c = build_pairs(data, data.interactions, max_pairs=3, seed=5)
    assert all(n <= 3 for n in a.counts.values()) and a.available["review-item"] > 3
    assert a.digest() == b.digest() and a.digest() != c.digest()
    one = build_pairs(data, data.interactions, kinds=["same-item"], pairs_per_item=1)
    assert one.frame.groupby("anchor_item").size().max() == 1


def test_unsupported_or_empty_pair_kinds_fail_with_the_fix():
    data = awkward_data()
    no_items = RecData("no-items", data.interactions, reviews=data.reviews)
    with pytest.raises(DataError, match="review-item needs reviews and item texts.*choose from: next-item, same-item"):
        build_pairs(no_items, data.interactions, kinds=["review-item"])
    with pytest.raises(OptionError, match="Did you mean 'same-item'"):
        finetune_settings(data="x", pairs="same-items")
    with pytest.raises(UsageError, match="--load-split fixes the split"):
        finetune_settings(data="x", load_split="s.json", split="item-cold")
    with pytest.raises(OptionError, match="--batch-size must be >= 2"):
        finetune_settings(data="x", batch_size=1)


def test_real_data_pairs_keep_out_cold_items(musical_instruments, movielens_100k):
    import recfeat

    for path, kinds in ((musical_instruments, {"next-item", "same-item"}),
                        (movielens_100k, {"next-item"})):  # fmt: skip
        data = recfeat.load_dataset(path)
        split = make_split(data.interactions, "item-cold", seed=0)
        pairs = build_pairs(data, split.train, max_pairs=5000)
        assert set(pairs.counts) == kinds
        rows, items = _sides(pairs)
        assert not items & set(split.cold_items)
        assert not rows & set(zip(split.test["user"], split.test["item"], strict=True))


# -- training -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny("bert", tmp_path_factory.mktemp("ft") / "tiny-bert")


@pytest.fixture(scope="module")
def small_file(musical_instruments, tmp_path_factory) -> Path:
    """The reviews of the first N_USERS users of Musical Instruments, as an Amazon file."""
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    users = sorted({json.loads(line)["reviewerID"] for line in lines})[:N_USERS]
    keep = [line for line in lines if json.loads(line)["reviewerID"] in set(users)]
    out = tmp_path_factory.mktemp("mi") / "reviews_small.json.gz"
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        fh.writelines(keep)
    return out


@pytest.fixture(scope="module")
def small(small_file) -> RecData:
    import recfeat

    return recfeat.load_dataset(small_file, format="amazon")


@pytest.fixture(scope="module")
def trained(tiny, small, tmp_path_factory) -> Path:
    import recfeat

    out = tmp_path_factory.mktemp("runs") / "model"
    recfeat.finetune(small, out=out, encoder=str(tiny), max_steps=6, seed=0, **QUICK)
    return out


def _weights(folder: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_same_seed_same_weights_other_seed_other_weights(trained, tiny, small, tmp_path, capsys):
    import recfeat

    again = tmp_path / "again"
    recfeat.finetune(small, out=again, encoder=str(tiny), max_steps=6, seed=0, progress=True, **QUICK)
    bar = capsys.readouterr().err  # the progress bar: steps, the latest loss, time left
    assert "6/6" in bar and "fine-tuning (loss " in bar and "eta" in bar, bar
    assert (trained / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    other = tmp_path / "other"
    recfeat.finetune(small, out=other, encoder=str(tiny), max_steps=6, seed=1, **QUICK)
    assert not _same_weights(trained, other)
    assert not _same_weights(trained, tiny)  # training changed the weights


def test_manifest_split_lineage_and_plot(trained, small):
    m = json.loads((trained / "finetune.json").read_text())
    assert m["format"] == "recfeat-finetune"
    assert not (trained / "manifest.json").exists()  # that name would make it an export folder
    assert m["data"]["fingerprint"] and m["data"]["interactions"] == len(small.interactions)
    assert m["split"]["kind"] == "random" and m["split"]["seed"] == 0 and m["split"]["file"] == "split.json"
    assert m["pairs"]["kinds"] == ["next-item", "same-item"]  # Amazon reviews: no item texts
    assert m["pairs"]["total"] == sum(m["pairs"]["counts"].values()) > 0
    assert m["training"]["steps"] == 6 and m["training"]["resumed_from_step"] == 0
    assert [s for s, _ in m["loss_curve"]] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(v) for _, v in m["loss_curve"])
    assert (trained / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the saved split is evaluate's: --load-split rebuilds the same one
    split = load_split(trained / "split.json", small.interactions)
    made = make_split(small.interactions, "random", seed=0)
    assert np.array_equal(split.test_rows, made.test_rows)
    # and finetune --load-split takes it back (seed then seeds only pairs and training)
    from recfeat.finetuning.run import choose_split

    again = choose_split(small, finetune_settings(data=small, load_split=trained / "split.json", seed=4))
    assert np.array_equal(again.test_rows, made.test_rows)
    lineage = read_lineage(trained)
    assert lineage.digest == m["lineage"]["digest"] and len(lineage.rows) == m["lineage"]["rows"]
    assert not lineage.rows & set(zip(split.test["user"], split.test["item"], strict=True))
    # checkpoints are removed after success
    assert not trained.with_name(trained.name + ".checkpoints").exists()


def test_output_loads_as_an_encoder_and_matches_training_vectors(trained, small_file, tmp_path):
    """recfeat's hf encoder on the folder gives the vectors the training optimised
    (sentence-transformers' mean pooling + normalisation), and extract takes it unchanged."""
    from sentence_transformers import SentenceTransformer

    import recfeat
    from recfeat.cli.main import cli

    texts = ["Great strings.", "The tuner clips on well and is accurate.", "ok"]
    # the folder's modules.json ends in Normalize, so the hf encoder normalises by default
    ours = recfeat.encoder(str(trained)).encode(texts)
    theirs = SentenceTransformer(str(trained), device="cpu").encode(texts)
    assert np.allclose(ours, theirs, atol=1e-5)
    raw = recfeat.encoder(str(trained), normalize=False).encode(texts)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    out = tmp_path / "items.parquet"
    result = CliRunner().invoke(cli, ["extract", str(small_file), "--format", "amazon", "--level", "item",
                                      "--encoder", str(trained), "--max-length", "32", "--no-cache",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    from recfeat.data.features import load_features

    extracted = load_features(out).vectors
    assert extracted.shape[0] > 0 and np.allclose(np.linalg.norm(extracted, axis=1), 1.0, atol=1e-3)
    # export takes it like any model folder (and validates the graph against torch)
    recfeat.export(str(trained), tmp_path / "onnx")
    onnx = recfeat.encoder(str(tmp_path / "onnx")).encode(texts)
    assert np.allclose(onnx, theirs, atol=1e-4)  # the export normalises as the folder says
    with pytest.raises(UsageError, match="export folder .* cannot be trained"):
        recfeat.finetune(small_file, out=tmp_path / "x", encoder=str(tmp_path / "onnx"), format="amazon")


def test_evaluate_refuses_an_encoder_trained_on_its_test_rows(trained, small):
    own = load_split(trained / "split.json", small.interactions)
    assert check_no_leak(trained, own) is not None  # its own split passes
    assert check_no_leak(trained.parent, own) is None  # not a fine-tuned folder: nothing to check
    planted = make_split(small.interactions, "item-cold", seed=3)  # another split: a leak
    with pytest.raises(TrainingLeakError) as err:
        check_no_leak(trained, planted)
    message = str(err.value)
    assert "test row(s) (first: user" in message and "cold item(s) (first:" in message
    assert "--load-split" in message and "\n" not in message


def test_edited_lineage_is_refused(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    lineage = json.loads((copy / "lineage.json").read_text())
    lineage["rows"] = lineage["rows"][1:]  # hide a row the model was trained on
    (copy / "lineage.json").write_text(json.dumps(lineage))
    with pytest.raises(DataError, match="does not match its digest"):
        read_lineage(copy)


def test_existing_output_and_foreign_checkpoints_are_refused_before_work(trained, small_file, tiny, tmp_path):
    from recfeat.cli.main import cli

    args = ["finetune", str(small_file), "--format", "amazon", "--encoder", str(tiny)]
    result = CliRunner().invoke(cli, [*args, "--out", str(trained)])
    assert_one_line_error(result, 2, "already exists", "--force")
    ckpt = tmp_path / "mine"
    ckpt.mkdir()
    (ckpt / "notes.txt").write_text("not a checkpoint")
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "m"), "--checkpoint-dir", str(ckpt)])
    assert_one_line_error(result, 2, "did not write", "--checkpoint-dir")
    assert (ckpt / "notes.txt").exists()
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "m"), "--pairs", "review-item"])
    assert_one_line_error(result, 1, "review-item needs reviews and item texts")


# -- resume after a kill --------------------------------------------------------------------------
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI, *args]


def test_resume_after_a_kill_ends_with_the_same_weights(tiny, small_file, tmp_path):
    """SIGKILL a run once its second checkpoint is whole; the same command again resumes from
    it and ends with the weights of an uninterrupted run, bit for bit (the checkpoint holds
    the model, optimizer, scheduler and RNG states, and the trainer skips the batches seen)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RECFEAT_LOAD_PLUGINS": "", "RECFEAT_PROGRESS": "0",
           "OMP_NUM_THREADS": "2"}  # fmt: skip
    steps = ["--steps", "24", "--batch-size", "8", "--max-length", "32", "--checkpoint-every", "4"]
    common = ["finetune", str(small_file), "--format", "amazon", "--encoder", str(tiny), *steps]
    killed_out, ckpt = tmp_path / "killed", tmp_path / "killed.checkpoints"
    proc = subprocess.Popen(_cli(*common, "--out", str(killed_out)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    target = ckpt / "checkpoint-8" / "trainer_state.json"
    deadline = time.monotonic() + 300
    while not target.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "checkpoint-8 not written within 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not killed_out.exists()
    # other settings do not resume (or wipe) this run's checkpoints
    shorter = [*common[:common.index("24")], "12", *common[common.index("24") + 1:]]
    changed = subprocess.run(_cli(*shorter, "--out", str(killed_out)), env=env, capture_output=True, text=True)
    assert changed.returncode == 2 and "differs: max_steps, steps" in changed.stderr, changed.stderr
    assert (ckpt / "checkpoint-8" / "trainer_state.json").exists()
    done = subprocess.run(_cli(*common, "--out", str(killed_out)), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stderr and "resumed at" in done.stdout, done.stdout + done.stderr
    whole = tmp_path / "whole"
    run = subprocess.run(_cli(*common, "--out", str(whole)), env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (killed_out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    killed_m = json.loads((killed_out / "finetune.json").read_text())
    whole_m = json.loads((whole / "finetune.json").read_text())
    assert killed_m["training"]["resumed_from_step"] >= 8 and whole_m["training"]["resumed_from_step"] == 0
    assert killed_m["loss_curve"] == whole_m["loss_curve"]  # the curve survives the kill too
    assert not ckpt.exists()  # removed after success


def test_evaluate_refuses_features_of_an_encoder_trained_on_its_test_rows(trained, small_file, small, tmp_path):
    """Features extracted with the fine-tuned folder: evaluate finds the folder through the
    run record, checks the weights are the ones that made the features, and refuses a split
    the training touched; the model's own split passes; a folder that is gone is a warning."""
    import shutil

    from recfeat.cli.main import cli

    model = tmp_path / "model"
    shutil.copytree(trained, model)
    feats = tmp_path / "reviews.parquet"
    result = CliRunner().invoke(cli, ["extract", str(small_file), "--format", "amazon", "--level", "review",
                                      "--encoder", str(model), "--max-length", "32", "--no-cache",
                                      "--out", str(feats)])  # fmt: skip
    assert result.exit_code == 0, result.output
    evaluate = ["evaluate", str(small_file), "--format", "amazon", "--features", str(feats), "--models", "bias"]
    result = CliRunner().invoke(cli, [*evaluate, "--split", "item-cold", "--seed", "3"])
    assert_one_line_error(result, 1, "was trained on texts of this item-cold split's", "--load-split")
    result = CliRunner().invoke(cli, [*evaluate, "--load-split", str(model / "split.json")])
    assert result.exit_code == 0, result.output
    assert "leak check item_features_training: ok: fine-tuned encoder" in result.output
    shutil.rmtree(model)
    result = CliRunner().invoke(cli, [*evaluate, "--split", "random", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "leak check item_features_training: warn: encoder folder" in result.output
    assert "no longer on disk" in result.output
