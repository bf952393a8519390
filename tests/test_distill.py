"""recfeat distill: the student's shape (teacher layers kept, same width), texts from the
training part only, seeded and resumable training, the output folder (a model recfeat loads,
with its manifest, split and lineage), the gate's verdicts, and the student as a candidate
of ``--backend auto``.

Runs use 2-layer, 64-wide random teachers (tests/_export_helpers.make_tiny) on a slice of
Musical Instruments (40 users), so each takes seconds.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _export_helpers import make_tiny

from recfeat.data.recdata import RecData
from recfeat.errors import OptionError, UsageError
from recfeat.finetuning.distill import (
    STUDENT_MIN_COSINE,
    build_student,
    distill_settings,
    kept_layers,
    training_texts,
)
from recfeat.selection import gate as gt

N_USERS = 40
QUICK = {"batch_size": 8, "max_length": 32, "checkpoint_every": 3, "max_texts": 160}
CLI = "from recfeat.cli.main import cli; cli(prog_name='recfeat')"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI, *args]


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("teachers")
    return {kind: make_tiny(kind, base / kind) for kind in ("bert", "distilbert", "gpt2")}


@pytest.fixture(scope="module")
def small_file(musical_instruments, tmp_path_factory) -> Path:
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
def student(teachers, small, tmp_path_factory) -> Path:
    import recfeat

    out = tmp_path_factory.mktemp("runs") / "student"
    recfeat.distill(small, out=out, encoder=str(teachers["bert"]), max_steps=6, seed=0,
                    keep_checkpoints=True, **QUICK)  # fmt: skip
    return out


def _weights(folder: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


# -- the student's shape ---------------------------------------------------------------------
def test_kept_layers_spread_from_first_to_last():
    assert kept_layers(6, None) == [0, 2, 5]  # half, rounded up
    assert kept_layers(6, 2) == [0, 5]
    assert kept_layers(12, 4) == [0, 4, 7, 11]
    assert kept_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    assert kept_layers(2, None) == [1]  # one layer: the teacher's last
    for bad in (0, 6, 7):
        with pytest.raises(OptionError, match="--layers must be between 1 and 5"):
            kept_layers(6, bad)


@pytest.mark.parametrize("kind", ["bert", "distilbert", "gpt2"])
def test_student_keeps_the_teachers_own_layers_and_width(teachers, kind):
    import torch

    from recfeat.finetuning.trainer import build_model

    teacher = build_model(str(teachers[kind]), "mean", 32)
    student = build_student(str(teachers[kind]), "mean", 32, [1])
    t_body, s_body = teacher[0].auto_model, student[0].auto_model
    t_params = dict(t_body.named_parameters())
    s_params = dict(s_body.named_parameters())
    assert len(s_params) < len(t_params)
    layer_path = {"bert": "encoder.layer", "distilbert": "transformer.layer", "gpt2": "h"}[kind]
    # the student's layer 0 is the teacher's layer 1, weight for weight
    moved = [n for n in s_params if n.startswith(f"{layer_path}.0.")]
    assert moved
    for name in moved:
        assert torch.equal(s_params[name], t_params[name.replace(f"{layer_path}.0.", f"{layer_path}.1.")])
    assert not any(n.startswith(f"{layer_path}.1.") for n in s_params)
    ids = torch.tensor([[5, 17, 23, 9]])
    with torch.no_grad():
        s_out = s_body(input_ids=ids).last_hidden_state
        t_out = t_body(input_ids=ids).last_hidden_state
    assert s_out.shape == t_out.shape == (1, 4, 64)  # as wide as the teacher
    assert not torch.allclose(s_out, t_out)  # and a different (shallower) model


# -- texts: the training part only ---------------------------------------------------------
def awkward() -> RecData:
    """Repeated rows, empty texts, an id that is both a user and an item, a cold item."""
    rows = [("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u2", "x1"), ("x1", "i2"), ("x1", "i3"),
            ("u3", "i3"), ("u3", "x1"), ("u4", "i1"), ("u4", "i4")]  # fmt: skip
    inter = pd.DataFrame(rows, columns=["user", "item"]).assign(rating=4.0, timestamp=range(len(rows)))
    texts = [f"review by {u} of {i}" for u, i in rows]
    texts[3] = ""
    reviews = inter.assign(text=texts)
    reviews = pd.concat([reviews, reviews.iloc[[0]]], ignore_index=True)  # a repeated row
    items = pd.DataFrame({"item": ["i1", "i2", "i3", "i4", "x1"],
                          "text": ["item i1", "item i2", "", "item i4", "item x1"]})  # fmt: skip
    return RecData("awkward", inter, reviews=reviews, items=items)


def test_training_texts_never_include_a_test_row_or_cold_item():
    from recfeat.evaluation.splits import make_split

    data = awkward()
    split = make_split(data.interactions, "random", seed=3, test_fraction=0.3)
    texts, rows, items = training_texts(data, split, max_texts=None, seed=0, clean=lambda t: t)
    test = set(zip(split.test["user"], split.test["item"], strict=True))
    assert texts and len(texts) == len(set(texts))  # distinct
    assert "" not in texts
    for u, i in test:
        assert f"review by {u} of {i}" not in texts
    assert not set(zip(rows["user"], rows["item"], strict=True)) & test
    assert set(items) <= set(split.train["item"])
    few, _, _ = training_texts(data, split, max_texts=2, seed=0, clean=lambda t: t)
    assert len(few) == 2 and set(few) <= set(texts)  # a sample of the same texts
    cold = make_split(data.interactions, "item-cold", seed=0, test_fraction=0.3)
    texts, _, items = training_texts(data, cold, max_texts=None, seed=0, clean=lambda t: t)
    for item in cold.cold_items:
        assert item not in items and f"item {item}" not in texts


# -- the run ---------------------------------------------------------------------------------
def test_output_is_a_smaller_model_recfeat_loads(student, teachers, small):
    import recfeat

    m = json.loads((student / "distill.json").read_text())
    assert m["format"] == "recfeat-distill"
    assert m["teacher"]["layers"] == 2 and m["student"]["layers"] == 1
    assert m["student"]["kept_teacher_layers"] == [1]
    assert m["training"]["steps"] == 6 and m["training"]["loss"].startswith("MSELoss")
    assert m["texts"]["trained_on"] + m["texts"]["held_out"] == m["texts"]["total"] <= 160
    fid = m["fidelity"]["held_out_training_texts"]
    assert fid["texts"] == m["texts"]["held_out"] > 0 and -1 <= fid["cosine_mean"] <= 1
    config = json.loads((student / "config.json").read_text())
    assert config["num_hidden_layers"] == 1
    for name in ("split.json", "lineage.json", "loss.png", "modules.json"):
        assert (student / name).is_file(), name
    enc = recfeat.encoder(str(student))
    vectors = enc.encode(["a guitar strap", "picks"])
    assert vectors.shape == (2, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)  # normalised, as trained
    # the evaluation leak check reads the student's lineage, as a fine-tuned model's
    from recfeat.finetuning import read_lineage

    lineage = read_lineage(student)
    assert lineage is not None and lineage.rows


def test_same_seed_same_weights_other_seed_other_weights(student, teachers, small, tmp_path):
    import recfeat

    again = tmp_path / "again"
    recfeat.distill(small, out=again, encoder=str(teachers["bert"]), max_steps=6, seed=0,
                    gate=False, **QUICK)  # fmt: skip
    assert (student / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    other = tmp_path / "other"
    recfeat.distill(small, out=other, encoder=str(teachers["bert"]), max_steps=6, seed=1,
                    gate=False, **QUICK)  # fmt: skip
    a, b = _weights(student), _weights(other)
    assert not all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_from_a_checkpoint_ends_with_the_same_weights(student, teachers, small, tmp_path):
    """The run kept its checkpoints (3 and 6); with the last one gone and the output not
    written (as after a kill at step 4), the same settings resume from step 3 and end with
    the same weights, bit for bit."""
    import recfeat

    ckpt = student.with_name(student.name + ".checkpoints")
    copy = tmp_path / "resumed.checkpoints"
    shutil.copytree(ckpt, copy)
    shutil.rmtree(copy / "checkpoint-6")
    out = tmp_path / "resumed"
    messages: list[str] = []
    result = recfeat.distill(small, out=out, encoder=str(teachers["bert"]), max_steps=6, seed=0,
                             gate=False, echo=messages.append, **QUICK)  # fmt: skip
    assert result.manifest["training"]["resumed_from_step"] == 3, messages
    assert any("resuming from" in m for m in messages)
    assert (student / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    assert not copy.exists()  # removed after success
    # other settings never resume (or wipe) another run's checkpoints
    with pytest.raises(UsageError, match="differs: .*max_steps"):
        recfeat.distill(small, out=tmp_path / "x", encoder=str(teachers["bert"]), max_steps=5,
                        seed=0, checkpoint_dir=ckpt, **QUICK)  # fmt: skip


# -- the gate ----------------------------------------------------------------------------------
def _row(name, cos, ndcg, rmse, floor=None):
    row = {"backend": name, "seq_per_s": 1.0, "cosine_mean": cos,
           "metrics": {"content ndcg@10": ndcg, "ridge rmse": rmse}}  # fmt: skip
    if floor is not None:
        row["min_cosine"] = floor
    return row


def test_gate_verdicts_on_a_student():
    teacher = _row("teacher", 1.0, 0.20, 1.00)
    rows = [teacher,
            _row("close", 0.95, 0.199, 1.005, STUDENT_MIN_COSINE),  # within 1%: passes
            _row("better", 0.93, 0.21, 0.98, STUDENT_MIN_COSINE),  # better: passes
            _row("worse", 0.97, 0.19, 1.00, STUDENT_MIN_COSINE),  # ndcg -5%: fails
            _row("stray", 0.85, 0.20, 1.00, STUDENT_MIN_COSINE),  # off the teacher: fails
            _row("backend", 0.95, 0.20, 1.00)]  # a backend keeps the 0.99 floor  # fmt: skip
    gt.judge(rows, "teacher", min_cosine=0.99, max_drop=0.01)
    verdict = {r["backend"]: r["passes"] for r in rows}
    assert verdict == {"teacher": True, "close": True, "better": True, "worse": False,
                       "stray": False, "backend": False}  # fmt: skip
    assert any("content ndcg@10" in w for w in rows[3]["why"])
    assert any(f"< {STUDENT_MIN_COSINE} (floor)" in w for w in rows[4]["why"])
    assert any("< 0.99 (floor)" in w for w in rows[5]["why"])


def test_distill_records_the_gates_verdict(student):
    m = json.loads((student / "distill.json").read_text())
    verdict = m["gate"]
    assert isinstance(verdict["passes"], bool) and verdict["min_cosine"] == STUDENT_MIN_COSINE
    assert verdict["max_drop"] == 0.01 and verdict["notes"]
    assert verdict["passes"] == (not verdict["why"])
    assert set(verdict["metrics"]) == {"teacher", "student"}


# -- --backend auto --------------------------------------------------------------------------
def test_auto_adds_the_student_as_candidates_with_its_own_floor(student, teachers, tmp_path):
    from recfeat.selection import auto_backend as ab
    from recfeat.selection import backends as bb

    only = {"torch-fp32": bb.BACKENDS["torch-fp32"]}
    texts = ["a guitar strap", "strings that stay in tune", "picks", "a cable"] * 4
    ctx = bb.BuildContext(encoder="hf", model=str(teachers["bert"]))  # as --encoder DIR
    choice = ab.choose_backend("hf", texts, candidates=["torch-fp32"], backends=only, ctx=ctx,
                               students=[student], cache_dir=tmp_path, repeats=1)  # fmt: skip
    rows = {r["backend"]: r for r in choice.table}
    assert set(rows) == {"torch-fp32", "student:torch-fp32"}
    assert rows["student:torch-fp32"]["min_cosine"] == STUDENT_MIN_COSINE
    assert "cosine_mean" in rows["student:torch-fp32"]
    assert "student:torch-fp32" in ab.format_table(choice)


def test_auto_refuses_a_folder_that_is_no_student_of_this_teacher(student, teachers, tmp_path):
    from recfeat.selection import auto_backend as ab
    from recfeat.selection import backends as bb

    other = bb.BuildContext(encoder="hf", model=str(teachers["distilbert"]))
    with pytest.raises(UsageError, match="distilled from other weights"):
        ab.student_backends("hf", [student], bb.BACKENDS, other)
    same = bb.BuildContext(encoder="hf", model=str(teachers["bert"]))
    with pytest.raises(UsageError, match="not a student recfeat distill wrote"):
        ab.student_backends("hf", [teachers["bert"]], bb.BACKENDS, same)
    specs, ids = ab.student_backends("hf", [student], bb.BACKENDS, same)
    assert {n.split(":")[0] for n in specs} == {"student"} and list(ids) == [str(student)]


# -- bad input -------------------------------------------------------------------------------
def test_settings_are_checked_before_anything_loads():
    with pytest.raises(UsageError, match="give data"):
        distill_settings()
    with pytest.raises(OptionError, match="--layers"):
        distill_settings(data="x", layers=0)
    with pytest.raises(OptionError, match="--max-texts"):
        distill_settings(data="x", max_texts="many")
    with pytest.raises(OptionError, match="--split"):
        distill_settings(data="x", split="itemcold")
    with pytest.raises(UsageError, match="--load-split fixes the split"):
        distill_settings(data="x", load_split="s.json", split="random")
    assert distill_settings(data="x", max_texts="all").max_texts is None


def _one_line(run, code: int, *fragments: str) -> None:
    assert run.returncode == code, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, run.stderr
    for fragment in fragments:
        assert fragment in errors[0], run.stderr


def test_cli_bad_input_is_one_line(student, small_file, tmp_path):
    cmd = ["distill", str(small_file), "--format", "amazon"]
    before = (student / "model.safetensors").read_bytes()
    _one_line(subprocess.run(_cli(*cmd, "--out", str(student)), capture_output=True, text=True),
              2, "already exists")  # fmt: skip
    assert (student / "model.safetensors").read_bytes() == before  # an earlier output stays
    _one_line(subprocess.run(_cli(*cmd, "--out", str(tmp_path / "s"), "--layers", "0"),
                             capture_output=True, text=True), 2, "--layers")  # fmt: skip
    _one_line(subprocess.run(_cli(*cmd, "--out", str(small_file)), capture_output=True, text=True),
              2, str(small_file))  # fmt: skip
    _one_line(subprocess.run(_cli("extract", str(small_file), "--format", "amazon", "--student",
                                  str(student), "--out", str(tmp_path / "f.parquet")),
                             capture_output=True, text=True), 2, "--backend auto")  # fmt: skip
    assert not (tmp_path / "s").exists() and not (tmp_path / "f.parquet").exists()
