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
    given = encoder if isinstance(encoder, (str, Path)) or encoder is None else None
    if settings is None:
        settings = extract_settings(config, data=path, level=level,
                                    encoder=None if given is None else str(given),
                                    train=train_interactions, **options)  # fmt: skip
    elif config is not None or options:
        raise UsageError("extract_file: give settings, or config and keyword arguments, not both")
    if out is None:
        raise UsageError("extract_file: give out (a .parquet file, or a folder with ray)")
    model = settings.make_encoder() if given is not None or encoder is None else encoder
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


def evaluate(data, item_features=None, models: Sequence[str] = ("global-mean", "bias"),
             peers: str | Sequence[str] = (), **options: Any):  # fmt: skip
    """Fit and score ``models`` on a split of ``data`` with rating and ranking metrics;
    ``item_features`` is a ``Features`` object, a feature file path, or None. ``peers``
    (``"implicit,lightfm,cornac"``) appends those libraries' standard models. ``tune=True``
    (``tune_trials=N``) first chooses each model's options on a validation split carved from
    the training part (recfeat.evaluation.tuning); ``result.info["tuning"]`` says what."""
    from recfeat.data.features import load_features
    from recfeat.evaluation.protocol import evaluate as run

    if isinstance(data, (str, Path)):
        data = load_dataset(data)
    if isinstance(item_features, (str, Path)):
        item_features = load_features(item_features)
    elif hasattr(item_features, "to_features"):  # straight from extract()
        item_features = item_features.to_features()
    if peers:
        from recfeat.plugins.peers import add_peers, expand_peers

        models = add_peers(list(models), expand_peers(peers, text=item_features is not None))
    return run(data, item_features, models, **options)


def read_features(path: str | Path):
    """A feature file written by ``extract(...).save(path)`` (or ``recfeat extract``)."""
    from recfeat.data.features import load_features

    return load_features(path)


def train(data, model: str, options: dict[str, Any] | None = None, **kwargs: Any):
    """Fit ``model`` on every interaction of ``data``; returns the bundle ``save_model`` and
    ``recommend`` take."""
    from recfeat.training.bundle import train_model

    if isinstance(data, (str, Path)):
        data = load_dataset(data)
    return train_model(data, model, options, **kwargs)


def save_model(bundle: dict[str, Any], path: str | Path) -> Path:
    from recfeat.training.bundle import save_model as save

    return save(bundle, path)


def load_model(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """A model file from ``save_model`` (loading runs no code from it). ``trust=True`` also
    opens an old pickle (joblib) model file, which runs whatever code it holds: only for
    files you made yourself."""
    from recfeat.training.bundle import load_model as load

    return load(path, trust=trust)


def recommend(bundle: dict[str, Any], users, k: int = 10, **options: Any):
    """Top-``k`` items for each of ``users`` from a trained bundle."""
    from recfeat.training.bundle import recommend as rank

    return rank(bundle, users, k, **options)


def export(encoder: str = "minilm", out: str | Path = "recfeat-export", *, backend: str = "onnx",
           optimize: str | None = None, quantize: str | None = None,
           calibration: Sequence[str] | None = None, force: bool = False,
           **options: Any) -> dict[str, Any]:  # fmt: skip
    """Export the text ``encoder`` (a name for :func:`encoder`; pooling and normalisation in
    the graph) to the folder ``out`` for ``backend`` (``onnx`` or ``openvino``), optimised
    and/or quantised, validating every step against torch; returns the manifest. The folder
    is then an encoder for ``encoder(out)``. ``calibration`` texts drive static int8 and
    validation; other options are ``ExportSpec`` fields (``min_cosine``, ``auto_exclude``)."""
    from recfeat.exporters.pipeline import run_export, spec_from_encoder

    source = globals()["encoder"](encoder)
    texts = list(calibration) if calibration is not None else None
    spec = spec_from_encoder(source, format=backend, optimize=optimize, quantize=quantize,
                             texts=texts, **options)  # fmt: skip
    return run_export(spec, out, force=force)


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
