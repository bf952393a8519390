"""The check ``evaluate`` runs on every features object: was an encoder or adaptor behind
these vectors trained on this split's test rows, cold items or cold users?

Two sources of lineage, both untrusted files validated before use:

- an adaptor (the features manifest's ``adaptor`` block, written by ``recfeat adapt``): its
  ``.adaptor.json`` beside the features lists every id the fit read
  (``recfeat.finetuning.adaptors.load_adaptor`` checks it against the manifest's sha256
  and its own digest). Adapted features whose sidecar cannot be found are REFUSED: we know
  an adaptor was fitted and cannot see on what.
- a fine-tuned encoder: the features manifest records the weights' sha256 but not where they
  were (extraction drops locations); the run record ``<stem>.run.json`` beside the features
  (or the adaptor's record of it) names the model folder. When that folder holds a
  ``lineage.json`` and the same weights, ``recfeat.finetuning.check_no_leak`` runs.

When the encoder folder is gone (or holds other weights now) the check cannot run: that is
a WARNING in ``result.info["leaks"]``, not a refusal. Why: the features manifest alone cannot
tell a fine-tuned encoder from a stock one (both are a weights hash), and a stock model's
folder is routinely elsewhere (a hub cache on another machine), so refusing would refuse
every features file that travelled; the warning names the folder and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recfeat.errors import ArtifactError, DataError

from .lineage import SPLIT_FILE, TrainingLeakError, check_no_leak, find_leaks, read_lineage


def _adaptor_check(features, manifest: dict[str, Any], split, role: str) -> tuple[str, str | None]:
    """Refuse an adaptor whose fit read this split's held-out ids; returns (message, the
    encoder folder the adaptor recorded)."""
    from .adaptors import adaptor_files, load_adaptor

    block = manifest["adaptor"]
    kind = block.get("kind") if isinstance(block, dict) else None
    path = manifest.get("path")
    if not path:
        raise DataError(f"{role} features were adapted by a {kind} adaptor but given in memory, so "
                        "what it was fitted on cannot be checked; pass the adapted features file's path")  # fmt: skip
    try:
        adaptor = load_adaptor(path)
    except ArtifactError as exc:
        raise DataError(f"{role} features {path}: {exc}") from None
    lineage = adaptor.lineage
    leaks = find_leaks(lineage, split.test, split.cold_items, split.cold_users)
    files = adaptor_files(path)
    if leaks:
        fitted = (adaptor.info.get("fit") or {}).get("split")
        where = (f"evaluate on the split it was fitted with (--load-split {files['split']})"
                 if fitted else "it was fitted on every vector (--fit-on all, for deployment only)")  # fmt: skip
        raise TrainingLeakError(
            f"adaptor {files['params']} ({kind}) was fitted on vectors of this {split.kind} "
            f"split's {leaks.describe()}; {where}, or refit it on this split (recfeat adapt ... "
            "--load-split YOUR_SPLIT.json)"
        )
    source = adaptor.info.get("source") if isinstance(adaptor.info.get("source"), dict) else {}
    folder = source.get("encoder_folder")
    return f"adaptor {kind} fitted on none of this split's test rows or cold ids", (
        folder if isinstance(folder, str) else None)


def _encoder_check(manifest: dict[str, Any], folder: str | None, split, role: str) -> dict[str, Any]:
    weights = manifest.get("weights_sha256")
    if not weights:
        return {"status": "skipped", "message": f"{role} features name no encoder weights"}
    if folder is None:
        if not manifest.get("path"):
            return {"status": "skipped", "message": "in-memory features: the encoder is this process's"}
        return {"status": "warn", "message": (
            f"no run record beside {manifest['path']} names the encoder folder, so a fine-tuned "
            "encoder's training lineage cannot be checked; keep <name>.run.json beside the features")}  # fmt: skip
    path = Path(folder).expanduser()
    if not path.is_dir():
        return {"status": "warn", "message": (
            f"encoder folder {folder} is no longer on disk: if it was fine-tuned, its training "
            f"lineage cannot be checked; evaluate with the split it was trained with ({SPLIT_FILE} in "
            "that folder)")}  # fmt: skip
    if read_lineage(path) is None:  # raises on an edited lineage
        return {"status": "ok", "message": f"encoder {folder} is not fine-tuned (no lineage)"}
    from recfeat.encode.hf_models import weights_sha256

    try:
        current = weights_sha256(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable folder means "cannot verify"
        current = f"unreadable ({type(exc).__name__})"
    if current != weights:
        return {"status": "warn", "message": (
            f"fine-tuned encoder folder {folder} now holds other weights than the ones that made "
            "these features; their lineage cannot be checked: re-extract the features")}  # fmt: skip
    check_no_leak(path, split, what=f"encoder of the {role} features,")
    return {"status": "ok", "message": f"fine-tuned encoder {folder}: trained on none of this split's "
            "test rows or cold items"}  # fmt: skip


def check_features_lineage(features, split, *, role: str = "item") -> dict[str, Any]:
    """Detector for ``evaluate``: raises TrainingLeakError (one line naming the first test
    row / cold id and the fix) or DataError (unverifiable adaptor); else a
    ``{"status", "message"}`` for ``result.info["leaks"]``."""
    if features is None:
        return {"status": "skipped", "message": f"no {role} features"}
    manifest = getattr(features, "manifest", None) or {}
    notes, folder = [], None
    if "adaptor" in manifest:
        message, folder = _adaptor_check(features, manifest, split, role)
        notes.append(message)
    elif manifest.get("path"):
        from .adapt import encoder_folder_of

        folder = encoder_folder_of(Path(manifest["path"]))
    encoder = _encoder_check(manifest, folder, split, role)
    if encoder["status"] != "skipped" or not notes:
        notes.append(encoder["message"])
    status = encoder["status"] if encoder["status"] == "warn" else ("ok" if notes and (
        "adaptor" in manifest or encoder["status"] == "ok") else encoder["status"])  # fmt: skip
    return {"status": status, "message": "; ".join(notes)}
