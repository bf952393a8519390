"""Progress bars for long work: items done, items/s and time left, on stderr."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

#: seconds between two lines of a bar drawn where stderr is not a terminal (a log file)
LINE_EVERY_S = 15.0


class _Bar:
    def __init__(self, progress, task):
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        """Change the bar's label (e.g. to show the latest training loss)."""
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def start_at(self, n: int) -> None:
        """Work already done before this run (a resumed one): counted, not timed."""
        if self._progress is not None:
            self._progress.reset(self._task, completed=n)


class _LineBar:
    """The same bar as plain lines, one every ``LINE_EVERY_S`` seconds and one at the end:
    a live bar cannot redraw in a log file (``RECFEAT_PROGRESS=1`` with stderr redirected)."""

    def __init__(self, total: int | None, description: str):
        self.total, self.description = total, description
        self.done = 0
        self.start = self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self._last >= LINE_EVERY_S:
            self.line()

    def describe(self, text: str) -> None:
        self.description = text

    def start_at(self, n: int) -> None:
        self.done = self._before = n
        self.start = self._last = time.monotonic()

    _before = 0  # done before this run (start_at): not part of the rate

    def line(self) -> None:
        self._last = now = time.monotonic()
        rate = (self.done - self._before) / max(now - self.start, 1e-9)
        of = f"/{self.total:,}" if self.total else ""
        eta = ""
        if self.total and rate > 0:
            left = max(self.total - self.done, 0) / rate
            eta = f", eta {int(left // 60)}m{int(left % 60):02d}s"
        print(f"{self.description}: {self.done:,}{of}, {rate:,.2f} items/s, "
              f"{int((now - self.start) // 60)}m{int((now - self.start) % 60):02d}s elapsed{eta}",
              file=sys.stderr, flush=True)  # fmt: skip


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, *, enabled: bool | None = None) -> Iterator[_Bar]:
    """Context manager yielding an object with ``advance(n)``.

    Disabled when stderr is not a terminal (logs and CI stay clean) unless
    ``RECFEAT_PROGRESS=1``; ``RECFEAT_PROGRESS=0`` turns it off everywhere.
    """
    if enabled is None:
        env = os.environ.get("RECFEAT_PROGRESS")
        enabled = sys.stderr.isatty() if env is None else env == "1"
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal and not console.is_jupyter:  # a log file: lines, not a live bar
        bar = _LineBar(total, description)
        yield bar
        bar.line()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class _Rate(TextColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            from rich.text import Text

            return Text(f"{speed:,.1f} items/s" if speed else "- items/s")

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(""),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield _Bar(prog, task)
