"""Dynamic micro-batching: a bounded queue of encode jobs and one worker that merges them.

Each request's texts become one job. The worker takes the oldest job, adds whatever else is
queued while the group stays under a token budget, and then runs ONE engine call for the
group on a single worker thread (``run_in_executor``), so the event loop keeps accepting
requests while the model runs; each job's rows go back to its own request. The engine
sorts the group by length and cuts it into padded batches itself.

Waiting for more work: while the model runs, new requests queue up and the next group
takes them all, so under load batches form on their own. The ``window`` is only spent when
the previous group merged several requests (their callers are likely to send again within a
few milliseconds) and stops as soon as as many have arrived; a lone caller never waits.

Limits: the queue holds at most ``max_queue`` jobs (``QueueFull`` -> 429); a job not answered
within ``timeout_s`` is given up (503) and skipped if the worker has not started it; after
``close()`` new jobs are refused (503) and ``drain()`` answers everything already queued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from recfeat.errors import RecfeatError
from recfeat.serve.errors import ApiError, queue_full, unavailable


@dataclasses.dataclass
class Job:
    texts: list[str]
    tokens: int  # estimated, for the budget (the real count is known after tokenising)
    future: asyncio.Future
    queued_at: float
    cancelled: bool = False


@dataclasses.dataclass
class GroupResult:
    """What ``run_group`` returns for the concatenated texts of a group."""

    vectors: Any  # float32 (n, dim)
    kept: Any  # int64 (n,) tokens kept per text
    dropped: Any  # int64 (n,) tokens truncation dropped per text
    tokenize_seconds: float = 0.0


_STOP = object()


class MicroBatcher:
    def __init__(self, run_group: Callable[[list[str]], GroupResult], *, estimate: Callable[[str], int],
                 budget_tokens: int, window_s: float, max_queue: int, timeout_s: float,
                 metrics, executor) -> None:  # fmt: skip
        self.run_group = run_group
        self.estimate = estimate
        self.budget_tokens = max(int(budget_tokens), 1)
        self.window_s = max(float(window_s), 0.0)
        self.max_queue = max(int(max_queue), 1)
        self.timeout_s = float(timeout_s)
        self.metrics = metrics
        self.executor = executor
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._closing = False
        self._last_group = 1  # requests merged into the previous engine call
        self._group_seconds = 0.05  # running mean of an engine call, for Retry-After

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._queue = asyncio.Queue()  # bounded by ``submit`` (a sentinel must always fit)
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="recfeat-batcher")

    def close(self) -> None:
        """Refuse new jobs from now on; queued ones are still answered."""
        self._closing = True

    async def drain(self) -> None:
        """Answer every queued job, then stop the worker."""
        self.close()
        if self._worker is None:
            return
        self._queue.put_nowait(_STOP)
        await self._worker
        self._worker = None

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    # -- submitting ------------------------------------------------------------------------
    async def submit(self, texts: list[str]) -> GroupResult:
        """The vectors of ``texts`` (one job), or ApiError 429 / 503."""
        if self._closing or self._worker is None:
            raise unavailable("the server is shutting down; send the request to another replica",
                              "shutting_down")  # fmt: skip
        if self.depth >= self.max_queue:
            raise queue_full(self.depth, self.retry_after())
        loop = asyncio.get_running_loop()
        job = Job(texts, sum(self.estimate(t) for t in texts), loop.create_future(), time.perf_counter())
        self._queue.put_nowait(job)
        self.metrics.queue_depth.set(self.depth)
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.timeout_s)
        except TimeoutError:
            job.cancelled = True
            raise unavailable(
                f"the request waited more than {self.timeout_s:g} s (server option "
                "--request-timeout); the server is overloaded, retry later", "timeout",
                retry_after=self.retry_after(),
            ) from None  # fmt: skip

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: queued groups x mean call time."""
        groups = self.depth / max(self._last_group, 1)
        return max(1, round(groups * self._group_seconds + 0.5))

    # -- the worker ------------------------------------------------------------------------
    async def _run(self) -> None:
        carry = None
        while True:
            first = carry if carry is not None else await self._queue.get()
            carry = None
            if first is _STOP:
                return
            group, carry = await self._gather(first)
            self.metrics.queue_depth.set(self.depth)
            group = [job for job in group if not job.cancelled and not job.future.done()]
            if group:
                await self._answer(group)
            if carry is _STOP:
                return

    async def _gather(self, first: Job) -> tuple[list[Job], Any]:
        """``first`` plus queued jobs under the token budget; the job that did not fit (or
        the stop sentinel) is handed back to start the next group."""
        group, tokens = [first], first.tokens
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window_s
        while tokens < self.budget_tokens:
            try:
                nxt = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0 or len(group) >= self._last_group or self._closing:
                    break
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if nxt is _STOP or tokens + nxt.tokens > self.budget_tokens:
                return group, nxt
            group.append(nxt)
            tokens += nxt.tokens
        return group, None

    async def _answer(self, group: list[Job]) -> None:
        texts = [t for job in group for t in job.texts]
        started = time.perf_counter()
        for job in group:
            self.metrics.queue_wait_seconds.observe(started - job.queued_at)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.executor, self.run_group, texts)
        except Exception as exc:  # every caller of the group hears about it, the server goes on
            error = exc if isinstance(exc, ApiError) else _as_api_error(exc)
            for job in group:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        seconds = time.perf_counter() - started
        self._group_seconds = 0.8 * self._group_seconds + 0.2 * seconds
        self._last_group = len(group)
        m = self.metrics
        m.batch_size.observe(len(texts))
        m.batch_requests.observe(len(group))
        m.batch_tokens.observe(int(result.kept.sum()))
        m.tokenize_seconds.observe(result.tokenize_seconds)
        m.inference_seconds.observe(max(seconds - result.tokenize_seconds, 0.0))
        start = 0
        for job in group:
            end = start + len(job.texts)
            if not job.future.done():
                job.future.set_result(GroupResult(
                    result.vectors[start:end], result.kept[start:end], result.dropped[start:end]
                ))  # fmt: skip
            start = end


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, RecfeatError):
        return ApiError(400, str(exc))
    if isinstance(exc, MemoryError):
        return ApiError(503, "out of memory encoding the batch; lower --max-batch-tokens",
                        type_="server_error", code="out_of_memory")  # fmt: skip
    return ApiError(500, f"internal error {type(exc).__name__}: {exc}; this is a bug in recfeat",
                    type_="server_error", code="internal_error")  # fmt: skip
