"""Graph optimisation with ONNX Runtime's transformer optimizer, at optimum's levels.

- ``O1``: ONNX Runtime's basic graph optimisations (constant folding, redundant nodes).
- ``O2``: O1 + transformer fusions: attention, LayerNorm, SkipLayerNorm, EmbedLayerNorm,
  GELU and bias-GELU.
- ``O3``: O2 + GELU approximation (FastGelu; tanh instead of erf).

The optimizer is free to rewrite the graph, but the inputs and ``sentence_embedding`` output
keep their names: a renamed output is put back with an Identity node.

With optimum installed the fusion options are optimum's (``AutoOptimizationConfig.O1..O3``
turned into ONNX Runtime ``FusionOptions`` by ``OptimizationConfig.create_fusion_options``),
with two recfeat overrides, both measured: EmbedLayerNormalization fusion stays on (optimum
disables it by default; recfeat's MiniLM O2 graph has it), and ONNX Runtime's graph level
stays 1 (optimum's O2/O3 use 2, whose extended optimisations tie the file to one execution
provider). optimum's ``ORTOptimizer`` itself is not used: it wants a model folder with
``config.json``, writes ``config.json`` / ``ort_config.json`` next to the result, and saves
without putting the ``sentence_embedding`` output name back. O4 (fp16) is ``--quantize fp16``.
"""

from __future__ import annotations

from pathlib import Path

from recfeat.errors import OptionError

from .families import OUTPUT_NAME, ExportFamily, heads_and_hidden

LEVELS = ("O1", "O2", "O3")


def check_level(level: str) -> str:
    level = level.upper()
    if level not in LEVELS:
        raise OptionError(f"unknown optimisation level {level!r}; valid levels: {', '.join(LEVELS)}")
    return level


def optimize_onnx(
    src: str | Path,
    dst: str | Path,
    family: ExportFamily,
    config,
    level: str = "O2",
    *,
    external_data: bool = False,
) -> Path:
    """Optimise ``src`` into ``dst`` at ``level``; return ``dst``."""
    import onnx
    from onnxruntime.transformers import optimizer

    level = check_level(level)
    num_heads, hidden = heads_and_hidden(family, config)
    options, only_ort = fusion_settings(family.ort_model_type, level)
    model = optimizer.optimize_model(
        str(src),
        model_type=family.ort_model_type,
        num_heads=num_heads,
        hidden_size=hidden,
        optimization_options=options,
        opt_level=1,  # basic ORT optimisations keep the file portable across CPU/GPU
        only_onnxruntime=only_ort,
        use_gpu=False,
    )
    source_graph = onnx.load(str(src), load_external_data=False).graph
    keep_output_name(model.model, expected=OUTPUT_NAME)
    _keep_inputs(model.model, [i.name for i in source_graph.input])
    dst = Path(dst)
    model.save_model_to_file(str(dst), use_external_data_format=external_data)
    return dst


def fusion_source() -> str:
    """Where the fusion options come from (recorded in the manifest)."""
    try:
        from importlib.metadata import version

        import optimum.onnxruntime.configuration  # noqa: F401

        return f"optimum-onnx {version('optimum-onnx')} AutoOptimizationConfig (+ embed_layer_norm, opt_level 1)"
    except ImportError:
        return "recfeat"


def fusion_settings(ort_model_type: str, level: str):
    """(FusionOptions, only_onnxruntime) for ``level``: optimum's when installed."""
    from onnxruntime.transformers.fusion_options import FusionOptions

    try:
        from optimum.onnxruntime.configuration import AutoOptimizationConfig
    except ImportError:
        options = FusionOptions(ort_model_type)
        if level == "O3":
            options.enable_gelu_approximation = True
        return options, level == "O1"
    config = AutoOptimizationConfig.with_optimization_level(level, disable_embed_layer_norm_fusion=False)
    return config.create_fusion_options(ort_model_type), not config.enable_transformers_specific_optimizations


def keep_output_name(model, expected: str = OUTPUT_NAME) -> None:
    """Make the graph's single output be called ``expected`` again (Identity if renamed)."""
    from onnx import helper

    graph = model.graph
    if len(graph.output) != 1:
        raise RuntimeError(f"optimised graph has {len(graph.output)} outputs, expected 1")
    out = graph.output[0]
    if out.name == expected:
        return
    graph.node.append(helper.make_node("Identity", [out.name], [expected], name="keep_output_name"))
    out.name = expected


def _keep_inputs(model, names: list[str]) -> None:
    present = {i.name for i in model.graph.input}
    missing = [n for n in names if n not in present]
    if missing:
        # The optimizer dropped an input it found unused; runtimes feed only what a graph
        # declares, so this is harmless, but say so in the model's metadata for readers.
        entry = model.metadata_props.add()
        entry.key = "recfeat.dropped_inputs"
        entry.value = ",".join(missing)
