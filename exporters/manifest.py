"""The artifact folder's ``manifest.json``: what was exported, how, how well, and file hashes.

Written last, over the finished folder. Loading verifies it before any session is built: the
tokenizer beside the model must be the one the manifest names, and every file a load reads
(the model file run, its weights, and every tokenizer file and config) must have the size
and sha256 recorded, with no unlisted file beside them (a truncated ``model.onnx`` or an
edited ``vocab.txt`` is a clear error, not an ONNX Runtime crash or, worse, silently
different vectors served from the cache).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from recfeat.atomic import write_text
from recfeat.errors import ArtifactError
from recfeat.jsonable import jsonable

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
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ArtifactError(f"{path} has format {got!r}, expected {FORMAT!r}; re-run `recfeat export`")
    check_fields(manifest, path)
    check_file_names(manifest, folder, path)
    return manifest


# What the loaders read from a manifest, with the type each must have: a manifest that lacks
# one (hand-edited, truncated, from a foreign tool) fails here with its name, not later with
# a KeyError deep inside a runtime.
REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "runtime": str,
    "source": dict,
    "pooling": str,
    "normalize": bool,
    "max_length": int,
    "hidden_size": int,
    "output": str,
    "default_file": str,
    "steps": list,
    "files": dict,
}


def check_fields(manifest: dict[str, Any], path: Path) -> None:
    """Every field a loader reads is present with the right type (ArtifactError otherwise)."""
    for key, kind in REQUIRED_FIELDS.items():
        value = manifest.get(key)
        if value is None:
            raise ArtifactError(f"{path} lacks the field {key!r}; re-run `recfeat export`")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ArtifactError(
                f"{path}: field {key!r} is a {type(value).__name__}, not a "
                f"{getattr(kind, '__name__', kind)}; re-run `recfeat export`"
            )
    for n, step in enumerate(manifest["steps"]):
        if not isinstance(step, dict) or not isinstance(step.get("file"), str):
            raise ArtifactError(f"{path}: step {n} has no file name; re-run `recfeat export`")
    for rel, meta in manifest["files"].items():
        if not (
            isinstance(meta, dict)
            and isinstance(meta.get("bytes"), int) and not isinstance(meta["bytes"], bool)
            and isinstance(meta.get("sha256"), str)
        ):  # fmt: skip
            raise ArtifactError(
                f"{path}: files entry {rel!r} lacks its bytes or sha256; re-run `recfeat export`"
            )


def check_file_names(manifest: dict[str, Any], folder: Path, path: Path) -> None:
    """Every file name the manifest gives (``files``, each step's ``file``, ``default_file``)
    is a plain relative path inside ``folder``: no absolute path, no ``..``, no link leading
    out of the folder. A manifest is a file found on disk, so untrusted input: a name like
    ``../other/model.onnx`` would otherwise load and run a file outside the export folder.
    Checked here, where every loader reads the manifest, before any file is opened."""
    names = [(rel, "in 'files'") for rel in manifest["files"]]
    names += [(step["file"], f"of step {n}") for n, step in enumerate(manifest["steps"])]
    names.append((manifest["default_file"], "in 'default_file'"))
    root = folder.resolve()
    for rel, where in names:
        parts = rel.split("/")
        if not rel or "\0" in rel or "\\" in rel or rel.startswith("/") or Path(rel).is_absolute():
            why = "it is absolute or not a plain file name"
        elif any(part in ("", ".", "..") for part in parts):
            why = "it has an empty, '.' or '..' part"
        else:
            try:
                inside = (folder / rel).resolve().is_relative_to(root)
            except (OSError, RuntimeError):
                inside = False
            if inside:
                continue
            why = "a symbolic link leads out of the folder"
        raise ArtifactError(
            f"{path}: the file name {rel!r} ({where}) is not a relative path inside {folder} "
            f"({why}); an export folder may only name its own files: remove this folder or "
            "re-run `recfeat export`"
        )


MODEL_SUFFIXES = (".onnx", ".onnx.data", ".data", ".xml", ".bin")


def model_files(manifest: dict[str, Any]) -> set[str]:
    """The listed files that hold a graph or its weights (each step's file and companions);
    everything else listed (tokenizer files, configs) is read by every load."""
    recorded = manifest.get("files", {})
    out = set()
    for rel in recorded:
        if rel.endswith(MODEL_SUFFIXES):
            out.add(rel)
    for step in manifest.get("steps", []):
        out.add(step["file"])
    return out


def support_files(manifest: dict[str, Any]) -> list[str]:
    """Listed files that are not model files: the tokenizer's files and configs."""
    skip = model_files(manifest)
    return sorted(rel for rel in manifest.get("files", {}) if rel not in skip)


def support_files_sha256(manifest: dict[str, Any], folder: str | Path | None = None) -> str:
    """One sha256 over the name and sha256 of every support file, for cache keys: an edited
    vocabulary, tokenizer setting or config is a different encoder. The recorded hashes
    (checked against the files on load), or with ``folder`` the files as they are now (for
    a folder loaded without verification)."""
    digest = hashlib.sha256()
    recorded = manifest.get("files", {})
    for rel in support_files(manifest):
        path = None if folder is None else Path(folder) / rel
        sha = file_sha256(path) if path is not None and path.is_file() else recorded[rel]["sha256"]
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def verify_folder(folder: str | Path, files: list[str] | None = None) -> dict[str, Any]:
    """Read the manifest and check every file a load reads against it; return the manifest.

    Checked: ``files`` (the model file a runtime will run, and its weights; all listed
    files when None), every other listed file that is not a model (the tokenizer files and
    configs: transformers reads them all), and that the folder holds no unlisted file a
    loader could pick up. Folders from earlier releases list every file they hold with its
    sha256 (``write_manifest`` always did), so they are verified the same way; only the
    cache key is new, and it is computed from those recorded hashes.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    check_tokenizer(folder, manifest)
    recorded = manifest.get("files", {})
    wanted_names = list(recorded) if files is None else list(dict.fromkeys([*files, *support_files(manifest)]))
    unlisted = sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.relative_to(folder).as_posix() not in recorded
    )  # fmt: skip
    if unlisted:
        raise ArtifactError(
            f"{folder / unlisted[0]} is not listed in {folder / MANIFEST}: it was not produced by "
            "this export and a loader could read it; remove it or re-run `recfeat export`"
        )
    for rel in wanted_names:
        meta = recorded.get(rel)
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
                f"{path} is {word} or was edited: {size} bytes, manifest says {meta['bytes']}; "
                "copy the folder again or re-run `recfeat export`"
            )
        if file_sha256(path) != meta["sha256"]:
            raise ArtifactError(
                f"{path} is corrupted or was edited: its sha256 differs from {folder / MANIFEST}; "
                "restore the file (copy the folder again) or re-run `recfeat export`"
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
