"""The Python API: the whole job — load, extract, split, evaluate, train, recommend, export,
benchmark — as functions, importable as ``recfeat.<name>`` (see ``docs/python.md``).

This module sits at the top of the layers, beside the CLI (which calls the same functions):
it may import built-in plugins and exporters. Every import of a heavy library happens
inside a function, so ``import recfeat`` stays instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

# Names the CLI shows in --help (click choices, defaults), from light modules only.
from recfeat.bench.runs import DEFAULT_CPU_BACKENDS, DEFAULT_GPU_BACKENDS  # noqa: F401
from recfeat.config import SEQUENTIAL_SPLITS
from recfeat.demo import DEFAULT_OUT as DEMO_OUT  # noqa: F401
from recfeat.encode.vocabulary import BACKENDS, PRECISIONS  # noqa: F401
from recfeat.plugin.report import COMPONENT_KEYS, PLUGIN_ROW_KEYS  # noqa: F401
from recfeat.settings import DEFAULT_MODELS, SPLITS  # noqa: F401

if TYPE_CHECKING:  # the types of the return annotations; the modules load on first call
    import pandas as pd

    from recfeat.components.encoder import Encoder
    from recfeat.components.model import RecModel
    from recfeat.components.tokenizer import Tokenizer
    from recfeat.data.features import Features, ReviewVectors
    from recfeat.data.recdata import RecData
    from recfeat.demo import DemoContext, DemoSettings
    from recfeat.evaluation.protocol import EvaluationResult
    from recfeat.evaluation.splits import Split
    from recfeat.extraction.cleaning import CleanerChain
    from recfeat.extraction.pipeline import FeatureResult
    from recfeat.extraction.results import FileResult
    from recfeat.finetuning.adapt import AdaptResult
    from recfeat.finetuning.distill import DistillResult
    from recfeat.finetuning.run import FinetuneResult
    from recfeat.selection.auto_backend import Choice
    from recfeat.settings import (
        EvaluateSettings,
        ExportSettings,
        ExtractSettings,
        RecommendSettings,
        ServeSettings,
        TrainSettings,
    )
    from recfeat.training.bundle import Ranking, TrainedModel

#: The downstream gate's default sample of interactions (``--gate-interactions``): equal to
#: ``recfeat.selection.gate.GATE_INTERACTIONS``, which is not imported here so that importing
#: this module stays instant (tests/test_gate_intervals.py keeps the two equal).
GATE_INTERACTIONS_DEFAULT = 10_000


def load_dataset(path: str | Path | pd.DataFrame | RecData | None = None, format: str = "auto",
                 **options: Any) -> RecData:  # fmt: skip
    """A dataset as ``RecData`` (interactions, reviews, item texts): a file or folder in any
    format a dataset plugin reads (``format='auto'`` detects it), or ``format='sample'`` for
    the built-in SYNTHETIC sample. ``path`` may also be a pandas DataFrame with one row per
    interaction, read as a CSV file with the same columns would be (user, item, rating, and
    optionally text and timestamp, found by name or named with ``user_col=``... options),
    or a RecData, returned as it is."""
    from recfeat.data import checks
    from recfeat.data.recdata import RecData
    from recfeat.errors import UsageError
    from recfeat.plugins.datasets import load_dataset as load

    format = checks.text(format, "format", none=True, example="csv") or "auto"
    if checks.is_frame(path):
        return _frame_dataset(path, format, options)
    if isinstance(path, RecData):
        if options or format not in ("auto", "sample"):
            raise UsageError("load_dataset: a RecData is already loaded; drop format and the "
                             "loader options")  # fmt: skip
        return path
    checks.path(path, "path", none=True, what="a dataset file or folder path",
                fix="pass a path, a pandas DataFrame of interactions, or format='sample'")  # fmt: skip
    return load(path, format, **options)


#: Loader options that name files or how to decode them: meaningless for a DataFrame.
_FILE_ONLY_OPTIONS = ("encoding", "sep", "items_path", "item_text_col")


def _frame_dataset(frame, format: str, options: dict[str, Any]):
    """A DataFrame of interactions as RecData, through the generic table loader's own steps
    (its column mapping, bad-row checks, de-duplication), so it reads exactly as a CSV file
    with the same columns would: one rule for both, not a second loader."""
    from recfeat.data import validation as v
    from recfeat.errors import DataError, UsageError
    from recfeat.plugin.registry import get_registry

    if format not in ("auto", "csv"):
        raise UsageError(f"load_dataset: a DataFrame is read by its columns, as a CSV table; "
                         f"drop format={format!r}")  # fmt: skip
    given = sorted(k for k in _FILE_ONLY_OPTIONS if options.get(k) is not None)
    if given:
        raise UsageError(f"load_dataset: {', '.join(given)} apply to files, not a DataFrame; "
                         "put review texts in a text column (text_col=...), or save the frame "
                         "and load the file")  # fmt: skip
    loader = get_registry("dataset").create("csv", **{k: v for k, v in options.items()
                                                      if v is not None})  # fmt: skip
    table = frame.reset_index(drop=True)
    where = "the DataFrame"
    repeated = sorted({str(c) for c in table.columns[table.columns.duplicated()]})
    if repeated:
        raise UsageError(f"load_dataset: the DataFrame has column(s) {', '.join(repeated)} more "
                         "than once; rename or drop the copies")  # fmt: skip
    if table.empty:
        raise UsageError("load_dataset: the DataFrame has no rows; pass one row per interaction "
                         "with user, item and rating columns")  # fmt: skip
    report: dict[str, Any] = {"format": "dataframe", "rows_read": int(len(table)),
                              "bad_rows_skipped": 0}  # fmt: skip
    try:
        pick = loader.pick_columns(table.columns, where)
    except DataError as exc:  # the caller passed the wrong frame or column name: a usage error
        raise UsageError(str(exc)) from None
    report["columns"] = {k.removesuffix("_col"): c for k, c in pick.items() if c is not None}
    rows = v.drop_bad_rows(loader.map_rows(table, pick), rating_scale=loader.rating_scale,
                           skip_bad_rows=loader.skip_bad_rows, report=report,
                           locate=lambda i: f"{where} row {i}")  # fmt: skip
    rows = v.dedupe_latest(rows, report)
    return v.build_recdata("dataframe", rows, report=report,
                           rating_scale=loader.rating_scale or v.observed_scale(rows["rating"]),
                           has_text=pick["text_col"] is not None)  # fmt: skip


def _dataset(data, name: str = "data", *, format: str = "auto", **options: Any):
    """``data`` loaded: a RecData as is, a path or a DataFrame read by ``load_dataset``;
    anything else (None included) is one UsageError naming what to pass."""
    from recfeat.data.recdata import RecData
    from recfeat.settings import data_argument

    if isinstance(data_argument(data, name, none=False), RecData):
        return data
    return load_dataset(data, format=format, **options)


def encoder(name: str = "minilm", /, *, backend: str | None = None, precision: str | None = None,
            **options: Any) -> Encoder:  # fmt: skip
    """A text encoder in the one backend vocabulary (``recfeat.encode.vocabulary``), as
    ``--encoder`` names it on the command line.

    ``name`` is a registry name (``minilm``, ``bert-base``, ``gpt2``), a Hugging Face model
    (hub name or folder) or a folder written by ``export``; ``backend`` is ``torch``, ``onnx``
    or ``openvino`` (default: torch, or what an export folder holds); ``precision`` is
    ``fp32``, ``bf16``, ``fp16`` or ``int8``. Other options are the encoder's own
    (``recfeat components encoder`` lists them). The weights load on first use.
    """
    from recfeat.data import checks
    from recfeat.encode.vocabulary import resolve_encoder
    from recfeat.plugin.registry import get_registry

    if not isinstance(name, Path) and not (isinstance(name, str) and name.strip()):
        raise checks.refuse("encoder", "a registry name, a Hugging Face model or an export "
                            "folder", name, "pass e.g. recfeat.encoder('minilm')")  # fmt: skip
    checks.text(backend, "backend", none=True, example="onnx")
    checks.text(precision, "precision", none=True, example="bf16")
    registry_name, opts = resolve_encoder(str(name), backend=backend, precision=precision,
                                          **options)  # fmt: skip
    return get_registry("encoder").create(registry_name, **opts)


def model(name: str, /, **options: Any) -> RecModel:
    """An unfitted recommendation model, as ``--model`` names it on the command line:
    ``name`` is a registered model (``bias``, ``mf``, ``als``, ``content``, ``hybrid-als``;
    ``recfeat components model`` lists them with their options), ``options`` its options,
    validated here. It follows scikit-learn's conventions (``fit(X, y)``, ``predict``,
    ``get_params`` / ``set_params``, ``clone``), so it goes straight into ``Pipeline`` and
    ``GridSearchCV`` with ``rmse_scorer`` or ``ranking_scorer``."""
    from recfeat.data import checks
    from recfeat.plugin.registry import get_registry

    if not (isinstance(name, str) and name.strip()):
        raise checks.refuse("model", "a registered model name", name,
                            "pass e.g. recfeat.model('bias'); recfeat.list_components('model') "
                            "lists them")  # fmt: skip
    return get_registry("model").create(name, **options)


def extract(data, level: str = "review", encoder=None, **options: Any) -> FeatureResult:
    """Vectors for ``data`` (RecData, or a path or DataFrame given to ``load_dataset``) at ``level``
    ('review', 'item', 'user'); ``encoder`` is an encoder object, a model for ``encoder()``,
    or None for the default. Returns a ``FeatureResult`` (``.save(path)`` writes Parquet +
    manifest). Options: see ``recfeat.extraction.pipeline.extract``, plus ``keep_pii=True``
    (``--keep-pii``): the default cleaners without ``pii``, personal data left in the texts."""
    from recfeat.components.encoder import Encoder
    from recfeat.data import checks
    from recfeat.extraction.pipeline import extract as run

    data = _dataset(data)
    checks.text(level, "level", example="item")
    if isinstance(encoder, (str, Path)):
        encoder = globals()["encoder"](encoder)
    elif encoder is not None and not isinstance(encoder, Encoder):
        raise checks.refuse("encoder", "an encoder name, folder or object (recfeat.encoder())",
                            encoder, "pass e.g. encoder='minilm'")  # fmt: skip
    _check_extract_options(options)
    from recfeat.extraction.cleaning import with_keep_pii

    keep_pii = options.pop("keep_pii", False)
    options["cleaners"] = with_keep_pii(options.get("cleaners"), keep_pii, "keep_pii")
    return run(data, level, encoder, **options)


def _check_extract_options(options: dict[str, Any]) -> None:
    """The names, types and ranges of ``extract``'s keyword options, before any work."""
    from recfeat.data import checks
    from recfeat.settings import check_cleaners

    known = ("cleaners", "keep_pii", "aggregate", "user_from", "train_interactions", "cache",
             "token_features", "chunk_size", "progress")  # fmt: skip
    unknown = sorted(set(options) - set(known))
    if unknown:
        from recfeat.errors import UsageError

        raise UsageError(f"extract: unknown option(s) {', '.join(unknown)}; use {', '.join(known)}")
    if "chunk_size" in options:
        checks.integer(options["chunk_size"], "chunk_size", low=1, example=2048)
    checks.flag(options.get("progress"), "progress", none=True)
    checks.flag(options.get("keep_pii", False), "keep_pii")
    for name in ("aggregate", "user_from"):
        checks.text(options.get(name), name, none=True)
    cache = options.get("cache")
    if not (cache is None or cache is False or isinstance(cache, (str, Path))
            or hasattr(cache, "get_many")):  # fmt: skip
        raise checks.refuse("cache", "None (the default folder), False (no cache) or a folder",
                            cache, "pass e.g. cache=False")  # fmt: skip
    train = options.get("train_interactions")
    if train is not None and not checks.is_frame(train):
        raise checks.refuse("train_interactions", "a DataFrame of training (user, item) rows",
                            train, "pass split.train from recfeat.make_split")  # fmt: skip
    check_cleaners(options.get("cleaners"), "cleaners", chain=True)


def extract_settings(config=None, **flags: Any) -> ExtractSettings:
    """The settings of one extraction (``recfeat.settings.ExtractSettings``): built-in
    defaults < ``config`` (a TOML path or dict, as ``--config``) < ``flags`` (the ``extract``
    command's flags as keyword arguments; None: not given)."""
    from recfeat.settings import extract_settings as resolve

    _check_keywords("extract_settings", flags, resolve)
    return resolve(config, **flags)


def _check_keywords(function: str, given: dict[str, Any], target, *, also: Sequence[str] = (),
                    drop: Sequence[str] = ()) -> None:  # fmt: skip
    """Keyword arguments that ``target`` (the function ``function`` hands them to) does not
    take, plus ``also``, minus ``drop``: one UsageError listing the ones it does, not a
    TypeError naming an inner function."""
    import inspect

    from recfeat.errors import UsageError

    params = inspect.signature(target).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return  # the target checks them itself
    known = sorted({p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
                   - {"config", *drop} | set(also))  # fmt: skip
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UsageError(f"{function}: unknown option(s) {', '.join(unknown)}; use "
                         f"{', '.join(known)}")  # fmt: skip


# extract_file's keyword arguments that are settings (the rest: encoder object, progress, echo)
_EXTRACT_KEYWORDS = {
    "format", "loader_options", "encoding", "skip_bad_rows", "backend", "pooling", "precision",
    "batch_tokens", "max_length", "device", "cleaners", "keep_pii", "token_features", "aggregate",
    "user_from", "cache", "chunk_size", "batch_rows", "stream", "ray", "min_cosine",
    "max_drop", "gate_interactions",
}  # fmt: skip


def extract_file(path: str | Path | None = None, out: str | Path | None = None,
                 level: str | None = None, encoder=None, *, config=None, settings=None,
                 train_interactions=None, progress: bool | None = None, echo=None,
                 **options: Any) -> FeatureResult | FileResult:  # fmt: skip
    """Extract the file or folder ``path`` straight into ``out`` (Parquet + manifest + run
    record, committed as one unit), exactly as ``recfeat extract`` does: the same settings
    (``settings``, or ``config`` and keyword arguments named as the command's flags:
    ``format``, ``loader_options``, ``aggregate``, ``user_from``, ``cache``, ``chunk_size``,
    ``stream``, ``ray``, ``backend``, ``max_length``...) and the same engine choice
    (``recfeat.extraction.files``): streamed whenever the input and options allow (reads in
    batches, memory set by the batch, not the corpus), loaded otherwise; the file is the
    same either way. ``stream=True`` insists (a UsageError says why it cannot), ``False``
    loads. ``ray=True`` (or a dict of ``RayOptions``: ``address``, ``actors``,
    ``cpus_per_actor``, ``batch_rows``...) runs the same stages on Ray Data into the folder
    ``out/``. ``encoder``: a name or folder (a setting) or an encoder object (used as is).
    ``train_interactions``: a frame, or a split file / table path (``--train``). ``out`` is
    refused before any work when it would overwrite an input. Returns the result
    (``.manifest``, ``.run``, ``.to_features()``)."""
    from recfeat.components.encoder import Encoder
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.extraction.files import extract_to
    from recfeat.settings import ExtractSettings

    unknown = sorted(set(options) - _EXTRACT_KEYWORDS)
    if unknown:
        raise UsageError(f"extract_file: unknown option(s) {', '.join(unknown)}; use "
                         f"{', '.join(sorted(_EXTRACT_KEYWORDS))}")  # fmt: skip
    checks.path(out, "out", none=True, what="a .parquet file path, or a folder with ray,")
    checks.flag(progress, "progress", none=True)
    checks.callable_or_none(echo, "echo")
    named = isinstance(encoder, (str, Path))  # a setting; anything else is an encoder object
    if not named and encoder is not None and not isinstance(encoder, Encoder):
        raise checks.refuse("encoder", "an encoder name, folder or object (recfeat.encoder())",
                            encoder, "pass e.g. encoder='minilm'")  # fmt: skip
    _check_settings(settings, ExtractSettings, "extract_file", "extract_settings")
    if settings is None:
        settings = extract_settings(config, data=path, out=None if options.get("ray") else out,
                                    level=level,
                                    encoder=str(encoder) if named else None,
                                    train=train_interactions, **options)  # fmt: skip
    elif config is not None or options:
        raise UsageError("extract_file: give settings, or config and keyword arguments, not both")
    if out is None:
        raise UsageError("extract_file: give out (a .parquet file, or a folder with ray)")
    model = settings.make_encoder() if named or encoder is None else encoder
    choose = None
    if settings.auto_backend:
        def choose(dataset):  # noqa: E306 - needs the loaded dataset
            from recfeat.extraction.stages import make_cleaner
            from recfeat.selection.auto_backend import auto_encoder

            return auto_encoder(settings.encoder, settings.encoder_options, dataset,
                                settings.level, make_cleaner(settings.cleaners),
                                say=echo or (lambda msg: None), min_cosine=settings.min_cosine,
                                max_drop=settings.max_drop,
                                gate_interactions=settings.gate_interactions,
                                students=settings.students)  # fmt: skip
    extra = {} if settings.batch_rows is None else {"batch_rows": settings.batch_rows}
    return extract_to(
        settings.data, out, settings.level, model, settings.cleaners, fmt=settings.format,
        loader_options=settings.loader_options, stream=settings.stream, ray=settings.ray,
        train_interactions=settings.train, token_features=settings.token_features,
        inputs=settings.inputs, choose_encoder=choose, echo=echo, aggregate=settings.aggregate,
        user_from=settings.user_from, cache=settings.cache, chunk_size=settings.chunk_size,
        progress=progress, **extra,
    )  # fmt: skip


def make_split(interactions, kind: str = "random", **options: Any) -> Split:
    """Train/test split of an interactions frame (or a RecData's, or a dataset path's):
    random, temporal, item-cold, user-cold, leave-last-out, leave-last-out-new
    (recfeat.evaluation.splits); options ``seed``, ``test_fraction``, ``leave_last``.
    ``split.train`` (a DataFrame) goes straight to ``train`` or ``extract``."""
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.evaluation.splits import make_split as split

    if not checks.is_frame(interactions):  # a RecData or a dataset path: its interactions
        interactions = _dataset(interactions, "interactions").interactions
    unknown = sorted(set(options) - {"seed", "test_fraction", "leave_last"})
    if unknown:
        raise UsageError(f"make_split: unknown option(s) {', '.join(unknown)}; use seed, "
                         "test_fraction, leave_last")  # fmt: skip
    return split(interactions, kind, **options)


def _check_settings(settings: Any, cls: type, function: str, maker: str) -> None:
    """``settings`` is None or what ``maker`` returns: another object would fail later as an
    AttributeError deep inside."""
    from recfeat.data import checks

    if settings is not None and not isinstance(settings, cls):
        raise checks.refuse(f"{function}: settings", f"a {cls.__name__} (from recfeat.{maker})",
                            settings, f"build one with recfeat.{maker}(...) or pass keyword "
                            "arguments instead")  # fmt: skip


def evaluate_settings(config=None, *, peers: str | Sequence[str] = (),
                      **flags: Any) -> EvaluateSettings:  # fmt: skip
    """The settings of one evaluation (``recfeat.settings.EvaluateSettings``): built-in
    defaults < ``config`` (a TOML path or dict, as ``--config``: a whole experiment, data,
    split, models and their search spaces, peers, tuning, outputs; docs/evaluation.md) <
    ``flags`` (the ``evaluate`` command's flags as keyword arguments, ``item_features`` for
    ``--features``, ``model_options`` for ``-O``; None: not given). ``peers``
    (``"implicit,lightfm,cornac"``, else the config's ``peers``) appends those libraries'
    standard models (the text ones only with item features); ``-O`` options reach them as
    they reach every listed model."""
    from recfeat.data import checks
    from recfeat.plugins.peers import expand_peers
    from recfeat.settings import evaluate_settings as resolve

    _check_keywords("evaluate_settings", flags, resolve, drop=("peers", "expand_peers"))
    if peers:
        checks.names(peers, "peers", example="implicit,lightfm")
    return resolve(config, peers=peers or None, expand_peers=expand_peers, **flags)


# evaluate's keyword arguments that are settings (the rest: data, features, split, outputs)
_EVALUATE_KEYWORDS = {
    "format", "model_options", "metrics", "k", "seed", "test_fraction", "relevance_threshold",
    "cold_reviews", "cold_protocol", "candidates", "rank_rating_models", "merge_variants",
    "trust_features", "tune", "tune_trials", "tune_objective", "load_split", "extract_features",
}  # fmt: skip


def evaluate(data=None, item_features=None, models=None, *, config=None, settings=None,
             peers: str | Sequence[str] = (), user_features=None, split=None,
             out: str | Path | None = None, plot: str | Path | None = None,
             save_split: str | Path | None = None, markdown: str | Path | None = None,
             out_dir: str | Path | None = None, progress: bool | None = None,
             **options: Any) -> EvaluationResult:  # fmt: skip
    """Fit and score ``models`` on one split of ``data`` with rating and ranking metrics,
    exactly as ``recfeat evaluate`` does: the same settings (``settings``, or ``config`` and
    keyword arguments named as the command's flags: ``k``, ``seed``, ``metrics``,
    ``test_fraction``, ``relevance_threshold`` (None or "none": every held-out
    interaction), ``model_options`` (``{"mf": {"factors": 50}}`` or ``-O`` strings),
    ``cold_reviews``, ``candidates``, ``merge_variants``, ``tune``, ``tune_trials``,
    ``load_split``...; see ``evaluate_settings``). ``data``: a RecData or a dataset path;
    ``item_features``/``user_features``: ``Features``, a feature file path, an ``extract()``
    result, or None; ``models``: names or ``(name, options)`` (default: the config's, else
    ``DEFAULT_MODELS``); ``peers`` (``"implicit,lightfm,cornac"``) appends those libraries'
    standard models. ``split``: a kind name, or a ``Split`` to use as made. ``tune=True``
    first chooses each model's options on a validation split carved from the training part
    (``result.info["tuning"]`` says what). ``out`` (JSON), ``markdown``, ``plot`` (PNG) and
    ``save_split`` (over the config's ``[outputs]``; ``out_dir`` holds its relative paths)
    are written together once the run passed, and refused before any work when they would
    overwrite an input. ``evaluate(config="exp.toml")`` runs a whole experiment file as
    ``recfeat evaluate --config exp.toml`` does."""
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.evaluation.splits import Split
    from recfeat.settings import EvaluateSettings

    unknown = sorted(set(options) - _EVALUATE_KEYWORDS)
    if unknown:
        raise UsageError(f"evaluate: unknown option(s) {', '.join(unknown)}; use "
                         f"{', '.join(sorted(_EVALUATE_KEYWORDS))}")  # fmt: skip
    if split is not None and not isinstance(split, (str, Split)):
        raise checks.refuse("split", f"a split name ({', '.join(SPLITS)}) or "
                            "a Split", split, "pass e.g. split='random'")  # fmt: skip
    outputs = {"out": out, "markdown": markdown, "plot": plot, "save_split": save_split}
    for name, value in outputs.items():
        checks.path(value, name, none=True, what="a file path")
    checks.flag(progress, "progress", none=True)
    _check_settings(settings, EvaluateSettings, "evaluate", "evaluate_settings")
    made = None if split is None or isinstance(split, str) else split  # a Split, used as is
    if settings is not None and out_dir is not None:
        raise UsageError("evaluate: out_dir places the config's outputs; pass it to "
                         "evaluate_settings(..., out_dir=...)")  # fmt: skip
    if settings is None:
        if "relevance_threshold" in options and options["relevance_threshold"] is None:
            options["relevance_threshold"] = "none"  # here None says: every held-out one
        if made is not None and made.kind in SEQUENTIAL_SPLITS and config is None:
            # a next-item Split given as made: the default its name would get
            options.setdefault("relevance_threshold", "none")
        settings = evaluate_settings(
            config, data=data, item_features=item_features, user_features=user_features,
            models=models, peers=peers, split=None if made is not None else split,
            out_dir=out_dir, **outputs, **options,
        )  # fmt: skip
    elif any(v is not None for v in (config, data, item_features, user_features, models)) or (
        peers or options or isinstance(split, str)
    ):
        raise UsageError("evaluate: give settings, or the data, config and keyword arguments, "
                         "not both")  # fmt: skip
    chosen = {**settings.outputs, **{k: v for k, v in outputs.items() if v is not None}}
    return _evaluate_with(settings, made, outputs=chosen, progress=progress)


def _features(value, name: str = "features"):
    """A features argument -> Features, ReviewVectors or None (None or "": none given): a
    feature file path, an ``extract()`` result, a DataFrame of an id column and a ``vector``
    column, or features as they are (``recfeat.data.features.as_features``, which
    ``TrainedModel.recommend`` uses too)."""
    from recfeat.data.features import as_features

    return as_features(value, name)


def _evaluate_with(settings, split, *, outputs: dict[str, Any], progress):
    """``evaluate`` once its settings are resolved: outputs checked, data and features read
    (or extracted), product variants merged, the split made (or loaded), the protocol run,
    ``outputs`` (out, markdown, plot, save_split) written."""
    import dataclasses

    from recfeat.errors import UsageError
    from recfeat.evaluation.leaks import merge_variants, remap_features
    from recfeat.evaluation.protocol import evaluate as run
    from recfeat.evaluation.splits import load_split, make_split
    from recfeat.outputs_guard import guard_outputs

    guard_outputs({f"--{key.replace('_', '-')}": outputs.get(key)
                   for key in ("out", "markdown", "plot", "save_split")}, settings.inputs,
                  files=True)  # fmt: skip
    data = settings.data
    if data is None:
        raise UsageError("evaluate: give data (a dataset path, RecData or DataFrame), or "
                         "path = ... under [data] in the config")  # fmt: skip
    fmt, loader_options = settings.dataset
    data = _dataset(data, "DATA", format=fmt, **loader_options)
    item_features = _features(settings.item_features)
    user_features = _features(settings.user_features)
    protocol = settings.protocol
    if protocol.merge_variants and split is None:  # before splitting: it is over product groups
        data, mapping = merge_variants(data)
        item_features = remap_features(item_features, mapping)
        protocol = dataclasses.replace(protocol, merge_variants=False)
    if settings.extract is not None:  # after merging: the vectors are keyed as the models see
        item_features = _extract_for(data, settings.extract, progress)
    if split is None and settings.load_split:
        split = load_split(settings.load_split, data.interactions)
    elif split is None:
        split = make_split(data.interactions, settings.split, seed=protocol.seed,
                           test_fraction=protocol.test_fraction)  # fmt: skip
    # A fine-tuned encoder or a fitted adaptor behind the vectors must not have read this
    # split's test rows or cold ids: refused before any model is fitted. trust_features does
    # not waive it (it vouches for where texts came from, not for what was trained on them).
    # Here rather than in the protocol's detectors: recfeat.finetuning sits above evaluation.
    from recfeat.finetuning.guard import check_features_lineage

    lineage = {"item_features_training": check_features_lineage(item_features, split, role="item"),
               "user_features_training": check_features_lineage(user_features, split, role="user")}  # fmt: skip
    result = run(data, item_features, settings.models, split, user_features=user_features,
                 protocol=protocol, progress=progress)  # fmt: skip
    result.info.setdefault("leaks", {}).update(lineage)
    if settings.extract is not None:
        result.info["features"]["extracted"] = {
            k: settings.extract[k] for k in ("level", "encoder", "encoder_options")}  # fmt: skip
    _write_evaluation(result, data, split, **outputs)
    return result


def _extract_for(data, spec: dict[str, Any], progress):
    """Item features extracted from the loaded ``data`` as ``[data] extract_features`` asks
    (the encoder, cleaners, token features and level of the same config file)."""
    from recfeat.plugin.registry import get_registry

    made = get_registry("encoder").create(spec["encoder"], **spec["encoder_options"])
    return extract(data, spec["level"], made, cleaners=spec["cleaners"],
                   token_features=spec["token_features"], progress=progress).to_features()  # fmt: skip


def _write_evaluation(result, data, split, *, out=None, markdown=None, plot=None,
                      save_split=None) -> None:  # fmt: skip
    """``out`` (the JSON result), ``markdown`` (the report), ``plot`` (a bar chart) and
    ``save_split`` (the split's rows), the ones given, as one unit: all new, or the earlier
    files untouched."""
    from recfeat.atomic import write_file, write_together
    from recfeat.evaluation.protocol import plot_result
    from recfeat.evaluation.splits import save_split as write_split

    title = f"{data.name}: {split.kind} split, k={result.info['k']}"
    write_together({
        out: lambda tmp: write_file(tmp, (result.to_json() + "\n").encode()),
        markdown: lambda tmp: write_file(tmp, (result.report_markdown(title) + "\n").encode()),
        plot: lambda tmp: plot_result(result, tmp, title=title),
        save_split: lambda tmp: write_split(split, tmp, data.interactions),
    })  # fmt: skip


def read_features(path: str | Path) -> Features | ReviewVectors:
    """A feature file written by ``extract(...).save(path)`` (or ``recfeat extract``)."""
    from recfeat.data import checks
    from recfeat.data.features import load_features

    checks.path(path, "path", what="a feature file path",
                fix="pass the .parquet file recfeat extract wrote")  # fmt: skip
    return load_features(path)


def train_settings(**flags: Any) -> TrainSettings:
    """The settings of one training run (``recfeat.settings.TrainSettings``): built-in
    defaults < ``flags`` (the ``train`` command's flags as keyword arguments: ``data``,
    ``model``, ``options``, ``format``, ``item_features``, ``user_features``,
    ``load_split``)."""
    from recfeat.settings import train_settings as resolve

    _check_keywords("train_settings", flags, resolve)
    return resolve(**flags)


def train(data=None, model: str | None = None, options: dict[str, Any] | None = None, *,
          settings=None, out: str | Path | None = None, **kwargs: Any) -> TrainedModel:  # fmt: skip
    """Fit ``model`` (with its ``options``) on every interaction of ``data``: a RecData, a
    dataset path (read as ``format=``), a DataFrame of interactions, or a split's training
    part (``split.train``); ``load_split=`` (a file from ``evaluate(save_split=...)``) fits
    on that split's training part of ``data`` instead. ``item_features``/``user_features``:
    Features, a feature file path, an ``extract()`` result or a DataFrame (an id column and
    a ``vector`` column). Returns a ``TrainedModel`` (``.recommend(users, k)``,
    ``.save(path)``, ``.name``, ``.options``, ``.lineage``...) that ``save_model``,
    ``recommend`` and ``explain`` take; ``out`` also saves it there, refused before any
    work when it would overwrite an input. ``settings``: a ``train_settings(...)`` instead
    of the arguments."""
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.outputs_guard import guard_outputs
    from recfeat.settings import TrainSettings
    from recfeat.settings import train_settings as resolve
    from recfeat.training.bundle import train_model

    _check_keywords("train", kwargs, resolve, drop=("data", "model", "options"))
    checks.path(out, "out", none=True, what="a model file path", fix="pass e.g. out='model.recfeat'")
    _check_settings(settings, TrainSettings, "train", "train_settings")
    if settings is None:
        settings = train_settings(data=data, model=model, options=options, **kwargs)
    elif data is not None or model is not None or options is not None or kwargs:
        raise UsageError("train: give settings, or the data, model and options, not both")
    guard_outputs({"--out": out}, settings.inputs, files=True)
    dataset = _dataset(settings.data, format=settings.format)
    item_features = _features(settings.item_features, "--features")
    user_features = _features(settings.user_features, "--user-features")
    lineage: dict[str, Any] = {
        "data": str(settings.data) if isinstance(settings.data, (str, Path)) else None}
    if settings.load_split is not None:
        from recfeat.evaluation.splits import load_split
        from recfeat.evaluation.tuning import training_view

        split = load_split(settings.load_split, dataset.interactions)
        # only the training part's rows and reviews: snippets and review vectors included
        dataset, item_features = training_view(dataset, item_features, split)
        lineage["split"] = {"file": str(settings.load_split), "kind": split.kind,
                            "seed": split.seed, "test_fraction": split.test_fraction}  # fmt: skip
    trained = train_model(dataset, settings.model, settings.options, item_features=item_features,
                          user_features=user_features, lineage=lineage)  # fmt: skip
    if out is not None:
        save_model(trained, out)
    return trained


def save_model(bundle: TrainedModel, path: str | Path) -> Path:
    """Write the ``TrainedModel`` from ``train`` to ``path`` (one file, atomically, in the
    safe format); the same as ``bundle.save(path)``."""
    from recfeat.training.bundle import save_model as save

    return save(bundle, path)


def load_model(path: str | Path, trust: bool = False) -> TrainedModel:
    """The ``TrainedModel`` in a file from ``save_model`` (loading runs no code from it).
    ``trust=True`` also opens an old pickle (joblib) model file, which runs whatever code it
    holds: only for files you made yourself."""
    from recfeat.training.bundle import load_model as load

    return load(path, trust=trust)


def recommend_settings(**flags: Any) -> RecommendSettings:
    """The settings of one ``recommend`` call (``recfeat.settings.RecommendSettings``):
    built-in defaults < ``flags`` (the ``recommend`` command's flags as keyword arguments:
    ``users``, ``k``, ``features``, ``data``, ``format``, ``include_seen``)."""
    from recfeat.settings import recommend_settings as resolve

    _check_keywords("recommend_settings", flags, resolve)
    return resolve(**flags)


def recommend(bundle: TrainedModel | str | Path, users=None, k: int | None = None, *,
              settings=None, **options: Any) -> list[Ranking]:  # fmt: skip
    """Top-``k`` items (default 10) for each of ``users`` (one id: "196" or 196 is ONE user;
    a list of ids; or "u1,u2") from a ``TrainedModel`` (``train``, ``load_model``) or a
    model file path, as ``recfeat recommend`` ranks them; ``Ranking`` objects, best first.
    Options, named as the command's flags: ``features`` (item features of new items to rank
    too: Features, a DataFrame or a path, same encoder as training), ``data`` (with
    ``format``: a dataset, path or DataFrame, whose item texts give the snippets; default:
    the ones saved with the model), ``include_seen``. ``settings``: a
    ``recommend_settings(...)`` instead."""
    from recfeat.errors import UsageError
    from recfeat.settings import RecommendSettings
    from recfeat.settings import recommend_settings as resolve
    from recfeat.training.bundle import item_snippets
    from recfeat.training.bundle import recommend as rank

    bundle = _trained(bundle, "bundle")
    _check_keywords("recommend", options, resolve, drop=("users", "k"))
    _check_settings(settings, RecommendSettings, "recommend", "recommend_settings")
    if settings is None:
        settings = recommend_settings(users=users, k=k, **options)
    elif users is not None or k is not None or options:
        raise UsageError("recommend: give settings, or users, k and options, not both")
    snippets = None
    if settings.data is not None:
        snippets = item_snippets(_dataset(settings.data, "--data", format=settings.format))
    return rank(bundle, settings.users, settings.k,
                extra_features=_features(settings.features, "--features"),
                include_seen=settings.include_seen, snippets=snippets)  # fmt: skip


def demo_settings(**flags: Any) -> DemoSettings:
    """The settings of the demo (``recfeat.demo.DemoSettings``): built-in defaults <
    ``flags`` (the ``demo`` command's flags as keyword arguments: ``data``, ``format``,
    ``loader_options``, ``out``, ``cache``)."""
    from recfeat.data import checks
    from recfeat.demo import demo_settings as resolve
    from recfeat.settings import data_argument, key_value_options

    unknown = sorted(set(flags) - {"data", "format", "loader_options", "out", "cache"})
    if unknown:
        from recfeat.errors import UsageError

        raise UsageError(f"demo_settings: unknown option(s) {', '.join(unknown)}; use data, "
                         "format, loader_options, out, cache")  # fmt: skip
    if "data" in flags:
        flags["data"] = data_argument(flags["data"], "data")
        if checks.is_frame(flags["data"]):  # read once here; the demo takes a RecData
            flags["data"] = load_dataset(flags["data"])
    checks.text(flags.get("format"), "format", none=True, example="csv")
    if flags.get("loader_options") is not None:
        flags["loader_options"] = key_value_options(flags["loader_options"], "--option",
                                                    "text_col=review", keyword="loader_options")  # fmt: skip
    checks.path(flags.get("out"), "out", none=True, what="a folder path")
    cache = flags.get("cache")
    if not (cache is None or cache is False or isinstance(cache, (str, Path))):
        raise checks.refuse("cache", "None (the default folder), False (no cache) or a folder",
                            cache, "pass e.g. cache=False")  # fmt: skip
    return resolve(**flags)


def run_demo(data=None, out: str | Path | None = None, *, settings=None, echo=None, table=None,
             **options: Any) -> DemoContext:  # fmt: skip
    """The demo behind ``recfeat demo``: extract review and item vectors with the default
    encoder and evaluate the demo models on them (a random and an item-cold split), into the
    folder ``out`` (default ``DEMO_OUT``). ``data``: a RecData, a dataset path (read as
    ``format=`` with ``loader_options=``), or None for the SYNTHETIC sample; ``cache``: the
    vector cache (None: the default folder, False: none); ``echo``: where progress lines go
    (default: stdout); ``table``: lays out each EvaluationResult for ``echo`` as text
    (default: the plain table). Returns the ``DemoContext`` (``outputs``, ``results``,
    ``timings``)."""
    from recfeat.data import checks
    from recfeat.demo import DemoSettings, run_from_settings
    from recfeat.errors import UsageError

    checks.callable_or_none(echo, "echo")
    checks.callable_or_none(table, "table")
    _check_settings(settings, DemoSettings, "run_demo", "demo_settings")
    if settings is None:
        settings = demo_settings(data=data, out=out, **options)
    elif data is not None or out is not None or options:
        raise UsageError("run_demo: give settings, or data, out and options, not both")
    return run_from_settings(settings, echo=echo, table=table)


def export_settings(config=None, **flags: Any) -> ExportSettings:
    """The settings of one export (``recfeat.settings.ExportSettings``): built-in defaults <
    ``config`` (a TOML path or dict, as ``--config``: ``[encoder]``, ``[exporter]``) <
    ``flags`` (the ``export`` command's flags as keyword arguments; None: not given)."""
    from recfeat.settings import export_settings as resolve

    _check_keywords("export_settings", flags, resolve)
    return resolve(config, **flags)


# export's keyword arguments that are settings, named as the command's flags
_EXPORT_KEYWORDS = {
    "init", "pooling", "normalize", "max_length", "preset", "per_channel", "calibration_format",
    "calibration_method", "calibration_size", "min_cosine", "auto_exclude", "exclude_nodes",
    "opset", "external_data", "gate", "gate_format", "max_drop", "gate_interactions",
}  # fmt: skip


def export(encoder: str | None = None, out: str | Path = "recfeat-export", *,
           backend: str | None = None, optimize: str | None = None, quantize: str | None = None,
           calibration: str | Path | Sequence[str] | None = None, force: bool = False,
           config=None, settings=None, on_step=None, echo=None,
           **options: Any) -> dict[str, Any]:  # fmt: skip
    """Export the text ``encoder`` (a registry name or Hugging Face model; pooling and
    normalisation in the graph) to the folder ``out`` for ``backend`` (``onnx`` or
    ``openvino``), optimised and/or quantised, validating every step against torch; returns
    the manifest. The folder is then an encoder for ``encoder(out)``. Exactly what ``recfeat
    export`` does, with the same settings: ``settings`` (:func:`export_settings`), or
    ``config`` (``[encoder]``, ``[exporter]``) and keyword arguments named as the command's
    flags (``min_cosine``, ``auto_exclude``, ``pooling``, ``max_length``, ``preset``...; None:
    the config's, else the default). ``calibration``: texts, or a file of them
    (``calibration_format``), for static int8 and validation. ``gate=DATA`` also judges the
    exported model on DATA's task against torch fp32 (``max_drop``). ``out`` is refused when
    it exists (unless ``force``: replaced as a whole) or would hold an input. ``on_step``
    gets each step's validation row as it is measured, ``echo`` the gate's messages."""
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.outputs_guard import guard_outputs
    from recfeat.settings import ExportSettings

    unknown = sorted(set(options) - _EXPORT_KEYWORDS)
    if unknown:
        raise UsageError(f"export: unknown option(s) {', '.join(unknown)}; use "
                         f"{', '.join(sorted(_EXPORT_KEYWORDS))}")  # fmt: skip
    checks.path(out, "out", what="a folder path", fix="pass e.g. out='minilm-onnx'")
    checks.flag(force, "force")
    checks.callable_or_none(on_step, "on_step")
    checks.callable_or_none(echo, "echo")
    _check_settings(settings, ExportSettings, "export", "export_settings")
    named = (encoder, backend, optimize, quantize, calibration)
    if settings is None:
        settings = export_settings(config, encoder=encoder, backend=backend, optimize=optimize,
                                   quantize=quantize, calibration=calibration, **options)  # fmt: skip
    elif config is not None or options or any(v is not None for v in named):
        raise UsageError("export: give settings, or config and keyword arguments, not both")
    # out is replaced as a whole with force: it may not be, or hold, an input
    guard_outputs({"--out": out}, settings.inputs)
    if Path(out).exists() and not force:
        raise UsageError(f"output folder {out} already exists; pass --force to replace it")
    source = settings.make_encoder()
    texts = settings.calibration_texts()
    exporter = settings.make_exporter()
    check = None
    if settings.gate is not None:
        from recfeat.components.dataset import load_dataset as load
        from recfeat.selection.gate import export_check

        # The reference: the exported encoder in torch fp32, with the same graph options.
        check = export_check(load(str(settings.gate), settings.gate_format),
                             settings.make_encoder(graph=True), max_drop=settings.max_drop,
                             interactions=settings.gate_interactions,
                             say=echo or (lambda msg: None))  # fmt: skip
    return exporter.export(source, out, texts=texts, force=force, on_step=on_step, check=check,
                           **settings.graph)  # fmt: skip


def verify_export(path: str | Path) -> dict[str, Any]:
    """Check an export folder against its manifest (every file's size and sha256, the
    tokenizer); returns the manifest, raises ArtifactError naming what differs."""
    from recfeat.data import checks
    from recfeat.exporters.manifest import read_manifest, verify_folder

    checks.path(path, "path", what="an export folder path",
                fix="pass the folder recfeat export wrote")  # fmt: skip
    manifest = read_manifest(path)
    verify_folder(path, list(manifest.get("files", {})))
    return manifest


def bench_throughput(encoder: str = "minilm", backends: str | Sequence[str] = "torch-fp32,torch-bf16",
                     *, peers: str | Sequence[str] = (), texts: Sequence[str] | None = None,
                     **options: Any) -> dict[str, Any]:  # fmt: skip
    """Time the text ``encoder`` on recfeat's backends (``backends``, in the vocabulary's
    ``BACKEND-PRECISION`` spelling) and ``peers`` side by side; ``texts`` adds a
    real-corpus run."""
    from recfeat.bench import backends as bb
    from recfeat.bench.suite import run_throughput
    from recfeat.data import checks
    from recfeat.selection import backends as sb

    checks.text(encoder, "encoder", example="minilm")
    checks.names(backends, "backends", example="torch-fp32,onnx-int8")
    if peers:  # () or None: no peers
        checks.names(peers, "peers", example="st-torch")
    checks.texts(texts, "texts", none=True)
    _check_keywords("bench_throughput", options, run_throughput,
                    drop=("encoder", "backends", "peers", "texts", "ctx"))  # fmt: skip
    ctx = sb.BuildContext(encoder=encoder)
    return run_throughput(
        encoder=encoder, backends=bb.parse_backends(backends, kind=sb.RECFEAT),
        peers=bb.parse_backends(peers, kind=sb.PEER) if peers else (),
        texts=texts, ctx=ctx, **options,
    )  # fmt: skip


def choose_backend(encoder: str, texts: Sequence[str], **options: Any) -> tuple[Choice, Encoder]:
    """``--backend auto`` from Python: time the text ``encoder``'s candidate backends on a
    sample of ``texts`` and keep the fastest whose mean cosine to torch fp32 is >=
    ``min_cosine`` (0.99) and, given ``data`` (a RecData), whose cold-start NDCG@10
    (content) and RMSE (ridge) on a sample split of it stay within ``max_drop`` (1%) of
    torch fp32's (cached per machine, encoder and gate settings); returns
    ``(choice, encoder)`` — ``choice.summary()`` says what and why."""
    from recfeat.data import checks
    from recfeat.selection import backends as sb
    from recfeat.selection.auto_backend import choose_backend as choose
    from recfeat.selection.auto_backend import encoder_for_choice, sample_texts

    checks.text(encoder, "encoder", example="minilm")
    texts = checks.texts(texts, "texts")
    _check_keywords("choose_backend", options, choose, also=("data",),
                    drop=("encoder_name", "sample_texts_"))  # fmt: skip
    if options.get("min_cosine") is not None:
        checks.number(options["min_cosine"], "min_cosine", low=0, high=1, low_open=True,
                      example=0.99)  # fmt: skip
    if isinstance(options.get("max_drop"), str):  # "1%", as --max-drop spells it
        from recfeat.selection.gate import parse_drop

        options["max_drop"] = parse_drop(options["max_drop"])
    elif options.get("max_drop") is not None:
        checks.number(options["max_drop"], "max_drop", low=0, high=1, high_open=True,
                      example=0.01)  # fmt: skip
    if options.get("repeats") is not None:
        checks.integer(options["repeats"], "repeats", low=1, example=2)
    data = options.pop("data", None)
    if data is not None:
        data = _dataset(data)
    if data is not None and "gate" not in options:
        from recfeat.selection.gate import task_gate

        options["gate"] = task_gate(data)
    ctx = options.pop("ctx", None) or sb.BuildContext(encoder=encoder)
    choice = choose(encoder, sample_texts(list(texts)), ctx=ctx, **options)
    return choice, encoder_for_choice(choice, ctx)


# -- serve ----------------------------------------------------------------------------------


def serve_settings(config=None, **flags: Any) -> ServeSettings:
    """The settings of one server (``recfeat.settings.ServeSettings``): built-in defaults <
    ``config`` (a TOML path or dict, as ``--config``: ``[encoder]``, ``cleaners``,
    ``[dataset]``) < ``flags`` (the ``serve`` command's flags as keyword arguments; None:
    not given)."""
    from recfeat.settings import serve_settings as resolve

    return resolve(config, **flags)


# serve's keyword arguments that are settings, named as the command's flags
_SERVE_KEYWORDS = {
    "backend", "precision", "device", "threads", "cleaners", "keep_pii", "model", "trust", "data",
    "format",
    "loader_options", "item_features", "host", "port", "api_key", "max_batch_tokens",
    "batch_window_ms", "max_queue", "max_inputs", "max_chars", "max_body_bytes",
    "request_timeout", "cache_size", "body_timeout", "max_items", "index",
}  # fmt: skip


def serve(encoder: str | None = None, *, config=None, settings=None, echo=print,
          **options: Any) -> None:  # fmt: skip
    """Serve the text ``encoder``'s embeddings (OpenAI-compatible ``POST /v1/embeddings`` and
    recfeat's own) and recommendations over HTTP until SIGTERM / Ctrl-C, exactly as
    ``recfeat serve`` does (docs/serving.md): the same settings (``settings`` from
    :func:`serve_settings`, or ``config`` and keyword arguments named as the command's
    flags: ``model`` (a file from ``save_model``), ``item_features``, ``data``, ``cleaners``,
    ``host``, ``port``, ``api_key``, ``max_batch_tokens``...). Options and files are checked
    before the socket is bound; the start-up line (backend, precision, device, warm-up,
    URL) goes to ``echo``. Needs ``pip install 'recfeat[serve]'``."""
    from recfeat.errors import UsageError
    from recfeat.serve.server import bind, build_state, check_installed, item_texts, run

    unknown = sorted(set(options) - _SERVE_KEYWORDS)
    if unknown:
        raise UsageError(f"serve: unknown option(s) {', '.join(unknown)}; use "
                         f"{', '.join(sorted(_SERVE_KEYWORDS))}")  # fmt: skip
    if settings is None:
        settings = serve_settings(config, encoder=encoder, **options)
    elif config is not None or encoder is not None or options:
        raise UsageError("serve: give settings, or config and keyword arguments, not both")
    check_installed()
    texts = None
    if settings.data is not None:
        texts = item_texts(load_dataset(settings.data, settings.format, **settings.loader_options),
                           str(settings.data))  # fmt: skip
    adaptor = None
    if settings.item_features is not None:  # adapted features: queries get the same map
        from recfeat.finetuning.adaptors import adaptor_of_features

        adaptor = adaptor_of_features(settings.item_features)
    state, load = build_state(
        settings.server, encoder=settings.label, engine=settings.make_encoder(), adaptor=adaptor,
        model=None if settings.model is None else str(settings.model), item_texts=texts,
        item_features=None if settings.item_features is None else str(settings.item_features),
        cleaners=settings.cleaners, trust=settings.trust,
    )  # fmt: skip
    run(state, load, bind(settings.server.host, settings.server.port), out=echo)


# -- bench ----------------------------------------------------------------------------------


def bench_throughput_report(out: str | Path, **options: Any) -> tuple[Path, dict[str, Any]]:
    """``recfeat bench throughput``: ``(report folder, results)``. Options are the command's
    flags (``encoder``, ``backends``: None for every recfeat path of the device that can run
    here, ``DEFAULT_CPU_BACKENDS`` / ``DEFAULT_GPU_BACKENDS``: the installed ones, on the CPU
    bf16 only with bf16 units and openvino-int8 only with ``data`` to calibrate on;
    ``peers``, ``device``, ``data``, ``gate``, ``force``...), all
    checked before any work; see ``recfeat.bench.runs.throughput_report``."""
    from recfeat.bench.runs import throughput_report

    _check_keywords("bench_throughput_report", options, throughput_report, drop=("out",))
    _check_bench_options(out, options, data_key="data")
    return throughput_report(out, **options)


def bench_report_text(results: dict[str, Any], table: Any = None) -> str:
    """A bench report's text (results.md's) from its ``results``; ``table(header, rows) ->
    str`` lays out each table (default: markdown), so the CLI can fit them to a terminal."""
    from recfeat.bench.report import render_markdown

    return render_markdown(results, table=table)


def bench_accuracy_report(data: str | Path, out: str | Path,
                          **options: Any) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """``recfeat bench accuracy``: ``(report folder, results)`` of each backend's parity to
    torch fp32 and downstream metrics on ``data``; options are the command's flags
    (``models``, ``split``, ``max_drop``, ``min_cosine``, ``force``...); see
    ``recfeat.bench.runs.accuracy_report``."""
    from recfeat.bench.runs import accuracy_report
    from recfeat.data import checks

    _check_keywords("bench_accuracy_report", options, accuracy_report, drop=("data", "out"))
    checks.path(data, "data", what="a dataset path")
    _check_bench_options(out, options)
    return accuracy_report(data, out, **options)


#: The benchmark's numeric options, named as the command's flags, with their lowest value.
_BENCH_LOWEST = {"threads": 1, "max_length": 2, "batch_tokens": 1, "peer_batch_size": 1,
                 "limit": 1, "repeats": 1, "warmup": 0, "ceiling_size": 0}  # fmt: skip


def _check_bench_options(out: Any, options: dict[str, Any], *, data_key: str | None = None) -> None:
    """The report folder, the types and ranges of the benchmark's options (the command line
    only parses them), before any work: a NaN floor or 0 threads would run for minutes first."""
    from recfeat.data import checks
    from recfeat.settings import GATE_INTERACTIONS_MIN

    checks.path(out, "out", what="a report folder path", fix="pass e.g. out='bench-report'")
    for name, low in _BENCH_LOWEST.items():
        if options.get(name) is not None:
            checks.integer(options[name], f"--{name.replace('_', '-')}", low=low)
    if options.get("gate_interactions") is not None:
        checks.integer(options["gate_interactions"], "--gate-interactions",
                       low=GATE_INTERACTIONS_MIN, example=10_000)  # fmt: skip
    if options.get("min_cosine") is not None:
        checks.number(options["min_cosine"], "--min-cosine", low=0, high=1, low_open=True,
                      example=0.99)  # fmt: skip
    for name in ("encoder", "device", "init", "format", "split"):
        checks.text(options.get(name), f"--{name}", none=True)
    for name in ("force", "fixed", "gate"):
        checks.flag(options.get(name), f"--{name}", none=True)
    for name in ("backends", "models", "peers"):
        value = options.get(name)
        if value:  # None, "" or []: the defaults (peers: none)
            checks.names(value, f"--{name}",
                         example="content,ridge" if name == "models" else "torch-fp32")  # fmt: skip
    if data_key and options.get(data_key) is not None:
        checks.path(options[data_key], f"--{data_key}", what="a dataset path")
    checks.callable_or_none(options.get("say"), "say")


def bench_backends() -> list[Any]:
    """The backends and peers the benchmark harness knows (``recfeat bench backends``): each
    with ``name``, ``kind``, ``devices``, ``available`` (installed here), ``install`` and
    ``description``."""
    from recfeat.bench.runs import backend_table

    return backend_table()


# -- texts: clean, tokenize -------------------------------------------------------------------


def cleaner_chain(cleaners: str | Sequence[Any] | None = None, *, config=None,
                  keep_pii: bool = False) -> CleanerChain:  # fmt: skip
    """The cleaner chain ``recfeat clean`` runs (``.clean(texts)``, ``.names``): ``cleaners``
    ("a,b", a list of specs; None: the default chain) or the ``cleaners`` list of ``config``
    (a TOML path or dict; none there: the default chain), not both; ``keep_pii``: the
    default chain without ``pii`` (``--keep-pii``)."""
    from recfeat.data import checks
    from recfeat.errors import ConfigError, UsageError
    from recfeat.extraction.cleaning import build_cleaner_chain
    from recfeat.settings import check_cleaners

    check_cleaners(cleaners, "cleaners")
    if not (config is None or isinstance(config, (str, Path, dict))):
        raise checks.refuse("config", "a TOML file's path or a dict", config,
                            "pass e.g. config='pipeline.toml'")  # fmt: skip
    if cleaners is not None and config is not None:
        raise UsageError("pass either --cleaners or --config, not both")
    if config is not None:
        from recfeat.config import read_config, validate_config

        cfg = config if isinstance(config, dict) else read_config(config)
        where = "config" if isinstance(config, dict) else str(config)
        problems = validate_config({"cleaners": cfg["cleaners"]} if "cleaners" in cfg else {}, where)
        if problems:
            raise ConfigError("; ".join(problems))
        cleaners = cfg.get("cleaners")
    from recfeat.extraction.cleaning import with_keep_pii

    checks.flag(keep_pii, "keep_pii")
    return build_cleaner_chain(with_keep_pii(cleaners, keep_pii, "keep_pii"))


def tokenizer(name: str | None = None, *, config=None, encoder: str | None = None,
              max_length: int | None = None,
              options: dict[str, Any] | Sequence[str] | None = None) -> Tokenizer:  # fmt: skip
    """The tokenizer ``recfeat tokenize`` runs (``.tokenize(texts)``): ``name`` (a tokenizer
    component, default ``hf``) over ``config``'s ``[tokenizer]`` (a TOML path or dict; its
    options carry over while ``name`` names the same one); ``encoder``: the text encoder
    whose tokenizer to use (a Hugging Face model folder or hub name, or minilm);
    ``options``: other tokenizer options, a dict or ``KEY=VALUE`` strings."""
    from recfeat.config import chosen_component
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.plugin.registry import get_registry
    from recfeat.settings import key_value_options, read_config

    checks.text(name, "name", none=True, example="hf")
    checks.text(encoder, "encoder", none=True, example="minilm")
    checks.optional_integer(max_length, "--max-length", low=2, example=256)
    cfg, _ = read_config(config)
    chosen, settings = chosen_component(cfg, "tokenizer", name, "hf")
    settings.update(key_value_options(options, "--option", "vocab_size=8000", keyword="options"))
    if encoder is not None:
        settings["model"] = encoder
    if max_length is not None:
        settings["max_length"] = max_length
    made = get_registry("tokenizer").create(chosen, **settings)
    if not hasattr(made, "tokenize"):
        raise UsageError(
            f"{chosen!r} is a token-feature extractor, not a tokenizer; pick one with "
            "--tokenizer (see `recfeat components tokenizers`)"
        )
    return made


def detect_format(path: str | Path, format: str = "auto", *, stream: bool = False) -> str:
    """The format ``path`` is read as: ``format`` itself unless "auto". With ``stream``, a
    text stream's (``text``, ``csv``, ``jsonl``, by the file name); else a dataset loader's."""
    from recfeat.data import checks
    from recfeat.data.formats import detect_format as detect

    checks.path(path, "path", what="a file or folder path")
    checks.text(format, "format", example="csv")
    return detect(path, format, stream=checks.flag(stream, "stream"))


# -- datasets ---------------------------------------------------------------------------------


def dataset_info(path: str | Path | None = None, format: str = "auto", *,
                 options: dict[str, Any] | Sequence[str] | None = None,
                 encoding: str | None = None, skip_bad_rows: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """``recfeat data info``: the counts and load report of the dataset at ``path`` (None or
    'sample': the built-in SYNTHETIC sample), read the way ``extract`` reads it.
    ``options``: loader options, a dict or ``KEY=VALUE`` strings (``-o``); ``encoding`` and
    ``skip_bad_rows`` unset: each loader's default."""
    from recfeat.data import checks
    from recfeat.settings import key_value_options

    checks.path(path, "path", none=True, what="a dataset path")
    checks.text(format, "format", example="csv")
    checks.text(encoding, "encoding", none=True, example="latin-1")
    checks.flag(skip_bad_rows, "skip_bad_rows", none=True)
    opts = key_value_options(options, "--option", "user_col=reader", keyword="options")
    opts.setdefault("encoding", encoding)
    opts.setdefault("skip_bad_rows", skip_bad_rows or None)  # unset: each loader's default
    if path is None or (str(path) == "sample" and format in ("auto", "sample", "synthetic-books")):
        path, format = None, "synthetic-books"
    data = load_dataset(path, format, **opts)
    summary = data.summary()
    summary["rating_scale"] = list(data.rating_scale) if data.rating_scale else None
    return summary


def write_sample(out_dir: str | Path, *, seed: int = 7, force: bool = False) -> Path:
    """Write the SYNTHETIC book-review sample (``book_reviews.csv``, ``books.csv``; the same
    seed gives the same files) to ``out_dir``; files already there are replaced only with
    ``force``. Returns the reviews file's path."""
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.plugins.datasets.synthetic import write_sample as write

    out_dir = checks.path(out_dir, "out_dir", what="a folder path", fix="pass e.g. 'sample-data'")
    seed = checks.seed(seed, "--seed")
    force = checks.flag(force, "--force")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; give a folder for the sample files")
    names = ("book_reviews.csv", "books.csv")
    existing = [n for n in names if (Path(out_dir) / n).exists()]
    if existing and not force:
        raise UsageError(f"{out_dir} already has {', '.join(existing)}; pass --force to replace them")
    return write(out_dir, seed=seed)


# -- what is installed; config files ------------------------------------------------------------


def list_plugins(include_builtin: bool = False) -> list[dict[str, Any]]:
    """``recfeat plugins``: one row per plugin (``PLUGIN_ROW_KEYS``: name, distribution,
    version, builtin, hooks, components, error), third-party ones only unless
    ``include_builtin``; ``error`` names every failure of a broken one."""
    from recfeat.data import checks
    from recfeat.plugin.report import plugins_report

    return plugins_report(checks.flag(include_builtin, "include_builtin"))


def list_components(kind: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """``recfeat components``: kind -> its registered components (``COMPONENT_KEYS``: kind,
    name, aliases, plugin, class, doc, options), for every kind or the one named."""
    from recfeat.data import checks
    from recfeat.plugin.report import components as listing

    return listing(checks.text(kind, "kind", none=True, example="model"))


def is_builtin_plugin(name: str) -> bool:
    """True for a plugin name (a component's ``plugin``) that ships with recfeat."""
    from recfeat.data import checks
    from recfeat.plugin.report import is_builtin

    return is_builtin(checks.text(name, "name", example="recfeat"))


def validate_config(config: str | Path | dict[str, Any]) -> list[str]:
    """Every problem of a pipeline config (a TOML path or dict), one line each; [] when it is
    valid. An unreadable or malformed file is a ConfigError."""
    from recfeat.config import read_config
    from recfeat.config import validate_config as check
    from recfeat.data import checks

    if isinstance(config, dict):
        bad = next((key for key in config if not isinstance(key, str)), None)
        if bad is not None:  # TOML keys are strings; another one cannot name a section
            raise checks.refuse("config key", "a section name (a str)", bad,
                                "name sections as in a TOML file, e.g. 'pipeline'")  # fmt: skip
        return check(config, "config")
    if not isinstance(config, (str, Path)):
        raise checks.refuse("config", "a TOML file's path or a dict", config,
                            "pass e.g. 'pipeline.toml'")  # fmt: skip
    return check(read_config(config), str(config))


# -- helpers the command line shares ------------------------------------------------------------


def guard_outputs(outputs: dict[str, Any], inputs: dict[str, Any] | None = None,
                  **options: Any) -> dict[str, Path]:  # fmt: skip
    """Refuse (UsageError) an output path that is an input, holds one, lies in an input
    folder or is another output; ``outputs``/``inputs`` map a label (``"--out"``) to a path
    or None. See ``recfeat.outputs_guard.guard_outputs``."""
    from collections.abc import Mapping

    from recfeat.data import checks
    from recfeat.outputs_guard import guard_outputs as guard

    for name, value in (("outputs", outputs), ("inputs", inputs)):
        if not (isinstance(value, Mapping) or (value is None and name == "inputs")):
            raise checks.refuse(name, "a dict of label -> path", value,
                                "pass e.g. {'--out': 'out.json'}")  # fmt: skip
    return guard(outputs, inputs, **options)


def atomic_open(path: str | Path, mode: str = "w",
                encoding: str | None = "utf-8") -> AbstractContextManager[IO[Any]]:  # fmt: skip
    """Like ``open(path, mode)`` as a context manager, but the file replaces ``path`` only
    once fully written."""
    from recfeat.atomic import atomic_open as opener

    return opener(path, mode, encoding)


def progress_bar(total: int | None, description: str,
                 **options: Any) -> AbstractContextManager[Any]:  # fmt: skip
    """A context manager yielding a bar with ``advance(n)`` on stderr (off when stderr is
    not a terminal, unless ``RECFEAT_PROGRESS=1``)."""
    from recfeat.progress import progress_bar as bar

    return bar(total, description, **options)


def final_name(name: str) -> str:
    """The file a recfeat temporary stands for (atomic writes), for messages; other names
    unchanged."""
    from recfeat.atomic import final_name as final

    return final(name)


def command_hooks() -> list[Any]:
    """The third-party plugins' ``register_commands`` implementations, in load order (the
    CLI adds their commands)."""
    from recfeat.plugin.manager import ordered_hookimpls

    return ordered_hookimpls("register_commands", builtins=False)


def record_plugin_failure(name: str, message: str) -> None:
    """Record that plugin ``name`` failed (``recfeat plugins`` shows it as BROKEN)."""
    from recfeat.plugin.manager import record_failure

    record_failure(name, message)


def finetune(data=None, out: str | Path | None = None, encoder: str | None = None, *,
             settings=None, progress: bool | None = None, echo=None,
             **options: Any) -> FinetuneResult:  # fmt: skip
    """Fine-tune ``encoder`` (default ``minilm``; a registry name, Hugging Face folder or hub
    id) on pairs built from the TRAINING part of a split of ``data`` (a RecData or a dataset
    path) with an in-batch-negatives contrastive loss, and write the model folder ``out``:
    a Hugging Face model folder that ``encoder(out)``, ``extract``, ``export`` and ``serve``
    take as any other, with ``finetune.json`` (data fingerprint, split, pair kinds and counts,
    steps, loss curve), ``split.json``, ``lineage.json`` and ``loss.png`` beside it. Exactly
    what ``recfeat finetune`` does: ``settings`` (``recfeat.finetuning.finetune_settings``), or
    keyword arguments named as the command's flags (``split``, ``seed``, ``load_split``,
    ``pairs``, ``max_pairs``, ``max_steps``, ``batch_size``, ``max_length``,
    ``checkpoint_every``, ``restart``, ``force``...). Run again with the same arguments after
    a kill, it resumes from the last checkpoint. Returns a ``FinetuneResult`` (``.manifest``,
    ``.pairs``, ``.split``); docs/finetune.md walks through the loop."""
    import inspect

    from recfeat.errors import UsageError
    from recfeat.finetuning.run import run_finetune
    from recfeat.finetuning.settings import finetune_settings
    from recfeat.outputs_guard import guard_outputs

    if settings is None:
        known = set(inspect.signature(finetune_settings).parameters) - {"data", "encoder"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"finetune: unknown option(s) {', '.join(unknown)}; use "
                             f"{', '.join(sorted(known))}")  # fmt: skip
        settings = finetune_settings(data=data, encoder=encoder, **options)
    elif data is not None or encoder is not None or options:
        raise UsageError("finetune: give settings, or data and keyword arguments, not both")
    if out is None:
        raise UsageError("finetune: give out, the folder to write the fine-tuned model to")
    guard_outputs({"--out": out, "--checkpoint-dir": settings.checkpoints_for(out)}, settings.inputs)
    loaded = settings.data
    if isinstance(loaded, (str, Path)):
        loaded = load_dataset(loaded, format=settings.format)
    path = str(settings.data) if isinstance(settings.data, (str, Path)) else None
    return run_finetune(loaded, settings, out, data_path=path, progress=progress, echo=echo)


def distill(data=None, out: str | Path | None = None, encoder: str | None = None, *,
            settings=None, progress: bool | None = None, echo=None,
            **options: Any) -> DistillResult:  # fmt: skip
    """Distil ``encoder``, the teacher (default ``minilm``; a registry name, Hugging Face folder or hub id)
    into a student with fewer of its layers (``layers``, default half), trained to reproduce
    its vectors on texts from the TRAINING part of a split of ``data`` (a RecData or a
    dataset path; default split item-cold), and write the student folder ``out``: a Hugging
    Face model folder that ``encoder(out)``, ``extract``, ``export``, ``serve`` and
    ``--backend auto --student`` take, with ``distill.json`` (teacher, layers kept, texts,
    steps, loss curve, fidelity on held-out training texts and, with ``gate`` (default on),
    the downstream gate's verdict against the teacher on the split's test side),
    ``split.json``, ``lineage.json`` and ``loss.png``. Exactly what ``recfeat distill`` does:
    ``settings`` (``recfeat.finetuning.distill.distill_settings``) or keyword arguments named
    as the command's flags (``layers``, ``max_texts``, ``max_steps``, ``batch_size``,
    ``max_length``, ``learning_rate``, ``split``, ``seed``, ``load_split``, ``gate``,
    ``max_drop``, ``restart``, ``force``...). Run again with the same arguments after a kill,
    it resumes from the last checkpoint. Returns a ``DistillResult`` (``.out``,
    ``.manifest``, ``.split``); docs/distill.md walks through it."""
    import inspect

    from recfeat.errors import UsageError
    from recfeat.finetuning.distill import DistillSettings, distill_settings, run_distill
    from recfeat.outputs_guard import guard_outputs

    if settings is None:
        known = set(inspect.signature(distill_settings).parameters) - {"data", "encoder"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"distill: unknown option(s) {', '.join(unknown)}; use "
                             f"{', '.join(sorted(known))}")  # fmt: skip
        settings = distill_settings(data=data, encoder=encoder, **options)
    elif data is not None or encoder is not None or options:
        raise UsageError("distill: give settings, or data and keyword arguments, not both")
    _check_settings(settings, DistillSettings, "distill", "finetuning.distill.distill_settings")
    if out is None:
        raise UsageError("distill: give out, the folder to write the student to")
    guard_outputs({"--out": out, "--checkpoint-dir": settings.checkpoints_for(out)}, settings.inputs)
    loaded = settings.data
    if isinstance(loaded, (str, Path)):
        loaded = load_dataset(loaded, format=settings.format)
    path = str(settings.data) if isinstance(settings.data, (str, Path)) else None
    return run_distill(loaded, settings, out, data_path=path, progress=progress, echo=echo)


def adapt(features: str | Path | None = None, data=None, kind: str | None = None, *,
          out: str | Path | None = None, settings=None, progress: bool | None = None, echo=None,
          **options: Any) -> AdaptResult:  # fmt: skip
    """Fit a cheap adaptor on the frozen vectors of ``features`` (a features file path) and
    write the adapted features to ``out`` (same ids, new vectors) with the adaptor beside them
    (``out``'s ``.adaptor.safetensors``, ``.adaptor.json`` and ``.adaptor-split.json``),
    committed as one unit. ``kind``: ``whiten`` or ``pca`` (centre, rotate, rescale; ``dim``
    cuts), ``linear`` or ``mlp`` (InfoNCE on phase 1's pairs as frozen vectors). The fit
    reads only the training part of a split of ``data`` (``split``, ``seed``,
    ``test_fraction`` as ``evaluate`` makes it, or ``load_split``), so ``evaluate`` on that
    split is leak-free and refuses any other split the fit touched. Options are the
    command's flags (``dim``, ``hidden``, ``fit_on``, ``pairs``, ``max_pairs``, ``steps``,
    ``batch_size``, ``learning_rate``, ``scale``, ``format``, ``force``); ``settings``: a
    ``recfeat.finetuning.adapt.adapt_settings(...)`` instead. Returns an ``AdaptResult``
    (``.out``, ``.adaptor`` with ``.transform(vectors)``, ``.manifest``, ``.split``);
    ``recfeat.finetuning.adaptors.load_adaptor(out)`` reads it back."""
    import inspect

    from recfeat.errors import UsageError
    from recfeat.finetuning.adapt import AdaptSettings, adapt_settings, run_adapt
    from recfeat.finetuning.adaptors import adaptor_files
    from recfeat.outputs_guard import guard_outputs

    if settings is None:
        known = set(inspect.signature(adapt_settings).parameters) - {"features", "data", "kind"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"adapt: unknown option(s) {', '.join(unknown)}; use "
                             f"{', '.join(sorted(known))}")  # fmt: skip
        settings = adapt_settings(features, data=data, kind=kind, **options)
    elif features is not None or data is not None or kind is not None or options:
        raise UsageError("adapt: give settings, or features, data and keyword arguments, not both")
    _check_settings(settings, AdaptSettings, "adapt", "finetuning.adapt.adapt_settings")
    from recfeat.data import checks

    out = checks.path(out, "--out", what="a features file path", fix="pass e.g. out='adapted.parquet'")
    sidecars = adaptor_files(out)
    outputs = {"--out": out, "--out's adaptor": sidecars["params"],
               "--out's adaptor info": sidecars["info"], "--out's split": sidecars["split"]}  # fmt: skip
    if not settings.force:
        from recfeat.data.features import manifest_path

        for path in (out, manifest_path(out), *sidecars.values()):
            if Path(path).expanduser().exists():
                raise UsageError(f"{path} already exists; pass --force to replace the adapted "
                                 "features and their adaptor")  # fmt: skip
    guard_outputs(outputs, settings.inputs(), files=True)
    checks.existing_file(settings.features, "FEATURES", what="features file",
                         fix="create it with recfeat extract")  # fmt: skip
    loaded = _dataset(settings.data, "--data", format=settings.format)
    return run_adapt(loaded, settings, out, progress=progress, echo=echo)


def explain(model, user, items=None, *, k: int = 10, data=None, features=None,
            format: str = "auto", include_seen: bool = False, encoder=None, top: int = 3,
            sentences: int = 3, tokens: int = 5, trust: bool = False) -> dict[str, Any]:  # fmt: skip
    """Why ``model`` recommends what it does to ``user`` (one id): for each of the user's top
    ``k`` items (as ``recommend`` ranks them), or each of ``items``, the evidence from the
    user's OWN history (docs/explain.md): the ``top`` history items that add most to its
    score, and for text models the ``sentences`` of the user's own reviews closest to the
    item and the ``tokens`` those reviews share with it. ``model``: a ``TrainedModel`` from
    ``train``, a model file path (``trust`` as in ``load_model``) or a fitted model. ``data``
    (a RecData, a dataset path read as ``format``, or a DataFrame): the reviews the sentences and tokens
    come from (only this user's rows are read), and the history of a fitted model that
    keeps none. ``features``: item features of new items to rank too; ``encoder``: what
    encodes sentences (default: the encoder the model's features were made with). Returns
    one dict (``recfeat.explanations.explanation``'s shape); a model that explains nothing is a
    UsageError."""
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.explanations.explanation import explain_bundle
    from recfeat.training.bundle import user_ids

    bundle = _trained(model, "model", trust=trust, fitted=True)
    users = user_ids(user)
    if len(users) != 1:
        raise UsageError(f"explain: one user at a time (got {len(users)}); call it per user")
    k = checks.integer(k, "k", low=1, example=10)
    top, sentences, tokens = (checks.integer(v, n, low=0, example=3) for v, n in
                              ((top, "top"), (sentences, "sentences"), (tokens, "tokens")))  # fmt: skip
    if items is not None:
        items = user_ids(items)  # one id or a list, as for users
    dataset = None if data is None else _dataset(data, "data", format=format)
    if isinstance(encoder, (str, Path)):
        encoder = globals()["encoder"](encoder)
    return explain_bundle(
        bundle, users[0], items, k=k, extra_features=_features(features, "features"),
        reviews=None if dataset is None else dataset.reviews,
        interactions=None if dataset is None else dataset.interactions,
        include_seen=checks.flag(include_seen, "include_seen"), encoder=encoder, top=top,
        sentences=sentences, tokens=tokens,
    )  # fmt: skip


def _trained(model, name: str, *, trust: bool = False, fitted: bool = False) -> TrainedModel:
    """A ``TrainedModel`` as it is, a model file path (``load_model``, ``trust`` as there), a
    bundle dict (deprecated) or, with ``fitted``, a fitted model (no saved history) -> a
    ``TrainedModel``; anything else is one UsageError naming what ``name`` takes."""
    from recfeat.data import checks
    from recfeat.training.bundle import TrainedModel, check_bundle

    if isinstance(model, (str, Path)):
        return load_model(model, trust=trust)
    if isinstance(model, (TrainedModel, dict)):
        return check_bundle(model)
    if fitted and hasattr(model, "score_items") and getattr(model, "is_fitted_", False):
        return TrainedModel(model=model, header={"model": model.name or type(model).__name__,
                                                 "features": getattr(model, "feature_source_", None)})  # fmt: skip
    wanted = "a TrainedModel (recfeat.train, recfeat.load_model) or a model file path"
    raise checks.refuse(name, wanted + (", or a fitted model" if fitted else ""), model,
                        "train one with recfeat.train(data, 'ease')"
                        + (" or fit recfeat.model('ease')" if fitted else ""))  # fmt: skip


def explain_eval(data=None, models=None, features=None, *, out: str | Path | None = None,
                 format: str = "auto", split: str = "random", seed: int = 0,
                 test_fraction: float = 0.2, users: int = 300, cite=(1, 3), draws: int = 5,
                 k: int = 10, min_history: int = 2) -> dict[str, Any]:  # fmt: skip
    """The faithfulness tests of ``recfeat explain-eval`` (docs/explain.md): on a ``split``
    of ``data`` (seeded), each of ``models`` (names, "a,b", or (name, options) pairs;
    default: content, ease-text, ease, als, hybrid-als, sasrec-text) is fitted on the
    training part; for up to ``users`` sampled test users per citation size c in ``cite``
    (each with at least max(``min_history``, 2c) distinct training items) the top ``k``
    items are explained, then (deletion) the c cited history items, or c random ones
    (``draws`` draws), are removed and the user re-scored, counting how often the item
    leaves the top ``k``; and (sufficiency) only they are kept, counting how often it stays.
    ``features``: review- or item-level features for the text models. Returns the result;
    ``out`` (a path stem) also writes ``<out>.json``, ``.md`` and ``.png``."""
    from recfeat.data import checks
    from recfeat.errors import UsageError
    from recfeat.explanations.faithfulness import FaithSettings
    from recfeat.explanations.report import write_report
    from recfeat.explanations.study import DEFAULT_MODELS as EXPLAIN_MODELS
    from recfeat.explanations.study import StudySettings, run_study
    from recfeat.outputs_guard import guard_outputs

    if data is None:
        raise UsageError("explain_eval: give data (a dataset path or RecData)")
    if models is None:
        models = list(EXPLAIN_MODELS)
    elif isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    if not models:
        raise UsageError("explain_eval: models is empty; pass e.g. 'content,ease-text'")
    if isinstance(cite, str):
        cite = [c.strip() for c in cite.split(",") if c.strip()]
    if isinstance(cite, (int, str)):
        cite = [cite]
    cite = tuple(sorted({checks.integer(int(c) if isinstance(c, str) and c.isdigit() else c,
                                        "--cite", low=1, example=1) for c in cite}))  # fmt: skip
    if not cite:
        raise UsageError("--cite is empty; pass citation sizes, e.g. 1,3")
    settings = StudySettings(
        split=checks.text(split, "--split", example="random"), seed=checks.seed(seed, "--seed"),
        test_fraction=checks.fraction(test_fraction, "--test-fraction"),
        users=checks.integer(users, "--users", low=2, example=300),
        min_history=checks.integer(min_history, "--min-history", low=2, example=2),
        faith=FaithSettings(k=checks.integer(k, "--k", low=1, example=10), cite=cite,
                            draws=checks.integer(draws, "--draws", low=1, example=5)),
    )  # fmt: skip
    out = checks.path(out, "--out", none=True, what="a path stem for the report",
                      fix="pass e.g. out='results/explain'")  # fmt: skip
    if out is not None:  # refused before any fitting: an output over an input, or a folder
        stem = Path(out)
        stem = stem.with_suffix("") if stem.suffix in (".json", ".md", ".png") else stem
        paths = {f"--out ({ext})": stem.with_name(stem.name + ext) for ext in (".json", ".md", ".png")}
        inputs = {label: value for label, value in (("DATA", data), ("--features", features))
                  if isinstance(value, (str, Path))}  # fmt: skip
        guard_outputs(paths, inputs, files=True)
    dataset = _dataset(data, "DATA", format=format)
    result = run_study(dataset, models, _features(features), settings)
    if out is not None:
        result["outputs"] = [str(p) for p in write_report(result, out)]
    return result
