"""Per-architecture export settings, registered by decorator (optimum's ``exporters`` layout).

A family says which tokenizer outputs the graph takes (``token_type_ids`` only where the
model has a segment table), which axes are dynamic, the default and minimum opset, the
tolerance the fp32 export must meet, the ONNX Runtime optimizer's model type, and whether
position ids come from the attention mask (decoders, so left padding gives the same vectors
as right padding). An architecture without a family is refused with the list of families.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from recfeat.errors import UsageError


class UnsupportedArchitectureError(UsageError):
    """The model's architecture has no export family."""


@dataclasses.dataclass(frozen=True)
class ExportFamily:
    """Everything the exporter needs to know about one architecture family."""

    name: str
    model_types: tuple[str, ...]  # transformers ``config.model_type`` values it covers
    input_names: tuple[str, ...]
    default_pooling: str
    ort_model_type: str  # onnxruntime.transformers.optimizer's model_type
    default_opset: int = 17
    # Lowest opset measured to export these graphs (dynamic Slice needs opset 10+, and the
    # TorchScript exporter's cumsum/where need 11).
    min_opset: int = 11
    atol: float = 1e-4  # max abs difference the fp32 export may show against torch
    position_ids_from_mask: bool = False
    causal: bool = False  # decoder: the graph builds its own causal + padding mask
    num_heads_attr: str = "num_attention_heads"
    hidden_size_attr: str = "hidden_size"

    @property
    def output_name(self) -> str:
        return OUTPUT_NAME

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Batch and sequence dynamic on every input; batch on the pooled output."""
        axes = {name: {0: "batch", 1: "sequence"} for name in self.input_names}
        axes[OUTPUT_NAME] = {0: "batch"}
        return axes


OUTPUT_NAME = "sentence_embedding"
_FAMILIES: dict[str, ExportFamily] = {}
_BY_MODEL_TYPE: dict[str, ExportFamily] = {}


def register_family(factory: Callable[[], ExportFamily]) -> Callable[[], ExportFamily]:
    """Decorator: register the family a zero-argument function returns."""
    family = factory()
    _FAMILIES[family.name] = family
    for model_type in family.model_types:
        _BY_MODEL_TYPE[model_type] = family
    return factory


@register_family
def _bert() -> ExportFamily:
    return ExportFamily(
        name="bert",
        model_types=("bert",),  # MiniLM checkpoints are BERT models
        input_names=("input_ids", "attention_mask", "token_type_ids"),
        default_pooling="mean",
        ort_model_type="bert",
    )


@register_family
def _distilbert() -> ExportFamily:
    return ExportFamily(
        name="distilbert",
        model_types=("distilbert",),
        input_names=("input_ids", "attention_mask"),
        default_pooling="mean",
        ort_model_type="bert",
        num_heads_attr="n_heads",
        hidden_size_attr="dim",
    )


@register_family
def _gpt2() -> ExportFamily:
    return ExportFamily(
        name="gpt2",
        model_types=("gpt2",),
        input_names=("input_ids", "attention_mask"),
        default_pooling="last-token",
        ort_model_type="gpt2",
        position_ids_from_mask=True,
        causal=True,
        num_heads_attr="n_head",
        hidden_size_attr="n_embd",
        atol=5e-4,  # 12 decoder layers over random weights accumulate more rounding
    )


def families() -> list[str]:
    return sorted(_FAMILIES)


def get_family(name: str) -> ExportFamily:
    if name not in _FAMILIES:
        raise UnsupportedArchitectureError(
            f"unknown export family {name!r}; supported families: {', '.join(families())}"
        )
    return _FAMILIES[name]


def family_for_config(config) -> ExportFamily:
    """The family of a transformers config, or UnsupportedArchitectureError listing them."""
    model_type = getattr(config, "model_type", None) or "unknown"
    family = _BY_MODEL_TYPE.get(model_type)
    if family is None:
        supported = ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in _FAMILIES.values())
        raise UnsupportedArchitectureError(
            f"cannot export architecture {model_type!r}: supported families are {supported}; "
            "use a model of one of these families"
        )
    return family


def heads_and_hidden(family: ExportFamily, config) -> tuple[int, int]:
    """Attention heads and hidden size, as the ONNX Runtime optimizer wants them."""
    return int(getattr(config, family.num_heads_attr)), int(getattr(config, family.hidden_size_attr))
