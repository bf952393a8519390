"""Backends: what runs one padded batch of token ids and returns one pooled vector per row.

The encode loop (``recfeat.encode.engine``) owns everything around a batch; a backend only
turns ``{"input_ids", "attention_mask", "token_type_ids"}`` (int64, right-padded) into
float32 ``(rows, dim)``. Three exist, named by the one backend vocabulary
(``recfeat.encode.vocabulary``):

- ``torch``: a transformers model on CPU or CUDA, fp32 / bf16 / fp16 autocast, pooled with
  ``recfeat.encode.pooling``;
- ``onnx``: an ONNX Runtime session over an exported graph (pooling inside the graph), CUDA
  with IO binding when onnxruntime-gpu sees a GPU;
- ``openvino``: a compiled OpenVINO IR on the CPU, with an inference-precision hint.

``submit``/``collect`` let a device backend keep results on the device until the end of a
call (no synchronisation per batch); CPU backends compute in ``submit``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.encode.pooling import normalize, pool
from recfeat.errors import ArtifactError, OptionError


class Backend:
    """Base: ``run(feed) -> float32 (rows, dim)``; ``session()`` wraps a whole encode call."""

    name = "none"
    device = "cpu"
    dim: int = 0

    def session(self):
        return contextlib.nullcontext()

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def submit(self, feed: dict[str, np.ndarray]):
        return self.run(feed)

    def collect(self, pending: list[tuple[np.ndarray, Any]], out: np.ndarray) -> None:
        for rows, vectors in pending:
            out[rows] = vectors

    def sync(self) -> None:
        """Wait for queued device work (CUDA); a no-op on CPU."""


# -- torch ---------------------------------------------------------------------------------
def autocast(device: str, precision: str):
    """The autocast context for ``precision`` on ``device`` (none for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run with ``threads`` intra-op threads, restoring the previous count after."""
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchBackend(Backend):
    """A loaded transformers model (``recfeat.encode.hf_models.LoadedModel``), pooled."""

    name = "torch"

    def __init__(self, loaded, *, pooling: str, normalize: bool, device: str = "cpu",
                 precision: str = "fp32", threads: int | None = None):  # fmt: skip
        import inspect

        self.loaded = loaded  # read per batch: a caller may swap in a compiled model
        self.pooling = pooling
        self.normalize = normalize
        self.device = device
        self.precision = precision
        self.threads = threads
        self.dim = int(loaded.hidden_size)
        # Decoders would otherwise build a key/value cache nobody reads.
        params = inspect.signature(loaded.model.forward).parameters
        self._extra = {"use_cache": False} if "use_cache" in params else {}

    @contextlib.contextmanager
    def session(self):
        import torch

        with torch_threads(self.threads), torch.inference_mode(), autocast(
            self.device, self.precision
        ):
            yield

    def _forward(self, feed):
        import torch

        inputs = {
            k: torch.from_numpy(feed[k]).to(self.device, non_blocking=True)
            for k in self.loaded.input_names
        }
        hidden = self.loaded.model(**inputs, **self._extra).last_hidden_state
        vectors = pool(hidden, inputs["attention_mask"], self.pooling)
        return normalize(vectors) if self.normalize else vectors

    def run(self, feed):
        with self.session():
            return self._forward(feed).float().cpu().numpy()

    def submit(self, feed):
        # Inside session(): on CUDA the vectors stay on the device, copied back once.
        return self._forward(feed).float()

    def collect(self, pending, out):
        if not pending:
            return
        import torch

        rows = np.concatenate([r for r, _ in pending])
        out[rows] = torch.cat([v for _, v in pending]).cpu().numpy()

    def sync(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()


# -- ONNX Runtime ---------------------------------------------------------------------------
ORT_PROVIDERS = ("auto", "cpu", "cuda")


class OnnxRuntimeBackend(Backend):
    """An ONNX graph from ``recfeat export`` (pooling and normalisation inside the graph)."""

    name = "onnx"

    def __init__(self, path: str | Path, *, dim: int = 0, output: str | None = None,
                 threads: int | None = None, provider: str = "auto"):  # fmt: skip
        import onnxruntime as ort

        if provider not in ORT_PROVIDERS:
            raise OptionError(
                f"unknown provider {provider!r}; valid providers: {', '.join(ORT_PROVIDERS)}"
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        use_cuda = provider in ("auto", "cuda") and (
            "CUDAExecutionProvider" in ort.get_available_providers()
        )
        if provider == "cuda" and not use_cuda:
            raise OptionError(
                "provider 'cuda' needs onnxruntime-gpu and a visible GPU (install: pip install "
                "'recfeat[gpu]'); use provider='cpu'"
            )
        providers = ["CUDAExecutionProvider"] * use_cuda + ["CPUExecutionProvider"]
        try:
            self.session_ = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # a file that passed no verification (verify=False)
            raise ArtifactError(f"ONNX Runtime cannot load {path}: {exc}") from None
        self.use_cuda = use_cuda and "CUDAExecutionProvider" in self.session_.get_providers()
        self.device = "cuda" if self.use_cuda else "cpu"
        self.inputs = [i.name for i in self.session_.get_inputs()]
        self.output = output or self.session_.get_outputs()[0].name
        self.dim = int(dim)

    def run(self, feed):
        if not self.use_cuda:
            return self.session_.run([self.output], {k: feed[k] for k in self.inputs})[0]
        # IO binding: inputs copied to the GPU once, the output produced there and copied back
        # once, instead of ORT staging every tensor through host buffers per call.
        import onnxruntime as ort

        binding = self.session_.io_binding()
        for name in self.inputs:
            binding.bind_ortvalue_input(
                name, ort.OrtValue.ortvalue_from_numpy(feed[name], "cuda", 0)
            )
        binding.bind_output(self.output, "cuda", 0)
        self.session_.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


# -- OpenVINO -------------------------------------------------------------------------------
OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16"}


#: OpenVINO performance hints: THROUGHPUT (several streams, fed by asynchronous requests;
#: what batch extraction wants) or LATENCY (one stream using every core; one request).
OPENVINO_MODES = {"throughput": "THROUGHPUT", "latency": "LATENCY"}


def compile_openvino(
    path: str | Path, precision: str = "bf16", threads: int | None = None,
    mode: str = "throughput",
):  # fmt: skip
    """Compile an IR for the CPU with an inference-precision hint (``fp32`` or ``bf16``) and
    a performance hint (``throughput`` or ``latency``)."""
    import openvino as ov

    if precision not in OPENVINO_HINTS:
        raise OptionError(
            f"unknown OpenVINO precision {precision!r}; valid: {', '.join(OPENVINO_HINTS)}"
        )
    if mode not in OPENVINO_MODES:
        raise OptionError(
            f"unknown OpenVINO performance mode {mode!r}; valid: {', '.join(OPENVINO_MODES)}"
        )
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision],
        "PERFORMANCE_HINT": OPENVINO_MODES[mode],
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return ov.Core().compile_model(str(path), "CPU", config)


class OpenVinoBackend(Backend):
    """A compiled OpenVINO IR (``compile_openvino``).

    Compiled with the THROUGHPUT hint, the CPU plugin splits the cores into several streams
    that only work in parallel when several requests are in flight (OpenVINO's docs pair
    THROUGHPUT with asynchronous requests). So ``submit`` starts each batch on an
    ``AsyncInferQueue`` of the plugin's optimal number of requests (it blocks only when all
    are busy) and ``collect`` waits for them; with one request (LATENCY) it runs in place.
    """

    name = "openvino"

    def __init__(self, compiled, *, dim: int = 0):
        self.compiled = compiled
        self.names = {p.get_any_name() for p in compiled.inputs}
        self.request = compiled.create_infer_request()
        self.dim = int(dim)
        try:
            self.requests = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except Exception:  # noqa: BLE001 - a plugin without the property runs synchronously
            self.requests = 1
        self._queue = None
        self._results: dict[int, np.ndarray] = {}
        self._next = 0

    def run(self, feed):
        """One batch, on every stream: under THROUGHPUT a single request runs on one stream
        and leaves the others' cores idle, so a batch of at least two rows per stream is cut
        into one slice per request, started together and joined in order."""
        feed = {k: v for k, v in feed.items() if k in self.names}
        rows = len(next(iter(feed.values())))
        if self.requests == 1 or rows < 2 * self.requests:
            return self._infer(feed)
        cuts = np.linspace(0, rows, self.requests + 1).astype(int)
        tokens = [self.submit({k: v[a:b] for k, v in feed.items()})
                  for a, b in zip(cuts[:-1], cuts[1:], strict=True)]  # fmt: skip
        self._queue.wait_all()
        return np.concatenate([self._results.pop(t) for t in tokens])

    def _infer(self, feed):
        self.request.infer(feed)
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def submit(self, feed):
        if self.requests == 1:
            return self._infer({k: v for k, v in feed.items() if k in self.names})
        import openvino as ov

        if self._queue is None:
            self._queue = ov.AsyncInferQueue(self.compiled, self.requests)
            self._queue.set_callback(self._done)
        token = self._next
        self._next += 1
        self._queue.start_async({k: v for k, v in feed.items() if k in self.names}, token)
        return token

    def _done(self, request, token) -> None:
        # Runs on OpenVINO's thread: copy the output before the request is reused.
        self._results[token] = np.array(
            request.get_output_tensor(0).data, dtype=np.float32, copy=True
        )

    def collect(self, pending, out):
        if self.requests == 1:
            return super().collect(pending, out)
        if self._queue is not None:
            self._queue.wait_all()
        for rows, token in pending:
            out[rows] = self._results.pop(token)
