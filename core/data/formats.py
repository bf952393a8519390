"""Which reader an input path needs: the single ``detect_format`` for every command.

``recfeat extract/evaluate/data`` load whole datasets and ask every registered dataset
loader to sniff the path (specific layouts first, so a MovieLens folder or an Amazon review
file is never taken for a plain table). ``recfeat clean/tokenize`` stream one text column
and only need to know text, CSV or JSONL; they call the same function with
``stream=True``, which goes by the file name alone (the input may be stdin) and reads
anything unrecognised, ``.txt`` included, as plain text (one text per line).
"""

from __future__ import annotations

from pathlib import Path

from recfeat.errors import DataError
from recfeat.plugin.registry import get_registry

# Checked in this order: specific layouts before generic tables.
SPECIFIC = ("movielens-100k", "movielens", "amazon")
GENERIC = ("csv", "jsonl", "parquet")


# streamed text columns (clean, tokenize): format -> file-name endings (optionally + .gz)
STREAM_SUFFIXES = {"csv": (".csv", ".tsv"), "jsonl": (".jsonl", ".ndjson", ".json")}


def detect_format(path: str | Path, fmt: str = "auto", *, stream: bool = False) -> str:
    """The format to read ``path`` with: ``fmt`` itself unless it is "auto".

    Datasets (default): the registered dataset loader whose sniffer recognises the path; a
    missing or unrecognised path is a DataError listing the formats to pass with --format.
    ``stream=True`` (clean, tokenize): "csv", "jsonl" or "text" by file name; stdin is text.
    """
    if fmt not in (None, "", "auto"):
        return fmt
    if stream:
        name = str(path).lower().removesuffix(".gz")
        for found, suffixes in STREAM_SUFFIXES.items():
            if name.endswith(suffixes):
                return found
        return "text"
    reg = get_registry("dataset")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"input path {str(p)!r} does not exist; check the path and try again")
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
