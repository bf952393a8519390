"""ONNX -> OpenVINO IR, validated like every other step.

- ``openvino_model.xml/.bin``: the fp32 IR, validated with the fp32 and the bf16 inference
  hint (bf16 is a compile-time hint, so both share the file; on CPUs with AMX it is the
  fast path).
- ``--quantize static-int8``: NNCF post-training quantisation (model type TRANSFORMER)
  calibrated on the user's texts (``openvino_model_int8.xml``); with ``--auto-exclude`` the
  most sensitive MatMul roles stay in float (NNCF ``IgnoredScope``) until ``--min-cosine``
  holds, the same search as ONNX (``quantize.quantize_until_valid``). The float parts run in
  bf16 where the CPU has bf16 units, else fp32. ``--quantize dynamic-int8``: NNCF int8
  weight compression. NNCF is optional: without it the int8 step is skipped and the
  manifest says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from recfeat.encode.backends import OpenVinoBackend, compile_openvino
from recfeat.machine import has_bf16

from . import quantize as q
from . import validate as val
from .steps import Step, fp_threshold

IR_FILE = "openvino_model.xml"
INT8_IR_FILE = "openvino_model_int8.xml"


def run_compiled(compiled, batches: list[dict[str, np.ndarray]]) -> np.ndarray:
    """A compiled IR's outputs for ``batches``, through the encoders' OpenVINO backend."""
    backend = OpenVinoBackend(compiled)
    return np.concatenate([backend.run(b) for b in batches])


def export_openvino(spec, onnx_path: Path, tmp: Path, family, tokenizer, valid_texts, batches, reference, report):
    """Convert and validate; return the pipeline Steps (fp32, bf16, int8 when asked)."""
    import openvino as ov

    ir = tmp / IR_FILE
    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(ir), compress_to_fp16=False)
    steps = []
    for precision, threshold in (("fp32", fp_threshold(spec)), ("bf16", fp_threshold(spec))):
        v = val.check_step(f"openvino {precision}", ir.name, precision, reference,
                           run_compiled(compile_openvino(ir, precision), batches), threshold)  # fmt: skip
        report(v)
        steps.append(Step("openvino", ir.name, {"inference_precision": precision}, v))

    if spec.quantize in ("static-int8", "dynamic-int8"):
        try:
            import nncf  # noqa: F401
        except ImportError:
            print(
                "recfeat: OpenVINO int8 skipped: nncf is not installed (pip install nncf); the "
                "fp32/bf16 IR is exported",
                file=sys.stderr,
            )
            steps[-1].settings["int8_skipped"] = "nncf not installed"
            return steps
        steps.append(_quantize_ir(spec, ir, tmp / INT8_IR_FILE, family, tokenizer, valid_texts,
                                  batches, reference, report))  # fmt: skip
    return steps


def int8_companion_precision() -> str:
    """The inference precision of an int8 IR's float parts on this CPU: bf16 where it has
    bf16 units (AMX / AVX-512-bf16), else fp32 (detected at run time, never assumed)."""
    return "bf16" if has_bf16() else "fp32"


def quantizable_ir_nodes(model) -> list[str]:
    """Names of the MatMuls NNCF quantises (one constant weight input), in graph order; they
    keep the ONNX node names, so ``quantize.role_groups`` groups them by role like ONNX's."""
    names = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        for port in range(op.get_input_size()):
            node = op.input_value(port).get_node()
            # Weights may reach the MatMul through a Convert / Transpose / Reshape of a Constant.
            while node.get_type_name() in ("Convert", "Transpose", "Reshape") and node.get_input_size():
                node = node.input_value(0).get_node()
            if node.get_type_name() == "Constant":
                names.append(op.get_friendly_name())
                break
    return names


def _quantize_ir(spec, ir: Path, out: Path, family, tokenizer, valid_texts, batches, reference, report):
    """NNCF int8 of the fp32 IR; static int8 keeps the most sensitive MatMul roles in float
    (NNCF ``IgnoredScope``) until ``--min-cosine`` holds, with ``--auto-exclude``."""
    import nncf
    import openvino as ov

    hint = int8_companion_precision()
    core = ov.Core()
    if spec.quantize == "static-int8":
        calib_texts = q.calibration_sample(spec.texts, spec.calibration_size, avoid=valid_texts)
        calib = val.tokenize_batches(tokenizer, calib_texts, family.input_names, max_length=spec.max_length)

        def quantize(exclude):
            scope = nncf.IgnoredScope(names=list(exclude), validate=False) if exclude else None
            quantized = nncf.quantize(core.read_model(str(ir)), nncf.Dataset(calib),
                                      model_type=nncf.ModelType.TRANSFORMER,
                                      subset_size=len(calib), ignored_scope=scope)  # fmt: skip
            ov.save_model(quantized, str(out), compress_to_fp16=False)
            return {"mode": "static-int8", "tool": "nncf.quantize", "model_type": "transformer",
                    "calibration_texts": len(calib_texts), "inference_precision": hint,
                    "excluded_nodes": list(exclude)}  # fmt: skip

    else:

        def quantize(exclude):
            quantized = nncf.compress_weights(
                core.read_model(str(ir)), mode=nncf.CompressWeightsMode.INT8_ASYM,
                ignored_scope=nncf.IgnoredScope(names=list(exclude), validate=False) if exclude else None,
            )  # fmt: skip
            ov.save_model(quantized, str(out), compress_to_fp16=False)
            return {"mode": "dynamic-int8", "tool": "nncf.compress_weights (int8 weights)",
                    "inference_precision": hint, "excluded_nodes": list(exclude)}  # fmt: skip

    def validate():
        return val.check_step(f"openvino {spec.quantize}", out.name, "int8", reference,
                              run_compiled(compile_openvino(out, hint), batches), spec.min_cosine,
                              raise_on_fail=False)  # fmt: skip

    settings, v = q.quantize_until_valid(
        quantize, validate, quantizable_ir_nodes(core.read_model(str(ir))),
        auto_exclude=spec.auto_exclude, exclude=spec.exclude_nodes, on_attempt=report,
    )  # fmt: skip
    return Step("quantize", out.name, settings, v)
