"""Token-budget batching: group texts of similar length so padding wastes little compute.

Texts are sorted by token count (longest first, so the largest batch runs first and an
out-of-memory shows at once), then cut into batches whose padded size
``len(batch) * longest_in_batch`` stays within a token budget. Short texts thus share big
batches and long ones small batches, and padding never grows quadratically with a mix of
lengths. Callers restore input order with ``out[idx] = result``.
"""

from __future__ import annotations

import numpy as np

from recfeat.errors import OptionError


def padded_width(longest: int, pad_multiple: int = 1, cap: int | None = None) -> int:
    """``longest`` rounded up to a multiple of ``pad_multiple``, but never past ``cap``
    (the model's position limit) unless ``longest`` itself is."""
    width = -(-max(int(longest), 1) // pad_multiple) * pad_multiple
    if cap is not None:
        width = min(width, max(int(cap), int(longest)))
    return width


def plan_batches(
    lengths: np.ndarray,
    batch_tokens: int,
    max_batch_size: int = 512,
    *,
    pad_multiple: int = 1,
    cap: int | None = None,
    uniform: bool = False,
) -> list[np.ndarray]:
    """Return index arrays, one per batch, covering every position of ``lengths`` once.

    Within each batch ``len(batch) * width <= batch_tokens``, where width is the batch's
    longest length (rounded up by ``padded_width(longest, pad_multiple, cap)``), and
    ``len(batch) <= max_batch_size``; a single text longer than the budget gets a batch of its
    own. The order is longest first; ties keep input order (stable sort), so plans are
    deterministic. Rounding widths to a multiple keeps the number of distinct batch shapes
    small, and with it the kernels and buffers oneDNN caches per shape.

    ``uniform``: every batch holds texts of one length only (no padding; ``pad_multiple`` is
    ignored). A text's vector then depends on its own tokens alone, not on which texts it
    was batched with: attention and softmax reduce over the padded width, and a different
    width changes the order of those sums (~1e-7), while the batch size does not.
    """
    if batch_tokens < 1:
        raise OptionError(f"batch_tokens must be at least 1 (got {batch_tokens})")
    if max_batch_size < 1:
        raise OptionError(f"max_batch_size must be at least 1 (got {max_batch_size})")
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if pad_multiple < 1:
        raise OptionError(f"pad_multiple must be at least 1 (got {pad_multiple})")
    if lengths.size == 0:
        return []
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    n = order.size
    while start < n:
        # Sorted longest first, so the batch's first text sets its padded length.
        width = padded_width(lengths[order[start]], 1 if uniform else pad_multiple, cap)
        size = max(1, min(max_batch_size, batch_tokens // width, n - start))
        if uniform:  # stop where the length changes
            same = lengths[order[start : start + size]] == lengths[order[start]]
            size = int(np.argmin(same)) if not same.all() else size
        batches.append(order[start : start + size])
        start += size
    return batches


def padding_ratio(
    lengths: np.ndarray,
    batches: list[np.ndarray],
    pad_multiple: int = 1,
    cap: int | None = None,
) -> float:
    """Share of the padded token grid that is padding (0.0 = no waste)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    real = int(lengths.sum())
    padded = sum(
        len(b) * padded_width(lengths[b].max(), pad_multiple, cap) for b in batches if len(b)
    )
    return 0.0 if padded == 0 else 1.0 - real / padded


def pad_batch(
    ids: list[list[int]], idx: np.ndarray, width: int, pad_id: int
) -> dict[str, np.ndarray]:
    """Right-padded int64 ``input_ids``/``attention_mask``/``token_type_ids`` for rows ``idx``
    of ``ids``, ``width`` wide; every backend (torch, ONNX Runtime, OpenVINO) feeds these."""
    # Right padding for every family: positions of real tokens then start at 0 (what GPT-2's
    # absolute positions expect), and pooling reads real positions from the mask anyway.
    input_ids = np.full((len(idx), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    for row, i in enumerate(idx):
        seq = ids[i]
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "token_type_ids": np.zeros_like(input_ids),
    }
