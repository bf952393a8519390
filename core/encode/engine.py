"""The one encode loop every encoder, the benchmark harness, Ray actors and the server share.

``encode(texts, tokenizer, backend, ...)`` tokenises all texts in one call of the fast
tokenizer, counts what truncation dropped, plans batches under a token budget
(``recfeat.encode.batching``: sorted by length, so padding wastes little), pads each batch
only to its own longest text, runs the backend (``recfeat.encode.backends``: torch, ONNX
Runtime, OpenVINO), writes rows back in input order and returns the same statistics for
every backend. With ``overlap=True`` a producer thread tokenises and pads the next chunk
while the backend runs the current one (what keeps a GPU busy); the vectors are the same.
A text over ``LONG_TEXT_CHARS`` characters is cut before the tokenizer sees it, keeping the
ids of the whole text (``_tokenize_long``), so one huge review costs bounded memory; its
token counts are then lower bounds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from recfeat.components.tokenizer import TokenBatch
from recfeat.encode.batching import pad_batch, padded_width, plan_batches
from recfeat.errors import DataError
from recfeat.progress import progress_bar, report

#: Statistics every backend reports for one ``encode`` call (manifests sum them).
STAT_KEYS = ("texts", "tokens", "truncated_texts", "tokens_dropped", "padding_ratio", "batches")


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """How texts are grouped: token budget, batch cap, width rounding and position cap."""

    batch_tokens: int
    max_batch_size: int
    pad_multiple: int = 1
    max_length: int | None = None
    uniform: bool = False  # batches of one length: vectors independent of the batch

    def batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        return plan_batches(
            lengths, self.batch_tokens, self.max_batch_size,
            pad_multiple=self.pad_multiple, cap=self.max_length, uniform=self.uniform,
        )  # fmt: skip

    def width(self, lengths: np.ndarray) -> int:
        return padded_width(int(lengths.max()), 1 if self.uniform else self.pad_multiple,
                            self.max_length)  # fmt: skip


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of str, or DataError naming the first bad entry."""
    if isinstance(texts, str):
        raise DataError("encode() takes a list of texts, not one string; wrap it in a list")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(
                f"text {i} is {type(text).__name__}, not str; convert or drop missing texts first"
            )
    return texts


#: Texts up to this many characters are tokenised whole: their kept tokens and their counts
#: (tokens before truncation, tokens dropped) are exact. A longer text is cut before the
#: tokenizer sees it (:func:`_tokenize_long`), so one huge text costs bounded memory and time
#: (a fast tokenizer holds ~150 bytes per character of what it is given: 3 GB for 21 MB).
LONG_TEXT_CHARS = 1 << 17
#: A long text is first cut at max(LONG_TEXT_CHARS, this many characters per token of
#: ``max_length``), then at twice that, up to ``1 << MAX_DOUBLINGS`` times it.
CHARS_PER_TOKEN = 16
MAX_DOUBLINGS = 2


def tokenize(tokenizer, texts: Sequence[str], max_length: int, *,
             add_special_tokens: bool = True) -> TokenBatch:  # fmt: skip
    """Token ids of every text (one batched call of a Hugging Face fast tokenizer), truncated
    to ``max_length``, with each text's untruncated length and the tokens truncation dropped.

    Texts over ``LONG_TEXT_CHARS`` characters are cut first (:func:`_tokenize_long`): their
    kept ids are still those of the whole text, but their untruncated length and dropped
    tokens count only the tokens of the part tokenised, so they are lower bounds there."""
    texts = list(texts)
    long = [i for i, text in enumerate(texts) if len(text) > LONG_TEXT_CHARS]
    common = dict(
        add_special_tokens=add_special_tokens,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,  # no "sequence longer than model_max_length" log lines
    )
    short = texts
    if long:  # tokenised on their own below; a placeholder keeps the rows in place
        short = list(texts)
        for i in long:
            short[i] = ""
    ids = tokenizer(short, truncation=True, max_length=max_length, **common)["input_ids"]
    n_tokens = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    n_dropped = np.zeros(len(ids), dtype=np.int64)
    # Only texts that reached the limit can have been cut: re-count just those in full.
    at_limit = np.flatnonzero(n_tokens >= max_length)
    if at_limit.size:
        full = tokenizer([short[i] for i in at_limit], truncation=False, **common)
        full_len = np.fromiter((len(x) for x in full["input_ids"]), dtype=np.int64)
        n_dropped[at_limit] = np.maximum(full_len - n_tokens[at_limit], 0)
        n_tokens[at_limit] = np.maximum(full_len, n_tokens[at_limit])
    for i in long:
        ids[i], n_tokens[i], n_dropped[i] = _tokenize_long(tokenizer, texts[i], max_length, common)
    return TokenBatch(ids=ids, n_tokens=n_tokens, n_dropped=n_dropped)


def _tokenize_long(tokenizer, text: str, max_length: int, common: dict[str, Any]):
    """``(kept ids, tokens counted, tokens dropped)`` of one text over ``LONG_TEXT_CHARS``,
    tokenising only a prefix of it.

    The kept ids equal those of the whole text whenever the prefix proves it: a fast
    tokenizer splits text into words (pre-tokens: WordPiece's words and punctuation,
    byte-level BPE's regex pieces) and tokenises each word on its own, so the words of the
    prefix before its last two are the whole text's (the last ones may be cut, or merged
    with what follows: a long word that is one [UNK] whole can be pieces when cut). When
    those words alone hold more tokens than ``max_length`` leaves for text, truncation
    keeps the same tokens from the prefix as from the whole text. Otherwise the cut is
    doubled, up to ``MAX_DOUBLINGS`` times; a prefix that still proves nothing (one word of
    hundreds of thousands of characters, or a tokenizer that does not split words) is used
    as it is: the text is tokenised as cut there. The counts are those of the proven
    words (lower bounds of the whole text's), or of the prefix used."""
    specials = tokenizer.num_special_tokens_to_add(pair=False) if common["add_special_tokens"] else 0
    room = max_length - specials  # text tokens truncation keeps
    cut = max(LONG_TEXT_CHARS, CHARS_PER_TOKEN * max_length)
    # left truncation keeps the end of the text, which no prefix can prove
    right = getattr(tokenizer, "truncation_side", "right") == "right"
    for attempt in range(MAX_DOUBLINGS + 1):
        if cut >= len(text) or not right:
            part, whole = text, True
        else:
            part, whole = text[:cut], False
        enc = tokenizer([part], truncation=False, **common)
        total = len(enc["input_ids"][0])
        if whole or attempt == MAX_DOUBLINGS or room < 1:
            break
        try:
            words = [w for w in enc.word_ids(0) if w is not None]
        except (ValueError, AttributeError):  # a tokenizer without word ids proves nothing
            words = []
        if words:
            stable = sum(1 for w in words if w < words[-1] - 1)
            if stable > room:
                total = specials + stable
                break
        cut *= 2
    kept = tokenizer([part], truncation=True, max_length=max_length, **common)["input_ids"][0]
    return kept, max(total, len(kept)), max(total - len(kept), 0)


class _Counter:
    """Accumulates the statistics of one call, over one or several tokenised chunks."""

    def __init__(self, per_text: int | None = None) -> None:
        self.texts = self.tokens = self.truncated = self.dropped = 0
        self.batches = self.padded = 0
        # Tokens kept / dropped for each input text, in input order, when asked for.
        self.kept = None if per_text is None else np.zeros(per_text, dtype=np.int64)
        self.dropped_each = None if per_text is None else np.zeros(per_text, dtype=np.int64)
        self.tokenize_seconds = 0.0

    def add_tokens(self, tokens: TokenBatch, offset: int = 0) -> None:
        if self.kept is not None:  # per-text counts asked for (encode(per_text=True))
            end = offset + len(tokens.ids)
            self.kept[offset:end] = tokens.lengths
            self.dropped_each[offset:end] = tokens.n_dropped
        self.texts += len(tokens.ids)
        self.tokens += int(tokens.lengths.sum())
        self.truncated += int((tokens.n_dropped > 0).sum())
        self.dropped += int(tokens.n_dropped.sum())

    def add_batch(self, rows: int, width: int) -> None:
        self.batches += 1
        self.padded += rows * width

    def stats(self) -> dict[str, Any]:
        ratio = 0.0 if self.padded == 0 else 1.0 - self.tokens / self.padded
        out = {
            "texts": self.texts,
            "tokens": self.tokens,
            "truncated_texts": self.truncated,
            "tokens_dropped": self.dropped,
            "padding_ratio": round(ratio, 6),
            "batches": self.batches,
        }
        if self.kept is not None:  # the names recfeat.extraction.pipeline reads
            out["n_kept"], out["n_dropped"] = self.kept, self.dropped_each
            out["tokenize_seconds"] = self.tokenize_seconds
        return out


def empty(dim: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The result of encoding no texts: a (0, dim) array and zero statistics."""
    return np.zeros((0, int(dim)), dtype=np.float32), _Counter().stats()


def pad_id_of(tokenizer) -> int:
    pad = tokenizer.pad_token_id
    if pad is None:  # decoders such as GPT-2 have none; the mask hides the value anyway
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return int(pad)


def encode(
    texts: Sequence[str],
    *,
    tokenizer,
    backend,
    plan: BatchPlan,
    progress: bool = False,
    overlap: bool = False,
    chunk_texts: int = 4096,
    per_text: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """float32 ``(len(texts), backend.dim)`` in input order, and the call's statistics.

    ``per_text=True`` adds ``n_kept`` and ``n_dropped`` to the statistics: int64 arrays of
    the tokens kept and dropped by truncation for each text, in input order (the server
    reports them per input; the tokenizer already counted them, so this costs nothing), and
    ``tokenize_seconds``, the time spent in the tokenizer (the server's latency metrics)."""
    texts = check_texts(texts)
    if not texts:
        out, stats = empty(backend.dim)
        if per_text:
            stats["n_kept"] = stats["n_dropped"] = np.zeros(0, dtype=np.int64)
            stats["tokenize_seconds"] = 0.0
        return out, stats
    counter = _Counter(len(texts) if per_text else None)
    out = np.empty((len(texts), int(backend.dim)), dtype=np.float32)
    pad_id = pad_id_of(tokenizer)
    enabled = None if progress else False
    with backend.session(), progress_bar(len(texts), "encoding", enabled=enabled) as bar:
        batches = (
            _overlapped(texts, tokenizer, plan, pad_id, counter, chunk_texts)
            if overlap
            else _batches(texts, tokenizer, plan, pad_id, counter)
        )
        pending = []
        for rows, feed in batches:
            pending.append((rows, backend.submit(feed)))
            bar.advance(len(rows))
            report(len(rows))  # the caller's bar, when it counts this call as one step
        backend.collect(pending, out)
    return out, counter.stats()


def _batches(texts, tokenizer, plan: BatchPlan, pad_id: int, counter: _Counter, offset: int = 0):
    """(rows, padded feed) for each planned batch of ``texts``; rows index the full input."""
    start = time.perf_counter()
    tokens = tokenize(tokenizer, texts, plan.max_length or 10**9)
    counter.tokenize_seconds += time.perf_counter() - start
    counter.add_tokens(tokens, offset)
    lengths = tokens.lengths
    for idx in plan.batches(lengths):
        width = plan.width(lengths[idx])
        counter.add_batch(len(idx), width)
        yield idx + offset, pad_batch(tokens.ids, idx, width, pad_id)


def _overlapped(texts, tokenizer, plan, pad_id, counter, chunk_texts: int, depth: int = 4):
    """The same batches, produced chunk by chunk on a thread while the consumer runs them.

    The fast tokenizer runs in Rust without the GIL, so the producer costs the consumer
    (Python launching kernels) almost nothing; batches are planned within each chunk.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for start in range(0, len(texts), chunk_texts):
                part = texts[start : start + chunk_texts]
                for item in _batches(part, tokenizer, plan, pad_id, counter, offset=start):
                    if stop.is_set():
                        return
                    q.put(item)
            q.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=produce, name="recfeat-tokenize", daemon=True)
    thread.start()
    try:
        for item in iter(q.get, done):
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)

