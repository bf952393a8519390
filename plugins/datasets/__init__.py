"""Built-in dataset loaders: Amazon reviews, MovieLens, generic tables, the synthetic sample.

Imported when the CLI starts, so it stays cheap: the loader modules (and pandas) are
imported only when the dataset registry is first used or a function below is called.

Use ``load_dataset(path)`` for any supported input; ``detect_format(path)`` says which
loader ``format="auto"`` picks.

Policies shared by every loader (details in ``validation``): empty or whitespace-only text
keeps its interaction, its text becomes ``""`` and is counted in ``report["empty_texts"]``;
bad rows (malformed JSON, missing ids, NaN or out-of-``rating_scale`` ratings) are a
``DataError`` naming the first one, or skipped and counted in ``report["bad_rows_skipped"]``
with ``skip_bad_rows=True``; repeated (user, item) pairs keep the latest row and are counted
in ``report["duplicates_dropped"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recfeat.errors import DataError
from recfeat.plugin.hookspecs import hookimpl

if TYPE_CHECKING:
    from recfeat.data.recdata import RecData

# Checked in this order by detect_format: specific layouts before generic tables, so a
# MovieLens folder or an Amazon review file is never taken for a plain table.
SPECIFIC = ("movielens-100k", "movielens", "amazon")
GENERIC = ("csv", "jsonl", "parquet")


def _classes():
    from .amazon import AmazonReviews
    from .movielens import MovieLens100K, MovieLensLatest
    from .synthetic import SyntheticBooks
    from .tabular import CsvTable, JsonLinesTable, ParquetTable

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


def detect_format(path: str | Path) -> str:
    """The registered dataset name that recognises ``path`` (by sniffing its layout)."""
    from recfeat.plugin.registry import get_registry

    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"input path {str(p)!r} does not exist; check the path and try again")
    reg = get_registry("dataset")
    names = reg.names()
    builtin = [n for n in SPECIFIC + GENERIC if n in names]
    others = [n for n in names if n not in builtin]
    # third-party loaders after the specific built-ins, before the catch-all tables
    for name in [*builtin[: len(SPECIFIC)], *others, *builtin[len(SPECIFIC) :]]:
        try:
            if reg.get(name).sniff(p):
                return name
        except Exception:  # noqa: BLE001 - a sniffer that fails just does not claim the path
            continue
    listing = ", ".join(n for n in names if n != "synthetic-books")
    kind = "folder" if p.is_dir() else "file"
    raise DataError(
        f"cannot tell the format of {kind} {p} (an Amazon .json(.gz), a MovieLens folder, "
        f".csv/.tsv, .jsonl or .parquet); pass --format, one of: {listing}"
    )


def load_dataset(path: str | Path | None, format: str = "auto", **options: Any) -> RecData:
    """Load ``path`` as ``recfeat.data.recdata.RecData``.

    ``format`` is a registered dataset name or alias, or ``"auto"`` (``detect_format``).
    ``options`` go to the loader (validated; unknown ones are rejected with the valid list);
    options whose value is None are dropped, so callers can pass "not given" through.
    ``path`` may be None only for the synthetic sample (``format="sample"``).
    """
    from recfeat.plugin.registry import get_registry

    options = {k: val for k, val in options.items() if val is not None}
    reg = get_registry("dataset")
    if format in (None, "", "auto"):
        if path is None:
            raise DataError(
                "no input path given; pass a path, or format='sample' for the synthetic sample"
            )
        format = detect_format(path)
    loader = reg.create(format, **options)
    if path is None and reg.entry(format).name != "synthetic-books":
        raise DataError(f"format {format!r} needs an input path")
    return loader.load(path)
