"""What an extraction's files say about themselves, written once for every engine.

- :func:`check_request`: which level/aggregation/user-source combinations exist (one rule,
  checked before any work by every engine).
- :func:`level_details`: the manifest fields that describe a level (source, aggregation,
  which interactions profiles used, and the leakage note when they used all of them).
- :func:`build_manifest`: what the vectors depend on, and nothing that varies from run to
  run (no timings, no cache statistics, no paths): the same input and settings give the
  same manifest, whichever engine (loaded, streamed, Ray) ran. The engine is named only in
  the run record (``<stem>.run.json``) and in the Ray folder's ``engine``/``shards`` fields.
- :func:`build_run_record`: this run's record (timings, cache hits and misses, paths, and
  how many values the masking cleaners replaced, by kind: counts, never the values).

Neither holds a text: the manifest has settings, counts and the dataset's summary; the run
record counts and paths; the vector cache keys are hashes (docs/privacy.md).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from recfeat import __version__
from recfeat.data.features import token_features_path  # noqa: F401 - re-exported
from recfeat.errors import UsageError
from recfeat.extraction.cache import vector_fingerprint
from recfeat.extraction.levels import USER_SOURCES, check_aggregate, check_level
from recfeat.extraction.stages import EncodeStats

EMPTY_POLICY = "zero vector, not encoded, counted in empty_texts"
VERSIONED_PACKAGES = (
    "numpy", "pandas", "pyarrow", "torch", "transformers", "tokenizers", "onnxruntime",
    "openvino", "scipy",
)  # fmt: skip
LEAKAGE_NOTE = (
    "profiles use all interactions; pass the training split (train_interactions) "
    "before evaluating, or test data leaks into the features"
)
# What is a location, not a setting: kept out of the artefact, recorded in the run record.
DATASET_LOCATION_FIELDS = ("file", "path", "folder")


def check_request(level: str, aggregate: str | None = None, user_from: str = "auto",
                  chunk_size: int = 1) -> None:  # fmt: skip
    """The one check of what an extraction asks for, run by every engine before any work."""
    check_level(level)
    check_aggregate(aggregate)
    if user_from not in USER_SOURCES:
        raise UsageError(
            f"unknown user source {user_from!r}; use one of: {', '.join(USER_SOURCES)}"
        )
    if int(chunk_size) < 1:
        raise UsageError(f"chunk size must be at least 1, got {chunk_size}")
    if level == "review" and aggregate is not None:
        raise UsageError("--aggregate applies to --level item or user, not review level")


def level_details(level: str, source: str, aggregate: str | None = None, *,
                  train: bool = False, rows_used: int | None = None,
                  empty_groups: int | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    """The manifest's description of a level. ``rows_used`` None: vectors are per row (review
    level, item texts); else they aggregate rows, and say over which interactions."""
    details: dict[str, Any] = {"source": source, "aggregate": aggregate, **extra}
    if rows_used is None:
        return details
    details.update(interactions="train" if train else "all", rows_used=int(rows_used),
                   empty_groups=int(empty_groups or 0))  # fmt: skip
    if level == "user" and not train:
        details["interactions_note"] = LEAKAGE_NOTE
    return details


def package_versions() -> dict[str, str]:
    """Versions of recfeat, Python and the numeric stack, read without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"recfeat": __version__, "python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _featurizer_spec(featurizer) -> Any:
    if featurizer is None:
        return None
    if hasattr(featurizer, "get_options"):
        return {"name": getattr(featurizer, "name", None), **featurizer.get_options()}
    return repr(featurizer)


def build_manifest(*, encoder, cleaner, level: str, details: dict[str, Any], stats: EncodeStats,
                   text_rows: int, empty_texts: int, dataset: dict[str, Any],
                   featurizer=None) -> dict[str, Any]:  # fmt: skip
    """What the vectors depend on: settings, counts over the input's rows and unique texts,
    the dataset's summary (locations dropped) and package versions."""
    fp = encoder.fingerprint()
    vfp = vector_fingerprint(fp)
    spec = cleaner.spec() if hasattr(cleaner, "spec") else repr(cleaner)
    dataset = {k: v for k, v in dataset.items() if k not in DATASET_LOCATION_FIELDS}
    return {
        "recfeat": __version__,
        "level": level,
        **details,
        "encoder": vfp,
        "encoder_name": fp.get("encoder", getattr(encoder, "name", None)),
        "weights_sha256": fp.get("weights_sha256"),
        "pooling": fp.get("pooling"),
        "precision": fp.get("precision"),
        "max_length": fp.get("max_length"),
        "backend": fp.get("backend"),
        "tokenizer": (
            vfp.get("tokenizer_files_sha256")
            or vfp.get("tokenizer")
            or vfp.get("source")
            or vfp.get("model")
        ),  # fmt: skip
        "random_init": bool(fp.get("random_init", fp.get("init") == "random")),
        "cache_key_fields": sorted(vfp),
        "cleaners": spec,
        "token_features": _featurizer_spec(featurizer),
        "text_rows": int(text_rows),
        "unique_texts": stats.unique_texts,
        "empty_texts": int(empty_texts),
        "empty_policy": EMPTY_POLICY,
        "truncated_texts": stats.truncated_texts,
        "tokens_dropped": stats.tokens_dropped,
        "tokens_encoded": stats.tokens,
        "truncation_unknown": stats.truncation_unknown,
        "dataset": dataset,
        "versions": package_versions(),
    }


def masked_counts(cleaner) -> dict[str, int] | None:
    """The run's running count of masked values, by kind: zeros for each kind the
    cleaner masks, None when it masks none (``masked`` in the run record)."""
    kinds = getattr(cleaner, "masks", ())
    return dict.fromkeys(kinds, 0) if kinds else None


def build_run_record(*, encoder, stats: EncodeStats, dataset: dict[str, Any], store,
                     elapsed: float, engine: str | None = None,
                     masked: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """This run's record: what it took and where things were (``<stem>.run.json``);
    ``engine`` names the engine that is not the in-memory default (stream, ray);
    ``masked``: values the masking cleaners replaced, by kind, over the input rows (None:
    the chain masks nothing)."""
    import datetime as dt

    fp = encoder.fingerprint()
    return {
        "format": "recfeat-run/1",
        "recfeat": __version__,
        **({"engine": engine} if engine else {}),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "encoder": {k: v for k, v in fp.items() if k not in vector_fingerprint(fp)},
        "dataset": {k: dataset[k] for k in DATASET_LOCATION_FIELDS if k in dataset},
        "cache": {
            "path": None if getattr(store, "path", None) is None else str(store.path),
            "hits": stats.cached,
            "misses": stats.encoded,
        },
        "encoded_texts": stats.encoded,
        "cached_texts": stats.cached,
        "chunks_encoded": stats.chunks_encoded,
        "encode_seconds": round(stats.seconds, 3),
        "elapsed_s": round(elapsed, 3),
        "masked": None if masked is None else {k: int(n) for k, n in masked.items()},
    }


def _stem(path: Path) -> str:
    return path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.name


def run_record_path(path: str | Path) -> Path:
    """``<stem>.run.json``: the run record beside a features file."""
    path = Path(path)
    return path.with_name(_stem(path) + ".run.json")
