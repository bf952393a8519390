"""Export a transformer plus pooling (plus optional L2 normalisation) as ONE ONNX graph.

The graph takes the tokenizer's outputs (``input_ids``, ``attention_mask`` and, for BERT,
``token_type_ids``) and returns ``sentence_embedding`` [batch, hidden], batch and sequence
axes dynamic. Pooling is ``recfeat.encode.pooling.pool``, the same code the torch encoders
run, so the graph cannot drift from them. Decoders (GPT-2) compute position ids from the
attention mask inside the graph, so left- and right-padded inputs give the same vectors.

Export uses torch.onnx's TorchScript exporter (``dynamo=False``): with torch 2.13 and
transformers 4.57 it traces these models with dynamic axes intact, needs no onnxscript, and
writes the MatMul/Softmax attention pattern that ONNX Runtime's transformer optimizer fuses.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from recfeat.encode.pooling import check_pooling, pool
from recfeat.encode.pooling import normalize as l2_normalize
from recfeat.errors import RecfeatError, UsageError

from .families import OUTPUT_NAME, ExportFamily

TWO_GB = 2 * 1024**3
EXTERNAL_DATA_SUFFIX = ".data"


class OpsetError(UsageError):
    """The requested opset cannot express an operator of the model."""


class ExportError(RecfeatError):
    """torch.onnx could not export the model."""


def build_pooled_module(loaded, family: ExportFamily, pooling: str, normalize: bool):
    """A torch module: tokenizer outputs -> pooled (optionally L2-normalised) embedding."""
    import torch

    check_pooling(pooling)

    class PooledEncoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            if family.position_ids_from_mask:
                # Count real tokens so far: left padding then starts every text at position 0.
                kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
                kwargs["use_cache"] = False
            if family.causal:
                # transformers 4.57 builds the causal mask with torch.vmap, which the
                # TorchScript tracer cannot follow; a ready 4D mask is passed through as is.
                kwargs["attention_mask"] = causal_additive_mask(attention_mask, self.dtype)
            hidden = self.model(**kwargs).last_hidden_state
            embedding = pool(hidden, attention_mask, pooling)
            return l2_normalize(embedding) if normalize else embedding

        @property
        def dtype(self):
            return next(self.model.parameters()).dtype

    return PooledEncoder(loaded.model).eval()


def causal_additive_mask(attention_mask, dtype):
    """[batch, 1, seq, seq] additive mask: 0 where a query may attend (earlier or same
    position, real token), the dtype's minimum elsewhere. Traceable with dynamic shapes."""
    import torch

    seq = attention_mask.shape[1]
    positions = torch.arange(seq, device=attention_mask.device)
    causal = positions.view(1, 1, -1, 1) >= positions.view(1, 1, 1, -1)  # [1, 1, q, k]
    keys = attention_mask.view(attention_mask.shape[0], 1, 1, seq) > 0  # [b, 1, 1, k]
    allowed = causal & keys
    zero = torch.zeros((), dtype=dtype, device=attention_mask.device)
    return torch.where(allowed, zero, torch.tensor(torch.finfo(dtype).min, dtype=dtype))


def dummy_inputs(tokenizer, input_names: tuple[str, ...]) -> dict[str, Any]:
    """Two texts of different lengths, padded: the trace then keeps the padding-mask path
    (an all-ones mask lets transformers skip it, which would freeze it out of the graph)."""
    texts = ["a short text", "a somewhat longer text to force padding in the batch, ok"]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    if "token_type_ids" in input_names and "token_type_ids" not in enc:
        import torch

        enc["token_type_ids"] = torch.zeros_like(enc["input_ids"])
    return {name: enc[name] for name in input_names}


def export_onnx(
    module,
    tokenizer,
    family: ExportFamily,
    path: str | Path,
    *,
    opset: int | None = None,
    external_data: bool | None = None,
) -> Path:
    """Export ``module`` (from ``build_pooled_module``) to ``path``; return the path.

    ``external_data``: True stores weights in ``<path>.data``; None does so only for models
    over 2 GB (protobuf's limit); False never.
    """
    import torch

    path = Path(path)
    opset = opset or family.default_opset
    if opset < 7:
        raise OpsetError(f"opset {opset} is not a valid ONNX opset for export; use --opset {family.default_opset}")
    inputs = dummy_inputs(tokenizer, family.input_names)
    size = sum(p.numel() * p.element_size() for p in module.parameters())
    # Export into a scratch folder: for models over 2 GB the exporter writes one file per
    # tensor, which save_model then gathers into a single ``<name>.data`` beside ``path``.
    with tempfile.TemporaryDirectory(prefix=".export.", dir=path.parent) as scratch:
        raw = Path(scratch) / "model.onnx"
        try:
            with warnings.catch_warnings(), torch.no_grad():
                # Tracer and deprecation warnings are about code paths we pinned on purpose.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    tuple(inputs[name] for name in family.input_names),
                    str(raw),
                    input_names=list(family.input_names),
                    output_names=[OUTPUT_NAME],
                    dynamic_axes=family.dynamic_axes(),
                    opset_version=opset,
                    do_constant_folding=True,
                    dynamo=False,
                )
        except torch.onnx.errors.UnsupportedOperatorError as exc:
            raise OpsetError(_opset_message(exc, opset, family)) from None
        except torch.onnx.errors.OnnxExporterError as exc:
            if "opset" in str(exc).lower():
                raise OpsetError(_opset_message(exc, opset, family)) from None
            raise ExportError(f"torch.onnx export of the {family.name} model failed: {exc}") from None
        external = external_data if external_data is not None else size >= TWO_GB
        save_onnx(raw, path, external=external)
    return path


def _opset_message(exc: Exception, opset: int, family: ExportFamily) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = first.split(" [Caused by")[0][:200]
    return (
        f"opset {opset} is too old for this {family.name} model ({first}); "
        f"use --opset {family.default_opset} (at least {family.min_opset})"
    )


def save_onnx(src: Path, dst: Path, *, external: bool) -> None:
    """Copy an ONNX model to ``dst``; ``external`` puts every weight in ``<dst>.data``."""
    import onnx

    if not external:
        shutil.move(str(src), str(dst))
        return
    model = onnx.load(str(src), load_external_data=True)
    onnx.save_model(
        model,
        str(dst),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=dst.name + EXTERNAL_DATA_SUFFIX,
        size_threshold=1024,
    )
