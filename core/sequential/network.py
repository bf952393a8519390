"""The self-attentive next-item network (SASRec, Kang & McAuley, ICDM 2018) and its training
loop, shared by ``sasrec`` (item-id embeddings) and ``sasrec-text`` (item representations
computed from text vectors by a trained adaptor, UniSRec-style, so new items can be scored).

Choices, and why:
- Pre-LayerNorm transformer blocks with a causal mask, GELU, learned positions: SASRec's
  architecture (the paper's block; RecBole's puts the LayerNorm after each sub-layer).
- Cross-entropy over every item at every position (RecBole's ``loss_type CE``, which its
  SASRec results use and which beats the paper's one-negative BCE on small catalogues), not
  sampled negatives: the catalogues here are thousands of items, so the full softmax is cheap.
- Left padding; a padded position attends only to itself and real positions never attend to
  padding, so no attention row is empty (an all-masked row is NaN in torch and spreads).
- Weights live in a dict of numpy arrays (``state``), so a model file stores them with no
  pickle; the torch module is rebuilt from them on first use after loading.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class NetShape:
    """What the network's weights depend on (stored with them)."""

    n_items: int
    dim: int
    max_len: int
    layers: int
    heads: int
    dropout: float
    text_dim: int = 0  # > 0: item representations from text vectors of this dimension
    ids: bool = True  # learned item-id embeddings (added to the text part when both)


def build(shape: NetShape):
    """The torch module for ``shape`` (weights freshly initialised)."""
    import torch
    from torch import nn

    class SeqNet(nn.Module):
        def __init__(self, s: NetShape):
            super().__init__()
            self.s = s
            if s.ids:
                self.item_emb = nn.Embedding(s.n_items + 1, s.dim, padding_idx=0)
                nn.init.normal_(self.item_emb.weight, std=0.02)
            if s.text_dim:
                self.text_proj = nn.Linear(s.text_dim, s.dim)
                self.text_drop = nn.Dropout(s.dropout)
            self.pos_emb = nn.Embedding(s.max_len, s.dim)
            nn.init.normal_(self.pos_emb.weight, std=0.02)
            self.blocks = nn.ModuleList(_Block(s.dim, s.heads, s.dropout) for _ in range(s.layers))
            self.norm = nn.LayerNorm(s.dim)
            self.drop = nn.Dropout(s.dropout)

        def item_table(self, text=None):
            """(n_items + 1, dim) representations of the padding (row 0) and the items."""
            out = 0
            if self.s.ids:
                out = self.item_emb.weight
            if self.s.text_dim:
                out = out + self.text_proj(self.text_drop(text))
            return out

        def represent(self, text):
            """Representations of items that have no id embedding (new ones) from their text."""
            return self.text_proj(text)

        def forward(self, seq, table):
            """Hidden state at every position of ``seq`` (B, L) of padded item codes."""
            b, n = seq.shape
            pad = seq == 0
            x = table[seq]  # (B, L, dim)
            x = self.drop(x + self.pos_emb.weight[-n:][None])
            x = x * (~pad)[..., None]
            allowed = torch.tril(torch.ones(n, n, dtype=torch.bool, device=seq.device))
            allowed = allowed[None] & ~pad[:, None, :]  # never attend to padding...
            allowed = allowed | torch.eye(n, dtype=torch.bool, device=seq.device)[None]  # ...but self
            allowed = allowed[:, None]  # one mask for every head
            for block in self.blocks:
                x = block(x, allowed)
            return self.norm(x)

    class _Block(nn.Module):
        """Pre-LN transformer block: torch's fused attention (scaled_dot_product_attention)
        with a boolean mask; nn.TransformerEncoderLayer with a per-sequence mask took its
        slow path, 5-10x slower here."""

        def __init__(self, dim: int, heads: int, dropout: float):
            super().__init__()
            self.heads, self.p = heads, dropout
            self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.ff1, self.ff2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
            self.drop = nn.Dropout(dropout)

        def forward(self, x, allowed):
            b, n, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
            a = nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=allowed,
                dropout_p=self.p if self.training else 0.0,
            )  # fmt: skip
            x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
            hidden = self.drop(nn.functional.gelu(self.ff1(self.ln2(x))))
            return x + self.drop(self.ff2(hidden))

    return SeqNet(shape)


def state_of(net) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def load_state(shape: NetShape, state: dict[str, np.ndarray]):
    """The module for ``shape`` with ``state``'s weights (from a model file: shapes checked)."""
    import torch

    from recfeat.errors import DataError

    net = build(shape)
    expected = net.state_dict()
    if set(expected) != set(state):
        raise DataError(
            "sequential model weights do not match the network they were saved with "
            f"(missing {sorted(set(expected) - set(state))[:3]}); the model file was edited"
        )
    tensors = {}
    for k, ref in expected.items():
        arr = np.asarray(state[k])
        if arr.shape != tuple(ref.shape):
            raise DataError(f"sequential model weight {k!r} has shape {arr.shape}, expected "
                            f"{tuple(ref.shape)}; the model file was edited")  # fmt: skip
        tensors[k] = torch.from_numpy(arr.astype(np.float32))
    net.load_state_dict(tensors)
    net.eval()
    return net


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int


def train(shape: NetShape, windows: list[np.ndarray], settings: TrainSettings,
          text: np.ndarray | None = None, *, progress: bool | None = None,
          label: str = "sasrec") -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """Fit a fresh network on next-item windows (item codes, 0-based); returns (net, record:
    loss per epoch, seconds, steps). Seeded: the same windows and settings give the same
    weights on the same machine and thread count."""
    import torch

    from recfeat.progress import progress_bar
    from recfeat.sequential.histories import left_pad

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    net = build(shape)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    seqs = torch.from_numpy(left_pad(windows, shape.max_len + 1))
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    lengths = np.array([len(w) - 1 for w in windows])
    text_t = None if text is None else torch.from_numpy(text.astype(np.float32))
    losses, steps = [], 0
    start = time.perf_counter()
    n_batches = max(1, math.ceil(len(windows) / settings.batch_size))
    net.train()
    with progress_bar(settings.epochs * n_batches, f"training {label}", enabled=progress,
                      unit="batch") as bar:
        for epoch in range(settings.epochs):
            batches = _length_batches(lengths, settings.batch_size, rng)
            total, count = 0.0, 0
            for idx in batches:
                # windows of similar length share a batch, cut to the longest: short
                # histories (most of them on review data) would otherwise be mostly padding
                n = int(lengths[idx].max())
                x, y = inputs[idx][:, -n:], targets[idx][:, -n:]
                table = net.item_table(text_t)
                hidden = net(x, table)
                real = y > 0
                logits = hidden[real] @ table[1:].T  # the padding row is never a target
                loss = torch.nn.functional.cross_entropy(logits, y[real] - 1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * int(real.sum())
                count += int(real.sum())
                steps += 1
                bar.advance()
            losses.append(total / max(count, 1))
            bar.describe(f"training {label} (epoch {epoch + 1}, loss {losses[-1]:.3f})")
    net.eval()
    record = {"loss_per_epoch": [round(v, 5) for v in losses], "steps": steps,
              "seconds": round(time.perf_counter() - start, 2), "windows": len(windows)}  # fmt: skip
    return net, record


def _length_batches(lengths: np.ndarray, size: int, rng) -> list:
    """Batches of window indices, each of windows of similar length (sorted by length with a
    random tie order, cut into batches, the batches shuffled): seeded by ``rng``."""
    import torch

    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[b : b + size] for b in range(0, len(order), size)]
    return [torch.from_numpy(batches[j]) for j in rng.permutation(len(batches))]


def last_hidden(net, seqs: np.ndarray, table) -> Any:
    """Hidden state at the last position of each padded sequence (B, L) -> (B, dim)."""
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(seqs), table)[:, -1]
