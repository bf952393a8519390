"""What an extraction wrote to disk, whichever engine wrote it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from recfeat.data.features import features_from_table, read_features
from recfeat.extraction.ray_shards import MANIFEST, RUN_RECORD, out_filesystem, read_output


@dataclasses.dataclass
class FileResult:
    """What an engine wrote to disk: ``path`` (a Parquet file, or the Ray engine's folder),
    ``manifest``, ``run`` (the run record), ``rows`` and ``dim`` of the vectors. The vectors
    stay on disk; ``read()`` / ``to_features()`` load them."""

    path: Path
    manifest: dict[str, Any]
    run: dict[str, Any]
    rows: int
    dim: int

    @classmethod
    def from_folder(cls, out: str | Path, manifest: dict[str, Any] | None = None) -> FileResult:
        """A finished ``--ray`` folder (its manifest and run record)."""
        fs, root = out_filesystem(str(out))
        if manifest is None:
            with fs.open_input_file(f"{root}/{MANIFEST}") as fh:
                manifest = json.loads(fh.read().decode())
        with fs.open_input_file(f"{root}/{RUN_RECORD}") as fh:
            record = json.loads(fh.read().decode())
        return cls(Path(out), manifest, record, int(manifest["rows"]), int(manifest["dim"]))

    def read(self):
        """``(ids, vectors, manifest)`` from the file or folder."""
        if Path(self.path).is_dir():
            return read_output(str(self.path))
        return read_features(self.path)

    def to_features(self):
        ids, vectors, manifest = self.read()
        return features_from_table(ids, vectors, manifest, where=str(self.path))
