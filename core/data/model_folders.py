"""The files a trained-encoder folder carries beside its weights (``recfeat finetune``,
``recfeat distill``), and reading a distilled student's manifest.

Here, below both the trainers and ``--backend auto``: the trainers write these files and the
backend choice reads a student's, and neither may import the other (docs/architecture.md).
A folder found on disk is untrusted input: a manifest that does not parse as one is a
DataError naming the fix, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recfeat.errors import DataError

LINEAGE_FILE = "lineage.json"
SPLIT_FILE = "split.json"
FINETUNE_MANIFEST_FILE = "finetune.json"  # not manifest.json: that name marks an export folder
DISTILL_MANIFEST_FILE = "distill.json"  # a ``recfeat distill`` student's (same lineage block)
DISTILL_FORMAT = "recfeat-distill"


def read_distill_manifest(folder: str | Path) -> dict[str, Any] | None:
    """A student folder's ``distill.json`` (None when ``folder`` is not a distilled student);
    unreadable is a DataError naming the fix."""
    path = Path(folder).expanduser() / DISTILL_MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or manifest.get("format") != DISTILL_FORMAT:
            raise ValueError(f"format is not {DISTILL_FORMAT}")
        manifest["teacher"]["weights_sha256"]  # noqa: B018 - must be there
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read {path} ({type(exc).__name__}: {exc}); distill again to "
                        "rebuild the student") from None  # fmt: skip
    return manifest
