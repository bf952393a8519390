"""What a fine-tuned encoder was trained on, saved beside it, and the check that an
evaluation does not test on it.

``lineage.json`` in the model folder lists the (user, item) interactions whose text or order
entered a training pair and the items whose text did, by id (so it still applies when the
evaluation's interactions table is a different copy or order of the same data), with a
sha256 over both that ``finetune.json`` repeats. ``split.json`` beside it is the split the
pairs came from, in ``recfeat evaluate --load-split``'s format.

:func:`check_no_leak` is what ``evaluate`` calls before measuring an encoder: it refuses a
split whose test rows or cold items the training touched, naming both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

# the file names, defined once below the trainers and --backend auto (which reads students)
from recfeat.data.model_folders import DISTILL_MANIFEST_FILE as DISTILL_MANIFEST_FILE
from recfeat.data.model_folders import FINETUNE_MANIFEST_FILE as MANIFEST_FILE
from recfeat.data.model_folders import LINEAGE_FILE as LINEAGE_FILE
from recfeat.data.model_folders import SPLIT_FILE as SPLIT_FILE
from recfeat.errors import DataError

LINEAGE_FORMAT = "recfeat-finetune-lineage"
LINEAGE_VERSION = 1


class TrainingLeakError(DataError):
    """An encoder (or adaptor) was trained on texts of the rows or items an evaluation
    tests on."""


def lineage_digest(rows: pd.DataFrame, items: list[str], users: list[str] | None = None) -> str:
    """sha256 over the sorted touched (user, item) rows, items and (adaptors fitted on user
    vectors only) users; without users it is the digest phase-1 model folders recorded."""
    h = hashlib.sha256()
    for user, item in sorted(zip(rows["user"].astype(str), rows["item"].astype(str), strict=True)):
        h.update(f"{user}\x1f{item}\x1e".encode())
    h.update(b"\x1d")
    for item in sorted(items):
        h.update(f"{item}\x1e".encode())
    if users:
        h.update(b"\x1c")
        for user in sorted(users):
            h.update(f"{user}\x1e".encode())
    return h.hexdigest()


def lineage_payload(rows: pd.DataFrame, items: list[str], fingerprint: str) -> dict[str, Any]:
    """The content of ``lineage.json``: ``fingerprint`` is the interactions table's
    (``recfeat.data.split_files.fingerprint``)."""
    return {
        "format": LINEAGE_FORMAT,
        "version": LINEAGE_VERSION,
        "fingerprint": fingerprint,
        "digest": lineage_digest(rows, items),
        "rows": [[str(u), str(i)] for u, i in zip(rows["user"], rows["item"], strict=True)],
        "items": sorted(str(i) for i in items),
    }


@dataclasses.dataclass
class Lineage:
    """What one fine-tuned model (or fitted adaptor) touched: ``rows`` (user, item),
    ``items`` and ``users`` (an adaptor fitted on user vectors; empty for a model)."""

    folder: Path
    rows: set[tuple[str, str]]
    items: set[str]
    digest: str
    users: set[str] = dataclasses.field(default_factory=set)


def read_lineage(folder: str | Path) -> Lineage | None:
    """The lineage saved in a fine-tuned model ``folder``, or None when the folder is not one
    (a stock model). A lineage that is unreadable, or whose digest does not match its content
    or ``finetune.json``'s, is a DataError: it was edited, and a check against it proves nothing."""
    folder = Path(folder).expanduser()
    path, manifest_path = folder / LINEAGE_FILE, folder / MANIFEST_FILE
    if (folder / DISTILL_MANIFEST_FILE).is_file() and not manifest_path.is_file():
        manifest_path = folder / DISTILL_MANIFEST_FILE  # a distilled student: the same check
    if not manifest_path.is_file() and not path.is_file():
        return None
    fix = f"train again to rebuild {folder}"
    try:
        payload = json.loads(path.read_text())
        manifest = json.loads(manifest_path.read_text())
        rows = {(str(u), str(i)) for u, i in payload["rows"]}
        items = {str(i) for i in payload["items"]}
        recorded = manifest["lineage"]["digest"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the training lineage of {folder} ({type(exc).__name__}: {exc}); {fix}") from None
    frame = pd.DataFrame(sorted(rows), columns=["user", "item"]) if rows else pd.DataFrame(columns=["user", "item"])
    digest = lineage_digest(frame, sorted(items))
    if digest != payload.get("digest") or digest != recorded:
        raise DataError(f"the training lineage of {folder} does not match its digest (the files were edited); {fix}")
    return Lineage(folder, rows, items, digest)


@dataclasses.dataclass
class Leaks:
    """Test rows, cold items and cold users of an evaluation split that a training run
    touched."""

    rows: list[tuple[str, str]]
    cold_items: list[str]
    cold_users: list[str] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows or self.cold_items or self.cold_users)

    def describe(self) -> str:
        """``"3 test row(s) (first: user 'u', item 'i') and 1 cold item(s) (first: 'i9')"``."""
        parts = []
        if self.rows:
            user, item = self.rows[0]
            parts.append(f"{len(self.rows)} test row(s) (first: user {user!r}, item {item!r})")
        if self.cold_items:
            parts.append(f"{len(self.cold_items)} cold item(s) (first: {self.cold_items[0]!r})")
        if self.cold_users:
            parts.append(f"{len(self.cold_users)} cold user(s) (first: {self.cold_users[0]!r})")
        return " and ".join(parts)


def find_leaks(lineage: Lineage, test: pd.DataFrame, cold_items, cold_users=()) -> Leaks:
    """The ``test`` interactions (user, item columns), ``cold_items`` and ``cold_users``
    that ``lineage`` touched, sorted."""
    keys = zip(test["user"].astype(str), test["item"].astype(str), strict=True)
    rows = sorted({k for k in keys if k in lineage.rows})
    items = sorted({str(i) for i in cold_items} & lineage.items)
    users = sorted({str(u) for u in cold_users} & lineage.users)
    return Leaks(rows, items, users)


def check_no_leak(model: str | Path, split, *, what: str = "encoder") -> Lineage | None:
    """Refuse (TrainingLeakError, one line naming both) to evaluate on ``split`` (a
    ``recfeat.evaluation.splits.Split``) with the fine-tuned ``model`` folder when its
    training pairs touched a test row or a cold item of the split. A folder without a lineage
    (a stock model) passes and gives None."""
    lineage = read_lineage(model)
    if lineage is None:
        return None
    leaks = find_leaks(lineage, split.test, split.cold_items)
    if leaks:
        raise TrainingLeakError(
            f"{what} {lineage.folder} was trained on texts of this {split.kind} split's "
            f"{leaks.describe()}; evaluate on the split it was trained with "
            f"(--load-split {lineage.folder / SPLIT_FILE}) or fine-tune on this split"
        )
    return lineage
