"""The Python API: the whole job — load, extract, split, evaluate, train, recommend, export,
benchmark — as functions, importable as ``recfeat.<name>`` (see ``docs/python.md``).

This module sits at the top of the layers, beside the CLI (which calls the same functions):
it may import built-in plugins and exporters. Every import of a heavy library happens
inside a function, so ``import recfeat`` stays instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Names the CLI shows in --help (click choices, defaults), from light modules only.
from recfeat.bench.runs import DEFAULT_CPU_BACKENDS, DEFAULT_GPU_BACKENDS  # noqa: F401
from recfeat.demo import DEFAULT_OUT as DEMO_OUT  # noqa: F401
from recfeat.encode.vocabulary import BACKENDS, PRECISIONS  # noqa: F401
from recfeat.plugin.report import COMPONENT_KEYS, PLUGIN_ROW_KEYS  # noqa: F401
from recfeat.settings import DEFAULT_MODELS, SPLITS  # noqa: F401

#: The downstream gate's default sample of interactions (``--gate-interactions``): equal to
#: ``recfeat.selection.gate.GATE_INTERACTIONS``, which is not imported here so that importing
#: this module stays instant (tests/test_gate_intervals.py keeps the two equal).
GATE_INTERACTIONS_DEFAULT = 10_000


def load_dataset(path: str | Path | None = None, format: str = "auto", **options: Any):
    """A dataset as ``RecData`` (interactions, reviews, item texts): a file or folder in any
    format a dataset plugin reads (``format='auto'`` detects it), or ``format='sample'`` for
    the built-in SYNTHETIC sample."""
    from recfeat.plugins.datasets import load_dataset as load

    return load(path, format, **options)


def encoder(name: str = "minilm", /, *, backend: str | None = None, precision: str | None = None,
            **options: Any):  # fmt: skip
    """A text encoder in the one backend vocabulary (``recfeat.encode.vocabulary``), as
    ``--encoder`` names it on the command line.

    ``name`` is a registry name (``minilm``, ``bert-base``, ``gpt2``), a Hugging Face model
    (hub name or folder) or a folder written by ``export``; ``backend`` is ``torch``, ``onnx``
    or ``openvino`` (default: torch, or what an export folder holds); ``precision`` is
    ``fp32``, ``bf16``, ``fp16`` or ``int8``. Other options are the encoder's own
    (``recfeat components encoder`` lists them). The weights load on first use.
    """
    from recfeat.encode.vocabulary import resolve_encoder
    from recfeat.plugin.registry import get_registry

    registry_name, opts = resolve_encoder(name, backend=backend, precision=precision, **options)
    return get_registry("encoder").create(registry_name, **opts)


def model(name: str, /, **options: Any):
    """An unfitted recommendation model, as ``--model`` names it on the command line:
    ``name`` is a registered model (``bias``, ``mf``, ``als``, ``content``, ``hybrid-als``;
    ``recfeat components model`` lists them with their options), ``options`` its options,
    validated here. It follows scikit-learn's conventions (``fit(X, y)``, ``predict``,
    ``get_params`` / ``set_params``, ``clone``), so it goes straight into ``Pipeline`` and
    ``GridSearchCV`` with ``rmse_scorer`` or ``ranking_scorer``."""
    from recfeat.plugin.registry import get_registry

    return get_registry("model").create(name, **options)


def extract(data, level: str = "review", encoder=None, **options: Any):
    """Vectors for ``data`` (RecData, or a path given to ``load_dataset``) at ``level``
    ('review', 'item', 'user'); ``encoder`` is an encoder object, a model for ``encoder()``,
    or None for the default. Returns a ``FeatureResult`` (``.save(path)`` writes Parquet +
    manifest). Options: see ``recfeat.extraction.pipeline.extract``."""
    from recfeat.extraction.pipeline import extract as run

    if isinstance(data, (str, Path)):
        data = load_dataset(data)
    if isinstance(encoder, str):
        encoder = globals()["encoder"](encoder)
    return run(data, level, encoder, **options)


def extract_settings(config=None, **flags: Any):
    """The settings of one extraction (``recfeat.settings.ExtractSettings``): built-in
    defaults < ``config`` (a TOML path or dict, as ``--config``) < ``flags`` (the ``extract``
    command's flags as keyword arguments; None: not given)."""
    from recfeat.settings import extract_settings as resolve

    return resolve(config, **flags)


# extract_file's keyword arguments that are settings (the rest: encoder object, progress, echo)
_EXTRACT_KEYWORDS = {
    "format", "loader_options", "encoding", "skip_bad_rows", "backend", "pooling", "precision",
    "batch_tokens", "max_length", "device", "cleaners", "token_features", "aggregate",
    "user_from", "cache", "chunk_size", "batch_rows", "stream", "ray", "min_cosine",
    "max_drop", "gate_interactions",
}  # fmt: skip


def extract_file(path: str | Path | None = None, out: str | Path | None = None,
                 level: str | None = None, encoder=None, *, config=None, settings=None,
                 train_interactions=None, progress: bool | None = None, echo=None,
                 **options: Any):  # fmt: skip
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
    from recfeat.errors import UsageError
    from recfeat.extraction.files import extract_to

    unknown = sorted(set(options) - _EXTRACT_KEYWORDS)
    if unknown:
        raise UsageError(f"extract_file: unknown option(s) {', '.join(unknown)}; use "
                         f"{', '.join(sorted(_EXTRACT_KEYWORDS))}")  # fmt: skip
    named = isinstance(encoder, (str, Path))  # a setting; anything else is an encoder object
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
                                gate_interactions=settings.gate_interactions)  # fmt: skip
    extra = {} if settings.batch_rows is None else {"batch_rows": settings.batch_rows}
    return extract_to(
        settings.data, out, settings.level, model, settings.cleaners, fmt=settings.format,
        loader_options=settings.loader_options, stream=settings.stream, ray=settings.ray,
        train_interactions=settings.train, token_features=settings.token_features,
        inputs=settings.inputs, choose_encoder=choose, echo=echo, aggregate=settings.aggregate,
        user_from=settings.user_from, cache=settings.cache, chunk_size=settings.chunk_size,
        progress=progress, **extra,
    )  # fmt: skip


def make_split(interactions, kind: str = "random", **options: Any):
    """Train/test split of an interactions frame: random, temporal, item-cold, user-cold."""
    from recfeat.evaluation.splits import make_split as split

    if hasattr(interactions, "interactions"):  # a RecData
        interactions = interactions.interactions
    return split(interactions, kind, **options)


def evaluate_settings(config=None, *, peers: str | Sequence[str] = (), **flags: Any):
    """The settings of one evaluation (``recfeat.settings.EvaluateSettings``): built-in
    defaults < ``config`` (a TOML path or dict, as ``--config``: ``[[models]]``,
    ``[[metrics]]``, ``[dataset]``, ``[pipeline]`` split settings) < ``flags`` (the
    ``evaluate`` command's flags as keyword arguments, ``item_features`` for ``--features``,
    ``model_options`` for ``-O``; None: not given). ``peers`` (``"implicit,lightfm,cornac"``)
    appends those libraries' standard models (the text ones only with ``item_features``);
    ``-O`` options reach them as they reach every listed model."""
    from recfeat.settings import evaluate_settings as resolve

    peer_models: list[str] = []
    if peers:
        from recfeat.plugins.peers import expand_peers

        peer_models = expand_peers(peers, text=flags.get("item_features") is not None)
    return resolve(config, peer_models=peer_models, **flags)


# evaluate's keyword arguments that are settings (the rest: data, features, split, outputs)
_EVALUATE_KEYWORDS = {
    "format", "model_options", "metrics", "k", "seed", "test_fraction", "relevance_threshold",
    "cold_reviews", "cold_protocol", "candidates", "rank_rating_models", "merge_variants",
    "trust_features", "tune", "tune_trials", "load_split",
}  # fmt: skip


def evaluate(data=None, item_features=None, models=None, *, config=None, settings=None,
             peers: str | Sequence[str] = (), user_features=None, split=None,
             out: str | Path | None = None, plot: str | Path | None = None,
             save_split: str | Path | None = None, progress: bool | None = None,
             **options: Any):  # fmt: skip
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
    (``result.info["tuning"]`` says what). ``out`` (JSON), ``plot`` (PNG) and ``save_split``
    are written together once the run passed, and refused before any work when they would
    overwrite an input."""
    from recfeat.errors import UsageError

    unknown = sorted(set(options) - _EVALUATE_KEYWORDS)
    if unknown:
        raise UsageError(f"evaluate: unknown option(s) {', '.join(unknown)}; use "
                         f"{', '.join(sorted(_EVALUATE_KEYWORDS))}")  # fmt: skip
    made = None if split is None or isinstance(split, str) else split  # a Split, used as is
    if settings is None:
        if "relevance_threshold" in options and options["relevance_threshold"] is None:
            options["relevance_threshold"] = "none"  # here None says: every held-out one
        settings = evaluate_settings(
            config, data=data, item_features=item_features, user_features=user_features,
            models=models, peers=peers, split=None if made is not None else split, **options,
        )  # fmt: skip
    elif any(v is not None for v in (config, data, item_features, user_features, models)) or (
        peers or options or isinstance(split, str)
    ):
        raise UsageError("evaluate: give settings, or the data, config and keyword arguments, "
                         "not both")  # fmt: skip
    return _evaluate_with(settings, made, out=out, plot=plot, save_split=save_split,
                          progress=progress)  # fmt: skip


def _features(value):
    """A feature file path, an ``extract()`` result or features -> features (None or "":
    none given)."""
    from recfeat.data.features import load_features

    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, (str, Path)):
        return load_features(value)
    if hasattr(value, "to_features"):  # straight from extract()
        return value.to_features()
    return value


def _evaluate_with(settings, split, *, out, plot, save_split, progress):
    """``evaluate`` once its settings are resolved: outputs checked, data and features read,
    product variants merged, the split made (or loaded), the protocol run, outputs written."""
    import dataclasses

    from recfeat.errors import UsageError
    from recfeat.evaluation.leaks import merge_variants, remap_features
    from recfeat.evaluation.protocol import evaluate as run
    from recfeat.evaluation.splits import load_split, make_split
    from recfeat.outputs_guard import guard_outputs

    guard_outputs({"--out": out, "--plot": plot, "--save-split": save_split}, settings.inputs,
                  files=True)  # fmt: skip
    data = settings.data
    if data is None:
        raise UsageError("evaluate: give data (a dataset path or RecData)")
    if isinstance(data, (str, Path)):
        fmt, loader_options = settings.dataset
        data = load_dataset(data, format=fmt, **loader_options)
    item_features = _features(settings.item_features)
    user_features = _features(settings.user_features)
    protocol = settings.protocol
    if protocol.merge_variants and split is None:  # before splitting: it is over product groups
        data, mapping = merge_variants(data)
        item_features = remap_features(item_features, mapping)
        protocol = dataclasses.replace(protocol, merge_variants=False)
    if split is None and settings.load_split:
        split = load_split(settings.load_split, data.interactions)
    elif split is None:
        split = make_split(data.interactions, settings.split, seed=protocol.seed,
                           test_fraction=protocol.test_fraction)  # fmt: skip
    result = run(data, item_features, settings.models, split, user_features=user_features,
                 protocol=protocol, progress=progress)  # fmt: skip
    _write_evaluation(result, data, split, out=out, plot=plot, save_split=save_split)
    return result


def _write_evaluation(result, data, split, *, out, plot, save_split) -> None:
    """``out`` (the JSON result), ``plot`` (a bar chart) and ``save_split`` (the split's
    rows), the ones given, as one unit: all new, or the earlier files untouched."""
    from recfeat.atomic import write_file, write_together
    from recfeat.evaluation.protocol import plot_result
    from recfeat.evaluation.splits import save_split as write_split

    title = f"{data.name}: {split.kind} split, k={result.info['k']}"
    write_together({
        out: lambda tmp: write_file(tmp, (result.to_json() + "\n").encode()),
        plot: lambda tmp: plot_result(result, tmp, title=title),
        save_split: lambda tmp: write_split(split, tmp, data.interactions),
    })  # fmt: skip


def read_features(path: str | Path):
    """A feature file written by ``extract(...).save(path)`` (or ``recfeat extract``)."""
    from recfeat.data.features import load_features

    return load_features(path)


def train_settings(**flags: Any):
    """The settings of one training run (``recfeat.settings.TrainSettings``): built-in
    defaults < ``flags`` (the ``train`` command's flags as keyword arguments: ``data``,
    ``model``, ``options``, ``format``, ``item_features``, ``user_features``)."""
    from recfeat.settings import train_settings as resolve

    return resolve(**flags)


def train(data=None, model: str | None = None, options: dict[str, Any] | None = None, *,
          settings=None, out: str | Path | None = None, **kwargs: Any):  # fmt: skip
    """Fit ``model`` (with its ``options``) on every interaction of ``data`` (a RecData or a
    dataset path, read as ``format=``); ``item_features``/``user_features``: features or
    feature file paths. Returns the bundle ``save_model`` and ``recommend`` take; ``out``
    also saves it there, refused before any work when it would overwrite an input.
    ``settings``: a ``train_settings(...)`` instead of the arguments."""
    from recfeat.errors import UsageError
    from recfeat.outputs_guard import guard_outputs
    from recfeat.training.bundle import train_model

    if settings is None:
        settings = train_settings(data=data, model=model, options=options, **kwargs)
    elif data is not None or model is not None or options is not None or kwargs:
        raise UsageError("train: give settings, or the data, model and options, not both")
    guard_outputs({"--out": out}, settings.inputs, files=True)
    dataset = settings.data
    if isinstance(dataset, (str, Path)):
        dataset = load_dataset(dataset, format=settings.format)
    bundle = train_model(dataset, settings.model, settings.options,
                         item_features=_features(settings.item_features),
                         user_features=_features(settings.user_features))  # fmt: skip
    if out is not None:
        save_model(bundle, out)
    return bundle


def save_model(bundle: dict[str, Any], path: str | Path) -> Path:
    """Write a bundle from ``train`` to ``path`` (one file, atomically, in the safe format)."""
    from recfeat.training.bundle import save_model as save

    return save(bundle, path)


def load_model(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """A model file from ``save_model`` (loading runs no code from it). ``trust=True`` also
    opens an old pickle (joblib) model file, which runs whatever code it holds: only for
    files you made yourself."""
    from recfeat.training.bundle import load_model as load

    return load(path, trust=trust)


def recommend_settings(**flags: Any):
    """The settings of one ``recommend`` call (``recfeat.settings.RecommendSettings``):
    built-in defaults < ``flags`` (the ``recommend`` command's flags as keyword arguments:
    ``users``, ``k``, ``features``, ``data``, ``format``, ``include_seen``)."""
    from recfeat.settings import recommend_settings as resolve

    return resolve(**flags)


def recommend(bundle: dict[str, Any], users=None, k: int | None = None, *, settings=None,
              **options: Any):  # fmt: skip
    """Top-``k`` items (default 10) for each of ``users`` (ids, or "u1,u2") from a trained
    bundle, as ``recfeat recommend`` ranks them; ``Ranking`` objects, best first. Options,
    named as the command's flags: ``features`` (item features of new items to rank too: a
    path or Features, same encoder as training), ``data`` (with ``format``: a dataset whose
    item texts give the snippets; default: the ones saved with the model),
    ``include_seen``. ``settings``: a ``recommend_settings(...)`` instead."""
    from recfeat.errors import UsageError
    from recfeat.training.bundle import item_snippets
    from recfeat.training.bundle import recommend as rank

    if settings is None:
        settings = recommend_settings(users=users, k=k, **options)
    elif users is not None or k is not None or options:
        raise UsageError("recommend: give settings, or users, k and options, not both")
    snippets = None
    if settings.data is not None:
        data = settings.data
        if isinstance(data, (str, Path)):
            data = load_dataset(data, format=settings.format)
        snippets = item_snippets(data)
    return rank(bundle, settings.users, settings.k, extra_features=_features(settings.features),
                include_seen=settings.include_seen, snippets=snippets)  # fmt: skip


def demo_settings(**flags: Any):
    """The settings of the demo (``recfeat.demo.DemoSettings``): built-in defaults <
    ``flags`` (the ``demo`` command's flags as keyword arguments: ``data``, ``format``,
    ``loader_options``, ``out``, ``cache``)."""
    from recfeat.demo import demo_settings as resolve

    return resolve(**flags)


def run_demo(data=None, out: str | Path | None = None, *, settings=None, echo=None,
             **options: Any):  # fmt: skip
    """The demo behind ``recfeat demo``: extract review and item vectors with the default
    encoder and evaluate the demo models on them (a random and an item-cold split), into the
    folder ``out`` (default ``DEMO_OUT``). ``data``: a RecData, a dataset path (read as
    ``format=`` with ``loader_options=``), or None for the SYNTHETIC sample; ``cache``: the
    vector cache (None: the default folder, False: none); ``echo``: where progress lines go
    (default: stdout). Returns the ``DemoContext`` (``outputs``, ``results``, ``timings``)."""
    from recfeat.demo import run_from_settings
    from recfeat.errors import UsageError

    if settings is None:
        settings = demo_settings(data=data, out=out, **options)
    elif data is not None or out is not None or options:
        raise UsageError("run_demo: give settings, or data, out and options, not both")
    return run_from_settings(settings, echo=echo)


def export_settings(config=None, **flags: Any):
    """The settings of one export (``recfeat.settings.ExportSettings``): built-in defaults <
    ``config`` (a TOML path or dict, as ``--config``: ``[encoder]``, ``[exporter]``) <
    ``flags`` (the ``export`` command's flags as keyword arguments; None: not given)."""
    from recfeat.settings import export_settings as resolve

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
    from recfeat.errors import UsageError
    from recfeat.outputs_guard import guard_outputs

    unknown = sorted(set(options) - _EXPORT_KEYWORDS)
    if unknown:
        raise UsageError(f"export: unknown option(s) {', '.join(unknown)}; use "
                         f"{', '.join(sorted(_EXPORT_KEYWORDS))}")  # fmt: skip
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
    from recfeat.exporters.manifest import read_manifest, verify_folder

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
    from recfeat.selection import backends as sb

    ctx = sb.BuildContext(encoder=encoder)
    return run_throughput(
        encoder=encoder, backends=bb.parse_backends(backends, kind=sb.RECFEAT),
        peers=bb.parse_backends(peers, kind=sb.PEER) if peers else (),
        texts=texts, ctx=ctx, **options,
    )  # fmt: skip


def choose_backend(encoder: str, texts: Sequence[str], **options: Any):
    """``--backend auto`` from Python: time the text ``encoder``'s candidate backends on a
    sample of ``texts`` and keep the fastest whose mean cosine to torch fp32 is >=
    ``min_cosine`` (0.99) and, given ``data`` (a RecData), whose cold-start NDCG@10
    (content) and RMSE (ridge) on a sample split of it stay within ``max_drop`` (1%) of
    torch fp32's (cached per machine, encoder and gate settings); returns
    ``(choice, encoder)`` — ``choice.summary()`` says what and why."""
    from recfeat.selection import backends as sb
    from recfeat.selection.auto_backend import choose_backend as choose
    from recfeat.selection.auto_backend import encoder_for_choice, sample_texts

    data = options.pop("data", None)
    if data is not None and "gate" not in options:
        from recfeat.selection.gate import task_gate

        options["gate"] = task_gate(data)
    ctx = options.pop("ctx", None) or sb.BuildContext(encoder=encoder)
    choice = choose(encoder, sample_texts(list(texts)), ctx=ctx, **options)
    return choice, encoder_for_choice(choice, ctx)


# -- serve ----------------------------------------------------------------------------------


def serve_settings(config=None, **flags: Any):
    """The settings of one server (``recfeat.settings.ServeSettings``): built-in defaults <
    ``config`` (a TOML path or dict, as ``--config``: ``[encoder]``, ``cleaners``,
    ``[dataset]``) < ``flags`` (the ``serve`` command's flags as keyword arguments; None:
    not given)."""
    from recfeat.settings import serve_settings as resolve

    return resolve(config, **flags)


# serve's keyword arguments that are settings, named as the command's flags
_SERVE_KEYWORDS = {
    "backend", "precision", "device", "threads", "cleaners", "model", "trust", "data", "format",
    "loader_options", "item_features", "host", "port", "api_key", "max_batch_tokens",
    "batch_window_ms", "max_queue", "max_inputs", "max_chars", "max_body_bytes",
    "request_timeout", "cache_size",
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
    state, load = build_state(
        settings.server, encoder=settings.label, engine=settings.make_encoder(),
        model=None if settings.model is None else str(settings.model), item_texts=texts,
        item_features=None if settings.item_features is None else str(settings.item_features),
        cleaners=settings.cleaners, trust=settings.trust,
    )  # fmt: skip
    run(state, load, bind(settings.server.host, settings.server.port), out=echo)


# -- bench ----------------------------------------------------------------------------------


def bench_throughput_report(out: str | Path, **options: Any):
    """``recfeat bench throughput``: ``(report folder, results)``. Options are the command's
    flags (``encoder``, ``backends``: None for the device's defaults ``DEFAULT_CPU_BACKENDS``
    / ``DEFAULT_GPU_BACKENDS``, ``peers``, ``device``, ``data``, ``gate``, ``force``...), all
    checked before any work; see ``recfeat.bench.runs.throughput_report``."""
    from recfeat.bench.runs import throughput_report

    return throughput_report(out, **options)


def bench_accuracy_report(data: str | Path, out: str | Path, **options: Any):
    """``recfeat bench accuracy``: ``(report folder, results)`` of each backend's parity to
    torch fp32 and downstream metrics on ``data``; options are the command's flags
    (``models``, ``split``, ``max_drop``, ``min_cosine``, ``force``...); see
    ``recfeat.bench.runs.accuracy_report``."""
    from recfeat.bench.runs import accuracy_report

    return accuracy_report(data, out, **options)


def bench_backends() -> list[Any]:
    """The backends and peers the benchmark harness knows (``recfeat bench backends``): each
    with ``name``, ``kind``, ``devices``, ``available`` (installed here), ``install`` and
    ``description``."""
    from recfeat.bench.runs import backend_table

    return backend_table()


# -- texts: clean, tokenize -------------------------------------------------------------------


def cleaner_chain(cleaners: str | Sequence[Any] | None = None, *, config=None):
    """The cleaner chain ``recfeat clean`` runs (``.clean(texts)``, ``.names``): ``cleaners``
    ("a,b", a list of specs; None: the default chain) or the ``cleaners`` list of ``config``
    (a TOML path or dict; none there: the default chain), not both."""
    from recfeat.errors import ConfigError, UsageError
    from recfeat.extraction.cleaning import build_cleaner_chain

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
    return build_cleaner_chain(cleaners)


def tokenizer(name: str | None = None, *, config=None, encoder: str | None = None,
              max_length: int | None = None, options: dict[str, Any] | Sequence[str] | None = None):  # fmt: skip
    """The tokenizer ``recfeat tokenize`` runs (``.tokenize(texts)``): ``name`` (a tokenizer
    component, default ``hf``) over ``config``'s ``[tokenizer]`` (a TOML path or dict; its
    options carry over while ``name`` names the same one); ``encoder``: the text encoder
    whose tokenizer to use (a Hugging Face model folder or hub name, or minilm);
    ``options``: other tokenizer options, a dict or ``KEY=VALUE`` strings."""
    from recfeat.config import chosen_component, parse_key_values
    from recfeat.errors import UsageError
    from recfeat.plugin.registry import get_registry
    from recfeat.settings import read_config

    cfg, _ = read_config(config)
    chosen, settings = chosen_component(cfg, "tokenizer", name, "hf")
    if isinstance(options, dict):
        settings.update(options)
    else:
        settings.update(parse_key_values(options or (), example="vocab_size=8000"))
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
    from recfeat.data.formats import detect_format as detect

    return detect(path, format, stream=stream)


# -- datasets ---------------------------------------------------------------------------------


def dataset_info(path: str | Path | None = None, format: str = "auto", *,
                 options: dict[str, Any] | Sequence[str] | None = None,
                 encoding: str | None = None, skip_bad_rows: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """``recfeat data info``: the counts and load report of the dataset at ``path`` (None or
    'sample': the built-in SYNTHETIC sample), read the way ``extract`` reads it.
    ``options``: loader options, a dict or ``KEY=VALUE`` strings (``-o``); ``encoding`` and
    ``skip_bad_rows`` unset: each loader's default."""
    from recfeat.config import parse_key_values

    if isinstance(options, dict):
        opts = dict(options)
    else:
        opts = parse_key_values(options or (), flag="--option", example="user_col=reader")
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
    from recfeat.errors import UsageError
    from recfeat.plugins.datasets.synthetic import write_sample as write

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
    from recfeat.plugin.report import plugins_report

    return plugins_report(include_builtin)


def list_components(kind: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """``recfeat components``: kind -> its registered components (``COMPONENT_KEYS``: kind,
    name, aliases, plugin, class, doc, options), for every kind or the one named."""
    from recfeat.plugin.report import components as listing

    return listing(kind)


def is_builtin_plugin(name: str) -> bool:
    """True for a plugin name (a component's ``plugin``) that ships with recfeat."""
    from recfeat.plugin.report import is_builtin

    return is_builtin(name)


def validate_config(config: str | Path | dict[str, Any]) -> list[str]:
    """Every problem of a pipeline config (a TOML path or dict), one line each; [] when it is
    valid. An unreadable or malformed file is a ConfigError."""
    from recfeat.config import read_config
    from recfeat.config import validate_config as check

    if isinstance(config, dict):
        return check(config, "config")
    return check(read_config(config), str(config))


# -- helpers the command line shares ------------------------------------------------------------


def guard_outputs(outputs: dict[str, Any], inputs: dict[str, Any] | None = None, **options: Any):
    """Refuse (UsageError) an output path that is an input, holds one, lies in an input
    folder or is another output; ``outputs``/``inputs`` map a label (``"--out"``) to a path
    or None. See ``recfeat.outputs_guard.guard_outputs``."""
    from recfeat.outputs_guard import guard_outputs as guard

    return guard(outputs, inputs, **options)


def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Like ``open(path, mode)`` as a context manager, but the file replaces ``path`` only
    once fully written."""
    from recfeat.atomic import atomic_open as opener

    return opener(path, mode, encoding)


def progress_bar(total: int | None, description: str, **options: Any):
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
