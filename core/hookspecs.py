"""Hook specifications: the whole plugin API of recfeat.

Each docstring is the reference for that hook (docs/plugins.md repeats them with examples,
and tests/test_docs.py keeps the two in step). Registration hooks receive a ``register``
callback so recfeat, not the plugin, decides what registering means: aliases, duplicate
detection and option validation can change without changing the hook.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("recfeat")
hookimpl = pluggy.HookimplMarker("recfeat")


@hookspec
def register_cleaners(register):
    """Register text cleaners (subclasses of ``recfeat.components.Cleaner``).

    Called once, the first time the cleaner registry is used. Call
    ``register(cls, name=None, aliases=())`` for each cleaner; ``name`` defaults to
    ``cls.name``. Return value is ignored.
    """


@hookspec
def register_tokenizers(register):
    """Register tokenizers (subclasses of ``recfeat.components.Tokenizer``) and sparse
    token-feature extractors (subclasses of ``recfeat.components.TokenFeaturizer``).

    Called once, the first time the tokenizer registry is used. Call
    ``register(cls, name=None, aliases=())``. Return value is ignored.
    """


@hookspec
def register_encoders(register):
    """Register text encoders (subclasses of ``recfeat.components.Encoder``).

    Called once, the first time the encoder registry is used. Call
    ``register(cls, name=None, aliases=())``. Return value is ignored.
    """


@hookspec
def register_models(register):
    """Register downstream recommendation models (subclasses of ``recfeat.components.RecModel``,
    which follow scikit-learn estimator conventions).

    Called once, the first time the model registry is used. Call
    ``register(cls, name=None, aliases=())``. Return value is ignored.
    """


@hookspec
def register_datasets(register):
    """Register dataset loaders (subclasses of ``recfeat.components.Dataset``).

    Called once, the first time the dataset registry is used. Call
    ``register(cls, name=None, aliases=())``. Return value is ignored.
    """


@hookspec
def register_metrics(register):
    """Register evaluation metrics (subclasses of ``recfeat.components.Metric``).

    Called once, the first time the metric registry is used. Call
    ``register(cls, name=None, aliases=())``. Return value is ignored.
    """


@hookspec
def register_exporters(register):
    """Register model exporters (subclasses of ``recfeat.components.Exporter``).

    Called once, the first time the exporter registry is used. Call
    ``register(cls, name=None, aliases=())``. Return value is ignored.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``recfeat`` command line.

    Called once when the CLI starts, with the root ``click.Group``; use ``@cli.command()``
    to add commands. Keep heavy imports inside the command functions so
    ``recfeat --help`` stays fast. Return value is ignored.
    """
