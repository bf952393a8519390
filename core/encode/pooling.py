"""Pool token states into one vector per text: ``cls``, ``mean``, ``max``, ``last-token``.

Every method reads positions from the attention mask, never from the padding side, so left-
and right-padded batches give the same vectors. Everything is tensor arithmetic without
Python branches on tensor values, so ``torch.onnx.export`` traces it with dynamic batch and
sequence axes (the ONNX exporter puts this same code inside the exported graph).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recfeat.errors import OptionError

if TYPE_CHECKING:  # torch is imported inside the functions so importing this module is cheap
    import torch

POOLING_METHODS: tuple[str, ...] = ("cls", "mean", "max", "last-token")

# The value sentence-transformers gives padded positions before max pooling; a finite number
# (not -inf) keeps rows without any real token finite.
_MAX_POOL_FILL = -1e9


def check_pooling(method: str) -> str:
    """Return ``method`` or raise OptionError listing the valid methods."""
    if method not in POOLING_METHODS:
        raise OptionError(
            f"unknown pooling {method!r}; valid poolings: {', '.join(POOLING_METHODS)}"
        )
    return method


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, method: str) -> torch.Tensor:
    """Pool ``hidden`` [batch, seq, hidden] into [batch, hidden] using ``attention_mask`` [batch, seq].

    - ``cls``: the first real token (position 0 with right padding).
    - ``mean``: average over real tokens (sentence-transformers' mean pooling).
    - ``max``: element-wise maximum over real tokens.
    - ``last-token``: the last real token (what a decoder such as GPT-2 has read everything at).

    Computation is in float32 whatever the model's dtype, so bf16/fp16 runs lose no accuracy
    in the pooling itself.
    """
    import torch

    check_pooling(method)
    hidden = hidden.float()
    mask = attention_mask.to(hidden.dtype)  # [b, s]
    if method == "mean":
        summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
        counts = mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
        return summed / counts
    if method == "max":
        keep = mask.unsqueeze(-1) > 0
        filled = torch.where(keep, hidden, torch.full_like(hidden, _MAX_POOL_FILL))
        return filled.max(dim=1).values
    # cls / last-token: pick one position per row, found from the mask with min/max over the
    # positions of real tokens (no argmax: its tie-breaking differs between runtimes).
    seq_len = hidden.shape[1]
    positions = torch.arange(seq_len, device=hidden.device, dtype=torch.long).unsqueeze(0)
    real = attention_mask.to(torch.long) > 0
    if method == "cls":
        index = torch.where(real, positions, torch.full_like(positions, seq_len)).min(dim=1).values
        index = index.clamp(max=seq_len - 1)  # a row with no real token falls back to the end
    else:  # last-token
        index = torch.where(real, positions, torch.zeros_like(positions)).max(dim=1).values
    gather = index.view(-1, 1, 1).expand(-1, 1, hidden.shape[-1])
    return hidden.gather(1, gather).squeeze(1)


def normalize(x):
    """L2-normalise rows of a torch tensor or numpy array (zero rows stay zero)."""
    import numpy as np

    if isinstance(x, np.ndarray):
        norms = np.linalg.norm(x, axis=-1, keepdims=True)
        return x / np.maximum(norms, 1e-12)
    import torch

    return torch.nn.functional.normalize(x, p=2.0, dim=-1)
