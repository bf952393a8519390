"""Fair micro-batching: a bounded set of encode jobs and one worker that merges them.

Each request's texts become one job. For every engine call the worker goes round the
waiting jobs and takes ONE text from each in turn, again and again, until the call's token
budget is full (the job that went first goes last next time). So a request larger than one
call is spread over several calls and cannot starve the others: a one-text request that
arrives while a 256-text request is being encoded is in the very next engine call, and the
big request goes on in the calls after it. The call runs on a single worker thread
(``run_in_executor``), so the event loop keeps accepting requests while the model runs; each
job's rows go back to it, and a job is answered once all its texts are encoded. The engine
sorts a call's texts by length and cuts them into padded batches itself.

Waiting for more work: while the model runs, new requests queue up and the next call takes
them all, so under load batches form on their own. The ``window`` is only spent when the
previous call merged several requests (their callers are likely to send again within a few
milliseconds) and stops as soon as as many are waiting; a lone caller never waits.

Calls of bounded time: the token budget of a call is also capped at what the engine does in
``call_seconds`` (1 s), from the seconds per token of its own recent calls. A one-text
request waits for the call in progress and then its own, so this bounds its wait behind a
big one on any machine: 8,192 tokens of 256-token texts took ~6 s a call on 2 AVX2-only
cores, and a one-text request waited 12 s. On a GPU or fast cores the cap is above the
budget and changes nothing; ~1 s of work per call amortises a call's fixed cost.

Limits: at most ``max_queue`` jobs wait (``QueueFull`` -> 429). A job whose caller stops
waiting (no answer within ``timeout_s`` -> 503, or the client disconnected and its handler
was cancelled) leaves the queue at once: its texts not yet sent are never encoded, and it no
longer counts against ``max_queue``. A call that fails while it holds the texts of several
jobs is retried job by job, so only the job whose input the engine rejects hears of it.
After ``close()`` new jobs are refused (503) and ``drain()`` answers everything queued.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from recfeat.errors import RecfeatError
from recfeat.serve.errors import ApiError, queue_full, unavailable

#: Seconds of engine work one call may hold (see "Calls of bounded time" above).
CALL_SECONDS = 1.0
#: Calls with fewer estimated tokens than this do not time the engine: their fixed cost
#: would pass for a per-token cost and shrink the budget for nothing.
TIMED_TOKENS = 256
#: The time cap never cuts a call below this many tokens (any one text still goes alone).
MIN_CALL_TOKENS = 512


@dataclasses.dataclass(eq=False)  # identity: a job is found in the queue by ``is``
class Job:
    texts: list[str]
    costs: list[int]  # estimated tokens per text, for the budget
    future: asyncio.Future
    queued_at: float
    sent: int = 0  # texts handed to the engine so far (always a prefix)
    encoded: int = 0  # texts whose rows came back
    waiting: bool = True  # in the queue: some texts not sent yet
    parts: list = dataclasses.field(default_factory=list)  # GroupResult per call, in order


@dataclasses.dataclass
class GroupResult:
    """What ``run_group`` returns for the concatenated texts of a group."""

    vectors: Any  # float32 (n, dim)
    kept: Any  # int64 (n,) tokens kept per text
    dropped: Any  # int64 (n,) tokens truncation dropped per text
    tokenize_seconds: float = 0.0


class MicroBatcher:
    def __init__(self, run_group: Callable[[list[str]], GroupResult], *, estimate: Callable[[str], int],
                 budget_tokens: int, window_s: float, max_queue: int, timeout_s: float,
                 metrics, executor, call_seconds: float = CALL_SECONDS) -> None:  # fmt: skip
        self.run_group = run_group
        self.estimate = estimate
        self.budget_tokens = max(int(budget_tokens), 1)
        self.window_s = max(float(window_s), 0.0)
        self.max_queue = max(int(max_queue), 1)
        self.timeout_s = float(timeout_s)
        self.metrics = metrics
        self.executor = executor
        self._jobs: collections.deque[Job] = collections.deque()  # round-robin order
        self._pending = 0  # estimated tokens of the texts not sent yet
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._closing = False
        self._stopping = False
        self._last_group = 1  # requests merged into the previous engine call
        self._group_seconds = 0.05  # running mean of an engine call, for Retry-After
        self.call_seconds = float(call_seconds)
        self._token_seconds: float | None = None  # engine seconds per estimated token

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._wake = asyncio.Event()
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="recfeat-batcher")

    def close(self) -> None:
        """Refuse new jobs from now on; queued ones are still answered."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()  # a batch window in progress ends now

    async def drain(self) -> None:
        """Answer every queued job, then stop the worker."""
        self.close()
        if self._worker is None:
            return
        self._stopping = True
        self._wake.set()
        await self._worker
        self._worker = None

    @property
    def depth(self) -> int:
        """Jobs with texts not yet sent to the engine."""
        return len(self._jobs)

    # -- submitting ------------------------------------------------------------------------
    async def submit(self, texts: list[str]) -> GroupResult:
        """The vectors of ``texts`` (one job), or ApiError 429 / 503. A caller cancelled
        while it waits (its client disconnected) takes its job out of the queue."""
        if self._closing or self._worker is None:
            raise unavailable("the server is shutting down; send the request to another replica",
                              "shutting_down")  # fmt: skip
        if self.depth >= self.max_queue:
            raise queue_full(self.depth, self.retry_after())
        costs = [self.estimate(t) for t in texts]
        job = Job(list(texts), costs, asyncio.get_running_loop().create_future(), time.perf_counter())
        self._jobs.append(job)
        self._pending += sum(costs)
        self._wake.set()
        self.metrics.queue_depth.set(self.depth)
        try:
            # not shielded: a timeout or a cancelled caller cancels the future, which tells
            # the worker the answer is no longer wanted
            return await asyncio.wait_for(job.future, self.timeout_s)
        except TimeoutError:
            raise unavailable(
                f"the request waited more than {self.timeout_s:g} s (server option "
                "--request-timeout); the server is overloaded, retry later", "timeout",
                retry_after=self.retry_after(),
            ) from None  # fmt: skip
        finally:
            self._forget(job)  # answered: a no-op; given up: its unsent texts leave the queue

    def observe(self, seconds: float, tokens: int) -> None:
        """Time one engine call of ``tokens`` estimated tokens (the embedder's warm-up seeds
        it; every call of ``TIMED_TOKENS`` or more updates it)."""
        if tokens < TIMED_TOKENS or not seconds > 0:
            return
        rate = seconds / tokens
        old = self._token_seconds
        self._token_seconds = rate if old is None else 0.7 * old + 0.3 * rate

    @property
    def call_budget(self) -> int:
        """Estimated tokens of the next call: ``budget_tokens``, or fewer when the engine
        would take longer than ``call_seconds`` over them."""
        if self._token_seconds is None or self.call_seconds <= 0:
            return self.budget_tokens
        timed = int(self.call_seconds / self._token_seconds)
        return max(min(self.budget_tokens, timed), min(MIN_CALL_TOKENS, self.budget_tokens))

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: engine calls left x mean call time."""
        calls = math.ceil(self._pending / self.call_budget)
        return max(1, round(calls * self._group_seconds + 0.5))

    def _forget(self, job: Job) -> None:
        if job.waiting:
            job.waiting = False
            self._jobs.remove(job)
            self._pending -= sum(job.costs[job.sent :])
            self.metrics.queue_depth.set(self.depth)

    # -- the worker ------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if not self._jobs:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._wait_for_company()
            if not self._jobs:  # every waiting caller gave up during the window
                continue
            parts = self._take()
            self.metrics.queue_depth.set(self.depth)
            await self._answer(parts)

    async def _wait_for_company(self) -> None:
        """The batch window: after a call that merged N requests, wait up to ``window_s``
        for N to be waiting (or a full budget) before the next call."""
        if self.window_s <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window_s
        while (len(self._jobs) < self._last_group and self._pending < self.call_budget
               and not self._closing):  # fmt: skip
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[tuple[Job, int, int]]:
        """The texts of one engine call, as ``(job, first, end)`` slices: one text from each
        waiting job in turn until the budget is full. A text over the whole budget goes
        alone when its job's turn comes first."""
        order = list(self._jobs)
        counts = [0] * len(order)
        left = self.call_budget
        live = range(len(order))
        while live and left > 0:  # each round takes a text or drops a job: O(texts + jobs)
            still = []
            for k in live:
                job, i = order[k], order[k].sent + counts[k]
                if i < len(job.texts) and job.costs[i] <= left:
                    counts[k] += 1
                    left -= job.costs[i]
                    still.append(k)
            live = still
        if not any(counts):
            counts[0] = 1
        parts = []
        for job, n in zip(order, counts, strict=True):
            if n:
                parts.append((job, job.sent, job.sent + n))
                self._pending -= sum(job.costs[job.sent : job.sent + n])
                job.sent += n
        remaining = [job for job in order if job.sent < len(job.texts)]
        for job in order:
            job.waiting = job.sent < len(job.texts)
        if remaining and remaining[0] is order[0]:  # the job that went first goes last
            remaining.append(remaining.pop(0))
        self._jobs = collections.deque(remaining)
        return parts

    async def _answer(self, parts: list[tuple[Job, int, int]]) -> None:
        texts = [t for job, first, end in parts for t in job.texts[first:end]]
        started = time.perf_counter()
        for job, first, _ in parts:
            if first == 0:
                self.metrics.queue_wait_seconds.observe(started - job.queued_at)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self.executor, self.run_group, texts)
        except Exception as exc:
            await self._isolate(parts, exc)
            return
        seconds = time.perf_counter() - started
        self._group_seconds = 0.8 * self._group_seconds + 0.2 * seconds
        self.observe(seconds, sum(sum(job.costs[first:end]) for job, first, end in parts))
        self._last_group = len(parts)
        m = self.metrics
        m.batch_size.observe(len(texts))
        m.batch_requests.observe(len(parts))
        m.batch_tokens.observe(int(result.kept.sum()))
        m.tokenize_seconds.observe(result.tokenize_seconds)
        m.inference_seconds.observe(max(seconds - result.tokenize_seconds, 0.0))
        start = 0
        for job, first, end in parts:
            stop = start + end - first
            self._deliver(job, GroupResult(
                result.vectors[start:stop], result.kept[start:stop], result.dropped[start:stop]
            ))  # fmt: skip
            start = stop

    async def _isolate(self, parts: list[tuple[Job, int, int]], exc: Exception) -> None:
        """A failed call: one job hears the error; several are retried one by one, so an
        input the engine rejects fails its own request only."""
        if len(parts) == 1:
            self._fail(parts[0][0], exc)
            return
        loop = asyncio.get_running_loop()
        failed, succeeded = [], False
        for job, first, end in parts:
            if job.future.done():  # its caller gave up meanwhile
                continue
            try:
                result = await loop.run_in_executor(self.executor, self.run_group,
                                                    job.texts[first:end])  # fmt: skip
            except Exception as own:
                failed.append((job, own))
            else:
                succeeded = True
                self._deliver(job, result)
        for job, own in failed:
            # others in the same call succeeded: the engine refused this request's input
            # (say, a text its tokenizer cannot take), a client error, not a server bug
            plain = not isinstance(own, (ApiError, RecfeatError, MemoryError))
            self._fail(job, _rejected(own) if succeeded and plain else own)

    def _deliver(self, job: Job, result: GroupResult) -> None:
        if job.future.done():  # timed out or disconnected while its texts were encoded
            return
        job.parts.append(result)
        job.encoded += len(result.kept)
        if job.encoded < len(job.texts):
            return
        if len(job.parts) == 1:
            job.future.set_result(job.parts[0])
        else:
            job.future.set_result(GroupResult(*(np.concatenate([getattr(p, f) for p in job.parts])
                                                for f in ("vectors", "kept", "dropped"))))  # fmt: skip
        job.parts = []

    def _fail(self, job: Job, exc: Exception) -> None:
        if not job.future.done():
            job.future.set_exception(exc if isinstance(exc, ApiError) else _as_api_error(exc))
        self._forget(job)  # the rest of its texts are not encoded


def _rejected(exc: Exception) -> ApiError:
    return ApiError(400, f"the encoder rejected this request's input ({type(exc).__name__}: "
                    f"{exc}); check the texts, or the server's --cleaners", code="rejected_input")  # fmt: skip


def _as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, RecfeatError):
        return ApiError(400, str(exc))
    if isinstance(exc, MemoryError):
        return ApiError(503, "out of memory encoding the batch; lower --max-batch-tokens",
                        type_="server_error", code="out_of_memory")  # fmt: skip
    return ApiError(500, f"internal error {type(exc).__name__}: {exc}; this is a bug in recfeat",
                    type_="server_error", code="internal_error")  # fmt: skip
