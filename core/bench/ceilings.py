"""What the machine can do at best: GEMM ceilings per precision, measured in the run, and
the FLOPs a transformer encoder spends per sequence, so every path reads as a fraction.

Absolute speeds of two machines of the same kind differed about 2x (issue 12), so a figure
only means something against ceilings measured in the same run, on the same threads. Each
precision's ceiling is the fastest square GEMM any installed runtime does here (torch,
ONNX Runtime, OpenVINO); every kernel's own figure is kept so a reader sees all of them.
torch, onnx, onnxruntime and openvino are imported inside the kernels that need them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Square GEMM size: 4096^3 is ~137 GFLOP, about 0.5 s in fp32 on two AVX-512 cores.
GEMM_SIZE = 4096
#: The precision whose ceiling each backend precision is judged against.
#: Kernels are first timed at this size; one whose call would take longer than
#: ``MAX_CALL_SECONDS`` at the full size is no ceiling and is not run there (torch._int_mm on
#: a CPU without VNNI: 1.8 GOP/s, 75 s a 4096^3 call, against 65 GFLOP/s for fp32).
PROBE_SIZE = 512
MAX_CALL_SECONDS = 10.0
CEILING_OF = {"fp32": "fp32", "bf16": "bf16", "fp16": "bf16", "int8": "int8"}


# -- FLOPs of the model ----------------------------------------------------------------------
def matmul_params(shape: dict[str, Any]) -> int:
    """Weights that take part in matrix products per forward: per layer Q, K, V and the
    attention output (4 h^2) and the two FFN projections (2 h i). Embeddings are lookups."""
    h, layers = int(shape["hidden"]), int(shape["layers"])
    inter = int(shape.get("intermediate") or 4 * h)
    return layers * (4 * h * h + 2 * h * inter)


def flops_per_sequence(shape: dict[str, Any], tokens: int | np.ndarray) -> float | np.ndarray:
    """Multiply-adds x 2 of one forward over a sequence of ``tokens`` tokens: the weight GEMMs
    (2 * matmul_params * tokens) plus attention's Q K^T and P V (2 * 2 * tokens^2 * h per
    layer). Softmax, norms and GELU are ignored (a few percent at most)."""
    t = np.asarray(tokens, dtype=np.float64)
    h, layers = int(shape["hidden"]), int(shape["layers"])
    flops = 2.0 * matmul_params(shape) * t + 4.0 * layers * h * t * t
    return float(flops) if flops.ndim == 0 else flops


def corpus_flops(shape: dict[str, Any], lengths: Sequence[int] | np.ndarray) -> float:
    """Useful FLOPs of encoding texts of these (truncated) token lengths: padding excluded,
    so a path that pads more is charged for it in its fraction of the ceiling."""
    return float(np.sum(flops_per_sequence(shape, np.asarray(lengths))))


# -- GEMM kernels ----------------------------------------------------------------------------
def _best_seconds(fn: Callable[[], Any], repeats: int, clock=time.perf_counter) -> float:
    fn()  # warm-up: kernel selection, weight packing, page faults
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)  # a ceiling: the best call, not the typical one


def _torch_kernel(dtype_name: str, n: int, threads: int | None):
    import torch

    if threads:
        torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    if dtype_name == "int8":
        a = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=gen)
        b = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=gen)
        return lambda: torch._int_mm(a, b)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)

    def run():
        with torch.inference_mode():
            return a @ b

    return run


def _ort_kernel(op: str, n: int, threads: int | None):
    """ONNX Runtime u8 x s8 GEMM: MatMulInteger (what dynamic int8 graphs run) or
    QLinearMatMul (static QDQ graphs after fusion)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (n, n)).astype(np.int8)
    inits = [numpy_helper.from_array(w, "W")]
    if op == "MatMulInteger":
        node = helper.make_node("MatMulInteger", ["A", "W"], ["Y"])
        out_type = TensorProto.INT32
    else:
        scalars = {"a_s": np.float32(0.02), "a_z": np.uint8(128), "w_s": np.float32(0.01),
                   "w_z": np.int8(0), "y_s": np.float32(0.5), "y_z": np.uint8(128)}  # fmt: skip
        inits += [numpy_helper.from_array(np.array(v), k) for k, v in scalars.items()]
        node = helper.make_node(
            "QLinearMatMul", ["A", "a_s", "a_z", "W", "w_s", "w_z", "y_s", "y_z"], ["Y"]
        )
        out_type = TensorProto.UINT8
    graph = helper.make_graph(
        [node], "gemm", [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("Y", out_type, [n, n])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    a = rng.integers(0, 256, (n, n)).astype(np.uint8)
    return lambda: session.run(None, {"A": a})


def _openvino_kernel(precision: str, n: int, threads: int | None):
    """OpenVINO CPU MatMul: f32 / bf16 by inference-precision hint; int8 as NNCF writes it
    (FakeQuantize on the activations, int8 weights with a dequantising scale), which the
    CPU plugin runs as an int8 GEMM (AMX / VNNI where present). LATENCY hint, one request."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([n, n], ov.Type.f32, name="A")
    if precision == "int8":
        lo, hi = np.float32(-4), np.float32(4)
        act = ops.fake_quantize(x, lo, hi, lo, hi, 256)
        w8 = ops.constant(rng.integers(-128, 128, (n, n)).astype(np.int8))
        weight = ops.multiply(ops.convert(w8, ov.Type.f32), ops.constant(np.float32(0.01)))
    else:
        act = x
        weight = ops.constant(rng.standard_normal((n, n)).astype(np.float32))
    model = ov.Model([ops.matmul(act, weight, False, False)], [x], "gemm")
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                              "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    a = rng.standard_normal((n, n)).astype(np.float32)
    return lambda: request.infer({0: a})


# (precision, runtime, kernel label, module needed, builder)
KERNELS: tuple[tuple[str, str, str, str, Callable], ...] = (
    ("fp32", "torch", "torch.matmul fp32", "torch", lambda n, t: _torch_kernel("fp32", n, t)),
    ("fp32", "openvino", "OpenVINO MatMul f32", "openvino",
     lambda n, t: _openvino_kernel("fp32", n, t)),
    ("bf16", "torch", "torch.matmul bf16", "torch", lambda n, t: _torch_kernel("bf16", n, t)),
    ("bf16", "openvino", "OpenVINO MatMul bf16 hint", "openvino",
     lambda n, t: _openvino_kernel("bf16", n, t)),
    ("int8", "torch", "torch._int_mm s8s8", "torch", lambda n, t: _torch_kernel("int8", n, t)),
    ("int8", "onnxruntime", "ONNX Runtime MatMulInteger u8s8", "onnxruntime",
     lambda n, t: _ort_kernel("MatMulInteger", n, t)),
    ("int8", "onnxruntime", "ONNX Runtime QLinearMatMul u8s8", "onnxruntime",
     lambda n, t: _ort_kernel("QLinearMatMul", n, t)),
    ("int8", "openvino", "OpenVINO MatMul int8 (FakeQuantize)", "openvino",
     lambda n, t: _openvino_kernel("int8", n, t)),
)


def measure_ceilings(
    *, threads: int | None = None, size: int = GEMM_SIZE, repeats: int = 3,
    kernels: Sequence[tuple] = KERNELS, progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every installed GEMM kernel at ``size``^3 (best of ``repeats`` timed calls after a
    warm-up), and per precision the fastest of them: the ceiling a path is a fraction of.
    A kernel that fails (runtime missing, op unsupported) is listed with its error."""
    import importlib.util

    from recfeat.machine import has_bf16

    say = progress or (lambda msg: None)
    flops = 2.0 * size**3
    measured, failed = [], []
    bf16_units = has_bf16()
    for precision, runtime, label, module, build in kernels:
        if importlib.util.find_spec(module) is None:
            failed.append({"kernel": label, "error": f"{module} is not installed"})
            continue
        if precision == "bf16" and not bf16_units:
            # emulated bf16 at 4096^3 takes minutes on such a CPU (AVX2-only EPYC) and bounds
            # nothing: OpenVINO runs its bf16 hint in f32 there, torch converts in software
            failed.append({"kernel": label, "error": "this CPU has no bf16 units (avx512_bf16 "
                           "or AMX): an emulated GEMM is no ceiling"})  # fmt: skip
            continue
        say(f"ceiling: {label} at {size}^3")
        try:
            if size > PROBE_SIZE:
                probe = _best_seconds(build(PROBE_SIZE, threads), 1)
                projected = probe * (size / PROBE_SIZE) ** 3
                if projected > MAX_CALL_SECONDS:
                    rate = 2.0 * PROBE_SIZE**3 / probe / 1e9
                    failed.append({"kernel": label, "error": (
                        f"too slow on this CPU to bound anything: {rate:.1f} G(FL)OP/s at "
                        f"{PROBE_SIZE}^3, ~{projected:.0f} s a {size}^3 call (no native "
                        "instructions for it here)")})  # fmt: skip
                    continue
            seconds = _best_seconds(build(size, threads), repeats)
        except Exception as exc:  # an op this build lacks must not sink the others
            failed.append({"kernel": label, "error": f"{type(exc).__name__}: {exc}"})
            continue
        measured.append({"precision": precision, "runtime": runtime, "kernel": label,
                         "seconds": seconds, "gflops": flops / seconds / 1e9})  # fmt: skip
    return {"size": size, "threads": threads, "repeats": repeats, "kernels": measured,
            "failed": failed, "ceilings": best_per_precision(measured)}  # fmt: skip


def combine(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two ``measure_ceilings`` runs of one benchmark (before and after the paths) as one:
    each kernel at the faster of its two speeds, both kept (``gflops_runs``). A ceiling read
    while the machine dipped would flatter every fraction of it, so the higher one counts."""
    later = {k["kernel"]: k for k in second.get("kernels") or []}
    kernels = []
    for k in first.get("kernels") or []:
        other = later.get(k["kernel"])
        runs = [k["gflops"]] + ([other["gflops"]] if other else [])
        best = max([k, other] if other else [k], key=lambda x: x["gflops"])
        kernels.append({**best, "gflops_runs": runs})
    return {**first, "kernels": kernels, "runs": 2 if later else 1,
            "ceilings": best_per_precision(kernels)}  # fmt: skip


def best_per_precision(kernels: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{precision: the fastest kernel's row} (GFLOP/s, or GOP/s for int8)."""
    best: dict[str, dict[str, Any]] = {}
    for k in kernels:
        if k["precision"] not in best or k["gflops"] > best[k["precision"]]["gflops"]:
            best[k["precision"]] = {"gflops": k["gflops"], "kernel": k["kernel"]}
    return best


def ceiling_for(precision: str | None, ceilings: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The ceiling a path of ``precision`` is judged against (None when not measured)."""
    key = CEILING_OF.get(precision or "")
    return ceilings.get(key) if key else None


def fraction_of_ceiling(flops_per_s: float | None, precision: str | None,
                        ceilings: dict[str, dict[str, Any]]) -> float | None:  # fmt: skip
    """Achieved model FLOP/s over the GEMM ceiling of the path's precision."""
    ceiling = ceiling_for(precision, ceilings)
    if ceiling is None or not flops_per_s or not ceiling.get("gflops"):
        return None
    return flops_per_s / (ceiling["gflops"] * 1e9)
