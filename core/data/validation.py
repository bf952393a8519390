"""Checks and normalisation shared by every dataset loader.

Policies, the same for every format:

- **Errors** are ``recfeat.errors.DataError`` with one line naming the file, the line or row,
  and the option that fixes it (``encoding``, ``skip_bad_rows``, ``rating_scale``,
  ``user_col``...).
- **Empty or whitespace-only text**: the interaction is kept; its text row is kept as ``""``
  and counted in ``report["empty_texts"]``. Dropping it would silently lose ratings, and
  encoders give every row a vector, so downstream stages decide what an empty text means.
- **Bad rows** (a line that is not valid in the file's encoding, a malformed JSON line, a CSV
  line with the wrong number of fields, a missing user or item id, an id that is a list or
  object, a rating that is NaN, infinite or outside ``rating_scale``, a timestamp that is
  infinite, out of range or neither a number nor a date) are an error naming the first one;
  with ``skip_bad_rows=True`` every kind is skipped and counted in
  ``report["bad_rows_skipped"]``.
- **Repeated (user, item) pairs** keep the latest row (highest timestamp, then the later one
  in the file); the others are counted in ``report["duplicates_dropped"]``.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import json
import math
import os
import re
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recfeat.errors import DataError, OptionError

if TYPE_CHECKING:  # pandas is imported inside functions: this module loads with the plugin
    import pandas as pd

    from recfeat.data.recdata import RecData

_SENTENCE_END = tuple(".!?;:。！？；…")


def check_rating_scale(loader: Any) -> None:
    """A loader's ``rating_scale`` must be two finite numbers, low <= high (or None)."""
    import math

    scale = getattr(loader, "rating_scale", None)
    if scale is None:
        return
    lo, hi = scale
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise OptionError(
            f"dataset {loader.name!r}: rating_scale must be (low, high) with finite low <= high, "
            f"got ({lo!r}, {hi!r}); e.g. rating_scale=[1,5]"
        )


def check_ratings(data: RecData) -> None:
    """Ratings outside the dataset's declared scale are an error, not something to average
    (before evaluating or training on ``data``)."""
    import pandas as pd

    if data.rating_scale is None:
        return
    lo, hi = data.rating_scale
    r = pd.to_numeric(data.interactions["rating"], errors="coerce")
    bad = (r < lo) | (r > hi)
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} ratings lie outside the scale {lo:g}..{hi:g} "
            f"(e.g. {r[bad].iloc[0]:g}); fix the data or its declared rating scale"
        )


def check_path(path: str | Path, *, what: str = "input") -> Path:
    """Return ``path`` as a Path, or raise DataError when it does not exist."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} path {str(p)!r} does not exist; check the path and try again")
    return p


#: The longest line (one record) a reader accepts, in bytes. Lines are read with this cap,
#: never whole before it is checked, so one runaway record cannot take all memory; only the
#: first few thousand characters of a text are encoded anyway.
MAX_LINE_BYTES = 64 << 20

_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO or pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_error(path: str | Path, exc: OSError, what: str = "") -> DataError:
    """An OSError met reading an input (``what``: "corpus", ...), as one line whose fix
    follows its cause (errno)."""
    code, why = exc.errno, exc.strerror or str(exc)
    name = f"{what} {path}" if what else str(path)
    if code in (errno.EACCES, errno.EPERM):
        fix = "permission denied; make it readable (chmod) or copy it somewhere you may read"
    elif code == errno.ENOENT:
        fix = "it does not exist (or vanished while read); check the path"
    elif code == errno.EISDIR:
        fix = "it is a folder; pass a file"
    elif code == errno.ENOTDIR:
        fix = "part of the path is a file, not a folder; check the path"
    elif code == errno.EMFILE:
        fix = "too many open files; raise the limit (ulimit -n)"
    elif code == errno.EIO:
        fix = "input/output error: the disk or network share failed; copy the file to a healthy disk"
    else:
        fix = f"{why}; check the path and that it is a readable file"
    return DataError(f"cannot read {name}: {fix}")


def check_regular(path: Path, what: str = "") -> os.stat_result:
    """``path``'s stat when it is a regular file or a folder, else DataError: a pipe, FIFO or
    device is never opened (opening a FIFO blocks until a writer comes, and an input is read
    twice: to plan, then to extract)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise read_error(path, exc, what) from None
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return st
    kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "not a regular file")
    raise DataError(
        f"{path} is {kind}, not a regular file (recfeat reads an input more than once); "
        f"write the data to a file first (e.g. cat {path} > reviews.jsonl) and pass that file"
    )


def check_file(path: Path) -> Path:
    """``path`` must be a readable, non-empty regular file (never opened here)."""
    st = check_regular(path)
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path} is a folder; expected a file (pass the file itself, or --format)")
    if st.st_size == 0:
        raise DataError(f"input file {path} is empty (0 bytes); nothing to load")
    return path


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _line_too_long(path: Path, lineno: int) -> DataError:
    return DataError(
        f"{path} line {lineno} is longer than {_size(MAX_LINE_BYTES)}, the most one record "
        "may take; cut that record's text (only its first few thousand characters are "
        "encoded) or split the line"
    )


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n:,} bytes"


def _bad_gzip(path: Path, exc: BaseException) -> DataError:
    return DataError(f"{path} is not a valid gzip file ({exc}); re-download or decompress it")


def read_raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, raw_bytes)`` for every line of a plain or gzip'd file.

    Bytes, not str, so an undecodable line can be reported with its exact number. A line
    over ``MAX_LINE_BYTES`` is a DataError naming it, raised before more of it is read.
    """
    check_file(path)
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as fh:
            lineno = 0
            while raw := fh.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise _line_too_long(path, lineno)
                yield lineno, raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _bad_gzip(path, exc) from None


class _CappedLines(io.RawIOBase):
    """A binary file whose reads fail with :func:`_line_too_long` once a line passes
    ``MAX_LINE_BYTES``: what the bulk CSV reader reads through, so it never buffers more of
    one line than the cap."""

    def __init__(self, raw, path: Path):
        super().__init__()
        self.raw = raw
        self.path = path
        self.lines = 0  # newlines read so far
        self.run = 0  # bytes of the current line read so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        if not n:
            return 0
        chunk = bytes(memoryview(buffer)[:n])
        if n > MAX_LINE_BYTES:  # a huge read: any line inside it may pass the cap
            self._scan(chunk)
            return n
        # a line ends at \n or a lone \r (old Mac files); only \n counts for line numbers.
        # Lines that begin and end inside this chunk are shorter than it, so than the cap.
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last < 0:
            self.run += n
        else:
            first = min(e for e in (chunk.find(b"\n"), chunk.find(b"\r")) if e >= 0)
            if self.run + first > MAX_LINE_BYTES:
                raise _line_too_long(self.path, self.lines + 1)
            self.lines += chunk.count(b"\n")
            self.run = n - 1 - last
        if self.run > MAX_LINE_BYTES:
            raise _line_too_long(self.path, self.lines + 1)
        return n

    def _scan(self, chunk: bytes) -> None:
        start = 0
        for end in re.finditer(b"[\r\n]", chunk):
            if self.run + end.start() - start > MAX_LINE_BYTES:
                raise _line_too_long(self.path, self.lines + 1)
            self.lines += end.group() == b"\n"
            self.run, start = 0, end.end()
        self.run += len(chunk) - start
        if self.run > MAX_LINE_BYTES:
            raise _line_too_long(self.path, self.lines + 1)

    def close(self) -> None:
        self.raw.close()
        super().close()


@contextlib.contextmanager
def open_capped(path: Path):
    """``path`` (plain or gzip'd) as a binary file for a bulk reader (pandas' CSV reader),
    lines capped at ``MAX_LINE_BYTES`` as :func:`read_raw_lines` caps them."""
    check_file(path)
    raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
    with io.BufferedReader(_CappedLines(raw, path), buffer_size=1 << 20) as fh:
        yield fh


def decode_line(raw: bytes, path: Path, lineno: int, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} line {lineno}: bytes not valid {encoding} ({exc.reason} at byte {exc.start}); "
            "pass the file's encoding with the `encoding` option (--encoding, e.g. latin-1), "
            "or skip_bad_rows=True (--skip-bad-rows) to skip and count such lines"
        ) from None
    except LookupError:
        raise DataError(
            f"unknown encoding {encoding!r}; pass a Python codec name such as utf-8 or latin-1"
        ) from None


def iter_json_lines(
    path: Path, *, encoding: str, skip_bad_rows: bool, report: dict[str, Any]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream ``(line_number, object)`` from a JSON Lines file, one ``json.loads`` per line.

    Blank lines are ignored. A line that is not a JSON object raises DataError naming the
    line, or with ``skip_bad_rows`` is skipped and counted in ``report["bad_rows_skipped"]``.
    """
    loads = _json_loads()
    seen_any = False
    for lineno, raw in read_raw_lines(path):
        try:
            text = decode_line(raw, path, lineno, encoding)
        except DataError:
            if not skip_bad_rows or not _codec_exists(encoding):
                raise
            seen_any = True
            report["bad_rows_skipped"] = report.get("bad_rows_skipped", 0) + 1
            continue
        if not text.strip():
            continue
        seen_any = True
        try:
            obj = loads(text)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            if "\\ud" in text.lower() and _has_lone_surrogate(obj):
                # "\ud800" with no partner is no character: pandas and Parquet cannot hold it
                raise ValueError("a \\uXXXX escape is half a surrogate pair, not a character")
        except ValueError as exc:
            if skip_bad_rows:
                report["bad_rows_skipped"] = report.get("bad_rows_skipped", 0) + 1
                continue
            raise DataError(
                f"{path} line {lineno}: malformed JSON ({_first_line(exc)}); fix the line or pass "
                "skip_bad_rows=True (--skip-bad-rows) to skip and count bad lines"
            ) from None
        yield lineno, obj
    if not seen_any:
        raise DataError(f"input file {path} has no data (only blank lines); nothing to load")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _codec_exists(encoding: str) -> bool:
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


def decodable_text(path: Path, encoding: str, report: dict[str, Any]) -> str:
    """The file's text without the lines ``encoding`` cannot decode (each counted in
    ``report["bad_rows_skipped"]``): what ``skip_bad_rows`` hands a bulk reader."""
    import codecs

    if not _codec_exists(encoding):
        raise DataError(
            f"unknown encoding {encoding!r}; pass a Python codec name such as utf-8 or latin-1"
        )
    kept, skipped = [], 0
    for lineno, raw in read_raw_lines(path):
        try:
            kept.append(raw.decode(encoding))
        except UnicodeDecodeError:
            skipped += 1
            continue
        if lineno == 1 and kept[0].startswith("\ufeff") and codecs.lookup(encoding).name == "utf-8":
            kept[0] = kept[0][1:]  # a BOM, as pandas' utf-8 reader would drop it
    report["bad_rows_skipped"] = report.get("bad_rows_skipped", 0) + skipped
    return "".join(kept)


def _json_loads():
    try:  # orjson is several times faster on large review dumps; optional
        import orjson

        return orjson.loads
    except ImportError:
        return json.loads


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def first_undecodable_line(path: Path, encoding: str) -> tuple[int, UnicodeDecodeError] | None:
    """Find the first line of ``path`` that ``encoding`` cannot decode (for error messages
    after a bulk reader such as pandas failed without a line number)."""
    for lineno, raw in read_raw_lines(path):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as exc:
            return lineno, exc
    return None


def raise_decode_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> None:
    """Re-raise a bulk reader's UnicodeDecodeError as DataError naming the line."""
    found = first_undecodable_line(path, encoding)
    lineno, err = found if found else (None, exc)
    where = f" line {lineno}" if lineno else ""
    raise DataError(
        f"{path}{where}: bytes not valid {encoding} ({err.reason} at byte {err.start}); "
        "pass the file's encoding with the `encoding` option (--encoding, e.g. latin-1), "
        "or skip_bad_rows=True (--skip-bad-rows) to skip and count such lines"
    ) from None


@contextlib.contextmanager
def csv_errors(path: Path, encoding: str):
    """What pandas' CSV reader raises, as one DataError line naming the fix: undecodable
    bytes (the line), an unknown codec, an empty file, malformed quoting or field counts."""
    import pandas as pd

    try:
        yield
    except UnicodeDecodeError as exc:
        raise_decode_error(path, encoding, exc)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _bad_gzip(path, exc) from None
    except LookupError:
        raise DataError(
            f"unknown encoding {encoding!r}; pass a Python codec name such as utf-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"input file {path} has no data; nothing to load") from None
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{path}: malformed CSV ({str(exc).strip().splitlines()[0]}); check quoting, "
            "pass sep, or pass skip_bad_rows=True (--skip-bad-rows) to skip and count bad lines"
        ) from None


def join_text(parts) -> str:
    """Join non-empty text parts into one string: ``"Great product. Works well"``.

    Parts are stripped; empty ones dropped; ``". "`` separates them unless the previous part
    already ends a sentence (then a single space), so "Wow!" + "Loud" is "Wow! Loud".
    """
    out = ""
    for part in parts:
        if part is None or (isinstance(part, float) and part != part):  # None or NaN
            continue
        s = str(part).strip()
        if not s:
            continue
        if not out:
            out = s
        elif out.endswith(_SENTENCE_END):
            out = f"{out} {s}"
        else:
            out = f"{out}. {s}"
    return out


_WS = re.compile(r"\s+")


def normalise_texts(values: pd.Series, report: dict[str, Any]) -> pd.Series:
    """Texts as str: missing and whitespace-only become ``""`` and are counted in
    ``report["empty_texts"]`` (the rows are kept; see the module docstring)."""
    s = values.astype("object").where(values.notna(), "")
    s = s.map(lambda v: v if isinstance(v, str) else str(v)).map(lambda v: v if v.strip() else "")
    report["empty_texts"] = report.get("empty_texts", 0) + int((s == "").sum())
    return s.astype(str)


def coerce_ids(values: pd.Series) -> pd.Series:
    """Ids as str; integral floats (pandas reads ``12`` as ``12.0`` when a column has NaN)
    become ``"12"`` so ids match across files."""
    import pandas as pd

    if pd.api.types.is_float_dtype(values):
        # inf equals its own round(); it is no id and cannot become an integer
        ok = values.notna() & values.abs().lt(float("inf")) & (values == values.round())
        out = values.astype("object")
        out[ok] = values[ok].astype("int64").astype(str)
        return out.where(values.notna(), None)
    out = values.astype("object")
    # lists, objects and booleans stay as they are: bad_row_mask names them as wrong types
    return out.where(values.notna(), None).map(
        lambda v: v if v is None or isinstance(v, (list, dict, tuple, set, bool)) else str(v).strip()
    )


# Timestamps are int64 seconds downstream; anything at or beyond 2**63 cannot be one.
MAX_TIMESTAMP = 2.0**63


def _not_an_id(values: pd.Series) -> pd.Series:
    """Ids given as JSON lists/objects (or booleans), or an infinite number (JSON's
    ``Infinity``): a wrong type, not an id."""
    if values.dtype != object:
        return values.isna() & False
    return values.map(lambda v: isinstance(v, (list, dict, tuple, set, bool))
                      or (isinstance(v, float) and math.isinf(v)))


def bad_row_mask(
    df: pd.DataFrame, rating_scale: tuple[float, float] | None
) -> tuple[pd.Series, pd.Series]:
    """Return (bad mask, reason per row) for missing or wrongly typed ids, NaN / infinite /
    out-of-range ratings, non-finite or out-of-range timestamps, and the reasons a loader
    already put in an optional ``_bad`` column (values it could not parse)."""
    import numpy as np
    import pandas as pd

    reason = pd.Series("", index=df.index, dtype=object)
    bad = pd.Series(False, index=df.index)
    if "_bad" in df.columns:
        flagged = df["_bad"].fillna("").astype(str)
        reason[flagged != ""] = flagged[flagged != ""]
        bad |= flagged != ""
    if "timestamp" in df.columns and pd.api.types.is_numeric_dtype(df["timestamp"]):
        ts = df["timestamp"].astype(float)
        wrong = ts.notna() & (~np.isfinite(ts) | (ts.abs() >= MAX_TIMESTAMP)) & (reason == "")
        reason[wrong] = [f"timestamp {v:g} is not a finite unix time" for v in ts[wrong]]
        bad |= wrong
    rating = pd.to_numeric(df["rating"], errors="coerce").astype(float)
    if df["rating"].dtype == object:  # True/False read from JSON are not ratings
        rating[df["rating"].map(lambda v: isinstance(v, bool))] = np.nan
    nan = rating.isna()
    reason[nan] = "rating is missing or not a number"
    out = pd.Series(False, index=df.index)
    if rating_scale is not None:
        lo, hi = rating_scale
        out = ~nan & ((rating < lo) | (rating > hi))
        reason[out] = [f"rating {v:g} outside rating_scale ({lo:g}, {hi:g})" for v in rating[out]]
    inf = ~nan & ~np.isfinite(rating)
    reason[inf] = "rating is infinite"
    for col, word in (("item", "item"), ("user", "user")):
        wrong = _not_an_id(df[col])
        reason[wrong] = f"{word} id is a list, object, boolean or infinite number, not a string or finite number"
        missing = ~wrong & (df[col].isna() | (df[col].astype(str).str.strip() == ""))
        reason[missing] = f"{word} id is missing"
        bad |= wrong | missing
    return (bad | nan | out | inf), reason


def drop_bad_rows(
    df: pd.DataFrame,
    *,
    rating_scale: tuple[float, float] | None,
    skip_bad_rows: bool,
    report: dict[str, Any],
    locate,
) -> pd.DataFrame:
    """Remove rows with a missing id or a bad rating, or raise DataError naming the first.

    ``locate(index_label) -> str`` says where a row came from ("data.csv line 12").
    """
    bad, reason = bad_row_mask(df, rating_scale)
    if not bad.any():
        return _finish(df)
    if not skip_bad_rows:
        first = bad.idxmax()
        hint = (
            "set rating_scale=(min, max) to match your data or "
            if "rating_scale" in reason[first]
            else ""
        )
        raise DataError(
            f"{locate(first)}: {reason[first]} ({int(bad.sum())} such rows); {hint}pass "
            "skip_bad_rows=True (--skip-bad-rows) to skip and count them"
        )
    report["bad_rows_skipped"] = report.get("bad_rows_skipped", 0) + int(bad.sum())
    return _finish(df[~bad])


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """After the checks: timestamps as int64 seconds (-1: unknown); no ``_bad`` column."""
    import pandas as pd

    df = df.drop(columns=["_bad"], errors="ignore")
    if "timestamp" in df.columns and pd.api.types.is_numeric_dtype(df["timestamp"]):
        df = df.assign(timestamp=df["timestamp"].astype(float).fillna(-1).astype("int64"))
    return df


def dedupe_latest(df: pd.DataFrame, report: dict[str, Any]) -> pd.DataFrame:
    """Keep one row per (user, item): the latest timestamp, ties broken by file order."""
    # A stable sort keeps file order among equal timestamps, so keep="last" means "later line".
    ordered = df.sort_values("timestamp", kind="stable")
    kept = ordered.drop_duplicates(["user", "item"], keep="last")
    report["duplicates_dropped"] = report.get("duplicates_dropped", 0) + int(len(df) - len(kept))
    return kept.sort_index(kind="stable")


def numbers(values: pd.Series) -> pd.Series:
    """Numeric values as float; anything else (text, lists, objects, true/false from JSON)
    becomes NaN, which ``bad_row_mask`` reports as "not a number"."""
    import pandas as pd

    if values.dtype == object:
        values = values.where(~values.map(lambda v: isinstance(v, (list, dict, tuple, set, bool))), None)
    elif pd.api.types.is_bool_dtype(values):
        return pd.Series(float("nan"), index=values.index)
    return pd.to_numeric(values, errors="coerce").astype(float)


def parse_timestamps(values: pd.Series, column: str = "timestamp") -> tuple[pd.Series, pd.Series]:
    """``(seconds as float, reason)``: unix seconds or date strings -> seconds (NaN where
    missing); ``reason`` (naming ``column``) is non-empty where a value is present but is
    neither a number nor a date, or is infinite or beyond int64 seconds."""
    import pandas as pd

    reason = pd.Series("", index=values.index, dtype=object)
    if pd.api.types.is_bool_dtype(values):
        reason[:] = f"{column} is true/false, not a time"
        return pd.Series(float("nan"), index=values.index), reason
    if pd.api.types.is_numeric_dtype(values):
        secs = values.astype(float)
        return secs, _range_reasons(secs, reason, column)
    present = values.notna() & (values.astype(str).str.strip() != "")
    kinds = values.map(lambda v: isinstance(v, (list, dict, bool)))
    secs = pd.to_numeric(values.where(~kinds, None), errors="coerce").astype(float)
    rest = present & secs.isna() & ~kinds
    if rest.any():
        parsed = pd.to_datetime(values[rest].astype(str), utc=True, errors="coerce", format="mixed")
        secs[rest] = ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype(float)
    failed = present & secs.isna()
    reason[failed] = [
        f"{column} {str(v)[:40]!r} is neither unix seconds nor a date (map another column "
        "with timestamp_col, or fix the value)"
        for v in values[failed]
    ]
    return secs, _range_reasons(secs, reason, column)


def _range_reasons(secs: pd.Series, reason: pd.Series, column: str) -> pd.Series:
    import numpy as np

    wrong = secs.notna() & (~np.isfinite(secs) | (secs.abs() >= MAX_TIMESTAMP))
    reason[wrong] = [f"{column} {v:g} is not a finite unix time" for v in secs[wrong]]
    return reason


def build_recdata(
    name: str,
    rows: pd.DataFrame,
    *,
    report: dict[str, Any],
    rating_scale: tuple[float, float] | None,
    has_text: bool,
    items: pd.DataFrame | None = None,
    extra_review_columns: tuple[str, ...] = (),
) -> RecData:
    """Turn validated, de-duplicated rows (user, item, rating, timestamp[, text]) into RecData."""
    from recfeat.data.recdata import RecData

    rows = rows.reset_index(drop=True)
    if rows.empty:
        raise DataError(f"{name}: no usable rows left after validation ({report}); check the input")
    inter = rows[["user", "item", "rating", "timestamp"]].copy()
    inter["user"] = inter["user"].astype(str)
    inter["item"] = inter["item"].astype(str)
    inter["rating"] = inter["rating"].astype("float64")
    inter["timestamp"] = inter["timestamp"].astype(float).fillna(-1).astype("int64")
    reviews = None
    if has_text:
        reviews = inter.copy()
        reviews["text"] = normalise_texts(rows["text"], report)
        for col in extra_review_columns:
            reviews[col] = rows[col].to_numpy()
    else:
        report.setdefault("empty_texts", 0)
    if items is not None:
        items = items.reset_index(drop=True)
        items["item"] = items["item"].astype(str)
        items["text"] = normalise_texts(items["text"], report)
        report["items_without_text"] = int(
            (~inter["item"].drop_duplicates().isin(items["item"])).sum()
        )
    report.setdefault("bad_rows_skipped", 0)
    report.setdefault("duplicates_dropped", 0)
    return RecData(
        name=name,
        interactions=inter,
        reviews=reviews,
        items=items,
        report=report,
        rating_scale=None
        if rating_scale is None
        else (float(rating_scale[0]), float(rating_scale[1])),
    )


def observed_scale(ratings: pd.Series) -> tuple[float, float] | None:
    r = ratings.astype(float).dropna()
    return None if r.empty else (float(r.min()), float(r.max()))


def pick_column(
    columns,
    wanted: str | None,
    defaults: tuple[str, ...],
    *,
    option: str,
    path: Path,
    required: bool,
) -> str | None:
    """The column to use: ``wanted`` if given, else the first default present (any case)."""
    cols = list(columns)
    found = ", ".join(map(str, cols))
    if wanted:
        if wanted in cols:
            return wanted
        raise DataError(
            f"{path}: column {wanted!r} (option {option}) not found; columns found: {found}"
        )
    lower = {str(c).lower(): c for c in cols}
    for cand in defaults:
        if cand.lower() in lower:
            return lower[cand.lower()]
    if required:
        raise DataError(
            f"{path}: no {option.removesuffix('_col')} column (tried {', '.join(defaults)}); "
            f"columns found: {found}; map one with the {option} option (e.g. {option}={cols[0] if cols else 'name'!r})"
        )
    return None
