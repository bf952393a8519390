"""Hook specifications: the whole plugin API of recfeat.

Each docstring is the reference for that hook (docs/plugins.md repeats it word for word with
an example, and tests/test_docs.py keeps the two in step). Registration hooks receive a
``register(cls, name=None, aliases=())`` callback so recfeat, not the plugin, decides what
registering means: ``name`` defaults to ``cls.name`` and ``aliases`` to ``cls.aliases``;
aliases, duplicate detection and option validation can change without changing the hook.
Hooks may gain arguments (pluggy passes only those an implementation asks for); they are
never renamed.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("recfeat")
hookimpl = pluggy.HookimplMarker("recfeat")


@hookspec
def register_cleaners(register):
    """Register text cleaners: subclasses of ``recfeat.components.Cleaner``. Called once, the first
    time the cleaner registry is used. Return value is ignored.
    """


@hookspec
def register_tokenizers(register):
    """Register tokenizers (subclasses of ``recfeat.components.Tokenizer``) and sparse token-feature
    extractors (subclasses of ``recfeat.components.TokenFeaturizer``). Called once, the first time
    the tokenizer registry is used. Return value is ignored.
    """


@hookspec
def register_encoders(register):
    """Register text encoders: subclasses of ``recfeat.components.Encoder``. Called once, the first
    time the encoder registry is used. Return value is ignored.
    """


@hookspec
def register_models(register):
    """Register downstream recommendation models: subclasses of ``recfeat.components.RecModel``,
    which follow scikit-learn estimator conventions. Called once, the first time the model
    registry is used. Return value is ignored.
    """


@hookspec
def register_datasets(register):
    """Register dataset loaders: subclasses of ``recfeat.components.Dataset``. Called once, the first
    time the dataset registry is used. Return value is ignored.
    """


@hookspec
def register_metrics(register):
    """Register evaluation metrics: subclasses of ``recfeat.components.Metric`` (usually of
    ``RatingMetric`` or ``RankingMetric``). Called once, the first time the metric registry is used.
    Return value is ignored.
    """


@hookspec
def register_exporters(register):
    """Register model exporters: subclasses of ``recfeat.components.Exporter``. Called once, the first
    time the exporter registry is used. Return value is ignored.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``recfeat`` command line. Called once when the CLI starts, with the root
    ``click.Group``; use ``@cli.command()`` to add commands. Keep heavy imports inside the command
    functions so ``recfeat --help`` stays fast. Return value is ignored.
    """
