"""Built-in dataset loaders: Amazon reviews, MovieLens, generic tables, the synthetic sample.

Imported when the CLI starts, so it stays cheap: the loader modules (and pandas) are
imported only when the dataset registry is first used or a function below is called.

Use ``load_dataset(path)`` for any supported input; ``detect_format(path)`` says which
loader ``format="auto"`` picks.

Policies shared by every loader (details in ``validation``): empty or whitespace-only text
keeps its interaction, its text becomes ``""`` and is counted in ``report["empty_texts"]``;
bad rows (undecodable lines, malformed JSON or CSV lines, missing ids or ids that are lists
or objects, NaN / infinite / out-of-``rating_scale`` ratings, infinite or unparseable
timestamps) are a ``DataError`` naming the first one, or skipped and counted in
``report["bad_rows_skipped"]`` with ``skip_bad_rows=True``; repeated (user, item) pairs keep the latest row and are counted
in ``report["duplicates_dropped"]``.
"""

from __future__ import annotations

# one detect_format for every command (datasets and streamed text columns) lives in core
# ... and so does load_dataset (core code calls recfeat.components.dataset directly)
from recfeat.components.dataset import load_dataset  # noqa: F401
from recfeat.data.formats import GENERIC, SPECIFIC, detect_format  # noqa: F401
from recfeat.plugin.hookspecs import hookimpl

from .amazon import AmazonReviews
from .movielens import MovieLens100K, MovieLensLatest
from .synthetic import SyntheticBooks
from .tabular import CsvTable, JsonLinesTable, ParquetTable


def _classes():
    return (
        AmazonReviews,
        MovieLens100K,
        MovieLensLatest,
        CsvTable,
        JsonLinesTable,
        ParquetTable,
        SyntheticBooks,
    )


@hookimpl
def register_datasets(register):
    for cls in _classes():
        register(cls, name=cls.name, aliases=cls.aliases)
