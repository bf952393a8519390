"""Export -> optimise -> quantise, validating every step against PyTorch fp32.

The artifact folder is built in a temporary sibling and moved into place only when every
step passed (``recfeat.atomic.atomic_dir``): a failed validation leaves no folder behind,
an existing folder is replaced only with ``force``, and the temporary folder of a killed
export (``.recfeat-tmp.<pid>.*``) is removed by the next run once its process is gone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recfeat.atomic import atomic_dir
from recfeat.encode.hf_models import load_transformer
from recfeat.encode.pooling import check_pooling
from recfeat.errors import OptionError, UsageError, ValidationFailedError
from recfeat.outputs_guard import guard_outputs
from recfeat.progress import progress_bar

from . import manifest as mf
from . import quantize as q
from . import validate as val
from .convert import build_pooled_module, export_onnx
from .families import OUTPUT_NAME, ExportFamily, family_for_config
from .openvino_export import export_openvino
from .optimize import check_level, fusion_source, optimize_onnx
from .quantize import check_method, check_mode, check_preset
from .steps import Step, fp_threshold
from .validate import StepValidation

FORMATS = ("onnx", "openvino")


@dataclasses.dataclass
class ExportSpec:
    """Everything ``recfeat export`` asks for, resolved to plain values."""

    model: str
    init: str = "pretrained"
    pooling: str | None = None
    normalize: bool = False
    max_length: int = 256
    encoder_name: str = "hf"
    optimize: str | None = None
    quantize: str | None = None
    preset: str | None = None
    per_channel: bool | None = None
    calibration_method: str = "minmax"
    calibration_size: int = 128
    texts: Sequence[str] | None = None  # the user's texts: calibration and validation sample
    min_cosine: float | None = None
    auto_exclude: bool | None = None  # None: on for dynamic-int8 (see _check_spec)
    exclude_nodes: tuple[str, ...] = ()
    format: str = "onnx"
    opset: int | None = None
    external_data: bool | None = None


class _Reporter:
    """Collects validation rows and shows them as they arrive (the CLI prints a table)."""

    def __init__(self, on_step: Callable[[StepValidation], None] | None):
        self.on_step = on_step

    def __call__(self, v: StepValidation) -> None:
        if self.on_step:
            self.on_step(v)


def spec_from_encoder(encoder, **overrides: Any) -> ExportSpec:
    """An ExportSpec from a torch encoder instance (``get_registry('encoder').create(...)``)."""
    opts = encoder.get_options()
    if "model" not in opts:
        raise OptionError(
            f"encoder {encoder.name!r} is not a Hugging Face transformer encoder; export one of "
            "minilm, hf, bert-base, distilbert, gpt2"
        )
    base = dict(
        model=opts["model"],
        init=opts.get("init", "pretrained"),
        pooling=opts.get("pooling"),
        # the encoder's own resolution (a sentence-transformers folder's modules.json)
        normalize=bool(getattr(encoder, "resolved_normalize", opts.get("normalize", False))),
        max_length=int(opts.get("max_length") or 256),
        encoder_name=encoder.name,
    )
    base.update({k: v for k, v in overrides.items() if v is not None})
    return ExportSpec(**base)


def run_export(
    spec: ExportSpec,
    out: str | Path,
    *,
    force: bool = False,
    on_step: Callable[[StepValidation], None] | None = None,
    check: Callable[[Path, dict[str, Any]], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Build the artifact folder ``out``; return its manifest.

    ``check(folder, manifest)`` runs on the finished folder before it is committed (e.g.
    the downstream gate, ``recfeat export --gate``): raising leaves nothing behind; what it
    returns is recorded in the manifest under ``gate``."""
    _check_spec(spec)
    out = Path(out)
    model_dir = Path(spec.model).expanduser()
    guard_outputs({"the export folder": out}, {"the model": model_dir if model_dir.exists() else None})
    if out.exists() and not force:
        raise UsageError(f"output folder {out} already exists; pass --force to replace it")
    report = _Reporter(on_step)
    with atomic_dir(out, force=force) as tmp:
        manifest = _build(spec, Path(tmp), report)
        extra = check(Path(tmp), manifest) if check is not None else None
        if extra is not None:
            kept = {k: v for k, v in manifest.items() if k not in ("format", "files")}
            manifest = mf.write_manifest(tmp, {**kept, "gate": extra})
    return manifest


def check_settings(*, optimize, quantize, preset, calibration_method, min_cosine) -> str | None:
    """One place for the exporter's value checks (run by ``recfeat export`` and by the
    registry / ``recfeat config validate``); returns the normalised optimisation level."""
    level = check_level(optimize) if optimize is not None else None
    if quantize is not None:
        check_mode(quantize)
    check_preset(preset)
    check_method(calibration_method)
    if min_cosine is not None and not 0.0 < min_cosine <= 1.0:
        raise OptionError(f"--min-cosine must be in (0, 1], got {min_cosine}")
    return level


def _check_spec(spec: ExportSpec) -> None:
    if spec.format not in FORMATS:
        raise OptionError(f"unknown export backend {spec.format!r} (--backend); valid: {', '.join(FORMATS)}")
    if spec.pooling is not None:
        check_pooling(spec.pooling)
    spec.optimize = check_settings(
        optimize=spec.optimize, quantize=spec.quantize, preset=spec.preset,
        calibration_method=spec.calibration_method, min_cosine=spec.min_cosine,
    )  # fmt: skip
    if spec.auto_exclude is None:
        # Dynamic int8 needs no data, so it must hold by default on any CPU: plain int8
        # misses the 0.99 gate on short texts ("ok", "meh") on some (issue 26); the
        # exclusion search keeps the sensitive MatMuls in float instead of failing.
        spec.auto_exclude = spec.quantize == "dynamic-int8"
    if spec.format == "openvino" and spec.quantize in ("fp16",):
        raise OptionError(
            "--quantize fp16 is for GPU ONNX Runtime; for OpenVINO use the bf16 inference hint "
            "(default) or --quantize static-int8"
        )


def _build(spec: ExportSpec, tmp: Path, report: _Reporter) -> dict[str, Any]:
    # Eager attention: the exported MatMul/Softmax pattern is what ORT's optimizer fuses.
    loaded = load_transformer(spec.model, init=spec.init, max_length=spec.max_length, sdpa=False)
    family = family_for_config(loaded.model.config)
    pooling = spec.pooling or family.default_pooling
    module = build_pooled_module(loaded, family, pooling, spec.normalize)
    tokenizer = loaded.tokenizer
    tokenizer.save_pretrained(tmp)

    valid_texts = val.validation_texts(spec.texts)
    batches = val.tokenize_batches(tokenizer, valid_texts, family.input_names, max_length=spec.max_length)
    reference = val.torch_outputs(module, batches)

    steps: list[Step] = []
    planned = 1 + bool(spec.optimize) + bool(spec.quantize) + (spec.format == "openvino")
    opset = spec.opset or family.default_opset
    with progress_bar(planned, "exporting", unit="step") as bar:
        bar.describe("exporting: ONNX graph")
        base = tmp / "model.onnx"
        steps.append(_export_step(spec, module, tokenizer, family, base, opset, batches,
                                  reference, report))  # fmt: skip
        current = base
        bar.advance()

        if spec.optimize:
            bar.describe("exporting: graph optimisation")
            steps.append(_optimize_step(spec, current, tmp, family, loaded, batches, reference,
                                        report))  # fmt: skip
            current = tmp / steps[-1].file
            bar.advance()

        if spec.quantize and spec.format == "onnx":
            bar.describe(f"exporting: {spec.quantize} quantisation")
            step = _quantize_onnx(spec, current, tmp, family, loaded, tokenizer, valid_texts,
                                  batches, reference, report)  # fmt: skip
            steps.append(step)
            current = tmp / step.file
            bar.advance()

        if spec.format == "openvino":
            bar.describe("exporting: OpenVINO conversion")
            for step in export_openvino(spec, base, tmp, family, tokenizer, valid_texts, batches,
                                        reference, report):  # fmt: skip
                steps.append(step)
            bar.advance()

    manifest = _manifest(spec, tmp, loaded, family, pooling, opset, steps, len(valid_texts))
    return mf.write_manifest(tmp, manifest)


def _export_step(spec, module, tokenizer, family, base, opset, batches, reference, report) -> Step:
    """Export the pooled module to ONNX at ``base`` and validate it against PyTorch."""
    export_onnx(module, tokenizer, family, base, opset=spec.opset, external_data=spec.external_data)
    v = val.check_step("export", base.name, "fp32", reference, val.onnx_outputs(base, batches),
                       fp_threshold(spec))  # fmt: skip
    _check_atol(v, family)
    report(v)
    return Step("export", base.name, {"opset": opset, "io_settings": family.settings_source}, v)


def _optimize_step(spec, current, tmp, family, loaded, batches, reference, report) -> Step:
    """Run ORT's graph optimiser on ``current`` at ``spec.optimize`` and validate the result."""
    opt = tmp / f"model_{spec.optimize}.onnx"
    optimize_onnx(current, opt, family, loaded.model.config, spec.optimize,
                  external_data=bool(spec.external_data))  # fmt: skip
    v = val.check_step(f"optimize {spec.optimize}", opt.name, "fp32", reference,
                       val.onnx_outputs(opt, batches), fp_threshold(spec))  # fmt: skip
    report(v)
    return Step("optimize", opt.name, {"level": spec.optimize, "fusions": fusion_source()}, v)


def _manifest(spec, tmp, loaded, family, pooling, opset, steps, n_validation) -> dict[str, Any]:
    """What the artifact folder holds and how each file was made and validated."""
    return {
        "created": mf.now(),
        "runtime": spec.format,
        "encoder": spec.encoder_name,
        "source": {
            "model": loaded.source,
            "weights_sha256": loaded.weights_sha256,
            "random_init": loaded.random_init,
        },
        "family": family.name,
        "model_type": loaded.model.config.model_type,
        "pooling": pooling,
        "normalize": spec.normalize,
        "max_length": spec.max_length,
        "hidden_size": loaded.hidden_size,
        "opset": opset,
        "inputs": list(family.input_names),
        "output": OUTPUT_NAME,
        "tokenizer": {
            **mf.tokenizer_fingerprint(tmp),
            "padding_side": loaded.tokenizer.padding_side,
        },
        "default_file": steps[-1].file,
        "steps": [
            {"step": s.name, "file": s.file, "settings": s.settings, "validation": s.validation.as_dict()}
            for s in steps
        ],
        "validation_texts": n_validation,
        "versions": mf.versions(),
    }


def _check_atol(v: StepValidation, family: ExportFamily) -> None:
    """The plain fp32 export must also match element-wise (optimum's check)."""
    if v.max_abs_diff > family.atol:
        raise ValidationFailedError(
            f"validation failed at step 'export' ({v.file}): max abs diff {v.max_abs_diff:.3g} > "
            f"{family.atol} for the {family.name} family (cosine mean {v.cosine_mean:.6f}); "
            "the graph does not reproduce PyTorch; try another --opset"
        )


def _quantize_onnx(spec, current, tmp, family, loaded, tokenizer, valid_texts, batches, reference, report):
    preset = q.check_preset(spec.preset) if spec.quantize != "fp16" else None
    method = spec.calibration_method.lower()
    # Dynamic int8 quantises the plain graph, not --optimize's: ORT fuses the plain int8
    # graph at load time, and the O2-fused graph quantised ran at 0.82-0.85x the plain one
    # (issue 26). fp16 keeps the optimised graph (the fused kernels are what GPUs run).
    src = tmp / "model.onnx" if spec.quantize == "dynamic-int8" else current
    dst = tmp / f"{src.stem}_{q.file_suffix(spec.quantize, preset, method)}.onnx"
    precision = "fp16" if spec.quantize == "fp16" else "int8"
    threshold = spec.min_cosine

    if spec.quantize == "dynamic-int8":
        def quantize_once(exclude):
            return q.quantize_dynamic_int8(src, dst, preset, per_channel=spec.per_channel, exclude=exclude)

        quantize = q.reuse_previous(quantize_once, dst)

    elif spec.quantize == "static-int8":
        # Static QDQ quantises the un-fused graph; ORT fuses QDQ pairs into int8 kernels at
        # load time. Ranges come from the user's texts (held apart from the validation sample).
        from onnxruntime.quantization.shape_inference import quant_pre_process

        src = tmp / ".model_prep.onnx"
        quant_pre_process(str(tmp / "model.onnx"), str(src), skip_symbolic_shape=True)
        calib_texts = q.calibration_sample(spec.texts, spec.calibration_size, avoid=valid_texts)
        calib = val.tokenize_batches(tokenizer, calib_texts, family.input_names,
                                     max_length=spec.max_length, same_width=method != "minmax")  # fmt: skip
        cache = tmp / ".calibration.cache"

        def quantize(exclude):
            return q.quantize_static_int8(src, dst, calib, preset, method=method,
                                          per_channel=spec.per_channel, exclude=exclude,
                                          cache_path=cache)  # fmt: skip

    else:
        def quantize(exclude):
            return q.convert_fp16(src, dst, exclude=exclude)

    def validate():
        return val.check_step(f"quantize {spec.quantize}", dst.name, precision, reference,
                              val.onnx_outputs(dst, batches), threshold, raise_on_fail=False)  # fmt: skip

    settings, v = q.quantize_until_valid(
        quantize, validate, q.quantizable_nodes(src), auto_exclude=spec.auto_exclude,
        exclude=spec.exclude_nodes, on_attempt=report,
        # dynamic int8 needs no calibration per trial: a finer search than whole roles pays
        requantise_margin=q.REQUANTISE_MARGIN if spec.quantize == "dynamic-int8" else None,
    )  # fmt: skip
    for scratch in (tmp / ".model_prep.onnx", tmp / ".calibration.cache", q.previous_file(dst)):
        if scratch.exists():
            scratch.unlink()
    for leftover in tmp.glob("*.onnx-inferred.onnx"):
        leftover.unlink()
    return Step("quantize", dst.name, settings, v)
