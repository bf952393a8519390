"""Built-in transformer encoders: ``hf`` (any Hugging Face model) and presets over it.

``minilm`` (the default, all-MiniLM-L6-v2) reproduces sentence-transformers' embeddings;
``bert-base``, ``distilbert`` and ``gpt2`` name those standard models, and with
``init="random"`` build their shapes with seeded random weights for throughput work.

Encoding goes through the one encode loop (``recfeat.encode.engine``) with a torch backend
(``recfeat.encode.backends.TorchBackend``): one tokenizer call, token-budget batches,
pooling, rows back in input order, the same statistics as every other backend.
torch and transformers are imported when a model is first needed, never at import.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from typing import Any

import numpy as np

from recfeat.components import Encoder, TokenBatch
from recfeat.encode import engine
from recfeat.encode.backends import TorchBackend
from recfeat.encode.hf_models import check_init, describe_model, load_transformer, random_shape
from recfeat.encode.hub import DEFAULT_MODEL
from recfeat.encode.pooling import POOLING_METHODS, check_pooling
from recfeat.errors import OptionError, RecfeatError
from recfeat.machine import check_cuda, fp32_gemm_default
from recfeat.plugin.hookspecs import hookimpl

PRECISIONS = ("fp32", "bf16", "fp16")
# Batch widths are rounded up to this multiple: a few distinct shapes instead of one per
# length, so oneDNN's per-shape kernel cache stays small (memory stayed flat in tests).
PAD_MULTIPLE = 16


class HFEncoder(Encoder):
    """Any Hugging Face transformer (hub name or local folder), pooled to one vector per text.

    Options: ``model`` (hub name or folder; a standard shape name with ``init="random"``),
    ``pooling`` (cls, mean, max, last-token; None = the family's default), ``normalize``
    (L2; None = as the folder's sentence-transformers ``modules.json`` says, e.g. a
    ``recfeat finetune`` output: on when it ends in Normalize, else off), ``max_length`` (tokens kept per text; longer texts are truncated and counted),
    ``device`` (cpu, cuda), ``precision`` (fp32; bf16 autocast, fast on AMX/AVX-512-bf16
    CPUs; fp16 on CUDA only), ``threads`` (torch threads while encoding), ``batch_tokens`` /
    ``max_batch_size`` (token budget per padded batch; the defaults suit a 2-core CPU),
    ``init`` (pretrained, or random for throughput work: every output then says so),
    ``sdpa`` (PyTorch fused attention), ``onednn`` (prepacked oneDNN GEMMs for fp32 on
    CPU, within ~1e-7 of torch's own; None = the fixed choice for this CPU,
    ``recfeat.machine.fp32_gemm_default``) and ``overlap`` (tokenise the next chunk on a thread while
    the device runs; None = on for CUDA, where the GPU would otherwise wait for the host).
    """

    name = "hf"
    backend = "torch"
    # Loaded lazily and dropped by set_params; class defaults keep __init__ to storing options.
    _info = None  # hf_models.ModelInfo, read without loading weights
    _loaded = None  # hf_models.LoadedModel, built on first encode
    _backend = None  # encode.backends.TorchBackend over _loaded
    weights_options = ("model", "init")

    def __init__(
        self,
        *,
        model: str,
        pooling: str | None = None,
        normalize: bool | None = None,
        max_length: int = 256,
        device: str = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
        batch_tokens: int = 4096,
        max_batch_size: int = 128,
        init: str = "pretrained",
        sdpa: bool = True,
        onednn: bool | None = None,
        overlap: bool | None = None,
    ):
        self.model = model
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.device = device
        self.precision = precision
        self.threads = threads
        self.batch_tokens = batch_tokens
        self.max_batch_size = max_batch_size
        self.init = init
        self.sdpa = sdpa
        self.onednn = onednn
        self.overlap = overlap

    # -- options ---------------------------------------------------------------------------
    def validate(self) -> None:
        if self.pooling is not None:
            check_pooling(self.pooling)
        if self.precision not in PRECISIONS:
            raise OptionError(
                f"unknown precision {self.precision!r}; valid precisions: {', '.join(PRECISIONS)}"
            )
        for opt, low in (("max_length", 2), ("batch_tokens", 1), ("max_batch_size", 1)):
            if getattr(self, opt) < low:
                raise OptionError(f"{opt} must be at least {low} (got {getattr(self, opt)})")
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"threads must be at least 1 (got {self.threads})")
        if check_init(self.init) == "random":
            random_shape(self.model)
        if self.device == "cpu":
            if self.precision == "fp16":
                raise OptionError(
                    "precision 'fp16' needs device='cuda'; on CPU use precision='bf16' "
                    "(fast on CPUs with AMX/AVX-512-bf16) or 'fp32'"
                )
        else:
            check_cuda(self.device)

    # -- model -----------------------------------------------------------------------------
    @property
    def info(self):
        """Source, weights hash, family and width, without loading the weights."""
        if self._info is None:
            info = describe_model(self.model, self.init)
            self._check_weights(info.weights_sha256, info.source)
            self._info = info
        return self._info

    @property
    def resolved_pooling(self) -> str:
        return self.pooling or self.info.default_pooling

    @property
    def resolved_normalize(self) -> bool:
        if self.normalize is None:
            return bool(getattr(self.info, "normalizes", False))
        return bool(self.normalize)

    @property
    def dim(self) -> int:
        return self.info.hidden_size

    @property
    def plan(self) -> engine.BatchPlan:
        return engine.BatchPlan(
            self.batch_tokens, self.max_batch_size, PAD_MULTIPLE, self.max_length,
            uniform=self.uniform_batches,
        )  # fmt: skip

    @property
    def uniform_batches(self) -> bool:
        """``onednn=True`` asks for byte-identical vectors whatever a text is batched with (a
        cache filled by other inputs serves the bits a fresh run computes): oneDNN's GEMMs
        give the same bits at any batch size, and batches of one length remove the padded
        width, the one thing that still changed the sums (measured on AMD EPYC: 1.9e-7).
        The default (None) keeps padded batches, which run fewer, fuller batches."""
        return self.onednn is True and self.fp32_gemm == "onednn"

    @property
    def fp32_gemm(self) -> str | None:
        """``onednn`` or ``blas``: which GEMMs run this encoder's fp32 Linear layers on the
        CPU (None on CUDA and under autocast). ``onednn`` True/False fixes it, None takes
        ``recfeat.machine.fp32_gemm_default()``. The two differ by ~1e-7, so the choice is
        in the fingerprint: the cache never serves one path's vectors to the other."""
        if self.device != "cpu" or self.precision != "fp32":
            return None
        if self.onednn is not None:
            return "onednn" if self.onednn else "blas"
        return fp32_gemm_default()

    def load(self):
        """Load the model now (otherwise done by the first ``encode``); returns LoadedModel."""
        if self._loaded is None:
            self.validate()  # options may have changed through set_params
            self.info  # noqa: B018  (an unpickled encoder checks its weights before loading)
            loaded = load_transformer(
                self.model, init=self.init, max_length=self.max_length, sdpa=self.sdpa
            )
            if loaded.random_init:
                print(
                    f"recfeat: warning: encoder {self.name!r} uses RANDOM weights "
                    f"({loaded.source}); its vectors measure speed, not meaning",
                    file=sys.stderr,
                )
            self._check_weights(loaded.weights_sha256, loaded.source)  # changed meanwhile
            loaded.model.to(self.device)
            if self.fp32_gemm == "onednn":
                loaded.model = _prepack_linear(loaded.model)
            self._loaded = loaded
        return self._loaded

    def open_backend(self):
        """The torch backend that runs this encoder's batches (loads the model once)."""
        if self._backend is None:
            self._backend = TorchBackend(
                self.load(), pooling=self.resolved_pooling, normalize=self.resolved_normalize,
                device=self.device, precision=self.precision, threads=self.threads,
            )  # fmt: skip
        return self._backend

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the vectors; the feature cache keys on it."""
        info = self.info
        return {
            "encoder": self.name,
            "source": info.source,
            "weights_sha256": info.weights_sha256,
            "family": info.family,
            "pooling": self.resolved_pooling,
            "normalize": self.resolved_normalize,
            "max_length": self.max_length,
            "backend": self.backend,
            "precision": self.precision,
            "random_init": info.random_init,
            **({"gemm": self.fp32_gemm} if self.fp32_gemm else {}),
            **({"batches": "uniform"} if self.uniform_batches else {}),
        }

    # -- encoding --------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> TokenBatch:
        """Token ids of every text, truncated to ``max_length``, with each text's untruncated
        length and the number of tokens truncation dropped."""
        texts = engine.check_texts(texts)
        return engine.tokenize(self.load().tokenizer, texts, self.max_length)

    def encode(self, texts: Sequence[str], progress: bool = False, per_text: bool = False) -> np.ndarray:
        """float32 array (len(texts), dim), rows in input order; stats in ``last_stats``
        (with ``per_text``: also ``n_kept`` / ``n_dropped`` per text, see ``engine.encode``)."""
        texts = engine.check_texts(texts)
        if not texts:  # no model load for nothing to do
            out, self.last_stats = engine.empty(self.dim)
            return out
        backend = self.open_backend()
        overlap = self.device.startswith("cuda") if self.overlap is None else self.overlap
        out, self.last_stats = engine.encode(
            texts, tokenizer=self._loaded.tokenizer, backend=backend, plan=self.plan,
            progress=progress, overlap=overlap, per_text=per_text,
        )  # fmt: skip
        return out


def _prepack_linear(model):
    """Run the Linear layers through oneDNN with weights reordered once at load.

    Same fp32 arithmetic, not the same bits (differences ~1e-7): which path runs is part of
    the fingerprint (``HFEncoder.fp32_gemm``), and is never swapped in silence, so a failure
    here is an error rather than a fallback to plain Linear layers. bf16 already goes
    through oneDNN under autocast, so only fp32 is concerned.
    """
    import warnings

    import torch

    fix = "pass the encoder option onednn=False to run torch's own Linear layers"
    if not torch.backends.mkldnn.is_available():
        raise RecfeatError(f"this torch build has no oneDNN; {fix}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit deprecation notices
            from torch.utils.mkldnn import to_mkldnn

            return to_mkldnn(model)
    except Exception as exc:
        raise RecfeatError(f"oneDNN prepacking failed ({type(exc).__name__}: {exc}); {fix}") from None


# -- presets ---------------------------------------------------------------------------------
def _preset(class_name: str, name: str, doc: str, aliases: tuple[str, ...] = (), **defaults):
    """A subclass of HFEncoder whose option defaults differ: a copy of ``__init__`` with new
    keyword defaults, so ``recfeat components`` and option validation show the real ones."""
    base = HFEncoder.__init__
    init = types.FunctionType(
        base.__code__, base.__globals__, base.__name__, base.__defaults__, base.__closure__
    )
    init.__kwdefaults__ = {**(base.__kwdefaults__ or {}), **defaults}
    init.__annotations__ = dict(base.__annotations__)
    init.__qualname__ = f"{class_name}.__init__"
    init.__doc__ = base.__doc__
    return type(
        class_name,
        (HFEncoder,),
        {
            "__init__": init,
            "__doc__": doc,
            "__module__": __name__,
            "__qualname__": class_name,
            "name": name,
            "aliases": aliases,
        },
    )


MiniLMEncoder = _preset(
    "MiniLMEncoder",
    "minilm",
    "all-MiniLM-L6-v2 sentence embeddings (mean pooled, normalised), as sentence-transformers gives.",
    aliases=("all-minilm-l6-v2",),
    model=DEFAULT_MODEL,
    pooling="mean",
    normalize=True,
    max_length=256,
)
BertBaseEncoder = _preset(
    "BertBaseEncoder",
    "bert-base",
    "BERT base (uncased); init='random' builds the bert-base shape with random weights.",
    model="bert-base-uncased",
    pooling="mean",
)
DistilBertEncoder = _preset(
    "DistilBertEncoder",
    "distilbert",
    "DistilBERT base (uncased); init='random' builds its shape with random weights.",
    model="distilbert-base-uncased",
    pooling="mean",
)
GPT2Encoder = _preset(
    "GPT2Encoder",
    "gpt2",
    "GPT-2 (124M), last-token pooled; init='random' builds its shape with random weights.",
    model="gpt2",
    pooling="last-token",
)

ENCODERS = (HFEncoder, MiniLMEncoder, BertBaseEncoder, DistilBertEncoder, GPT2Encoder)
__all__ = ["ENCODERS", "POOLING_METHODS", "PRECISIONS", *(cls.__name__ for cls in ENCODERS)]


@hookimpl
def register_encoders(register):
    for cls in ENCODERS:
        register(cls, name=cls.name, aliases=cls.aliases)
