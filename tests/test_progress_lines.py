"""Long work shows progress that says something. In a log file (stderr not a terminal, a
forced bar: RECFEAT_PROGRESS=1) it prints plain lines (done/total, items/s, eta): one when it
starts, then spaced ones, and one at the end; on a terminal a live rich bar. Either way the
rate is this run's items over this run's time (resumed work counted, not timed) and the eta
follows from it; long steps move the bar as their parts finish (each encoded batch), and
evaluation shows its models and each model's tuning trials."""

from __future__ import annotations

import gzip
import itertools
import re
import time

import pytest

import recfeat.progress as progress


@pytest.fixture()
def clock(monkeypatch):
    """A clock the test sets (``clock["t"] = 10.0``); the bars read it."""
    now = {"t": 0.0}
    monkeypatch.setattr(progress, "_now", lambda: now["t"])
    return now


def _lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_forced_bar_prints_a_start_line_then_lines_with_rate_eta_and_the_latest_label(
    monkeypatch, capsys
):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)  # a line on every advance
    with progress.progress_bar(4, "fine-tuning", enabled=True) as bar:
        bar.advance(1)
        bar.describe("fine-tuning (loss 2.5000)")
        bar.advance(3)
    lines = _lines(capsys)
    assert lines[0].startswith("fine-tuning: 0/4, - items/s, 0m00s elapsed")  # before any work
    assert lines[1].startswith("fine-tuning: 1/4, ") and "items/s" in lines[1] and "eta" in lines[1]
    assert lines[-1].startswith("fine-tuning (loss 2.5000): 4/4, ")
    assert len(lines) == 4  # the start, two advances, then the closing line


def test_lines_are_spaced_and_a_disabled_bar_prints_nothing(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 3600.0)
    with progress.progress_bar(None, "encoding", enabled=True) as bar:
        for _ in range(1000):
            bar.advance()
    lines = _lines(capsys)
    assert len(lines) == 2 and lines[0].startswith("encoding: 0, ")  # the start and the end
    assert lines[1].startswith("encoding: 1,000, ")
    assert "eta" not in lines[1]  # no total: nothing to estimate
    with progress.progress_bar(10, "quiet", enabled=False) as bar:
        bar.advance(10)
        bar.describe("still quiet")
        with bar.step(3):
            progress.report(3)
    assert capsys.readouterr().err == ""


def test_the_rate_is_this_runs_items_over_this_runs_time(monkeypatch, capsys, clock):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 3600.0)
    with progress.progress_bar(150, "fine-tuning", enabled=True, unit="step") as bar:
        clock["t"] = 40.0  # resumed at step 100, found after 40 s of loading
        bar.start_at(100)
        clock["t"] = 50.0
        bar.advance(5)  # 5 steps in this run's 10 s: 0.5/s, 45 left: 90 s
    line = _lines(capsys)[-1]
    assert line.startswith("fine-tuning: 105/150, 2.0 s/step, 0m10s elapsed, eta 1m30s")
    with progress.progress_bar(10, "rich", enabled=False) as bar:
        bar.start_at(3)  # a disabled bar takes it too
    clock["t"] = 0.0
    with progress.progress_bar(1000, "encoding", enabled=True) as bar:
        clock["t"] = 50.0
        bar.advance(950)
    assert _lines(capsys)[-1].startswith(
        "encoding: 950/1,000, 19.00 items/s, 0m50s elapsed, eta 0m02s"
    )


def _rich_screen(monkeypatch) -> None:
    """stderr seen as a terminal by rich (a dumb one: the bar is printed once, at its end)."""
    for name, value in (("FORCE_COLOR", "1"), ("TERM", "dumb"), ("COLUMNS", "200")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NO_COLOR", raising=False)


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_a_live_bar_reports_the_true_average_rate_and_redraws_on_its_own(
    monkeypatch, capsys, clock
):
    """rich's own speed is a window over recent updates: with two updates 90 s apart it
    showed no rate, and its finished speed was wrong (5.3/s for a real 19/s)."""
    _rich_screen(monkeypatch)
    with progress.progress_bar(100, "encoding reviews", enabled=True) as bar:
        live = bar._progress.live
        assert live.auto_refresh and live.refresh_per_second >= 1  # the clock moves unadvanced
        clock["t"] = 10.0
        bar.advance(50)
        clock["t"] = 100.0
        bar.advance(50)  # 100 items in 100 s
        clock["t"] = 160.0  # after it finished: neither rate nor elapsed time moves
    out = _plain(capsys.readouterr().err)
    row = next(line for line in out.splitlines() if line.startswith("encoding reviews"))
    assert "100/100" in row and "1.00 items/s" in row and "0:01:40" in row
    assert "eta 0:00:00" in row
    with progress.progress_bar(150, "fine-tuning", enabled=True, unit="step") as bar:
        clock["t"] = 200.0
        bar.start_at(100)
        clock["t"] = 210.0
        bar.advance(5)
    row = next(line for line in _plain(capsys.readouterr().err).splitlines()
               if line.startswith("fine-tuning"))  # fmt: skip
    assert "105/150" in row and "2.0 s/step" in row and "eta 0:01:30" in row


def test_a_bar_opened_under_a_live_one_is_a_row_of_its_display(monkeypatch, capsys, clock):
    _rich_screen(monkeypatch)
    with progress.progress_bar(2, "evaluating models", enabled=True, unit="model") as outer:
        with progress.progress_bar(3, "tuning bias", enabled=True, unit="trial") as inner:
            assert inner._progress is outer._progress  # one display, two rows
            assert len(outer._progress.tasks) == 2
            inner.advance(3)
        assert len(outer._progress.tasks) == 1  # the finished trials row is gone
        outer.advance(2)
    assert progress._live is None
    with progress.progress_bar(1, "alone", enabled=True) as bar:  # a new display after it
        assert len(bar._progress.tasks) == 1


def test_lines_said_during_a_live_bar_go_above_it_and_stdout_stays_stdout(monkeypatch, capsys):
    """click.echo(err=True) wrote into the bar's own line; rich also sent a program's stdout
    (a JSON result redirected to a file) to stderr while a bar was live."""
    _rich_screen(monkeypatch)
    with progress.progress_bar(2, "benchmarking", enabled=True) as bar:
        progress.say("bench: building torch-fp32")
        print('{"rows": []}')  # stdout is not a terminal here: it must stay on stdout
        bar.advance(2)
    out, err = capsys.readouterr()
    assert out == '{"rows": []}\n'
    lines = _plain(err).splitlines()
    assert lines[0] == "bench: building torch-fp32" and lines[1].startswith("benchmarking")
    progress.say("no bar: a plain line")
    assert capsys.readouterr().err == "no bar: a plain line\n"


def test_a_step_moves_the_bar_with_the_parts_its_work_reports(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    with progress.progress_bar(30, "rows", enabled=True) as bar:
        with bar.step(20, of=10):  # 20 rows whose 10 texts report 3 + 3 + 3 then stop
            for _ in range(3):
                progress.report(3)
        with bar.step(10):  # its work reports nothing: the whole step at its end
            pass
    counts = [int(re.match(r"rows: ([\d,]+)/30", line).group(1)) for line in _lines(capsys)]
    assert counts == [0, 6, 12, 18, 20, 30, 30]  # scaled, then the rest of each step
    progress.report(5)  # outside a step: nothing to move, no error


def test_a_line_bar_keeps_printing_through_a_long_step(monkeypatch, capsys, clock):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.01)
    seen: list[str] = []
    with progress.progress_bar(3, "evaluating models", enabled=True, unit="model"):
        clock["t"] = 30.0  # a model fitting for 30 s: no advance meanwhile
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            seen += _lines(capsys)
            time.sleep(0.01)
    assert seen[0].startswith("evaluating models: 0/3, - models/s, 0m00s elapsed")
    assert seen[1].startswith("evaluating models: 0/3, - models/s, 0m30s elapsed")  # the heartbeat


@pytest.fixture(scope="module")
def minilm_small_batches():
    """The packaged MiniLM with batches of at most 4 texts (one thread: 2 shared cores)."""
    from recfeat.plugin.registry import get_registry

    return get_registry("encoder").create("minilm", max_batch_size=4, threads=1)


def test_encoding_a_chunk_moves_the_bar_per_batch(monkeypatch, capsys, minilm_small_batches):
    from recfeat.extraction.stages import encode_texts

    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    texts = [f"review number {i}: the strings buzz a little" for i in range(24)]
    vectors, stats = encode_texts(texts, minilm_small_batches, False, chunk_size=2048,
                                  progress=True, description="encoding reviews")  # fmt: skip
    assert vectors.shape == (24, 384) and stats.encoded == 24 and stats.chunks_encoded == 1
    counts = [int(re.match(r"encoding reviews: ([\d,]+)/24", line).group(1))
              for line in _lines(capsys)]  # fmt: skip
    assert len(counts) >= 8  # six batches of one chunk, with the start and the end
    assert counts == sorted(counts) and counts[-1] == 24
    assert max(b - a for a, b in itertools.pairwise(counts)) <= 4  # never more than a batch


def test_a_streamed_extract_moves_its_row_bar_per_batch(monkeypatch, capsys, tmp_path,
                                                       musical_instruments, minilm_small_batches):  # fmt: skip
    import recfeat

    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    src = tmp_path / "reviews.json.gz"
    with gzip.open(musical_instruments, "rt", encoding="utf-8") as fh, gzip.open(src, "wt") as out:
        out.writelines(itertools.islice(fh, 24))
    recfeat.extract_file(src, tmp_path / "f.parquet", encoder=minilm_small_batches, stream=True,
                         cache=False, progress=True)  # fmt: skip
    counts = [int(m.group(1)) for line in _lines(capsys)
              if (m := re.match(r"encoding reviews \(review level, streamed\): ([\d,]+)/", line))]  # fmt: skip
    assert counts[-1] == 24 and counts == sorted(counts)
    assert len(counts) >= 8  # per batch of 4 texts, not one jump for the chunk
    assert max(b - a for a, b in itertools.pairwise(counts)) <= 4


def test_evaluate_shows_each_model_and_each_tuning_trial(monkeypatch, capsys):
    from test_models import synthetic  # tests/ is on sys.path (pytest rootdir import mode)

    from recfeat.data.recdata import RecData
    from recfeat.evaluation.protocol import evaluate

    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    inter, _, _, _ = synthetic(n_users=60, n_items=40)
    data = RecData("synthetic", inter, rating_scale=(1.0, 5.0))
    evaluate(data, None, ["popularity", "bias"], "random", tune=True, tune_trials=3,
             progress=True)  # fmt: skip
    lines = _lines(capsys)
    assert lines[0].startswith("evaluating models: 0/2, - models/s")  # before any fit
    assert any(line.startswith("evaluating models: popularity: 1/2, ") for line in lines)
    trials = [line for line in lines if line.startswith("tuning bias on validation")]
    assert trials[0].startswith("tuning bias on validation: 0/3, - trials/s")
    assert trials[-1].startswith("tuning bias on validation: trial 3/3: 3/3, ")
    assert len(trials) == 5  # the start, each of 3 trials, the end
    assert lines[-1].startswith("evaluating models: bias: 2/2, ")
    evaluate(data, None, ["bias"], "random", tune=True, tune_trials=2, progress=False)
    assert capsys.readouterr().err == ""  # progress=False reaches the tuning trials too


def test_bench_moves_its_bar_per_measurement_and_skips_a_failed_backend(monkeypatch, capsys):
    import numpy as np

    from recfeat.bench import suite
    from recfeat.selection import backends as bb

    class Fixed(bb.Runner):
        def __init__(self, spec, ctx):
            self.spec = spec

        def forward(self, input_ids, attention_mask):
            return np.ones((len(input_ids), 8), dtype=np.float32)

    def broken(spec, ctx):
        raise RuntimeError("no such runtime here")

    specs = [bb.BackendSpec(name, bb.RECFEAT, "fake", "fp32", name, (), "-", factory)
             for name, factory in (("torch-fp32", Fixed), ("broken", broken), ("copy", Fixed))]  # fmt: skip
    monkeypatch.setenv("RECFEAT_PROGRESS", "1")  # a bar by default, as on a terminal
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    res = suite.run_throughput(encoder="minilm", backends=specs, batch_sizes=[1, 2],
                               seq_lens=[8, 16], ceiling_size=None, repeats=1, warmup=0)  # fmt: skip
    assert [f["backend"] for f in res["failed"]] == ["broken"]
    counts = [int(m.group(1)) for line in _lines(capsys)
              if (m := re.match(r"benchmarking(?: [\w-]+)?: (\d+)/12, ", line))]  # fmt: skip
    assert counts == [0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 12]  # the failed one's 4 in one step
