"""Generic tables (CSV/TSV, JSON Lines, Parquet) with a column mapping.

One row per interaction. Columns are found by the ``*_col`` options, or else by the first
common name present (case-insensitive; see ``DEFAULTS``). ``user``, ``item`` and ``rating``
are required; ``text`` (review text) and ``timestamp`` (unix seconds or dates) are optional.

Item text comes from ``item_text_col`` in the same table (first non-empty value per item),
or from a separate table ``items_path`` keyed by the same item column. ``item_text_col``
may name several columns, comma-separated, joined as "a. b. c". Without it an items table
uses ``text``/``item_text`` if present, else every one of title, genre(s), description
that it has, in that order.

Ratings are checked against ``rating_scale`` when given (default: no range check, the
observed (min, max) is reported); NaN ratings are always bad rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recfeat.components import Dataset
from recfeat.data import validation as v
from recfeat.data.recdata import RecData
from recfeat.errors import DataError

from .amazon import first_object

DEFAULTS: dict[str, tuple[str, ...]] = {
    "user_col": ("user", "user_id", "userId", "reviewerID", "reviewer_id", "customer_id", "uid"),
    "item_col": (
        "item", "item_id", "itemId", "movieId", "movie_id", "asin", "book_id", "bookId",
        "isbn", "product_id", "productId", "iid",
    ),
    "rating_col": ("rating", "overall", "stars", "score", "review_score"),
    "text_col": ("text", "review", "reviewText", "review_text", "comment", "body", "content"),
    "timestamp_col": ("timestamp", "time", "unixReviewTime", "unix_time", "date", "created_at"),
}  # fmt: skip
ITEM_TABLE_TEXT = ("text", "item_text")
ITEM_TABLE_PARTS = ("title", "genres", "genre", "description")


class _Table(Dataset):
    """Shared column mapping and validation; subclasses only read the file into pandas."""

    suffixes: tuple[str, ...] = ()
    #: the word used in error messages for a row position ("line" when rows are lines)
    row_word = "row"

    def __init__(
        self,
        user_col: str | None = None,
        item_col: str | None = None,
        rating_col: str | None = None,
        text_col: str | None = None,
        timestamp_col: str | None = None,
        item_text_col: str | None = None,
        items_path: str | None = None,
        rating_scale: tuple[float, float] | None = None,
        skip_bad_rows: bool = False,
    ):
        self.user_col = user_col
        self.item_col = item_col
        self.rating_col = rating_col
        self.text_col = text_col
        self.timestamp_col = timestamp_col
        self.item_text_col = item_text_col
        self.items_path = items_path
        self.rating_scale = rating_scale
        self.skip_bad_rows = skip_bad_rows

    def validate(self) -> None:
        v.check_rating_scale(self)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return Path(path).is_file() and Path(path).name.lower().endswith(cls.suffixes)

    # -- reading (subclasses) ------------------------------------------------------------
    def read(self, path: Path):
        raise NotImplementedError

    def locate(self, path: Path, index: int) -> str:
        return f"{path} data row {index + 1}"

    # -- shared --------------------------------------------------------------------------
    def load(self, path: str | Path) -> RecData:
        import pandas as pd

        path = v.check_path(path)
        v.check_file(path)
        table = self.read(path).reset_index(drop=True)
        if table.empty:
            skipped = getattr(self, "_skipped", 0)
            if skipped:
                raise DataError(
                    f"{path}: all {skipped} rows were skipped as bad (skip_bad_rows); nothing to "
                    "load: check the file's encoding and format"
                )
            raise DataError(f"input file {path} has a header but no rows; nothing to load")
        report: dict[str, Any] = {
            "format": self.name,
            "file": str(path),
            "rows_read": int(len(table)),
            "bad_rows_skipped": getattr(self, "_skipped", 0),  # lines the reader dropped
        }
        cols = table.columns
        pick = self.pick_columns(cols, path)
        report["columns"] = {k.removesuffix("_col"): c for k, c in pick.items() if c is not None}
        df = self.map_rows(table, pick)
        has_text = pick["text_col"] is not None
        inline_item_cols = None
        if self.item_text_col and not self.items_path:
            inline_item_cols = self._item_text_cols(cols, path)
            df["_item_text"] = [
                v.join_text(p) for p in table[inline_item_cols].itertuples(index=False)
            ]
        df = v.drop_bad_rows(
            df,
            rating_scale=self.rating_scale,
            skip_bad_rows=self.skip_bad_rows,
            report=report,
            locate=lambda i: self.locate(path, i),
        )
        items = None
        if inline_item_cols:
            # first non-empty text of each item, in file order
            texts = df[df["_item_text"] != ""].drop_duplicates("item")
            items = pd.DataFrame({"item": df["item"].drop_duplicates()})
            items = items.merge(texts[["item", "_item_text"]], on="item", how="left")
            items = items.rename(columns={"_item_text": "text"})
        elif self.items_path:
            items = self._items_table(pick["item_col"])
        df = v.dedupe_latest(df, report)
        scale = self.rating_scale or v.observed_scale(df["rating"])
        return v.build_recdata(
            f"{self.name}:{path.name}",
            df,
            report=report,
            rating_scale=scale,
            has_text=has_text,
            items=items,
        )

    def pick_columns(self, columns, path: Path) -> dict[str, str | None]:
        """Option name (``user_col``...) -> the column of ``columns`` it maps to, or None."""
        return {
            opt: v.pick_column(
                columns, getattr(self, opt), DEFAULTS[opt], option=opt, path=path,
                required=opt in ("user_col", "item_col", "rating_col"),
            )
            for opt in DEFAULTS
        }  # fmt: skip

    def map_rows(self, table, pick: dict[str, str | None]):
        """Raw rows -> ``user, item, rating, timestamp[, _bad][, text]`` (checked later by
        ``drop_bad_rows``). The one mapping: the whole-file ``load`` calls it on the table,
        the batch reader (``recfeat.extraction.records``) on each batch."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "user": v.coerce_ids(table[pick["user_col"]]),
                "item": v.coerce_ids(table[pick["item_col"]]),
                "rating": v.numbers(table[pick["rating_col"]]),
            }
        )
        ts_col = pick["timestamp_col"]
        if ts_col:
            label = "timestamp" if ts_col == "timestamp" else f"timestamp ({ts_col})"
            df["timestamp"], df["_bad"] = v.parse_timestamps(table[ts_col], label)
        else:
            df["timestamp"] = -1
        if pick["text_col"] is not None:
            df["text"] = table[pick["text_col"]]
        return df

    def _item_text_cols(self, columns, path: Path) -> list[str]:
        wanted = [c.strip() for c in (self.item_text_col or "").split(",") if c.strip()]
        cols = list(columns)
        if wanted:
            missing = [c for c in wanted if c not in cols]
            if missing:
                raise DataError(
                    f"{path}: item text column(s) {', '.join(missing)} (option item_text_col) not found; "
                    f"columns found: {', '.join(map(str, cols))}"
                )
            return wanted
        for c in ITEM_TABLE_TEXT:
            if c in cols:
                return [c]
        found = [c for c in ITEM_TABLE_PARTS if c in cols]
        if not found:
            raise DataError(
                f"{path}: no item text column (tried {', '.join(ITEM_TABLE_TEXT + ITEM_TABLE_PARTS)}); "
                f"columns found: {', '.join(map(str, cols))}; name them with item_text_col=a,b"
            )
        return found

    def _items_table(self, item_col: str):
        import pandas as pd

        ipath = v.check_file(v.check_path(self.items_path, what="items_path"))
        reader = _reader_for(ipath)
        if hasattr(reader, "encoding") and hasattr(self, "encoding"):
            reader.encoding = self.encoding
        table = reader.read(ipath).reset_index(drop=True)
        key = v.pick_column(
            table.columns, item_col if item_col in table.columns else self.item_col,
            DEFAULTS["item_col"], option="item_col", path=ipath, required=True,
        )  # fmt: skip
        cols = self._item_text_cols(table.columns, ipath)
        items = pd.DataFrame(
            {
                "item": v.coerce_ids(table[key]),
                "text": [v.join_text(p) for p in table[cols].itertuples(index=False)],
            }
        )
        items = items[items["item"].notna()].drop_duplicates("item")
        return items


def _reader_for(path: Path) -> _Table:
    for cls in (CsvTable, JsonLinesTable, ParquetTable):
        if cls.sniff(path):
            return cls()
    raise DataError(f"{path}: unknown table type; use .csv, .tsv, .jsonl or .parquet")


class CsvTable(_Table):
    """CSV/TSV table with a column mapping (user, item, rating, text, timestamp)."""

    name = "csv"
    aliases = ("tsv",)
    suffixes = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt")

    def __init__(
        self,
        user_col: str | None = None,
        item_col: str | None = None,
        rating_col: str | None = None,
        text_col: str | None = None,
        timestamp_col: str | None = None,
        item_text_col: str | None = None,
        items_path: str | None = None,
        rating_scale: tuple[float, float] | None = None,
        skip_bad_rows: bool = False,
        encoding: str = "utf-8",
        sep: str | None = None,
    ):
        super().__init__(
            user_col, item_col, rating_col, text_col, timestamp_col, item_text_col, items_path,
            rating_scale, skip_bad_rows,
        )  # fmt: skip
        self.encoding = encoding
        self.sep = sep

    def read(self, path: Path):
        import pandas as pd

        sep = self.sep
        if sep is None:
            sep = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
        self._skipped = 0
        with v.csv_errors(path, self.encoding):
            # strings throughout: ids keep leading zeros, and numbers are parsed per column later
            if self.skip_bad_rows:
                return self._read_skipping(path, sep)
            with v.open_capped(path) as fh:
                return pd.read_csv(fh, sep=sep, encoding=self.encoding, dtype=str,
                                   keep_default_na=False, na_values=[""])  # fmt: skip

    def _read_skipping(self, path: Path, sep: str):
        """skip_bad_rows: undecodable lines and lines with too many fields are dropped and
        counted (pandas reports each skipped line in a ParserWarning)."""
        import io
        import warnings

        import pandas as pd

        report: dict[str, Any] = {}
        text = v.decodable_text(path, self.encoding, report)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                                na_values=[""], on_bad_lines="warn")  # fmt: skip
        dropped = sum(str(w.message).count("Skipping line") for w in caught)
        self._skipped = report.get("bad_rows_skipped", 0) + dropped
        return table

    def locate(self, path: Path, index: int) -> str:
        # line = header + 1-based row, exact unless quoted fields span lines
        return f"{path} data row {index + 1} (line {index + 2})"


class JsonLinesTable(_Table):
    """JSON Lines table (one object per line) with a column mapping."""

    name = "jsonl"
    aliases = ("ndjson",)
    suffixes = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz")

    def __init__(
        self,
        user_col: str | None = None,
        item_col: str | None = None,
        rating_col: str | None = None,
        text_col: str | None = None,
        timestamp_col: str | None = None,
        item_text_col: str | None = None,
        items_path: str | None = None,
        rating_scale: tuple[float, float] | None = None,
        skip_bad_rows: bool = False,
        encoding: str = "utf-8",
    ):
        super().__init__(
            user_col, item_col, rating_col, text_col, timestamp_col, item_text_col, items_path,
            rating_scale, skip_bad_rows,
        )  # fmt: skip
        self.encoding = encoding
        self._lines: list[int] = []

    @classmethod
    def sniff(cls, path: Path) -> bool:
        path = Path(path)
        if not super().sniff(path):
            return False
        if path.name.lower().endswith((".json", ".json.gz")):
            return first_object(path) is not None  # plain .json only when it is JSON Lines
        return True

    def read(self, path: Path):
        import pandas as pd

        report: dict[str, Any] = {}
        rows = []
        self._lines = []
        for lineno, obj in v.iter_json_lines(
            path, encoding=self.encoding, skip_bad_rows=self.skip_bad_rows, report=report
        ):
            rows.append(obj)
            self._lines.append(lineno)
        self._skipped = report.get("bad_rows_skipped", 0)
        return pd.DataFrame.from_records(rows)

    def locate(self, path: Path, index: int) -> str:
        return f"{path} line {self._lines[index]}"


class ParquetTable(_Table):
    """Parquet table with a column mapping (read with pyarrow)."""

    name = "parquet"
    suffixes = (".parquet", ".pq")

    def read(self, path: Path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:  # the OS refused, not the format
                raise v.read_error(path, exc) from None
            raise DataError(
                f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})"
            ) from None
