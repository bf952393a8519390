"""Quantisation: dynamic int8 with CPU presets, static int8 QDQ calibrated on the user's own
corpus, fp16 for GPUs, and exclusion of sensitive nodes (by hand or automatically).

Presets follow sentence-transformers / optimum names. On x86 without VNNI, ONNX Runtime's
u8s8 kernels (VPMADDUBSW) can saturate, so ``avx2``/``avx512`` use 7-bit weights
(``reduce_range``); ``avx512_vnni`` and ``arm64`` use the full 8 bits. A CPU with only
AVX-VNNI (256-bit, no AVX-512) gets ``avx2`` from ``detect_preset``.

With optimum installed a preset is optimum's ``AutoQuantizationConfig.<preset>`` (format,
mode, per-channel default, weight / activation types and symmetry), with recfeat's measured
overrides on top, each recorded in the manifest: the operators (MatMul / Gemm / Attention,
not optimum's Gather / Transpose / EmbedLayerNormalization too), ``reduce_range`` on
``avx2`` / ``avx512`` (optimum leaves it off) and int8 weights on ``avx2`` (optimum's uint8
weights would give different files from the ones measured). The quantiser stays ONNX
Runtime's own ``quantize_dynamic`` / ``quantize_static`` on recfeat's single graph:
optimum's ``ORTQuantizer`` cannot pass ``MatMulConstBOnly`` (the attention score products
would be quantised too) nor ``DefaultTensorType`` (needed after ``--optimize``, whose fused
ops defeat shape inference), and writes ``config.json`` / ``ort_config.json`` beside the file.
Without optimum the presets below are used as written.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recfeat.errors import DataError, OptionError, ValidationFailedError
from recfeat.machine import int8_preset

QUANT_MODES = ("dynamic-int8", "static-int8", "fp16")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
MIN_CALIBRATION_TEXTS = 32
DEFAULT_CALIBRATION_SIZE = 128
# Only MatMuls with a constant weight: the attention score products (QK^T, PV) are the
# numerically fragile part and gain little from int8.
QUANTIZED_OPS = ("MatMul", "Gemm", "Attention")


@dataclasses.dataclass(frozen=True)
class QuantPreset:
    name: str
    per_channel: bool
    reduce_range: bool


PRESETS: dict[str, QuantPreset] = {
    "avx2": QuantPreset("avx2", per_channel=True, reduce_range=True),
    "avx512": QuantPreset("avx512", per_channel=True, reduce_range=True),
    "avx512_vnni": QuantPreset("avx512_vnni", per_channel=True, reduce_range=False),
    "arm64": QuantPreset("arm64", per_channel=True, reduce_range=False),
}


@dataclasses.dataclass
class PresetConfig:
    """The resolved quantisation settings of one run (optimum's preset + recfeat overrides)."""

    per_channel: bool
    reduce_range: bool
    weight_type: Any  # onnxruntime.quantization.QuantType
    activation_type: Any
    weight_symmetric: bool
    activation_symmetric: bool
    operators: list[str]
    nodes_to_exclude: list[str]
    source: str
    overrides: list[str]


def preset_config(
    preset: QuantPreset,
    *,
    is_static: bool,
    per_channel: bool | None = None,
    exclude: Sequence[str] = (),
    operators: Sequence[str] = QUANTIZED_OPS,
) -> PresetConfig:
    """optimum's ``AutoQuantizationConfig.<preset>`` with recfeat's overrides, or recfeat's
    own preset values when optimum is not installed."""
    from onnxruntime.quantization import QuantType

    per_channel = preset.per_channel if per_channel is None else per_channel
    try:
        from optimum.onnxruntime.configuration import AutoQuantizationConfig
    except ImportError:
        return PresetConfig(per_channel, preset.reduce_range, QuantType.QInt8, QuantType.QUInt8,
                            True, False, list(operators), list(exclude), "recfeat", [])  # fmt: skip
    import inspect
    from importlib.metadata import version

    factory = getattr(AutoQuantizationConfig, preset.name)
    kwargs: dict[str, Any] = {
        "is_static": is_static,
        "per_channel": per_channel,
        "nodes_to_exclude": list(exclude),
        "operators_to_quantize": list(operators),
    }
    if "reduce_range" in inspect.signature(factory).parameters:
        kwargs["reduce_range"] = preset.reduce_range
    cfg = factory(**kwargs)
    overrides = ["operators_to_quantize"]
    if "reduce_range" in kwargs and preset.reduce_range:
        overrides.append("reduce_range")
    if cfg.reduce_range != preset.reduce_range:
        cfg.reduce_range = preset.reduce_range
        overrides.append("reduce_range")
    if cfg.weights_dtype != QuantType.QInt8:
        cfg.weights_dtype = QuantType.QInt8
        overrides.append("weights_dtype")
    return PresetConfig(
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        weight_type=cfg.weights_dtype,
        activation_type=cfg.activations_dtype,
        weight_symmetric=cfg.weights_symmetric,
        activation_symmetric=cfg.activations_symmetric,
        operators=list(cfg.operators_to_quantize),
        nodes_to_exclude=list(cfg.nodes_to_exclude),
        source=f"optimum-onnx {version('optimum-onnx')} AutoQuantizationConfig.{preset.name}",
        overrides=sorted(set(overrides)),
    )


def check_mode(mode: str) -> str:
    if mode not in QUANT_MODES:
        raise OptionError(f"unknown --quantize {mode!r}; valid modes: {', '.join(QUANT_MODES)}")
    return mode


def check_preset(name: str | None) -> QuantPreset:
    """The named preset, or the one that fits this CPU when ``name`` is None."""
    name = name or detect_preset()
    if name not in PRESETS:
        raise OptionError(f"unknown --preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def check_method(method: str) -> str:
    method = method.lower()
    if method not in CALIBRATION_METHODS:
        raise OptionError(
            f"unknown calibration method {method!r}; valid methods: {', '.join(CALIBRATION_METHODS)}"
        )
    return method


def detect_preset() -> str:
    """The preset for the CPU this runs on (see ``recfeat.machine.int8_preset``)."""
    return int8_preset()


def file_suffix(mode: str, preset: QuantPreset | None, method: str | None = None) -> str:
    """``qint8_avx512_vnni`` (dynamic), ``qdq_int8_minmax`` (static), ``fp16``."""
    if mode == "dynamic-int8":
        return f"qint8_{preset.name}"
    if mode == "static-int8":
        return f"qdq_int8_{method}"
    return "fp16"


def _quiet_quantizer() -> None:
    # ORT's quantizer logs "consider pre-processing" on the root logger for every call; the
    # exporter pre-processes where it matters (static) and validates every result anyway.
    import logging

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))


# -- node selection --------------------------------------------------------------------------
def quantizable_nodes(path: str | Path) -> list[str]:
    """Names of nodes int8 quantisation would touch, in graph (topological) order."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    names = []
    for node in graph.node:
        if node.op_type in QUANTIZED_OPS and any(i in weights for i in node.input[1:]):
            names.append(node.name)
    return names


_LAYER_NUMBER = re.compile(r"(?<=[./_])\d+(?=[./_]|$)")


def role_groups(nodes: Sequence[str]) -> dict[str, list[str]]:
    """Quantisable nodes grouped by their role across layers: the node name with its layer
    number replaced by ``*`` (``/model/encoder/layer.*/output/dense/MatMul`` is the FFN
    down-projection of every layer). Roles are what differ in sensitivity: in BERT the FFN
    down-projection reads the post-GELU activations, whose outliers int8 clips worst."""
    groups: dict[str, list[str]] = {}
    for name in nodes:
        groups.setdefault(_LAYER_NUMBER.sub("*", name), []).append(name)
    return groups


# Roles in the order they are tried alone (first: usually the most int8-sensitive), so the
# common case -- leaving the FFN down-projection in float is enough -- costs two
# quantisations, not seven. The order only saves time: the greedy step below measures.
_ROLE_PRIOR = (
    re.compile(r"(?<!attention)/output/dense|mlp[./]c_proj|mlp[./]fc2|ffn[./]lin2"),
    re.compile(r"intermediate|mlp[./]c_fc|mlp[./]fc1|ffn[./]lin1"),
    re.compile(r"attention/output|attn[./]c_proj|out_lin"),
)


def role_priority(role: str) -> int:
    """Rank of ``role`` in the trial order (FFN down-projection, FFN up, attention output,
    then the rest)."""
    return next((i for i, rx in enumerate(_ROLE_PRIOR) if rx.search(role)), len(_ROLE_PRIOR))


# -- dynamic int8 ---------------------------------------------------------------------------
def quantize_dynamic_int8(
    src: str | Path,
    dst: str | Path,
    preset: QuantPreset,
    *,
    per_channel: bool | None = None,
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """Dynamic int8 (weights int8 ahead of time, activations at run time). Returns settings."""
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    cfg = preset_config(preset, is_static=False, per_channel=per_channel, exclude=exclude)
    _quiet_quantizer()
    quantize_dynamic(
        str(src),
        str(dst),
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        weight_type=cfg.weight_type,
        op_types_to_quantize=cfg.operators,
        nodes_to_exclude=cfg.nodes_to_exclude,
        extra_options={
            "WeightSymmetric": cfg.weight_symmetric,
            "ActivationSymmetric": cfg.activation_symmetric,
            "MatMulConstBOnly": True,
            # Fused com.microsoft ops (after --optimize) defeat ONNX shape inference; their
            # outputs are float tensors.
            "DefaultTensorType": onnx.TensorProto.FLOAT,
        },
    )
    return {
        "mode": "dynamic-int8",
        "preset": preset.name,
        "per_channel": cfg.per_channel,
        "reduce_range": cfg.reduce_range,
        "weight_type": _type_name(cfg.weight_type),
        "activation_type": f"{_type_name(cfg.activation_type)} (dynamic)",
        "preset_source": cfg.source,
        "preset_overrides": cfg.overrides,
        "excluded_nodes": list(exclude),
    }


def _type_name(qtype) -> str:
    return {"QInt8": "int8", "QUInt8": "uint8"}.get(getattr(qtype, "name", str(qtype)), str(qtype))


# -- static int8 (QDQ) ----------------------------------------------------------------------
def calibration_sample(
    texts: Sequence[str] | None,
    size: int = DEFAULT_CALIBRATION_SIZE,
    avoid: Sequence[str] = (),
    minimum: int = MIN_CALIBRATION_TEXTS,
) -> list[str]:
    """``size`` texts from the user's corpus, stratified by length, preferring texts not in
    ``avoid`` (the validation sample). Too few texts is a DataError."""
    from .validate import stratified_sample

    distinct = [t for t in dict.fromkeys(texts or ()) if t and t.strip()]
    if len(distinct) < minimum:
        raise DataError(
            f"calibration data too small: {len(distinct)} distinct non-empty texts, static int8 "
            f"needs at least {minimum}; pass a larger --calibration file or use --quantize dynamic-int8"
        )
    held_out = set(avoid)
    pool = [t for t in distinct if t not in held_out]
    if len(pool) < minimum:
        pool = distinct
    return stratified_sample(pool, size, seed=2)


def _calibration_reader(batches: list[dict[str, Any]]):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(batches)

        def get_next(self):
            return next(self._it, None)

        def rewind(self):
            self._it = iter(batches)

    return _Reader()


def quantize_static_int8(
    src: str | Path,
    dst: str | Path,
    batches: list[dict[str, Any]],
    preset: QuantPreset,
    *,
    method: str = "minmax",
    per_channel: bool | None = None,
    exclude: Sequence[str] = (),
    cache_path: str | Path | None = None,
) -> dict[str, Any]:
    """Static int8 in QDQ format: activation ranges from ``batches`` of the user's texts."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    method = check_method(method)
    _quiet_quantizer()
    cfg = preset_config(preset, is_static=True, per_channel=per_channel, exclude=exclude,
                        operators=("MatMul", "Gemm"))  # fmt: skip
    calibrate = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    extra = {
        "MatMulConstBOnly": True,
        "ActivationSymmetric": cfg.activation_symmetric,
        "WeightSymmetric": cfg.weight_symmetric,
        # Percentile's default (99.999) clips BERT's outlier channels less than 99.99 would.
        "CalibPercentile": 99.999,
    }
    quantize_static(
        str(src),
        str(dst),
        _calibration_reader(batches),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=cfg.operators,
        per_channel=cfg.per_channel,
        reduce_range=cfg.reduce_range,
        activation_type=cfg.activation_type,
        weight_type=cfg.weight_type,
        nodes_to_exclude=cfg.nodes_to_exclude,
        calibrate_method=calibrate,
        extra_options=extra,
        calibration_cache_path=str(cache_path) if cache_path else None,
    )
    return {
        "mode": "static-int8",
        "format": "QDQ",
        "preset": preset.name,
        "calibration_method": method,
        "calibration_texts": sum(len(next(iter(b.values()))) for b in batches),
        "per_channel": cfg.per_channel,
        "reduce_range": cfg.reduce_range,
        "weight_type": f"{_type_name(cfg.weight_type)} ({'symmetric' if cfg.weight_symmetric else 'asymmetric'})",
        "activation_type": f"{_type_name(cfg.activation_type)} "
        f"({'symmetric' if cfg.activation_symmetric else 'asymmetric'})",
        "preset_source": cfg.source,
        "preset_overrides": cfg.overrides,
        "excluded_nodes": list(exclude),
    }


# -- fp16 -----------------------------------------------------------------------------------
def convert_fp16(src: str | Path, dst: str | Path, *, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """fp16 weights and compute for GPUs; inputs and output stay int64 / float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    # LayerNorm statistics and Softmax overflow in fp16 on long inputs; keep them in fp32.
    model = convert_float_to_float16(
        model,
        keep_io_types=True,
        node_block_list=list(exclude),
        op_block_list=["LayerNormalization", "SkipLayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt"],
    )
    onnx.save_model(model, str(dst))
    return {"mode": "fp16", "keep_io_types": True, "excluded_nodes": list(exclude)}


def reuse_previous(
    quantize: Callable[[Sequence[str]], dict[str, Any]], dst: Path
) -> Callable[[Sequence[str]], dict[str, Any]]:
    """``quantize`` (writes ``dst`` for a list of nodes to keep in float, returns settings)
    with the previous trial's file kept aside (``previous_file(dst)``), so that going back to
    it -- ``quantize_until_valid`` after a rejected re-quantisation -- is a rename, not
    another quantisation (seconds per MiniLM-sized graph)."""
    import os

    aside = previous_file(dst)
    keys: dict[str, tuple[str, ...] | None] = {"dst": None, "aside": None}
    settings_of: dict[tuple[str, ...], dict[str, Any]] = {}

    def wrapped(exclude: Sequence[str]) -> dict[str, Any]:
        key = tuple(exclude)
        if key == keys["aside"] and aside.exists():
            os.replace(aside, dst)
            keys["dst"], keys["aside"] = key, None
            return dict(settings_of[key])
        if keys["dst"] is not None and dst.exists():
            os.replace(dst, aside)
            keys["aside"] = keys["dst"]
        settings_of[key] = quantize(exclude)
        keys["dst"] = key
        return dict(settings_of[key])

    return wrapped


def previous_file(dst: Path) -> Path:
    """Where ``reuse_previous`` keeps the previous trial of ``dst`` (scratch: remove it)."""
    return dst.with_name(f".{dst.stem}.previous{dst.suffix}")


# -- auto-exclude ------------------------------------------------------------------------------
# An auto-excluded node goes back to int8 only when the validation mean stays this far above
# the threshold: a file that lands exactly on the gate on a few dozen validation texts would
# miss it on the next user's texts. MiniLM, avx2 preset, built-in texts (issue 26,
# benchmarks/results/export_int8_default.md): the FFN down-projections in float 0.99248,
# layer 5's back in int8 0.99234 (kept), layer 4's too 0.99185 (< 0.992: stop).
REQUANTISE_MARGIN = 0.002


def quantize_until_valid(
    quantize: Callable[[Sequence[str]], dict[str, Any]],
    validate: Callable[[], Any],
    nodes: Sequence[str],
    *,
    auto_exclude: bool,
    exclude: Sequence[str] = (),
    on_attempt: Callable[[Any], None] | None = None,
    requantise_margin: float | None = None,
):
    """Quantise and validate; with ``auto_exclude``, keep the most sensitive node roles in
    float until the threshold holds.

    Sensitivity is measured, not guessed: each role (see ``role_groups``) is left in float
    on its own (FFN down-projection first, ``role_priority``; the first role that is enough
    on its own ends the search) and the gain in mean cosine recorded; roles are then
    excluded greedily in order of gain. That costs 2x the number of roles quantisations at
    most (6 roles for a BERT layer); ONNX static calibration runs once (its ranges are
    cached), NNCF (OpenVINO) calibrates again per attempt.

    With ``requantise_margin`` the nodes the search left in float are then put back into
    int8 one at a time, last layer first (``nodes`` is in graph order), while the mean
    stays >= threshold + margin: a whole role is coarser than needed (in MiniLM the early
    layers' FFN down-projections are the sensitive ones, so the first miss ends it). One
    quantisation per node tried, plus one to write the kept set again after the miss
    (``reuse_previous`` makes that a rename).

    ``quantize(exclude)`` writes the file and returns its settings; ``validate()`` returns a
    StepValidation (not raising). Every attempt is logged in the returned settings'
    ``attempts`` (what was tried, nodes in float, mean cosine) and handed to
    ``on_attempt(validation)``, failures included, so the table explains an auto-exclude
    search or a failed threshold (its step names the nodes left in float). The settings
    say why each node stayed in float (``excluded_why``) and, with ``auto_exclude``, what
    the search measured (``exclusion``). Returns (settings, validation). Raises
    ValidationFailedError with the last figures when nothing passes.
    """
    from .validate import failure_message

    base_excluded = list(exclude)
    attempts: list[dict[str, Any]] = []
    why = {n: "asked for (--exclude-node)" for n in base_excluded}

    def attempt(excluded: list[str], trial: str):
        settings = quantize(excluded)
        result = validate()
        attempts.append({"trial": trial, "excluded_nodes": len(excluded),
                         "cosine_mean": result.cosine_mean, "passed": bool(result.passed)})  # fmt: skip
        if excluded:
            result.step = f"{result.step} ({len(excluded)} nodes float)"
        if on_attempt:
            on_attempt(result)
        return settings, result

    settings, result = attempt(base_excluded, "int8" + (" (--exclude-node in float)" if base_excluded else ""))
    excluded = base_excluded
    search: dict[str, Any] | None = None
    if auto_exclude:
        search = {"min_cosine": result.min_cosine, "int8_cosine_mean": result.cosine_mean}
    if not result.passed and auto_exclude:
        settings, result, excluded = _exclude_roles(attempt, nodes, base_excluded, settings, result,
                                                     why)  # fmt: skip
        if result.passed and requantise_margin is not None:
            auto = [n for n in reversed(nodes) if n in excluded and n not in base_excluded]
            settings, result, excluded, search["requantise"] = _requantise(
                attempt, auto, excluded, settings, result, requantise_margin, why
            )  # fmt: skip
    if not result.passed:
        extra = (
            f" (auto-exclude left {len(excluded)} of {len(nodes)} nodes in float and still missed)"
            if auto_exclude
            else ""
        )
        raise ValidationFailedError(failure_message(result, auto_exclude=auto_exclude) + extra)
    settings["excluded_nodes"] = list(excluded)
    settings["auto_excluded"] = bool(auto_exclude) and len(excluded) > len(base_excluded)
    settings["excluded_why"] = {n: why[n] for n in excluded}
    if search is not None:
        settings["exclusion"] = search
    settings["attempts"] = attempts
    return settings, result


def _exclude_roles(attempt, nodes, base_excluded, settings, result, why):
    """The role search of ``quantize_until_valid``: (settings, validation, excluded)."""
    roles = {
        role: [n for n in members if n not in base_excluded]
        for role, members in role_groups(nodes).items()
    }
    roles = {r: m for r, m in sorted(roles.items(), key=lambda kv: role_priority(kv[0])) if m}
    base_cos, threshold = result.cosine_mean, result.min_cosine
    missed = f"int8 mean cosine {base_cos:.5f} < {threshold}"
    gains: dict[str, float] = {}
    alone: dict[str, float] = {}
    for role, members in roles.items():
        settings, result = attempt(base_excluded + members, f"role {role} in float")
        if result.passed:  # leaving this one role in float is enough
            for n in members:
                why[n] = f"{missed}; with role {role} in float {result.cosine_mean:.5f}"
            return settings, result, base_excluded + members
        gains[role] = result.cosine_mean - base_cos
        alone[role] = result.cosine_mean
    excluded = list(base_excluded)
    for role in sorted(gains, key=gains.get, reverse=True):
        excluded = excluded + roles[role]
        for n in roles[role]:
            why[n] = f"{missed}; role {role} in float alone {alone[role]:.5f}, kept greedily by gain"
        settings, result = attempt(excluded, f"+ role {role} in float")
        if result.passed:
            break
    return settings, result, excluded


def _requantise(attempt, order, excluded, settings, result, margin, why):
    """Put ``order``'s nodes back into int8 one at a time while the mean stays >= threshold +
    ``margin``; the first node that misses ends it (earlier layers are the more sensitive
    ones). Returns (settings, validation, excluded, what was measured)."""
    floor = result.min_cosine + margin
    report: dict[str, Any] = {"margin": margin, "floor": floor, "requantised": []}
    if result.cosine_mean < floor:
        # Every node put back adds error; with no headroom above the floor none can stay.
        report["skipped"] = f"mean {result.cosine_mean:.5f} with the search's nodes in float < {floor:.4f}"
        return settings, result, excluded, report
    for i, node in enumerate(order):
        trial = [n for n in excluded if n != node]
        s, r = attempt(trial, f"re-quantise {node}")
        if r.passed and r.cosine_mean >= floor:
            excluded, settings, result = trial, s, r
            report["requantised"].append({"node": node, "cosine_mean": r.cosine_mean})
            continue
        why[node] += f"; in int8 again: {r.cosine_mean:.5f} < {floor:.4f} (threshold + margin)"
        for rest in order[i + 1 :]:
            why[rest] += f"; not tried in int8: re-quantising {node} already missed {floor:.4f}"
        report["stopped_at"] = node
        # the file on disk is the rejected trial: write the kept set again
        settings, result = attempt(excluded, "kept set, written again")
        break
    return settings, result, excluded, report
