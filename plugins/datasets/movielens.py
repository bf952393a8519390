"""MovieLens (GroupLens): the 100k folder and the latest-small folder.

Item text, the only text MovieLens has:

- 100k: ``"<title>. Genres: <g1>, <g2>"`` from latin-1 ``u.item``; the release year is added
  as ``" (<year>)"`` only when the title carries no year of its own. Genre names come from
  ``u.genre`` (the standard 19 when it is missing).
- latest-small: ``"<title>. Genres: <g1>, <g2>. Tags: <t1>, <t2>"``: genres pipe-split, user
  tags from ``tags.csv`` de-duplicated case-insensitively, most frequent first (ties in file
  order). Every movie in ``movies.csv`` gets a row, rated or not (cold-start items).

There are no reviews, so ``reviews`` is None.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from recfeat.components import Dataset
from recfeat.data import validation as v
from recfeat.data.recdata import RecData
from recfeat.errors import DataError
from recfeat.plugin.options import check_ranges

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

_YEAR = re.compile(r"(\d{4})\s*$")
_TITLE_YEAR = re.compile(r"\(\d{4}\)")


def _need(folder: Path, name: str, fmt: str) -> Path:
    p = folder / name
    if not p.is_file():
        found = (
            ", ".join(sorted(x.name for x in folder.iterdir()))
            if folder.is_dir()
            else "(not a folder)"
        )
        raise DataError(f"{folder}: no {name} (needed by --format {fmt}); files found: {found}")
    return v.check_file(p)


def _read_table(path: Path, *, encoding: str, skip_report: dict[str, Any] | None = None, **kwargs):
    """``pd.read_csv``, errors as DataError; with ``skip_report`` (skip_bad_rows) the lines
    ``encoding`` cannot decode are dropped first and counted there."""
    import io

    import pandas as pd

    try:
        if skip_report is not None:
            return pd.read_csv(io.StringIO(v.decodable_text(path, encoding, skip_report)), **kwargs)
        with v.open_capped(path) as fh:
            return pd.read_csv(fh, encoding=encoding, **kwargs)
    except UnicodeDecodeError as exc:
        v.raise_decode_error(path, encoding, exc)
    except pd.errors.EmptyDataError:
        raise DataError(f"input file {path} has no data; nothing to load") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot parse ({str(exc).splitlines()[0]}); is it the original file?"
        ) from None


def _interactions(
    df, path: Path, *, scale, skip_bad_rows: bool, report: dict[str, Any], header: bool
):
    import pandas as pd

    df = df.rename(
        columns=dict(zip(df.columns[:4], ("user", "item", "rating", "timestamp"), strict=True))
    )
    df["user"] = v.coerce_ids(df["user"])
    df["item"] = v.coerce_ids(df["item"])
    df["rating"] = pd.to_numeric(df["rating"], errors="coerce")
    # a timestamp that is no number (or is infinite) is a bad row, like a bad rating
    df["timestamp"], df["_bad"] = v.parse_timestamps(df["timestamp"])
    first_line = 2 if header else 1
    df = v.drop_bad_rows(
        df,
        rating_scale=scale,
        skip_bad_rows=skip_bad_rows,
        report=report,
        locate=lambda i: f"{path} line {i + first_line}",
    )
    return v.dedupe_latest(df, report)


class MovieLens100K(Dataset):
    """MovieLens 100k folder: u.data ratings, latin-1 u.item titles + genres as item text."""

    name = "movielens-100k"
    aliases = ("ml-100k",)

    def __init__(
        self,
        encoding: str = "latin-1",
        skip_bad_rows: bool = False,
        rating_scale: tuple[float, float] | None = (1.0, 5.0),
    ):
        self.encoding = encoding
        self.skip_bad_rows = skip_bad_rows
        self.rating_scale = rating_scale

    def validate(self) -> None:
        v.check_rating_scale(self)

    @classmethod
    def sniff(cls, path: Path) -> bool:
        path = Path(path)
        return path.is_dir() and (path / "u.data").is_file()

    def load(self, path: str | Path) -> RecData:
        import pandas as pd

        folder = v.check_path(path)
        if folder.is_file() and folder.name == "u.data":
            folder = folder.parent
        report: dict[str, Any] = {"format": "movielens-100k", "folder": str(folder)}
        data_path = _need(folder, "u.data", self.name)
        skipped = report if self.skip_bad_rows else None
        raw = _read_table(data_path, encoding=self.encoding, sep="\t", header=None, dtype=str,
                          skip_report=skipped)  # fmt: skip
        if raw.shape[1] < 4:
            raise DataError(
                f"{data_path}: expected 4 tab-separated columns (user, item, rating, timestamp), "
                f"found {raw.shape[1]}; is this the original u.data?"
            )
        report["rows_read"] = int(len(raw))
        df = _interactions(
            raw.iloc[:, :4].copy(), data_path, scale=self.rating_scale,
            skip_bad_rows=self.skip_bad_rows, report=report, header=False,
        )  # fmt: skip
        items = self._items(folder, report)
        return v.build_recdata(
            f"movielens-100k:{folder.name}",
            df,
            report=report,
            rating_scale=self.rating_scale or v.observed_scale(df["rating"]),
            has_text=False,
            items=pd.DataFrame({"item": items["item"], "text": items["text"]}),
        )

    def _genres(self, folder: Path) -> list[str]:
        path = folder / "u.genre"
        if not path.is_file():
            return list(ML100K_GENRES)
        table = _read_table(path, encoding=self.encoding, sep="|", header=None, dtype=str)
        table = table.dropna()
        return [
            name
            for name, _ in sorted(
                zip(table[0], table[1].astype(int), strict=True), key=lambda t: t[1]
            )
        ]

    def _items(self, folder: Path, report: dict[str, Any]):
        path = _need(folder, "u.item", self.name)
        genres = self._genres(folder)
        table = _read_table(
            path, encoding=self.encoding, sep="|", header=None, dtype=str, keep_default_na=False
        )
        if table.shape[1] < 5 + len(genres):
            raise DataError(
                f"{path}: expected {5 + len(genres)} pipe-separated columns (id, title, dates, URL, "
                f"{len(genres)} genre flags), found {table.shape[1]}"
            )
        flags = table.iloc[:, 5 : 5 + len(genres)].to_numpy() == "1"
        texts = []
        for title, date, row in zip(table[1], table[2], flags, strict=True):
            title = title.strip()
            year = _YEAR.search(date.strip())
            # a title that carries its own year keeps it alone: u.item's date is the video
            # release ("Return of the Jedi (1983)", 14-Mar-1997), not a second year
            if year and not _TITLE_YEAR.search(title):
                title = f"{title} ({year.group(1)})"
            names = [g for g, on in zip(genres, row, strict=True) if on and g != "unknown"]
            texts.append(v.join_text([title, f"Genres: {', '.join(names)}" if names else ""]))
        report["item_rows"] = int(len(table))
        return {"item": v.coerce_ids(table[0]), "text": texts}


class MovieLensLatest(Dataset):
    """MovieLens latest(-small) folder: ratings.csv; title + genres + user tags as item text."""

    name = "movielens"
    aliases = ("ml-latest", "ml-latest-small")

    def __init__(
        self,
        encoding: str = "utf-8",
        skip_bad_rows: bool = False,
        rating_scale: tuple[float, float] | None = (0.5, 5.0),
        max_tags: int = 20,
    ):
        self.encoding = encoding
        self.skip_bad_rows = skip_bad_rows
        self.rating_scale = rating_scale
        self.max_tags = max_tags

    def validate(self) -> None:
        v.check_rating_scale(self)
        check_ranges(self, {"max_tags": (0, 100_000)}, kind="dataset")

    @classmethod
    def sniff(cls, path: Path) -> bool:
        path = Path(path)
        return (
            path.is_dir() and (path / "ratings.csv").is_file() and (path / "movies.csv").is_file()
        )

    def load(self, path: str | Path) -> RecData:
        import pandas as pd

        folder = v.check_path(path)
        report: dict[str, Any] = {"format": "movielens", "folder": str(folder)}
        ratings_path = _need(folder, "ratings.csv", self.name)
        raw = _read_table(ratings_path, encoding=self.encoding, dtype=str,
                          skip_report=report if self.skip_bad_rows else None)  # fmt: skip
        expected = ["userId", "movieId", "rating", "timestamp"]
        if list(raw.columns[:4]) != expected:
            raise DataError(
                f"{ratings_path}: expected columns {', '.join(expected)}; columns found: "
                f"{', '.join(map(str, raw.columns))}; for other CSVs use --format csv with user_col/item_col"
            )
        report["rows_read"] = int(len(raw))
        df = _interactions(
            raw[expected].copy(), ratings_path, scale=self.rating_scale,
            skip_bad_rows=self.skip_bad_rows, report=report, header=True,
        )  # fmt: skip
        movies_path = _need(folder, "movies.csv", self.name)
        movies = _read_table(movies_path, encoding=self.encoding, dtype=str, keep_default_na=False)
        for col in ("movieId", "title", "genres"):
            if col not in movies.columns:
                raise DataError(
                    f"{movies_path}: no {col} column; columns found: {', '.join(map(str, movies.columns))}"
                )
        tags = self._tags(folder, report)
        texts = []
        for mid, title, genres in zip(
            movies["movieId"], movies["title"], movies["genres"], strict=True
        ):
            names = [g for g in genres.split("|") if g and g != "(no genres listed)"]
            movie_tags = tags.get(mid.strip(), [])
            texts.append(
                v.join_text(
                    [
                        title,
                        f"Genres: {', '.join(names)}" if names else "",
                        f"Tags: {', '.join(movie_tags)}" if movie_tags else "",
                    ]
                )
            )
        report["item_rows"] = int(len(movies))
        report["items_with_tags"] = int(sum(1 for m in movies["movieId"] if m.strip() in tags))
        return v.build_recdata(
            f"movielens:{folder.name}",
            df,
            report=report,
            rating_scale=self.rating_scale or v.observed_scale(df["rating"]),
            has_text=False,
            items=pd.DataFrame({"item": v.coerce_ids(movies["movieId"]), "text": texts}),
        )

    def _tags(self, folder: Path, report: dict[str, Any]) -> dict[str, list[str]]:
        """movieId -> tags, case-insensitively de-duplicated, most frequent first."""
        path = folder / "tags.csv"
        if not path.is_file() or path.stat().st_size == 0:
            report["tags_read"] = 0
            return {}
        table = _read_table(path, encoding=self.encoding, dtype=str, keep_default_na=False)
        if "movieId" not in table.columns or "tag" not in table.columns:
            raise DataError(
                f"{path}: expected movieId and tag columns; columns found: {', '.join(map(str, table.columns))}"
            )
        report["tags_read"] = int(len(table))
        counts: dict[str, dict[str, list]] = {}
        for order, (mid, tag) in enumerate(zip(table["movieId"], table["tag"], strict=True)):
            tag = " ".join(tag.split())
            if not tag:
                continue
            per = counts.setdefault(mid.strip(), {})
            slot = per.setdefault(tag.lower(), [0, order, tag])  # count, first seen, display form
            slot[0] += 1
        return {
            mid: [s[2] for s in sorted(per.values(), key=lambda s: (-s[0], s[1]))][: self.max_tags]
            for mid, per in counts.items()
        }
