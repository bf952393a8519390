"""ONNX -> OpenVINO IR, validated like every other step.

- ``openvino_model.xml/.bin``: the fp32 IR, validated with the fp32 and the bf16 inference
  hint (bf16 is a compile-time hint, so both share the file; on CPUs with AMX it is the
  fast path).
- ``--quantize static-int8``: NNCF post-training quantisation calibrated on the user's texts
  (``openvino_model_int8.xml``); ``--quantize dynamic-int8``: NNCF int8 weight compression.
  NNCF is optional: without it the int8 step is skipped and the manifest says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from recfeat.encode.backends import OpenVinoBackend, compile_openvino

IR_FILE = "openvino_model.xml"
INT8_IR_FILE = "openvino_model_int8.xml"


def run_compiled(compiled, batches: list[dict[str, np.ndarray]]) -> np.ndarray:
    """A compiled IR's outputs for ``batches``, through the encoders' OpenVINO backend."""
    backend = OpenVinoBackend(compiled)
    return np.concatenate([backend.run(b) for b in batches])


def export_openvino(spec, onnx_path: Path, tmp: Path, family, tokenizer, valid_texts, batches, reference, report):
    """Convert and validate; return the pipeline Steps (fp32, bf16, int8 when asked)."""
    import openvino as ov

    from . import quantize as q
    from . import validate as val
    from .steps import Step, fp_threshold

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
            import nncf
        except ImportError:
            print(
                "recfeat: OpenVINO int8 skipped: nncf is not installed (pip install nncf); the "
                "fp32/bf16 IR is exported",
                file=sys.stderr,
            )
            steps[-1].settings["int8_skipped"] = "nncf not installed"
            return steps
        out = tmp / INT8_IR_FILE
        if spec.quantize == "static-int8":
            calib_texts = q.calibration_sample(spec.texts, spec.calibration_size, avoid=valid_texts)
            calib = val.tokenize_batches(tokenizer, calib_texts, family.input_names, max_length=spec.max_length)
            quantized = nncf.quantize(
                ov.Core().read_model(str(ir)),
                nncf.Dataset(calib),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(calib),
                ignored_scope=nncf.IgnoredScope(names=list(spec.exclude_nodes)) if spec.exclude_nodes else None,
            )
            settings = {"mode": "static-int8", "tool": "nncf.quantize", "model_type": "transformer",
                        "calibration_texts": len(calib_texts), "inference_precision": "bf16"}  # fmt: skip
        else:
            quantized = nncf.compress_weights(ov.Core().read_model(str(ir)), mode=nncf.CompressWeightsMode.INT8_ASYM)
            settings = {"mode": "dynamic-int8", "tool": "nncf.compress_weights (int8 weights)",
                        "inference_precision": "bf16"}  # fmt: skip
        ov.save_model(quantized, str(out), compress_to_fp16=False)
        v = val.check_step(f"openvino {spec.quantize}", out.name, "int8", reference,
                           run_compiled(compile_openvino(out, "bf16"), batches), spec.min_cosine)  # fmt: skip
        report(v)
        steps.append(Step("quantize", out.name, settings, v))
    return steps
