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
# the data files of a folder of shards, by format (optionally + .gz); READMEs and the like
# (no such ending) are not data
SHARD_SUFFIXES = {**STREAM_SUFFIXES, "parquet": (".parquet", ".pq")}


def shard_format(name: str) -> str | None:
    """The format a file of a folder of shards holds, by its name, or None (not data)."""
    name = name.lower().removesuffix(".gz")
    return next((fmt for fmt, ends in SHARD_SUFFIXES.items() if name.endswith(ends)), None)


def folder_data_files(folder: Path) -> dict[str, list[Path]]:
    """The data files of ``folder`` by format, in sorted order. Hidden and underscore names
    are not data (macOS ``._x.json`` forks, ``_SUCCESS``); a FIFO or device named like data
    is a DataError (``validation.check_regular``), never opened."""
    from recfeat.data.validation import check_regular

    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        fmt = shard_format(p.name)
        if fmt is None or p.name.startswith((".", "_")) or p.is_dir():
            continue
        if not p.exists():  # a dangling link: nothing to read
            continue
        check_regular(p)
        found.setdefault(fmt, []).append(p)
    return found


def check_one_format(folder: Path) -> None:
    """A folder of inputs is read as one format: files of several (``a.json`` beside
    ``b.csv``) are a DataError naming each format with an example file, not a silent read of
    one of them."""
    found = folder_data_files(folder)
    if len(found) < 2:
        return
    parts = [f"{fmt} ({files[0].name}{f' and {len(files) - 1} more' if len(files) > 1 else ''})"
             for fmt, files in found.items()]  # fmt: skip
    listing = ", ".join(parts[:-1]) + f" and {parts[-1]}"
    raise DataError(
        f"folder {folder} mixes data files of {len(found)} formats: {listing}; a folder is "
        "read as one format: move each format's files to a folder of its own (or convert "
        "them to one format) and pass one folder at a time"
    )


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
    from recfeat.data.validation import check_regular

    reg = get_registry("dataset")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"input path {str(p)!r} does not exist; check the path and try again")
    check_regular(p)  # a FIFO or device: say so (a sniffer would open it and wait)
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
    if p.is_dir():
        check_one_format(p)  # say why no loader claims a folder that mixes formats
    listing = ", ".join(n for n in names if n != "synthetic-books")
    kind = "folder" if p.is_dir() else "file"
    raise DataError(
        f"cannot tell the format of {kind} {p} (an Amazon .json(.gz), a MovieLens folder, "
        f".csv/.tsv, .jsonl or .parquet); pass --format, one of: {listing}"
    )
