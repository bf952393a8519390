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


def encoder(model: str = "minilm", *, backend: str | None = None, precision: str | None = None,
            **options: Any):  # fmt: skip
    """An encoder in the one backend vocabulary (``recfeat.encode.vocabulary``).

    ``model`` is a registry name (``minilm``, ``bert-base``, ``gpt2``), a Hugging Face model
    (hub name or folder) or a folder written by ``export``; ``backend`` is ``torch``, ``onnx``
    or ``openvino`` (default: torch, or what an export folder holds); ``precision`` is
    ``fp32``, ``bf16``, ``fp16`` or ``int8``. Other options are the encoder's own
    (``recfeat components encoder`` lists them). The model loads on first use.
    """
    from recfeat.encode.vocabulary import resolve_encoder
    from recfeat.plugin.registry import get_registry

    name, opts = resolve_encoder(model, backend=backend, precision=precision, **options)
    return get_registry("encoder").create(name, **opts)


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


def extract_file(path: str | Path, out: str | Path, level: str = "review", encoder=None, *,
                 format: str = "auto", loader_options: dict[str, Any] | None = None,
                 stream: bool | None = None, **options: Any):  # fmt: skip
    """Extract the file or folder ``path`` straight into ``out`` (Parquet + manifest + run
    record, committed as one unit), as ``recfeat extract`` does. It streams
    (``recfeat.extraction.stream``: reads in batches, writes as it goes, memory set by the
    batch, not the corpus) whenever the input and options allow, else loads the dataset and
    runs :func:`extract`; the file is the same either way. ``stream=True`` insists (a
    UsageError says why it cannot), ``False`` loads. ``loader_options`` go to the dataset
    loader (``text_col=...``); other options are :func:`extract`'s, plus ``batch_rows``
    when streaming. Returns the result (``.manifest``, ``.run``, ``.to_features()``)."""
    from recfeat.errors import UsageError
    from recfeat.extraction.stream import stream_extract, why_not_streamed

    if isinstance(encoder, str):
        encoder = globals()["encoder"](encoder)
    loader_options = dict(loader_options or {})
    why = why_not_streamed(
        path, format, loader_options, level=level, user_from=options.get("user_from", "auto"),
        train=options.get("train_interactions"), token_features=options.get("token_features"),
        ray=bool(options.get("ray")),
    )  # fmt: skip
    if stream and why:
        raise UsageError(f"stream=True: this run cannot stream ({why})")
    if stream is not False and why is None:
        for unused in ("train_interactions", "token_features", "ray"):
            options.pop(unused, None)
        return stream_extract(path, out, level, encoder, fmt=format, options=loader_options,
                              **options)  # fmt: skip
    options.pop("batch_rows", None)
    result = extract(load_dataset(path, format, **loader_options), level, encoder, **options)
    result.save(out)
    return result


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
    from recfeat.evaluation.protocol import evaluate as run
    from recfeat.evaluation.protocol import load_features

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
    from recfeat.evaluation.protocol import load_features

    return load_features(path)


def train(data, model: str, options: dict[str, Any] | None = None, **kwargs: Any):
    """Fit ``model`` on every interaction of ``data``; returns the bundle ``save_model`` and
    ``recommend`` take."""
    from recfeat.evaluation.bundle import train_model

    if isinstance(data, (str, Path)):
        data = load_dataset(data)
    return train_model(data, model, options, **kwargs)


def save_model(bundle: dict[str, Any], path: str | Path) -> Path:
    from recfeat.evaluation.bundle import save_model as save

    return save(bundle, path)


def load_model(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """A model file from ``save_model`` (loading runs no code from it). ``trust=True`` also
    opens an old pickle (joblib) model file, which runs whatever code it holds: only for
    files you made yourself."""
    from recfeat.evaluation.bundle import load_model as load

    return load(path, trust=trust)


def recommend(bundle: dict[str, Any], users, k: int = 10, **options: Any):
    """Top-``k`` items for each of ``users`` from a trained bundle."""
    from recfeat.evaluation.bundle import recommend as rank

    return rank(bundle, users, k, **options)


def export(model: str = "minilm", out: str | Path = "recfeat-export", *, format: str = "onnx",
           optimize: str | None = None, quantize: str | None = None,
           calibration: Sequence[str] | None = None, force: bool = False,
           **options: Any) -> dict[str, Any]:  # fmt: skip
    """Export ``model`` (pooling and normalisation in the graph) to the folder ``out``,
    optimised and/or quantised, validating every step against torch; returns the manifest.
    The folder is then a model for ``encoder(out)``. ``calibration`` texts drive static int8
    and validation; other options are ``ExportSpec`` fields (``min_cosine``, ``auto_exclude``)."""
    from recfeat.exporters.pipeline import run_export, spec_from_encoder

    source = encoder(model)
    texts = list(calibration) if calibration is not None else None
    spec = spec_from_encoder(source, format=format, optimize=optimize, quantize=quantize,
                             texts=texts, **options)  # fmt: skip
    return run_export(spec, out, force=force)


def verify_export(path: str | Path) -> dict[str, Any]:
    """Check an export folder against its manifest (every file's size and sha256, the
    tokenizer); returns the manifest, raises ArtifactError naming what differs."""
    from recfeat.exporters.manifest import read_manifest, verify_folder

    manifest = read_manifest(path)
    verify_folder(path, list(manifest.get("files", {})))
    return manifest


def bench_throughput(model: str = "minilm", backends: str | Sequence[str] = "torch-fp32,torch-bf16",
                     *, peers: str | Sequence[str] = (), texts: Sequence[str] | None = None,
                     **options: Any) -> dict[str, Any]:  # fmt: skip
    """Time recfeat's backends (``backends``, in the vocabulary's ``BACKEND-PRECISION``
    spelling) and ``peers`` side by side; ``texts`` adds a real-corpus run."""
    from recfeat.bench import backends as bb
    from recfeat.bench.suite import run_throughput

    ctx = bb.BuildContext(encoder=model)
    return run_throughput(
        encoder=model, backends=bb.parse_backends(backends, kind=bb.RECFEAT),
        peers=bb.parse_backends(peers, kind=bb.PEER) if peers else (),
        texts=texts, ctx=ctx, **options,
    )  # fmt: skip


def choose_backend(model: str, texts: Sequence[str], **options: Any):
    """``--backend auto`` from Python: time the candidate backends on a sample of ``texts``
    and keep the fastest whose mean cosine to torch fp32 is >= ``min_cosine`` (0.99) and,
    given ``data`` (a RecData), whose cold-start NDCG@10 (content) and RMSE (ridge) on a
    sample split of it stay within ``max_drop`` (1%) of torch fp32's (cached per machine,
    model and gate settings); returns ``(choice, encoder)`` — ``choice.summary()`` says what
    and why."""
    from recfeat.bench import backends as bb
    from recfeat.bench.auto_backend import choose_backend as choose
    from recfeat.bench.auto_backend import encoder_for_choice, sample_texts

    data = options.pop("data", None)
    if data is not None and "gate" not in options:
        from recfeat.bench.gate import task_gate

        options["gate"] = task_gate(data)
    ctx = options.pop("ctx", None) or bb.BuildContext(encoder=model)
    choice = choose(model, sample_texts(list(texts)), ctx=ctx, **options)
    return choice, encoder_for_choice(choice, ctx)
