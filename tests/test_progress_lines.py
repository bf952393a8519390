"""Long work shows progress in a log file too: where stderr is not a terminal, a forced bar
(RECFEAT_PROGRESS=1) prints plain lines (done/total, items/s, eta) instead of a live bar
that cannot redraw there; its label can change (the fine-tuning loss)."""

from __future__ import annotations

import recfeat.progress as progress


def test_forced_bar_prints_lines_with_rate_eta_and_the_latest_label(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)  # a line on every advance
    with progress.progress_bar(4, "fine-tuning", enabled=True) as bar:
        bar.advance(1)
        bar.describe("fine-tuning (loss 2.5000)")
        bar.advance(3)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("fine-tuning: 1/4, ") and "items/s" in lines[0] and "eta" in lines[0]
    assert lines[-1].startswith("fine-tuning (loss 2.5000): 4/4, ")
    assert len(lines) == 3  # two advances, then the closing line


def test_lines_are_spaced_and_a_disabled_bar_prints_nothing(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 3600.0)
    with progress.progress_bar(None, "encoding", enabled=True) as bar:
        for _ in range(1000):
            bar.advance()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("encoding: 1,000, ")  # only the closing one
    assert "eta" not in lines[0]  # no total: nothing to estimate
    with progress.progress_bar(10, "quiet", enabled=False) as bar:
        bar.advance(10)
        bar.describe("still quiet")
    assert capsys.readouterr().err == ""


def test_a_resumed_run_counts_earlier_work_but_times_only_its_own(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 3600.0)
    clock = iter([0.0, 0.0, 5.0, 10.0])  # made, start_at, advance, closing line
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with progress.progress_bar(150, "fine-tuning", enabled=True) as bar:
        bar.start_at(100)  # resumed at step 100
        bar.advance(5)  # 5 steps in 10 s
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith("fine-tuning: 105/150, 0.50 items/s") and "eta 1m30s" in line
    with progress.progress_bar(10, "rich", enabled=False) as bar:
        bar.start_at(3)  # a disabled bar takes it too
