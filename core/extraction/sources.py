"""Where an extraction's rows come from, de-duplicated once by one rule.

A loaded dataset (``RecData``) was de-duplicated by its loader
(``validation.dedupe_latest``: the latest review per (user, item), ties to the later row).
A file or folder of shards is read twice instead, in bounded memory: :func:`plan_rows` reads
it once, keeping only 64-bit hashes of the ids and the timestamps (24 bytes a row), and
chooses the same rows by the same rule; the streamed engine and the Ray read tasks then read
the rows again and keep the planned ones (:func:`iter_planned`). So every engine starts from
the same rows, and gives the same ``rows_used``, vectors and manifest counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from recfeat.errors import DataError
from recfeat.extraction.records import _loader, iter_file_batches, source_files

ID_COLUMNS = ["user", "item", "rating", "timestamp"]


@dataclasses.dataclass
class Plan:
    """Which rows of a file input survive de-duplication."""

    keep: np.ndarray  # bool per row read (after bad rows), True for the rows kept
    report: dict[str, Any]
    summary: dict[str, Any]
    rating_scale: tuple[float, float] | None
    files: list[Path]
    file_rows: list[int]  # rows read per file, in the order of ``files``

    def file_keep(self, index: int) -> np.ndarray:
        """The keep mask of file ``index``'s rows."""
        start = int(sum(self.file_rows[:index]))
        return self.keep[start : start + self.file_rows[index]]

    def dataset_summary(self, empty_texts: int) -> dict[str, Any]:
        """The summary a loader gives the same input (``RecData.summary()``), counts included;
        ``empty_texts``: kept rows whose text is empty before cleaning."""
        report = {**self.report, "empty_texts": int(empty_texts)}
        report.setdefault("bad_rows_skipped", 0)
        report.setdefault("duplicates_dropped", 0)
        return {**self.summary, **report}


def _hash(values) -> np.ndarray:
    import pandas as pd

    return pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)


def plan_rows(path, fmt: str, options: dict[str, Any] | None, batch_rows: int,
              want_ratings: bool) -> Plan:  # fmt: skip
    """Read ``path`` once; keep per row only hashed ids and the timestamp; choose the rows
    the loaders keep (``validation.dedupe_latest``) and count users and items. The rating
    scale is the loader's, else (``want_ratings``) the range of the kept ratings."""
    report: dict[str, Any] = {}
    files = source_files(path, fmt)
    file_rows = [0] * len(files)
    users, items, times, ratings = [], [], [], []
    for index, batch in iter_file_batches(path, fmt, batch_rows, ID_COLUMNS, options=options,
                                          report=report):  # fmt: skip
        file_rows[index] += len(batch)
        users.append(_hash(batch["user"]))
        items.append(_hash(batch["item"]))
        times.append(batch["timestamp"].to_numpy(dtype=np.int64))
        if want_ratings:
            ratings.append(batch["rating"].to_numpy(dtype=np.float64))
    # the loaders name a dataset after its file (a folder's one review file), shards after the folder
    name = (
        f"{report['format']}:{(files[0] if len(files) == 1 else Path(str(path)).expanduser()).name}"
    )
    if not users:
        raise DataError(f"{name}: no usable rows left after validation ({report}); check the input")
    user_h, item_h, ts = np.concatenate(users), np.concatenate(items), np.concatenate(times)
    del users, items, times
    n = len(ts)
    # sorted by pair, then timestamp, then row: the last of each pair is the latest review
    order = np.lexsort((np.arange(n), ts, item_h, user_h))
    u, i = user_h[order], item_h[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    keep = np.zeros(n, dtype=bool)
    keep[order[last]] = True
    del order, u, i, last, ts
    report["duplicates_dropped"] = int(n - keep.sum())
    scale = getattr(_loader(fmt, options), "rating_scale", None)
    if scale is None and want_ratings:
        r = np.concatenate(ratings)[keep]
        r = r[~np.isnan(r)]
        scale = (float(r.min()), float(r.max())) if len(r) else None
    kept = int(keep.sum())
    summary = {
        "name": name,
        "interactions": kept,
        "users": int(np.unique(user_h[keep]).size),
        "items": int(np.unique(item_h[keep]).size),
        "reviews": kept,
        "item_texts": None,
    }
    return Plan(keep=keep, report=report, summary=summary, rating_scale=scale, files=files,
                file_rows=file_rows)  # fmt: skip


def iter_planned(path, fmt: str, options: dict[str, Any] | None, keep: np.ndarray,
                 batch_rows: int, *, only_file: int | None = None) -> Iterator[Any]:  # fmt: skip
    """The planned rows of ``path`` (or of its file ``only_file``, whose mask ``keep`` is),
    in file order, in batches of at most ``batch_rows`` kept rows (``batch_rows`` exactly,
    but for the last, when one file is read: Ray's shards are these batches)."""
    import pandas as pd

    row = 0
    waiting: list[Any] = []
    count = 0
    for _, batch in iter_file_batches(path, fmt, batch_rows, options=options,
                                      only_file=only_file):  # fmt: skip
        if row + len(batch) > len(keep):
            raise DataError(f"{path} changed while it was read (more rows than at first); rerun")
        mask = keep[row : row + len(batch)]
        row += len(batch)
        batch = batch[mask]
        if not len(batch):
            continue
        if only_file is None:
            yield batch.reset_index(drop=True)
            continue
        waiting.append(batch)
        count += len(batch)
        while count >= batch_rows:
            joined = pd.concat(waiting, ignore_index=True)
            yield joined.iloc[:batch_rows].reset_index(drop=True)
            rest = joined.iloc[batch_rows:]
            waiting, count = ([rest] if len(rest) else []), len(rest)
    if waiting:
        yield pd.concat(waiting, ignore_index=True)
    if row != len(keep):
        raise DataError(f"{path} changed while it was read ({row} rows, then {len(keep)}); rerun")
