"""Texts -> vectors for the routes: check limits, clean, answer repeats from the LRU, send the
rest through the micro-batcher to the encoder (the one engine loop), and report per text the
tokens kept and dropped by truncation.

Texts are cleaned with the same cleaner chain ``recfeat extract`` uses by default, so a
served vector equals the offline one for the same text, encoder and backend.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from recfeat.extraction.cache import fingerprint_digest
from recfeat.serve.batcher import GroupResult, MicroBatcher
from recfeat.serve.cache import LRUCache
from recfeat.serve.errors import ApiError, check_text, too_large

# A short and a longer text: warm-up runs both shapes before the first request.
WARM_TEXTS = ("warm up", "a longer warm-up text so that a second batch shape is compiled " * 4)
#: What one more engine batch costs on the CPU, in padded tokens, until the server has
#: timed its own calls (``BatchCost``): what ``length_groups`` weighs against the padding a
#: split saves. MiniLM fp32 on 2 quiet AMD EPYC cores: one text alone took 19.1 ms (mean)
#: against 13.4 ms a text in one call of 1,500 (~0.12 ms a padded token), ~48 tokens' time.
BATCH_COST_TOKENS = 48
#: At most this many length classes are planned over (a long ``max_length`` is bucketed
#: coarser), so planning stays ~1 ms however many texts a call holds.
LENGTH_CLASSES = 64


@dataclasses.dataclass
class Embedded:
    vectors: np.ndarray  # float32 (n, dim), in request order
    kept: np.ndarray  # int64 (n,)
    dropped: np.ndarray  # int64 (n,)


class Embedder:
    def __init__(self, encoder, cleaner, metrics, *, cache_size: int, max_inputs: int,
                 max_chars: int, budget_tokens: int, window_s: float, max_queue: int,
                 timeout_s: float, adaptor=None) -> None:  # fmt: skip
        self.encoder = encoder
        # An adaptor fitted on the served item vectors (``recfeat adapt``; found by the API
        # from --item-features): every encoded text goes through it, so queries, added items
        # and /embed live in the space the stored vectors live in.
        self.adaptor = adaptor
        self.cleaner = cleaner
        self.metrics = metrics
        for kind in getattr(cleaner, "masks", ()):  # every kind shows, at 0, from the start
            metrics.masked.labels(kind)
        self.max_inputs = max_inputs
        self.max_chars = max_chars
        self.fingerprint = encoder.fingerprint()
        if adaptor is not None:
            self.fingerprint = {**self.fingerprint, "adaptor": adaptor.identity()}
        self.cache = LRUCache(cache_size, fingerprint_digest(self.fingerprint))
        self.max_length = int(self.fingerprint.get("max_length") or 512)
        # One thread runs the model, so engine calls never overlap (and never fight for cores).
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="recfeat-encode")
        self.batcher = MicroBatcher(
            self.encode_now, estimate=self.estimate_tokens, budget_tokens=budget_tokens,
            window_s=window_s, max_queue=max_queue, timeout_s=timeout_s, metrics=metrics,
            executor=self.executor,
        )  # fmt: skip
        self._per_text = "per_text" in inspect.signature(encoder.encode).parameters
        self._plan_resolved = False
        self._plan = None  # the encoder's BatchPlan when calls are grouped by length
        self.batch_cost = BatchCost()  # learned from the engine calls (encode thread only)
        self.warmup_ms: float | None = None
        self.id_tokenizer = None  # set by ``warm_up``: decodes token-id input (``decode``)

    @property
    def dim(self) -> int:
        return int(self.adaptor.out_dim if self.adaptor is not None else self.encoder.dim)

    def estimate_tokens(self, text: str) -> int:
        """Tokens a text will take, before tokenising: ~4 characters a token plus the two
        special tokens, never past the model's limit (only the batch budget uses it)."""
        return min(len(text) // 4 + 2, self.max_length)

    # -- checks ----------------------------------------------------------------------------
    def check(self, texts: list[str]) -> list[str]:
        """Cleaned ``texts`` or ApiError 413 (limits) / 400 (empty)."""
        if not texts:
            raise ApiError(400, "input is an empty list; send at least one text",
                           code="empty_input")  # fmt: skip
        self._check_sizes([len(text) for text in texts], "characters")
        cleaned = self.clean(texts)
        for i, text in enumerate(cleaned):
            if not text.strip():
                raise ApiError(400, f"input {i} is empty (after cleaning); send non-empty text",
                               code="empty_input")  # fmt: skip
            if not text.isascii():
                check_text(text, f"input {i}")
        return cleaned

    def _check_sizes(self, sizes: list[int], unit: str) -> None:
        """ApiError 413 for more inputs than --max-inputs or one longer than --max-chars
        (``sizes``: each input's length in ``unit``)."""
        if len(sizes) > self.max_inputs:
            raise too_large(f"{len(sizes)} inputs in one request", self.max_inputs, "--max-inputs")
        for i, n in enumerate(sizes):
            if n > self.max_chars:
                raise too_large(f"input {i} has {n} {unit}", self.max_chars, "--max-chars")

    def clean(self, texts: list[str]) -> list[str]:
        """``texts`` through the cleaner chain; what its masking cleaners replaced is counted
        in the metrics by kind (``recfeat_masked_values_total``), never kept."""
        if self.cleaner is None:
            return list(texts)
        if not hasattr(self.cleaner, "clean_counted"):
            return self.cleaner.clean(texts)
        cleaned, hits = self.cleaner.clean_counted(texts)
        if hits:
            totals: dict[str, int] = {}
            for counts in hits.values():
                for kind, n in counts.items():
                    totals[kind] = totals.get(kind, 0) + n
            for kind, n in totals.items():
                self.metrics.masked.labels(kind).inc(n)
        return cleaned

    def decode(self, lists: list[list[int]]) -> list[str]:
        """Texts of token-id lists (OpenAI's other ``input`` form), decoded by the served
        model's own tokenizer without its special tokens, to be checked and encoded as text.
        ApiError 413 past the limits, 400 for an id outside the vocabulary or an encoder
        without a tokenizer."""
        # every token but the special ones decodes to a character at least, so a list
        # longer than --max-chars is refused before decoding it costs anything
        self._check_sizes([len(ids) for ids in lists], "token ids")
        tokenizer = self.id_tokenizer
        name = self.fingerprint.get("encoder", "this encoder")
        if tokenizer is None:
            raise ApiError(400, f"the served encoder {name!r} has no tokenizer to decode token "
                           "ids with; send input as text", code="invalid_input")  # fmt: skip
        size = len(tokenizer)
        for i, ids in enumerate(lists):
            for j, token in enumerate(ids):
                if not 0 <= token < size:
                    raise ApiError(
                        400, f"input.{i}.{j}: token id {token} is not in the vocabulary of "
                        f"{name!r} ({size} tokens, ids 0 to {size - 1}); token ids are decoded "
                        "with the served model's own tokenizer, not OpenAI's tiktoken: send "
                        "ids from that tokenizer, or text", code="invalid_token_id",
                    )  # fmt: skip
        return tokenizer.batch_decode(lists, skip_special_tokens=True)

    # -- encoding --------------------------------------------------------------------------
    async def embed(self, texts: list[str]) -> Embedded:
        """Vectors of ``texts`` (already checked and cleaned), from the cache or the batcher."""
        n = len(texts)
        vectors = np.empty((n, self.dim), dtype=np.float32)
        kept = np.empty(n, dtype=np.int64)
        dropped = np.empty(n, dtype=np.int64)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            hit = self.cache.get(text)
            if hit is None:
                missing.setdefault(text, []).append(i)
            else:
                vectors[i], kept[i], dropped[i] = hit
        self.metrics.cache_hits.inc(n - sum(len(rows) for rows in missing.values()))
        if missing:
            todo = list(missing)
            self.metrics.cache_misses.inc(len(todo))
            result = await self.batcher.submit(todo)
            for j, text in enumerate(todo):
                # a copy: a view would keep the whole group's matrix alive in the cache
                entry = (result.vectors[j].copy(), int(result.kept[j]), int(result.dropped[j]))
                self.cache.put(text, entry)
                for i in missing[text]:
                    vectors[i], kept[i], dropped[i] = entry
            self.metrics.truncated.inc(int((result.dropped > 0).sum()))
        return Embedded(vectors, kept, dropped)

    def encode_now(self, texts: list[str]) -> GroupResult:
        """The vectors of one batcher group (on the encode thread), with per-text token
        counts: repeats are encoded once, and on the CPU the texts go to the engine in
        groups of similar length (``length_groups``), one engine call per group."""
        unique = list(dict.fromkeys(texts))  # concurrent requests often repeat a text
        groups, tok_s = self._length_groups(unique)
        if len(groups) == 1:
            vectors, kept, dropped, seconds = self._encode_unique(unique)
        else:
            vectors = np.empty((len(unique), self.dim), dtype=np.float32)
            kept = np.empty(len(unique), dtype=np.int64)
            dropped = np.empty(len(unique), dtype=np.int64)
            seconds = 0.0
            for rows in groups:
                part = self._encode_unique([unique[i] for i in rows])
                vectors[rows], kept[rows], dropped[rows] = part[:3]
                seconds += part[3]
        tok_s += seconds
        if len(unique) != len(texts):
            row = {t: j for j, t in enumerate(unique)}
            idx = np.fromiter((row[t] for t in texts), dtype=np.int64, count=len(texts))
            vectors, kept, dropped = vectors[idx], kept[idx], dropped[idx]
        return GroupResult(np.asarray(vectors, dtype=np.float32), kept, dropped, tok_s)

    def _length_groups(self, texts: list[str]) -> tuple[list[np.ndarray], float]:
        """Rows of ``texts`` per engine call, and the seconds spent tokenising to plan them.

        Why: the engine pads each batch to its longest text, and the texts of concurrent
        requests are a random mix of lengths. In one call of 60 review texts its budget cut
        still padded 1.45 tokens per real one, 8 texts in one batch 2.2, against 1.08 for
        the same texts offline in one call of 1,500 (benchmarks/results/serve.md); on a CPU
        the cost of a batch is nearly proportional to its padded tokens, so that padding was
        the served-vs-offline gap. One call per group of similar length brings it back to
        ~1.1 for an engine call's fixed cost. Only on the CPU: a GPU pads almost for free
        and gains from fewer, fuller batches; encoders that batch by exact length
        (``uniform``) or have no token plan keep one call."""
        plan = self._group_plan()
        if plan is None or len(texts) < 2:
            return [np.arange(len(texts))], 0.0
        start = time.perf_counter()
        lengths = np.asarray(self.encoder.tokenize(texts).lengths)
        seconds = time.perf_counter() - start
        return length_groups(lengths, pad_multiple=plan.pad_multiple, cap=plan.max_length,
                             budget_tokens=plan.batch_tokens, max_rows=plan.max_batch_size,
                             batch_cost=self.batch_cost.tokens), seconds  # fmt: skip

    def _group_plan(self):
        """The encoder's batch plan when its engine runs on the CPU, else None (decided once,
        on the encode thread: which device an ONNX Runtime session got is known only once
        it is open)."""
        if not self._plan_resolved:
            plan = getattr(self.encoder, "plan", None)
            open_backend = getattr(self.encoder, "open_backend", None)
            if (plan is not None and not getattr(plan, "uniform", False)
                    and hasattr(self.encoder, "tokenize") and open_backend is not None):  # fmt: skip
                on_cpu = str(getattr(open_backend(), "device", "cpu")) == "cpu"
                self._plan = plan if on_cpu else None
            self._plan_resolved = True
        return self._plan

    def _encode_unique(self, unique: list[str]):
        """``(vectors, kept, dropped, tokenize seconds)`` of one engine call."""
        if self._per_text:
            start = time.perf_counter()
            vectors = self.encoder.encode(unique, per_text=True)
            seconds = time.perf_counter() - start
            stats = self.encoder.last_stats
            kept, dropped = np.asarray(stats["n_kept"]), np.asarray(stats["n_dropped"])
            tok_s = float(stats.get("tokenize_seconds", 0.0))
            if self._plan is not None and "batches" in stats:  # grouping by length: time it
                ratio = min(float(stats.get("padding_ratio", 0.0)), 0.99)
                self.batch_cost.observe(int(stats["batches"]), stats["tokens"] / (1 - ratio),
                                        seconds)  # fmt: skip
        else:  # an encoder without per-text statistics: ask its tokenizer (a second pass)
            start = time.perf_counter()
            batch = self.encoder.tokenize(unique)
            tok_s = time.perf_counter() - start
            kept, dropped = batch.lengths, np.asarray(batch.n_dropped)
            vectors = self.encoder.encode(unique)
        if self.adaptor is not None:
            vectors = self.adaptor.transform(np.asarray(vectors, dtype=np.float32))
        return vectors, np.asarray(kept, dtype=np.int64), np.asarray(dropped, dtype=np.int64), tok_s

    def warm_up(self) -> float:
        """Load the model, run both warm-up shapes, then time batch-1 calls: the median in ms."""
        self.encode_now(list(WARM_TEXTS))
        self.id_tokenizer = _id_tokenizer(self.encoder)
        # one call of a few hundred tokens seeds the batcher's seconds per token, so the
        # first big request is already cut into calls of bounded time
        timed = [f"{i} {WARM_TEXTS[1]}" for i in range(8)]
        start = time.perf_counter()
        self.encode_now(timed)
        self.batcher.observe(time.perf_counter() - start, sum(map(self.estimate_tokens, timed)))
        times = []
        for _ in range(5):
            start = time.perf_counter()
            self.encode_now([WARM_TEXTS[0]])
            times.append(time.perf_counter() - start)
        self.warmup_ms = sorted(times)[len(times) // 2] * 1000
        return self.warmup_ms


class BatchCost:
    """The fixed cost of one engine batch in padded tokens, learned from the server's own
    calls: ``seconds ~ a * batches + b * padded tokens`` fitted by least squares with
    exponential forgetting, ``a / b`` (``BATCH_COST_TOKENS`` until the fit is sound).

    Why learned: it is not a constant of the model. On a quiet machine a batch costs ~50
    tokens' time; on 2 cores shared with other busy processes (load average 6-10) the fit
    gave 600-800, as each of a batch's parallel regions waits for both threads to be
    scheduled: small batches then cost more than the padding they save, and the plan goes
    back to few large calls by itself."""

    def __init__(self, decay: float = 0.99, low: float = 4.0, high: float = 4096.0,
                 fixed: float | None = None) -> None:  # fmt: skip
        self.decay, self.low, self.high = decay, low, high
        self.fixed = fixed  # a cost that is not learned (tests, or a pinned plan)
        self._sums = np.zeros(5)  # batches^2, batches*padded, padded^2, batches*s, padded*s
        self.observed = 0

    def observe(self, batches: int, padded: float, seconds: float) -> None:
        if self.fixed is not None or batches < 1 or padded <= 0 or not seconds > 0:
            return
        x1, x2 = float(batches), float(padded)
        self._sums = self.decay * self._sums + (x1 * x1, x1 * x2, x2 * x2, x1 * seconds,
                                                x2 * seconds)  # fmt: skip
        self.observed += 1

    @property
    def tokens(self) -> float:
        if self.fixed is not None:
            return float(self.fixed)
        s11, s12, s22, s1y, s2y = self._sums
        det = s11 * s22 - s12 * s12
        if self.observed < 8 or det <= 1e-9 * s11 * s22:  # too few, or all calls alike
            return float(BATCH_COST_TOKENS)
        a = (s22 * s1y - s12 * s2y) / det
        b = (s11 * s2y - s12 * s1y) / det
        if b <= 0:
            return self.high
        return float(min(max(a / b, self.low), self.high))


def length_groups(lengths, *, pad_multiple: int = 1, cap: int | None = None, budget_tokens: int,
                  max_rows: int, batch_cost: int = BATCH_COST_TOKENS) -> list[np.ndarray]:  # fmt: skip
    """Row indices of ``lengths`` (tokens per text) cut into engine calls of similar length,
    longest first, every row in exactly one: the cut that makes padded tokens plus
    ``batch_cost`` per batch least, batches as the engine cuts them (at most
    ``budget_tokens`` padded tokens and ``max_rows`` rows, widths rounded up to
    ``pad_multiple`` but not past ``cap``). Exact over length classes (a dynamic programme
    over at most ``LENGTH_CLASSES`` contiguous classes, widest first); texts of one class
    always share a call."""
    lengths = np.maximum(np.asarray(lengths, dtype=np.int64).reshape(-1), 1)
    if lengths.size < 2:
        return [np.arange(lengths.size)]
    step = max(int(pad_multiple), -(-int(lengths.max()) // LENGTH_CLASSES), 1)
    widths = -(-lengths // step) * step
    if cap is not None:  # never padded past the position limit (lengths are within it)
        widths = np.minimum(widths, np.maximum(int(cap), lengths))
    classes, counts = np.unique(widths, return_counts=True)
    classes, counts = classes[::-1].tolist(), counts[::-1].tolist()  # widest first
    ends = np.cumsum([0, *counts]).tolist()
    best, start = [0.0] + [float("inf")] * len(classes), [0] * (len(classes) + 1)
    for b in range(1, len(classes) + 1):
        for a in range(b):  # one call for classes a..b-1, padded to class a's width
            width, rows = classes[a], ends[b] - ends[a]
            per_batch = max(1, min(int(max_rows), int(budget_tokens) // width))
            cost = best[a] + rows * width + -(-rows // per_batch) * batch_cost
            if cost < best[b]:
                best[b], start[b] = cost, a
    order = np.argsort(-widths, kind="stable")
    groups, b = [], len(classes)
    while b > 0:
        a = start[b]
        groups.append(order[ends[a] : ends[b]])
        b = a
    return groups[::-1]


def _id_tokenizer(encoder):
    """A copy of the encoder's Hugging Face tokenizer, for decoding token-id input on the
    event loop (None when the encoder has none). A copy: a fast tokenizer used from two
    threads while one sets its truncation fails with "Already borrowed"."""
    import copy

    tokenizer = getattr(encoder, "tokenizer", None)  # exported encoders
    if tokenizer is None and hasattr(encoder, "load"):  # Hugging Face encoders
        tokenizer = getattr(encoder.load(), "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "batch_decode"):
        return None
    return copy.deepcopy(tokenizer)


def embedding_input(value) -> tuple[list[str] | None, list[list[int]] | None]:
    """``(texts, None)`` or ``(None, token-id lists)`` from the ``input`` of /v1/embeddings:
    a text, a list of texts, one list of token ids (one text) or a list of token-id lists,
    as the OpenAI API takes it. ApiError 400 for anything else: an empty list, a bool or a
    float among ids, a mix of forms."""
    if isinstance(value, str):
        return [value], None
    if not value:
        raise ApiError(400, "input is an empty list; send at least one text or token id",
                       code="empty_input")  # fmt: skip
    first = value[0]
    if isinstance(first, str):
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise _bad_input(f"input.{i}", "a text (a list of texts holds only strings)", text)
        return value, None
    if _is_id(first):
        _check_ids(value, "input")
        return None, [value]
    if isinstance(first, list):
        for i, ids in enumerate(value):
            if not isinstance(ids, list):
                raise _bad_input(f"input.{i}", "a list of token ids", ids)
            if not ids:
                raise ApiError(400, f"input.{i} is an empty list of token ids; send at least one "
                               "id", code="empty_input")  # fmt: skip
            _check_ids(ids, f"input.{i}")
        return None, value
    raise _bad_input("input.0", "a text, a token id (an integer) or a list of token ids", first)


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no token


def _check_ids(ids: list, where: str) -> None:
    for j, token in enumerate(ids):
        if not _is_id(token):
            raise _bad_input(f"{where}.{j}", "a token id (an integer)", token)


def _bad_input(where: str, wanted: str, value) -> ApiError:
    from recfeat.data.checks import shown

    return ApiError(400, f"{where} must be {wanted}, got {shown(value)}; input is a text, a list "
                    "of texts, a list of token ids or a list of token-id lists",
                    code="invalid_input")  # fmt: skip
