"""Progress bars for long work: items done, items/s and time left, on stderr.

The rate is this run's own average: items done since it started (work a resumed run found
done is counted, not timed) over the time since, and the time left follows from it. rich's
own estimate is over a window of recent updates, which shows no rate for a bar that moves
once a minute and a wrong one at its end. A live bar redraws ``REFRESH_PER_S`` times a
second whether it moved or not, so its clock keeps running through a long step; a step
that is long (a chunk of texts) moves the bar as its parts finish (``bar.step`` around it,
``report`` from inside, as the encode engine does per batch). A bar opened while another is
live joins its display as a row of its own (the trials under the models being evaluated).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time
from collections.abc import Iterator

#: seconds between two lines of a bar drawn where stderr is not a terminal (a log file)
LINE_EVERY_S = 15.0
#: redraws a second of a live bar on a terminal
REFRESH_PER_S = 2.0


def _now() -> float:
    return time.monotonic()


def rate_and_eta(done: float, before: float, elapsed: float | None,
                 total: float | None) -> tuple[float | None, float | None]:  # fmt: skip
    """``(items/s, seconds left)`` of a run that found ``before`` items done and has ``done``
    after ``elapsed`` seconds of its own; None where it cannot say yet."""
    here = done - before
    if not elapsed or elapsed <= 0 or here <= 0:
        return None, None
    rate = here / elapsed
    return rate, (max(total - done, 0) / rate if total else None)


def rate_text(rate: float | None, unit: str = "item") -> str:
    """``19.03 items/s``; under one a second ``52.6 s/model`` (0.02 models/s reads badly)."""
    units = unit + ("es" if unit.endswith(("s", "ch", "sh", "x")) else "s")
    if rate is None:
        return f"- {units}/s"
    return f"{rate:,.2f} {units}/s" if rate >= 1 else f"{1 / rate:,.1f} s/{unit}"


class _Part:
    """The open ``step`` of a bar: ``n`` items, reported done in ``of`` units."""

    def __init__(self, bar, n: int, of: int):
        self.bar, self.n, self.of = bar, n, of
        self.got = self.moved = 0

    def add(self, k: int) -> None:
        self.got += k
        to = min(self.n, self.n * self.got // self.of) if self.of > 0 else 0
        if to > self.moved:
            self.bar.advance(to - self.moved)
            self.moved = to

    def finish(self) -> None:
        if self.n > self.moved:
            self.bar.advance(self.n - self.moved)
            self.moved = self.n


_STEP: contextvars.ContextVar[_Part | None] = contextvars.ContextVar("recfeat_step", default=None)


def report(n: int) -> None:
    """``n`` more units of the innermost open ``bar.step`` are done (outside one: nothing)."""
    part = _STEP.get()
    if part is not None and n > 0:
        part.add(n)


class _Stepped:
    def advance(self, n: int = 1) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def step(self, n: int, *, of: int | None = None) -> Iterator[None]:
        """``n`` items done by the work inside, which may ``report`` its parts as they finish
        (in ``of`` units, default ``n``, scaled to ``n``): the bar moves with the reports, and
        by what they left when the step ends."""
        part = _Part(self, n, n if of is None else of)
        token = _STEP.set(part)
        try:
            yield
        finally:
            _STEP.reset(token)
        part.finish()


class _Off:
    """A bar turned off: takes every call, shows nothing (an enclosing step still hears its
    work's reports)."""

    def advance(self, n: int = 1) -> None:
        pass

    def describe(self, text: str) -> None:
        pass

    def start_at(self, n: int) -> None:
        pass

    def step(self, n: int, *, of: int | None = None):
        return contextlib.nullcontext()


class _Bar(_Stepped):
    def __init__(self, progress, task):
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        """Change the bar's label (e.g. to show the latest training loss)."""
        self._progress.update(self._task, description=text)

    def start_at(self, n: int) -> None:
        """Work already done before this run (a resumed one): counted, not timed."""
        fields = self._progress.tasks[self._task].fields  # reset replaces them all
        self._progress.reset(self._task, completed=n, **{**fields, "before": n})


_last_line_at = -float("inf")  # when any line bar last printed: the heartbeats stay quiet meanwhile


class _LineBar(_Stepped):
    """The same bar as plain lines: one when it starts, then one every ``LINE_EVERY_S``
    seconds (on an advance, or from a heartbeat thread through a long step) and one at the
    end: a live bar cannot redraw in a log file (``RECFEAT_PROGRESS=1``, stderr redirected)."""

    def __init__(self, total: int | None, description: str, unit: str = "item"):
        self.total, self.description, self.unit = total, description, unit
        self.done = self._before = 0
        self.start = self._last = _now()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def open(self) -> None:
        self.line()
        if LINE_EVERY_S > 0:  # 0: a line on every advance, no heartbeat needed
            self._beat = threading.Thread(target=self._heartbeat, args=(LINE_EVERY_S,),
                                          name="recfeat-progress", daemon=True)  # fmt: skip
            self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()

    def _heartbeat(self, every: float) -> None:
        while True:
            with self._lock:
                quiet = _now() - max(self._last, _last_line_at)
                if quiet >= every:
                    self.line()
                    quiet = 0.0
            if self._stop.wait(every - quiet):
                return

    def advance(self, n: int = 1) -> None:
        if not n:
            return
        with self._lock:
            self.done += n
            if _now() - self._last >= LINE_EVERY_S:
                self.line()

    def describe(self, text: str) -> None:
        self.description = text

    def start_at(self, n: int) -> None:
        with self._lock:
            self.done = self._before = n
            self.start = self._last = _now()

    def line(self) -> None:
        global _last_line_at
        with self._lock:
            self._last = _last_line_at = now = _now()
            elapsed = now - self.start
            rate, left = rate_and_eta(self.done, self._before, elapsed, self.total)
            of = f"/{self.total:,}" if self.total else ""
            eta = "" if left is None else f", eta {_minutes(left)}"
            print(f"{self.description}: {self.done:,}{of}, {rate_text(rate, self.unit)}, "
                  f"{_minutes(elapsed)} elapsed{eta}", file=sys.stderr, flush=True)  # fmt: skip


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _task_rate(task) -> tuple[float | None, float | None]:
    """``rate_and_eta`` of a rich task, frozen once it finished."""
    elapsed = task.finished_time if task.finished else task.elapsed
    return rate_and_eta(task.completed, task.fields.get("before", 0), elapsed, task.total)


def _columns():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            return Text(rate_text(_task_rate(task)[0], task.fields.get("unit", "item")))

    class Left(ProgressColumn):
        def render(self, task):
            left = _task_rate(task)[1]
            return Text("eta " + ("-:--:--" if left is None else _clock(left)))

    # no markup: a label holds names from the data or the user (a model label, a backend)
    return [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), Rate(),
            TimeElapsedColumn(), Left()]  # fmt: skip


_live = None  # the rich Progress on screen now: bars opened meanwhile add a row to it
_live_lock = threading.Lock()


@contextlib.contextmanager
def _rich_task(console, total: int | None, description: str, unit: str) -> Iterator[_Bar]:
    global _live
    from rich.progress import Progress

    with _live_lock:
        shared = _live
        if shared is None:
            # get_time through _now: one clock for the rate and the elapsed column
            # stdout is redirected through the bar only when it is the terminal too: rich
            # would otherwise print a program's stdout (JSON to a file) onto stderr
            prog = _live = Progress(*_columns(), console=console, transient=False,
                                    refresh_per_second=REFRESH_PER_S, get_time=lambda: _now(),
                                    redirect_stdout=sys.stdout.isatty())  # fmt: skip
    if shared is not None:
        task = shared.add_task(description, total=total, before=0, unit=unit)
        try:
            yield _Bar(shared, task)
        finally:
            shared.remove_task(task)  # a finished inner row (one model's trials) goes
        return
    try:
        with prog:
            yield _Bar(prog, prog.add_task(description, total=total, before=0, unit=unit))
    finally:
        with _live_lock:
            _live = None


def say(text: str) -> None:
    """``text`` as a line on stderr, above the live bar when one is shown. (click.echo finds
    the stream under rich's redirect and writes into the bar's line.)"""
    live = _live
    if live is not None:
        live.console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
    else:
        print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, *, enabled: bool | None = None,
                 unit: str = "item") -> Iterator[_Bar | _LineBar | _Off]:  # fmt: skip
    """Context manager yielding a bar with ``advance(n)``, ``describe(text)``,
    ``start_at(n)`` and ``step(n)``; ``unit`` names what is counted (``items/s``).

    Disabled when stderr is not a terminal (logs and CI stay clean) unless
    ``RECFEAT_PROGRESS=1``; ``RECFEAT_PROGRESS=0`` turns it off everywhere.
    """
    if enabled is None:
        env = os.environ.get("RECFEAT_PROGRESS")
        enabled = sys.stderr.isatty() if env is None else env == "1"
    if not enabled:
        yield _Off()
        return
    from rich.console import Console

    # the stream itself, not stderr=True (which reads sys.stderr at each write): a live bar
    # swaps sys.stderr for a proxy that prints lines above it through this console, and that
    # console must then write to the terminal, not back into the proxy
    console = Console(file=sys.stderr)
    if not console.is_terminal and not console.is_jupyter:  # a log file: lines, not a live bar
        bar = _LineBar(total, description, unit)
        bar.open()
        try:
            yield bar
        finally:
            bar.stop()
        bar.line()
        return
    with _rich_task(console, total, description, unit) as bar:
        yield bar
