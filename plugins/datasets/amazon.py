"""Amazon product reviews (McAuley lab), JSON Lines, 2014 and 2018 schemas.

- 2014: ``reviewerID, asin, overall, reviewText, summary, unixReviewTime, helpful=[up, total]``.
- 2018 adds ``verified, style, vote`` (a string that may hold commas, "1,234") and ``image``.

Review text is the ``text_fields`` joined (default: ``summary`` then ``reviewText``, as
"summary. reviewText"; see ``validation.join_text``). A review whose joined text is empty
is kept with text ``""`` and counted in ``report["empty_texts"]``; ``report["empty_fields"]``
counts each empty field on its own. The file has no item text (titles are in a separate
metadata file), so ``items`` is None and the pipeline aggregates reviews into item vectors.
Repeated (user, item) rows keep the latest review (``report["duplicates_dropped"]``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from recfeat.components import Dataset
from recfeat.data import validation as v
from recfeat.data.formats import check_one_format
from recfeat.data.recdata import RecData
from recfeat.errors import DataError

SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz")
REQUIRED_KEYS = ("reviewerID", "asin", "overall")
KEYS_2018 = ("verified", "style", "vote", "image")
DEFAULT_TEXT_FIELDS = ("summary", "reviewText")


def _is_json_file(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith(SUFFIXES)


def resolve_file(path: Path) -> Path:
    """``path`` itself, or the single JSON (Lines) file inside the folder ``path``."""
    if path.is_dir():
        check_one_format(path)  # a .csv beside the .json would be left unread
        found = sorted(p for p in path.iterdir() if _is_json_file(p))
        if not found:
            raise DataError(
                f"folder {path} holds no {'/'.join(SUFFIXES)} file; pass the review file itself"
            )
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise DataError(f"folder {path} holds several review files ({names}); pass one of them")
        return found[0]
    return path


def first_object(path: Path) -> dict[str, Any] | None:
    """The first non-blank line of a JSON Lines file parsed, or None if it is not an object."""
    import json

    try:
        for _, raw in v.read_raw_lines(path):
            if raw.strip():
                obj = json.loads(raw)
                return obj if isinstance(obj, dict) else None
    except (ValueError, DataError, OSError):
        return None
    return None


def _votes(obj: dict[str, Any]) -> int:
    """Helpful votes: 2018 ``vote`` ("1,234") or 2014 ``helpful[0]``; 0 when absent."""
    vote = obj.get("vote")
    if vote is not None:
        try:
            return int(str(vote).replace(",", "").strip() or 0)
        except ValueError:
            return 0
    helpful = obj.get("helpful")
    if isinstance(helpful, (list, tuple)) and helpful:
        try:
            return int(helpful[0])
        except (TypeError, ValueError):
            return 0
    return 0


def _rating(value: Any) -> float:
    if isinstance(value, bool):  # JSON true/false is not a rating
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def _timestamp(value: Any) -> tuple[float, str]:
    """``(seconds, reason)``: missing is NaN (unknown, kept); a string, list or boolean is a
    bad row; infinite or huge numbers are left for ``bad_row_mask`` to name."""
    if value is None:
        return float("nan"), ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return float("nan"), f"unixReviewTime {str(value)[:40]!r} is not a number"
    if isinstance(value, float) and value != value:
        return float("nan"), "unixReviewTime is NaN, not a finite unix time"
    seconds = float(value)
    if not math.isfinite(seconds) or abs(seconds) >= v.MAX_TIMESTAMP:
        return float("nan"), f"unixReviewTime {seconds:g} is not a finite unix time"
    return seconds, ""


class AmazonReviews(Dataset):
    """Amazon reviews JSON Lines (.json/.json.gz, 2014 or 2018 schema), de-duplicated."""

    name = "amazon"
    suffixes = SUFFIXES

    def __init__(
        self,
        text_fields: tuple[str, ...] = ("summary", "reviewText"),  # DEFAULT_TEXT_FIELDS
        encoding: str = "utf-8",
        skip_bad_rows: bool = False,
        rating_scale: tuple[float, float] | None = (1.0, 5.0),
    ):
        self.text_fields = tuple(text_fields)
        self.encoding = encoding
        self.skip_bad_rows = skip_bad_rows
        self.rating_scale = rating_scale

    def validate(self) -> None:
        v.check_rating_scale(self)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        path = Path(path)
        try:
            path = resolve_file(path)
        except DataError:
            return False
        if not _is_json_file(path):
            return False
        obj = first_object(path)
        return bool(obj) and "reviewerID" in obj and "asin" in obj

    def review_rows(self, path: Path, report: dict[str, Any]) -> ReviewRows:
        """The row mapping with this loader's options (also used by the batch reader)."""
        return ReviewRows(path, self.text_fields, self.skip_bad_rows, report)

    def load(self, path: str | Path) -> RecData:
        path = resolve_file(v.check_path(path))
        report: dict[str, Any] = {"format": "amazon", "file": str(path)}
        rows = self.review_rows(path, report)
        for lineno, obj in v.iter_json_lines(
            path, encoding=self.encoding, skip_bad_rows=self.skip_bad_rows, report=report
        ):
            rows.add(lineno, obj)
        rows.finish()
        lines = rows.lines
        df = rows.frame()
        df = v.drop_bad_rows(
            df,
            rating_scale=self.rating_scale,
            skip_bad_rows=self.skip_bad_rows,
            report=report,
            locate=lambda i: f"{path} line {lines[i]}",
        )
        df = v.dedupe_latest(df, report)
        return v.build_recdata(
            f"amazon:{path.name}",
            df,
            report=report,
            rating_scale=self.rating_scale or v.observed_scale(df["rating"]),
            has_text=True,
            extra_review_columns=("helpful_votes",),
        )


class ReviewRows:
    """Amazon review objects -> columns (user, item, rating, timestamp, _bad, text,
    helpful_votes), with the per-field counts of the whole file.

    The one mapping from JSON objects to rows: the whole-file loader feeds every line and
    calls :meth:`frame` once; the batch reader (``recfeat.extraction.records``) calls
    :meth:`frame` every few thousand rows, so only one batch of rows is held while the
    counts still cover the file. :meth:`finish` checks the text fields and fills ``report``.
    """

    def __init__(self, path: Path, text_fields: tuple[str, ...], skip_bad_rows: bool,
                 report: dict[str, Any]):  # fmt: skip
        self.path = path
        self.text_fields = tuple(text_fields)
        self.skip_bad_rows = skip_bad_rows
        self.report = report
        self.fields_seen = dict.fromkeys(self.text_fields, 0)
        self.empty_fields = dict.fromkeys(self.text_fields, 0)
        self.saw_2018 = False
        self.rows_read = 0
        self.first_keys: list[str] = []
        self.first_line: int | None = None
        self._clear()

    def _clear(self) -> None:
        self.users: list[Any] = []
        self.items: list[Any] = []
        self.ratings: list[float] = []
        self.times: list[float] = []
        self.bad: list[str] = []
        self.texts: list[str] = []
        self.votes: list[int] = []
        self.lines: list[int] = []

    def __len__(self) -> int:
        return len(self.lines)

    def add(self, lineno: int, obj: dict[str, Any]) -> None:
        self.rows_read += 1
        if self.rows_read == 1:
            self.first_keys = list(obj)
        missing = [k for k in REQUIRED_KEYS if k not in obj]
        if missing:
            if self.skip_bad_rows:
                self.report["bad_rows_skipped"] = self.report.get("bad_rows_skipped", 0) + 1
                return
            raise DataError(
                f"{self.path} line {lineno}: no {', '.join(missing)} key; keys found: "
                f"{', '.join(obj)}; for other JSON Lines use --format jsonl with "
                "user_col/item_col/rating_col/text_col, or pass skip_bad_rows=True"
            )
        self.saw_2018 = self.saw_2018 or any(k in obj for k in KEYS_2018)
        parts = []
        for field in self.text_fields:
            self.fields_seen[field] += field in obj
            value = obj.get(field)
            value = "" if value is None else str(value)
            if not value.strip():
                self.empty_fields[field] += 1
            parts.append(value)
        if self.first_line is None:
            self.first_line = lineno
        self.users.append(obj["reviewerID"])
        self.items.append(obj["asin"])
        self.ratings.append(_rating(obj["overall"]))
        ts, why = _timestamp(obj.get("unixReviewTime"))
        self.times.append(ts)
        self.bad.append(why)
        self.texts.append(v.join_text(parts))
        self.votes.append(_votes(obj))
        self.lines.append(lineno)

    def frame(self):
        """The rows added since the last call, as a DataFrame (and forget them)."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "user": v.coerce_ids(pd.Series(self.users, dtype=object)),
                "item": v.coerce_ids(pd.Series(self.items, dtype=object)),
                "rating": pd.Series(self.ratings, dtype="float64"),
                "timestamp": pd.Series(self.times, dtype="float64"),
                "_bad": pd.Series(self.bad, dtype=object),
                "text": pd.Series(self.texts, dtype=object),
                "helpful_votes": pd.Series(self.votes, dtype="int64"),
            }
        )
        self._clear()
        return df

    def finish(self) -> None:
        """After the last row: a named text field no row has is an error; fill ``report``."""
        report = self.report
        absent = [f for f, n in self.fields_seen.items() if n == 0]
        chosen = self.text_fields != DEFAULT_TEXT_FIELDS
        # A field named on purpose that no row has is a typo; so is no text field at all.
        if absent and self.rows_read and (chosen or len(absent) == len(self.text_fields)):
            raise DataError(
                f"{self.path}: text field(s) {', '.join(absent)} (option text_fields) appear "
                f"in no row; keys of line {self.first_line or 1}: {', '.join(self.first_keys)}; "
                'name fields the file has (e.g. text_fields=["summary", "reviewText"]), or '
                "text_fields=[] for ratings only"
            )
        if absent:
            report["absent_text_fields"] = absent  # a default field this file does not have
        report["rows_read"] = self.rows_read
        report["schema"] = "2018" if self.saw_2018 else "2014"
        report["text_fields"] = list(self.text_fields)
        report["empty_fields"] = self.empty_fields
