"""Progress bars for long work: items done, items/s and time left, on stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


class _Bar:
    def __init__(self, progress, task):
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


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
    with Progress(*columns, console=Console(stderr=True), transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield _Bar(prog, task)
