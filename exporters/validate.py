"""Validate every exported step against the PyTorch fp32 model on the user's own texts.

Figures per step: cosine mean / min / p1 (1st percentile) and max absolute difference over
a validation sample. A step below its cosine threshold raises ValidationFailedError with the
measured figures, so a quantised model never loses quality silently.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.encode.backends import OnnxRuntimeBackend
from recfeat.encode.similarity import cosine_rows
from recfeat.errors import DataError, ValidationFailedError

# Defaults of --min-cosine per kind of step (the thresholds; fp16 in between).
DEFAULT_MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "bf16": 0.999, "int8": 0.99}
VALIDATION_SAMPLE = 64
VALIDATION_BATCH = 16

# Used when the user gives no texts: varied lengths, English and other scripts, so the
# sample exercises padding, truncation and the tokenizer's unknown-token paths.
BUILTIN_TEXTS: tuple[str, ...] = (
    "Great strings.",
    "ok",
    "The tuner clips on well and is accurate, but the battery door feels flimsy.",
    "I bought this cable for my bass amp. After two months the jack started crackling "
    "whenever I moved it, so I had to replace it. Customer service never answered my email.",
    "Sehr gutes Preis-Leistungs-Verhältnis, der Klang ist warm und klar.",
    "Ce pédalier est solide, mais le manuel est difficile à comprendre.",
    "El soporte es estable y fácil de plegar; lo recomiendo para conciertos.",
    "このギターのストラップはとても快適です。",
    "这个麦克风的声音很清楚，但是底噪有点大。",
    "Отличный тюнер, работает быстро и точно.",
    "Five stars!!! Would buy again :)",
    "Worked for a week then died. Do not buy.",
    "These picks are thin enough for strumming and thick enough for lead lines; the grip "
    "texture keeps them from slipping even when my hands get sweaty on stage. I have tried "
    "many brands over twenty years of playing and these are now the only ones in my case. "
    "The only downside is that the printed logo wears off quickly, which is purely cosmetic.",
    "A book about a lighthouse keeper who finds letters from the previous keeper.",
    "Title: The Silent Harbor. Genres: mystery, drama. Tags: slow burn, atmospheric, twist.",
    "Die Saiten klingen nach einer Woche immer noch brillant.",
    "Il suono è ottimo per il prezzo, ma le meccaniche non tengono l'accordatura.",
    "Produto chegou rápido e bem embalado.",
    "मुझे यह कीबोर्ड स्टैंड बहुत पसंद आया।",
    "Stand wobbles.",
    "Nice", "meh", "10/10 best capo ever, snaps on in one second and never buzzes",
    "The microphone picks up too much room noise for home vocal recording; fine for podcasts.",
)


@dataclasses.dataclass
class StepValidation:
    """Validation figures of one step (export, optimise, quantise...)."""

    step: str
    file: str
    precision: str
    cosine_mean: float
    cosine_min: float
    cosine_p1: float
    max_abs_diff: float
    n_texts: int
    min_cosine: float
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Row-wise cosine (mean, min, 1st percentile) and max |difference| of two matrices."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        raise ValidationFailedError(
            f"exported model returns shape {cand.shape}, PyTorch returns {ref.shape}; re-export"
        )
    cos = cosine_rows(ref, cand)
    return {
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "cosine_p1": float(np.percentile(cos, 1)),
        "max_abs_diff": float(np.abs(ref - cand).max()),
    }


def check_step(
    step: str,
    file: str,
    precision: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    min_cosine: float | None = None,
    *,
    raise_on_fail: bool = True,
) -> StepValidation:
    """Compare and return the figures; raise ValidationFailedError below ``min_cosine``
    (default by precision: 0.9999 fp32, 0.999 fp16/bf16, 0.99 int8)."""
    threshold = DEFAULT_MIN_COSINE[precision] if min_cosine is None else float(min_cosine)
    figures = compare(reference, candidate)
    result = StepValidation(
        step=step,
        file=file,
        precision=precision,
        n_texts=int(reference.shape[0]),
        min_cosine=threshold,
        passed=figures["cosine_mean"] >= threshold,
        **figures,
    )
    if raise_on_fail and not result.passed:
        raise ValidationFailedError(failure_message(result))
    return result


def failure_message(v: StepValidation, *, auto_exclude: bool = False) -> str:
    """The one-line failure of a step, with what to try (``--auto-exclude`` unless it ran)."""
    fixes = "lower --min-cosine or try another --quantize / --preset" if auto_exclude else (
        "lower --min-cosine, try --auto-exclude or another --quantize / --preset")
    return (
        f"validation failed at step {v.step!r} ({v.file}): mean cosine {v.cosine_mean:.8f} < "
        f"--min-cosine {v.min_cosine} (min {v.cosine_min:.8f}, p1 {v.cosine_p1:.8f}, max abs "
        f"diff {v.max_abs_diff:.3g}, {v.n_texts} texts); {fixes}"
    )


def stratified_sample(texts: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """``n`` texts spread over the length distribution: sort by length, cut into ``n`` equal
    strata, draw one text from each (so short and long texts are both represented)."""
    unique = [t for t in dict.fromkeys(texts) if t and t.strip()]
    if len(unique) <= n:
        return unique
    ordered = sorted(unique, key=len)
    rng = random.Random(seed)
    edges = np.linspace(0, len(ordered), n + 1).astype(int)
    return [ordered[rng.randrange(lo, hi)] for lo, hi in zip(edges[:-1], edges[1:], strict=True) if hi > lo]


def validation_texts(texts: Sequence[str] | None, n: int = VALIDATION_SAMPLE) -> list[str]:
    """The validation sample: the user's texts when given (stratified by length), else the
    built-in varied-length multilingual set."""
    if texts:
        sample = stratified_sample(texts, n)
        if len(sample) < 2:
            raise DataError(
                f"validation needs at least 2 distinct non-empty texts, got {len(sample)}; "
                "pass more texts with --calibration"
            )
        # Mixed lengths within each batch so every batch exercises padding.
        random.Random(1).shuffle(sample)
        return sample
    return list(BUILTIN_TEXTS)


def tokenize_batches(
    tokenizer,
    texts: Sequence[str],
    input_names: Sequence[str],
    *,
    batch_size: int = VALIDATION_BATCH,
    max_length: int | None = None,
    same_width: bool = False,
) -> list[dict[str, np.ndarray]]:
    """Padded numpy batches of exactly ``input_names`` (int64, as the graph expects).

    ``same_width`` pads every batch to the longest text overall (histogram calibrators
    stack all batches, so their shapes must agree)."""
    max_length = max_length or _tokenizer_max_length(tokenizer)
    padding: bool | str = True
    if same_width:
        lengths = [len(x) for x in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]
        max_length, padding = max(lengths), "max_length"
    batches = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[start : start + batch_size]),
            padding=padding,
            truncation=True,
            max_length=max_length,
            return_tensors="np",
        )
        batch = {}
        for name in input_names:
            if name in enc:
                batch[name] = enc[name].astype(np.int64)
            elif name == "token_type_ids":
                batch[name] = np.zeros_like(enc["input_ids"], dtype=np.int64)
        batches.append(batch)
    return batches


def _tokenizer_max_length(tokenizer) -> int:
    value = getattr(tokenizer, "model_max_length", None)
    return int(value) if isinstance(value, int) and 0 < value < 100_000 else 512


def torch_outputs(module, batches: list[dict[str, np.ndarray]]) -> np.ndarray:
    """The PyTorch fp32 reference for ``batches``."""
    import torch

    outs = []
    with torch.inference_mode():
        for batch in batches:
            outs.append(module(**{k: torch.from_numpy(v) for k, v in batch.items()}).float().numpy())
    return np.concatenate(outs)


def onnx_outputs(path: str | Path, batches: list[dict[str, np.ndarray]], threads: int = 0) -> np.ndarray:
    """Run an ONNX file on ``batches`` with ONNX Runtime on the CPU (the encoders' backend)."""
    backend = OnnxRuntimeBackend(path, threads=threads or None, provider="cpu")
    return np.concatenate([backend.run(b) for b in batches]).astype(np.float32)
