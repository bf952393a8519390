"""The artifact folder's ``manifest.json``: what was exported, how, how well, and file hashes.

Written last, over the finished folder. Loading verifies it before any session is built: the
tokenizer beside the model must be the one the manifest names, and every file must have the
size and sha256 recorded (a truncated or corrupted ``model.onnx`` is a clear error, not an
ONNX Runtime crash or, worse, silently different vectors).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from recfeat.errors import ArtifactError

MANIFEST = "manifest.json"
FORMAT = "recfeat-export/1"
TOKENIZER_FILE = "tokenizer.json"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def versions() -> dict[str, str | None]:
    """Versions of the libraries that shape the exported numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for dist in ("recfeat", "torch", "transformers", "onnx", "onnxruntime", "openvino", "nncf"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Add size and sha256 of every file in ``folder`` and write ``manifest.json``."""
    from recfeat.atomic import write_text
    from recfeat.jsonable import jsonable

    folder = Path(folder)
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(folder).as_posix()
        files[rel] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    manifest = {**manifest, "format": FORMAT, "files": files}
    write_text(folder / MANIFEST, json.dumps(jsonable(manifest), indent=2, sort_keys=False) + "\n")
    return manifest


def read_manifest(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"export folder {folder} does not exist; create it with `recfeat export`")
    path = folder / MANIFEST
    if not path.exists():
        raise ArtifactError(
            f"{folder} has no {MANIFEST}; it is not a recfeat export folder (re-run `recfeat export`)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); re-run `recfeat export`") from None
    if manifest.get("format") != FORMAT:
        raise ArtifactError(
            f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}; re-run `recfeat export`"
        )
    return manifest


def verify_folder(folder: str | Path, files: list[str] | None = None) -> dict[str, Any]:
    """Read the manifest and check tokenizer and file hashes; return the manifest.

    ``files`` limits the hash check to the files a runtime will read (plus the tokenizer).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    check_tokenizer(folder, manifest)
    recorded = manifest.get("files", {})
    wanted = recorded if files is None else {f: recorded.get(f) for f in files}
    for rel, meta in wanted.items():
        path = folder / rel
        if meta is None:
            raise ArtifactError(
                f"{rel} is not listed in {folder / MANIFEST}; it was not produced by this export"
            )
        if not path.exists():
            raise ArtifactError(f"{path} is missing (listed in the manifest); re-run `recfeat export`")
        size = path.stat().st_size
        if size != meta["bytes"]:
            word = "truncated" if size < meta["bytes"] else "larger than recorded"
            raise ArtifactError(
                f"{path} is {word}: {size} bytes, manifest says {meta['bytes']}; "
                "copy the folder again or re-run `recfeat export`"
            )
        if file_sha256(path) != meta["sha256"]:
            raise ArtifactError(
                f"{path} is corrupted: sha256 differs from the manifest; copy the folder again "
                "or re-run `recfeat export`"
            )
    return manifest


def tokenizer_fingerprint(folder: str | Path) -> dict[str, Any]:
    """sha256 and vocabulary size of the tokenizer saved in ``folder``."""
    path = Path(folder) / TOKENIZER_FILE
    if not path.exists():
        raise ArtifactError(f"{folder} has no {TOKENIZER_FILE}; re-run `recfeat export`")
    try:
        vocab = len(json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"])
    except (ValueError, KeyError, TypeError):
        vocab = None
    return {"sha256": file_sha256(path), "vocab_size": vocab}


def check_tokenizer(folder: str | Path, manifest: dict[str, Any]) -> None:
    expected = manifest.get("tokenizer") or {}
    found = tokenizer_fingerprint(folder)
    if found["sha256"] != expected.get("sha256"):
        raise ArtifactError(
            f"the tokenizer in {folder} does not match its manifest (vocabulary {found['vocab_size']} "
            f"vs {expected.get('vocab_size')} in the manifest, sha256 differs): the manifest or the "
            "tokenizer files come from another export; re-run `recfeat export`"
        )
