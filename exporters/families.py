"""Per-architecture export settings, registered by decorator.

What optimum already knows per architecture comes from optimum when it is installed (the
``onnx`` extra): the graph inputs and which of their axes are dynamic (optimum's
``OnnxConfig`` for the model type, task ``feature-extraction``), the ONNX Runtime optimizer's
model type (``ORTConfigManager``) and the attention heads / hidden size (optimum's
``NormalizedConfig``). Without optimum the same values come from the fallbacks written here,
which equal what optimum 2.1 / optimum-onnx 0.1 says.

recfeat's own part stays here: the family's default pooling; position ids computed from the
attention mask inside the graph for decoders (so optimum's ``position_ids`` input is dropped
and left padding gives the same vectors as right padding); the causal mask built in the
graph; the opset (17, the one the TorchScript exporter is measured at; optimum's default of
18 is for its own exporter); and the tolerance the pooled fp32 output must meet (optimum's
1e-5 is for its bare ``last_hidden_state``). An architecture without a family is refused
with the list of families, even where optimum has a config for it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from recfeat.errors import UsageError


class UnsupportedArchitectureError(UsageError):
    """The model's architecture has no export family."""


@dataclasses.dataclass(frozen=True)
class ExportFamily:
    """Everything the exporter needs to know about one architecture family."""

    name: str
    model_types: tuple[str, ...]  # transformers ``config.model_type`` values it covers
    # Used only without optimum (then they are the whole truth); with optimum they are
    # checked against its OnnxConfig / ORTConfigManager, and optimum's values win.
    fallback_input_names: tuple[str, ...]
    default_pooling: str
    fallback_ort_model_type: str  # onnxruntime.transformers.optimizer's model_type
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

    @property
    def model_type(self) -> str:
        return self.model_types[0]

    @property
    def in_graph_inputs(self) -> tuple[str, ...]:
        """Inputs optimum's OnnxConfig declares that recfeat's graph computes itself."""
        return ("position_ids",) if self.position_ids_from_mask else ()

    @functools.cached_property
    def _optimum_inputs(self) -> dict[str, dict[int, str]] | None:
        return optimum_inputs(self.model_type)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The tokenizer outputs the graph takes, in the order the pooled module's forward
        takes them: optimum's OnnxConfig inputs less the ones computed in the graph."""
        inputs = self._optimum_inputs
        if inputs is None:
            return self.fallback_input_names
        names = [n for n in inputs if n not in self.in_graph_inputs]
        order = {n: i for i, n in enumerate(WRAPPER_INPUTS)}
        return tuple(sorted(names, key=lambda n: order.get(n, len(order))))

    @property
    def ort_model_type(self) -> str:
        return optimum_ort_model_type(self.model_type) or self.fallback_ort_model_type

    @property
    def settings_source(self) -> str:
        """Where inputs / axes / ORT model type came from (recorded in the manifest)."""
        return f"optimum-onnx {_optimum_version()}" if self._optimum_inputs is not None else "recfeat"

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """The dynamic axes optimum's OnnxConfig gives each input (batch and sequence),
        under recfeat's axis names; batch on the pooled output (optimum's
        ``last_hidden_state`` also has a sequence axis, the pooled embedding has not)."""
        inputs = self._optimum_inputs
        if inputs is None:
            inputs = {name: {0: "batch", 1: "sequence"} for name in self.fallback_input_names}
        axes = {
            name: {axis: AXIS_NAMES.get(label, label) for axis, label in inputs[name].items()}
            for name in self.input_names
        }
        axes[OUTPUT_NAME] = {0: "batch"}
        return axes


OUTPUT_NAME = "sentence_embedding"
# optimum's axis names -> the names recfeat graphs have always carried (runtimes and tests
# read ``batch`` / ``sequence`` from the graph).
AXIS_NAMES = {"batch_size": "batch", "sequence_length": "sequence"}
OPTIMUM_TASK = "feature-extraction"
# The positional order of ``convert.build_pooled_module``'s forward.
WRAPPER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# -- optimum (optional) ----------------------------------------------------------------------
@functools.cache
def _optimum_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("optimum-onnx")
    except Exception:
        return None


@functools.cache
def _onnx_config_constructor(model_type: str):
    """optimum's OnnxConfig constructor for ``model_type``, or None (optimum missing or
    without a config for it)."""
    if _optimum_version() is None:
        return None
    try:
        import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the configs)
        from optimum.exporters.tasks import TasksManager

        return TasksManager.get_exporter_config_constructor(
            "onnx", model_type=model_type, task=OPTIMUM_TASK, library_name="transformers"
        )
    except (ImportError, KeyError, ValueError):
        return None


@functools.cache
def optimum_inputs(model_type: str) -> dict[str, dict[int, str]] | None:
    """optimum's ``OnnxConfig.inputs`` (name -> {axis: label}) for ``model_type``, or None."""
    ctor = _onnx_config_constructor(model_type)
    if ctor is None:
        return None
    try:
        from transformers import AutoConfig

        onnx_config = ctor(AutoConfig.for_model(model_type))
        return {name: dict(axes) for name, axes in onnx_config.inputs.items()}
    except Exception:
        return None


@functools.cache
def optimum_ort_model_type(model_type: str) -> str | None:
    if _optimum_version() is None:
        return None
    try:
        from optimum.onnxruntime.utils import ORTConfigManager

        return ORTConfigManager.get_model_ort_type(model_type)
    except (ImportError, KeyError, ValueError):
        return None


def _optimum_normalized_config(config) -> Any | None:
    if _optimum_version() is None:
        return None
    try:
        from optimum.utils import NormalizedConfigManager

        return NormalizedConfigManager.get_normalized_config_class(config.model_type)(config)
    except (ImportError, KeyError, ValueError, AttributeError):
        return None
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
        fallback_input_names=("input_ids", "attention_mask", "token_type_ids"),
        default_pooling="mean",
        fallback_ort_model_type="bert",
    )


@register_family
def _distilbert() -> ExportFamily:
    return ExportFamily(
        name="distilbert",
        model_types=("distilbert",),
        fallback_input_names=("input_ids", "attention_mask"),
        default_pooling="mean",
        fallback_ort_model_type="bert",
        num_heads_attr="n_heads",
        hidden_size_attr="dim",
    )


@register_family
def _gpt2() -> ExportFamily:
    return ExportFamily(
        name="gpt2",
        model_types=("gpt2",),
        # optimum's GPT-2 config also takes position_ids; recfeat computes them in the graph.
        fallback_input_names=("input_ids", "attention_mask"),
        default_pooling="last-token",
        fallback_ort_model_type="gpt2",
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
    """Attention heads and hidden size, as the ONNX Runtime optimizer wants them (optimum's
    NormalizedConfig when installed, the family's attribute names otherwise)."""
    normalized = _optimum_normalized_config(config)
    if normalized is not None:
        try:
            return int(normalized.num_attention_heads), int(normalized.hidden_size)
        except (AttributeError, TypeError, ValueError):
            pass
    return int(getattr(config, family.num_heads_attr)), int(getattr(config, family.hidden_size_attr))
