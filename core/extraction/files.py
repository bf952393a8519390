"""Extraction from a file or folder into files: the one place that picks the engine.

``extract_to`` is what ``recfeat extract`` and ``recfeat.extract_file`` run. It refuses an
output that would overwrite an input before any work, then runs the same stages on one of
three engines, chosen by the input and the options, never by the caller's path through the
code:

- **ray** when asked (``ray=True`` or a dict of ``RayOptions``): ``ray_data.extract_ray``,
  the folder ``out/``;
- **stream** whenever the input is row-streamable and no option needs the whole dataset
  (``stream.why_not_streamed`` says which applies): ``stream.stream_extract``;
- **memory** otherwise: the dataset is loaded and ``pipeline.extract`` runs on it.

Each gives the same rows, ``rows_used``, vectors and manifest for one input
(tests/test_engines_agree.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from recfeat.components.dataset import load_dataset
from recfeat.data.split_files import read_train
from recfeat.data.validation import read_error
from recfeat.errors import UsageError
from recfeat.extraction.manifest import check_request
from recfeat.extraction.outputs import check_out_path, check_outputs, write_error
from recfeat.extraction.pipeline import extract
from recfeat.extraction.ray_data import RayOptions, extract_ray, parse_actors
from recfeat.extraction.results import FileResult
from recfeat.extraction.stages import default_encoder, make_cleaner, make_token_featurizer
from recfeat.extraction.stream import stream_extract, why_not_streamed


def _ray_options(ray: bool | dict[str, Any]):
    import dataclasses

    if ray is True:
        return RayOptions()
    if isinstance(ray, RayOptions):
        return ray
    if not isinstance(ray, dict):
        raise UsageError(f"ray: give True or a dict of RayOptions fields, not {type(ray).__name__}")
    known = {f.name for f in dataclasses.fields(RayOptions)}
    unknown = sorted(set(ray) - known)
    if unknown:
        raise UsageError(f"ray: unknown option(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
    values = dict(ray)
    if "actors" in values and not isinstance(values["actors"], tuple):
        values["actors"] = parse_actors(values["actors"])
    return RayOptions(**values)


def extract_to(
    path: str | Path,
    out: str | Path,
    level: str = "review",
    encoder=None,
    cleaners: Any = None,
    *,
    fmt: str = "auto",
    loader_options: dict[str, Any] | None = None,
    stream: bool | None = None,
    ray: bool | dict[str, Any] | None = None,
    train_interactions: Any = None,
    token_features: Any = None,
    inputs: dict[str, Any] | None = None,
    choose_encoder: Callable[[Any], Any] | None = None,
    echo: Callable[[str], None] | None = None,
    **options: Any,
):
    """Extract ``path`` at ``level`` into ``out`` (see the module docstring for the engine).

    ``train_interactions``: a frame, or a path (a recfeat split file or a user,item table)
    read against the loaded interactions. ``inputs``: other files the run reads (config,
    cache), by label, that ``out`` must not overwrite. ``choose_encoder(dataset)``: picks the
    encoder once the dataset is loaded (``--backend auto``; it forces the memory engine).
    ``options``: ``aggregate``, ``user_from``, ``cache``, ``chunk_size``, ``progress``,
    ``batch_rows`` (streamed engine). Returns ``FeatureResult`` (memory, also saved) or
    ``FileResult`` (stream, ray)."""
    if path is None and fmt not in ("sample", "synthetic-books"):
        raise UsageError("missing DATA: the input file or folder ('sample' for the SYNTHETIC "
                         "sample)")  # fmt: skip
    if path is not None and not isinstance(path, (str, Path)):
        raise UsageError(f"extract_file: give the input as a path, not {type(path).__name__}; "
                         "for a loaded dataset use recfeat.extract")  # fmt: skip
    if not isinstance(out, (str, Path)) or not str(out):
        raise UsageError("extract_file: give out as a path (a .parquet file, or a folder with ray)")
    check_request(level, options.get("aggregate"), options.get("user_from", "auto"),
                  options.get("chunk_size", 1))  # fmt: skip
    loader_options = {k: v for k, v in (loader_options or {}).items() if v is not None}
    cleaner = make_cleaner(cleaners)
    if ray is not None and ray is not False:
        return _on_ray(path, out, level, encoder, cleaner, fmt, loader_options, ray,
                       train_interactions, token_features, stream, choose_encoder,
                       options)  # fmt: skip
    train_path = train_interactions if isinstance(train_interactions, (str, Path)) else None
    # an --out that is an input is named as such first, whatever its name ends in
    check_outputs(Path(out).expanduser(), {"DATA": path, "--train": train_path, **(inputs or {})})
    out_path = check_out_path(out)
    featurizer = make_token_featurizer(token_features)
    why = why_not_streamed(
        path, fmt, loader_options, level=level, user_from=options.get("user_from", "auto"),
        train=train_interactions, token_features=featurizer,
        backend="auto" if choose_encoder is not None else None,
    )  # fmt: skip
    if stream and why:
        raise UsageError(f"--stream: this run cannot stream ({why}); drop --stream")
    if stream is not False and why is None:
        return _streamed(path, out_path, level, encoder, cleaner, fmt, loader_options, echo,
                         options)  # fmt: skip
    options.pop("batch_rows", None)
    return _in_memory(path, out_path, level, encoder, cleaner, fmt, loader_options,
                      train_interactions, featurizer, choose_encoder, echo, options)  # fmt: skip


def _on_ray(path, out, level, encoder, cleaner, fmt, loader_options, ray, train, tokens, stream,
            choose_encoder, options):  # fmt: skip
    refused = {
        "train_interactions": (train, "--train: user/item profiles from a training split need "
                                      "the local engine"),
        "token_features": (tokens, "--token-features: sparse token features need the local "
                                   "engine"),
        "cache": (options.get("cache") not in (None, False),
                  "--cache: --ray resumes from the shards in --out DIR/, not the vector cache"),
        "backend auto": (choose_encoder, "--backend auto: name the backend"),
        "stream": (stream, "--stream is the local engine's; --ray always streams (drop one)"),
    }  # fmt: skip
    for given, why in refused.values():
        if given is not None and given is not False:
            flag, _, reason = why.partition(": ")
            raise UsageError(f"{flag} does not combine with --ray: {reason}")
    opts = _ray_options(ray)
    if "batch_rows" in options:
        opts.batch_rows = int(options["batch_rows"])
    encoder = encoder if encoder is not None else default_encoder()
    manifest = extract_ray(str(path), str(out), encoder=encoder, cleaner=cleaner, level=level,
                           fmt=fmt, aggregate=options.get("aggregate"),
                           user_from=options.get("user_from", "auto"),
                           loader_options=loader_options, options=opts)  # fmt: skip
    return FileResult.from_folder(out, manifest)


def _streamed(path, out_path, level, encoder, cleaner, fmt, loader_options, echo, options):
    try:
        return stream_extract(path, out_path, level, encoder, cleaner, fmt=fmt,
                              options=loader_options, echo=echo, **options)  # fmt: skip
    except OSError as exc:
        import errno

        name = getattr(exc, "filename", None)
        beside = not name or Path(name).resolve().parent == Path(out_path).resolve().parent
        # a full or read-only disk is met writing, wherever the file is (the output's
        # temporaries beside it are named as the output)
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EROFS):
            raise write_error(out_path if beside else name, exc) from None
        if not beside:
            raise read_error(name, exc) from None
        raise write_error(out_path, exc) from None


def _in_memory(path, out_path, level, encoder, cleaner, fmt, loader_options, train, featurizer,
               choose_encoder, echo, options):  # fmt: skip
    import time

    started = time.perf_counter()
    dataset = load_dataset(path, format=fmt, **loader_options)
    if echo:
        synthetic = dataset.report.get("synthetic") and "SYNTHETIC" not in dataset.name
        echo(
            f"loaded {dataset.name}{' (SYNTHETIC sample data)' if synthetic else ''}: "
            f"{len(dataset.interactions):,} interactions, "
            f"{0 if dataset.reviews is None else len(dataset.reviews):,} reviews, "
            f"{0 if dataset.items is None else len(dataset.items):,} item texts "
            f"({time.perf_counter() - started:.1f} s)"
        )
    if choose_encoder is not None:
        encoder = choose_encoder(dataset)
    if isinstance(train, (str, Path)):
        train = read_train(train, dataset.interactions)
    result = extract(dataset, level, encoder, cleaner, train_interactions=train,
                     token_features=featurizer, **options)  # fmt: skip
    try:
        result.save(out_path)
    except OSError as exc:
        raise write_error(out_path, exc) from None
    return result
