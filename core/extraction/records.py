"""Review rows read in bounded batches: the streaming side of the dataset loaders.

``iter_review_batches(path)`` yields DataFrames of at most ``batch_rows`` rows with the
columns ``user, item, rating, timestamp, text``, normalised exactly as the whole-file loaders
normalise them (same id coercion, rating and timestamp checks, Amazon "summary. reviewText"
text), because it calls the loaders' own mapping code (``AmazonReviews`` ->
``ReviewRows``; the tables -> ``_Table.pick_columns``/``map_rows``). What it does *not* do is
the one step that needs the whole file: de-duplicating repeated (user, item) rows (the
loaders keep the latest; ``recfeat.extraction.stream`` does it in a first pass).

Row-streamable formats (``STREAMABLE``): ``amazon`` (JSON Lines, .gz too), ``jsonl``,
``csv`` (CSV/TSV, .gz too) and ``parquet``; a folder of shards is its files in sorted
order. MovieLens folders (ratings joined with item texts) are not: they keep the whole-table
loader. ``normalize_frame(frame, fmt)`` maps one raw batch read by someone else (pyarrow,
Ray Data's ``map_batches``) to the same columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from recfeat.data import validation as v
from recfeat.data.formats import check_one_format, detect_format
from recfeat.errors import DataError, UsageError
from recfeat.plugin.registry import get_registry

STREAMABLE = ("amazon", "jsonl", "csv", "parquet")
COLUMNS = ("user", "item", "rating", "timestamp", "text")
DEFAULT_BATCH_ROWS = 4096
# Table options that need the whole table (item texts from the same or another table).
_WHOLE_TABLE_OPTIONS = ("item_text_col", "items_path")


def _loader(fmt: str, options: dict[str, Any] | None):
    loader = get_registry("dataset").create(fmt, **(options or {}))
    if hasattr(loader, "validate"):
        loader.validate()
    return loader


def source_files(path: str | Path, fmt: str) -> list[Path]:
    """The files of ``path``: itself, or a folder's files of ``fmt`` in sorted order (a
    folder holding data files of another format too is a DataError, for every engine)."""
    path = v.check_path(path)
    if not path.is_dir():
        return [v.check_file(path)]
    check_one_format(path)
    suffixes = tuple(getattr(type(_loader(fmt, None)), "suffixes", ()))
    # hidden and underscore names are not data: macOS ``._x.json`` forks, ``_SUCCESS``, ``_stats/``
    found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
                   and p.name.lower().endswith(suffixes))  # fmt: skip
    if not found:
        raise DataError(f"folder {path} holds no {fmt} files; pass a file or a folder of shards")
    return found


def stream_format(path: str | Path, fmt: str = "auto", options: dict[str, Any] | None = None):
    """The format ``path`` is read with if it can be read in batches, else None (MovieLens,
    item texts from a table, CSV with ``skip_bad_rows``, third-party loaders)."""
    p = Path(path).expanduser()
    if fmt in (None, "", "auto") and p.is_dir():
        fmt = _folder_format(p)
        if fmt is None:
            return None
    fmt = detect_format(p, fmt or "auto")
    options = options or {}
    if fmt == "tsv":
        fmt = "csv"
    if fmt == "ndjson":
        fmt = "jsonl"
    if fmt not in STREAMABLE or any(options.get(k) for k in _WHOLE_TABLE_OPTIONS):
        return None
    if fmt == "csv" and options.get("skip_bad_rows"):
        return None  # skipping undecodable lines needs the whole text (CsvTable._read_skipping)
    return fmt


def _folder_format(folder: Path) -> str | None:
    """A folder of shards: the one streamable format of its data files (READMEs and other
    files no loader claims are ignored); None for a folder a dataset loader reads as a
    whole (MovieLens); one holding data files of several formats is a DataError."""
    check_one_format(folder)
    try:
        whole = detect_format(folder)
    except DataError:
        whole = None
    if whole is not None:
        return whole if whole in STREAMABLE else None  # amazon: its one review file
    found = set()
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        try:
            found.add(detect_format(p))
        except DataError:
            continue
    return found.pop() if len(found) == 1 and found <= set(STREAMABLE) else None


def iter_review_batches(
    path: str | Path,
    fmt: str = "auto",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: Sequence[str] | None = None,
    *,
    options: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
) -> Iterator[Any]:
    """Normalised review rows of ``path`` in batches: :func:`iter_file_batches` without the
    file numbers."""
    for _, frame in iter_file_batches(path, fmt, batch_rows, columns, options=options,
                                      report=report):  # fmt: skip
        yield frame


def iter_file_batches(
    path: str | Path,
    fmt: str = "auto",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: Sequence[str] | None = None,
    *,
    options: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
    only_file: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """Normalised review rows of ``path`` (a file or a folder of shards), ``batch_rows`` at
    a time, as DataFrames with ``columns`` (default ``COLUMNS``).

    ``options`` are the dataset loader's (``text_fields``, ``user_col``..., ``encoding``,
    ``skip_bad_rows``, ``rating_scale``). Bad rows raise one DataError naming the file and
    line (row), or are skipped and counted with ``skip_bad_rows``. ``report``, when given,
    is filled as the loader fills ``RecData.report`` (rows read, bad rows skipped, Amazon
    schema and field counts), except ``duplicates_dropped`` and ``empty_texts``, which
    depend on de-duplication; it is complete once the iterator is exhausted. ``user`` and
    ``item`` are str, ``rating`` float64, ``timestamp`` int64 (-1: unknown), ``text`` str
    ("" when empty). Rows come in file order, files in sorted order; each batch comes with
    the number of its file in ``source_files(path, fmt)`` (a batch never spans two files).

    ``only_file=i`` reads file i alone (a Ray read task): the checks that need every file
    (a text field no file has, a table with no rows) are left to the full pass that planned
    the run (``recfeat.extraction.sources.plan_rows``)."""
    if batch_rows < 1:
        raise UsageError(f"batch rows must be at least 1, got {batch_rows}")
    found = stream_format(path, fmt, options)
    if found is None:
        raise UsageError(
            f"{path}: this input cannot be read in batches (format {fmt}); load it whole "
            "with recfeat.load_dataset"
        )
    wanted = list(columns) if columns is not None else list(COLUMNS)
    unknown = [c for c in wanted if c not in COLUMNS]
    if unknown:
        raise UsageError(
            f"unknown column(s) {', '.join(unknown)}; choose from {', '.join(COLUMNS)}"
        )
    report = {} if report is None else report
    files = source_files(path, found)
    whole = only_file is None
    if not whole:
        files = [files[only_file]]
    report.setdefault("format", found)
    report.setdefault("file", str(files[0]) if len(files) == 1 else str(Path(path)))
    loader = _loader(found, options)
    if found == "amazon":
        batches = _amazon(files, loader, batch_rows, report, finish=whole)
    else:
        read = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}[found]
        report.setdefault("rows_read", 0)
        report.setdefault("bad_rows_skipped", 0)
        batches = (
            (n, b)
            for n, f in enumerate(files)
            for b in _tables(f, loader, read(f, loader, batch_rows, report), report)
        )
    rows = 0
    for n, frame in batches:
        if len(frame):
            rows += len(frame)
            yield (n if whole else only_file), frame[wanted]
    dropped = report.pop("_dropped", 0)
    if dropped:
        report["bad_rows_skipped"] = report.get("bad_rows_skipped", 0) + dropped
    if not rows and found != "amazon" and whole:
        raise DataError(f"input {path} has a header but no rows; nothing to load")


def _finish(df, loader, report: dict[str, Any], locate):
    """The loaders' row checks and types, on one batch. Rows dropped here are counted in
    ``report["_dropped"]`` and added to ``bad_rows_skipped`` after the last batch, where the
    whole-file loader adds them (so the two reports have the same keys in the same order)."""
    scratch: dict[str, Any] = {}
    df = v.drop_bad_rows(
        df, rating_scale=loader.rating_scale, skip_bad_rows=loader.skip_bad_rows,
        report=scratch, locate=locate,
    )  # fmt: skip
    report["_dropped"] = report.get("_dropped", 0) + scratch.get("bad_rows_skipped", 0)
    return _types(df)


def _types(df):
    import pandas as pd

    scratch: dict[str, Any] = {}  # empty texts are counted after de-duplication
    text = df["text"] if "text" in df.columns else pd.Series("", index=df.index, dtype=object)
    return pd.DataFrame(
        {
            "user": df["user"].astype(str).to_numpy(),
            "item": df["item"].astype(str).to_numpy(),
            "rating": df["rating"].astype("float64").to_numpy(),
            "timestamp": df["timestamp"].astype(float).fillna(-1).astype("int64").to_numpy(),
            "text": v.normalise_texts(text, scratch).to_numpy(),
        }
    )


# -- readers (one per format) ---------------------------------------------------------------


def _amazon(files: list[Path], loader, batch_rows: int, report: dict[str, Any],
            finish: bool = True):  # fmt: skip
    """Amazon review files: one ``ReviewRows`` over every shard, so the field counts and
    the text-field check cover them all (the check runs before the last batch is given)."""
    rows = loader.review_rows(files[0], report)

    def flush(path: Path):
        lines = rows.lines
        return _finish(rows.frame(), loader, report, lambda i: f"{path} line {lines[i]}")

    for n, path in enumerate(files):
        rows.path = path
        for lineno, obj in v.iter_json_lines(
            path, encoding=loader.encoding, skip_bad_rows=loader.skip_bad_rows, report=report
        ):
            rows.add(lineno, obj)
            if len(rows) >= batch_rows:
                yield n, flush(path)
        if n == len(files) - 1 and finish:
            rows.finish()
        if len(rows):
            yield n, flush(path)


def _tables(path: Path, loader, frames, report: dict[str, Any]):
    """Map raw table batches ``(frame, locate)`` with the loader's column choice, picked
    from the file's first batch (``locate(i)`` names row i of the batch)."""
    import pandas as pd

    pick = None
    for raw, locate in frames:
        raw = raw.reset_index(drop=True)
        if pick is None:
            pick = loader.pick_columns(raw.columns, path)
            report.setdefault(
                "columns", {k.removesuffix("_col"): c for k, c in pick.items() if c is not None}
            )
            _need_text(pick, raw.columns, str(path))
        for col in pick.values():
            if col is not None and col not in raw.columns:  # a JSON key absent from a batch
                raw[col] = pd.Series(None, index=raw.index, dtype=object)
        report["rows_read"] = report.get("rows_read", 0) + len(raw)
        yield _finish(loader.map_rows(raw, pick), loader, report, locate)


def _need_text(pick: dict[str, Any], columns, where: str) -> None:
    if pick["text_col"] is None:
        raise DataError(
            f"{where}: no review text column; columns found: {', '.join(map(str, columns))}; "
            "map one with -o text_col=NAME"
        )


def _jsonl(path: Path, loader, batch_rows: int, report: dict[str, Any]):
    import pandas as pd

    rows: list[dict[str, Any]] = []
    lines: list[int] = []

    def batch():
        where = list(lines)
        return pd.DataFrame.from_records(rows), lambda i: f"{path} line {where[i]}"

    for lineno, obj in v.iter_json_lines(
        path, encoding=loader.encoding, skip_bad_rows=loader.skip_bad_rows, report=report
    ):
        rows.append(obj)
        lines.append(lineno)
        if len(rows) >= batch_rows:
            yield batch()
            rows, lines = [], []
    if rows:
        yield batch()


def _csv(path: Path, loader, batch_rows: int, report: dict[str, Any]):
    import pandas as pd

    sep = loader.sep
    if sep is None:
        sep = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    offset = 0
    with v.csv_errors(path, loader.encoding), v.open_capped(path) as fh:
        reader = pd.read_csv(fh, sep=sep, encoding=loader.encoding, dtype=str,
                             keep_default_na=False, na_values=[""], chunksize=batch_rows)  # fmt: skip
        with reader:
            for raw in reader:
                yield raw, (lambda i, b=offset: loader.locate(path, b + i))
                offset += len(raw)


def _parquet(path: Path, loader, batch_rows: int, report: dict[str, Any]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    offset = 0
    try:
        with pq.ParquetFile(path) as fh:
            for batch in fh.iter_batches(batch_size=batch_rows):
                raw = batch.to_pandas()
                yield raw, (lambda i, b=offset: loader.locate(path, b + i))
                offset += len(raw)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the OS refused, not the format
            raise v.read_error(path, exc) from None
        raise DataError(
            f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})"
        ) from None


# -- one raw batch from elsewhere (Ray Data, pyarrow) ---------------------------------------


def normalize_frame(
    frame, fmt: str, *, options: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None, where: str = "batch", first_row: int = 0,
):  # fmt: skip
    """One raw batch (columns as in the file: ``reviewerID, asin, overall, summary,
    reviewText...`` for Amazon; the table's own for csv/jsonl/parquet) -> ``user, item,
    rating, timestamp, text`` with the loaders' mapping and checks. ``where`` names the
    source in errors ("shard-3.json.gz"), rows numbered from ``first_row`` + 1. Missing
    values (NaN/None, as pyarrow fills absent keys) count as absent fields."""
    report = {} if report is None else report
    if fmt == "tsv":
        fmt = "csv"
    if fmt == "ndjson":
        fmt = "jsonl"
    if fmt not in STREAMABLE:
        raise UsageError(
            f"format {fmt!r} is not row-streamable; use one of {', '.join(STREAMABLE)}"
        )
    loader = _loader(fmt, options)
    frame = frame.reset_index(drop=True)
    src = Path(where)

    def locate(i: int) -> str:
        return f"{where} row {first_row + i + 1}"

    if fmt == "amazon":
        rows = loader.review_rows(src, report)
        for i, rec in enumerate(frame.to_dict("records")):
            obj = {k: val for k, val in rec.items() if not _missing(val)}
            rows.add(first_row + i + 1, obj)
        lines = rows.lines
        out = _finish(rows.frame(), loader, report, lambda i: f"{where} row {lines[i]}")
    else:
        pick = loader.pick_columns(frame.columns, src)
        _need_text(pick, frame.columns, where)
        out = _finish(loader.map_rows(frame, pick), loader, report, locate)
    dropped = report.pop("_dropped", 0)
    if dropped:
        report["bad_rows_skipped"] = report.get("bad_rows_skipped", 0) + dropped
    return out


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return False
