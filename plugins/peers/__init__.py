"""The field's standard recommenders (implicit, LightFM, cornac) as recfeat models, so
``recfeat evaluate --peers implicit,lightfm,cornac`` ranks them on the same split, through
the same evaluator, beside recfeat's own models.

Each peer is a ``RecModel`` named after its library (``implicit-als``, ``lightfm-warp``,
``cornac-bpr``...), configured the way that library's own documentation configures it, and
declares a small ``tune_space`` (option -> values) for ``evaluate --tune``. The libraries are
optional: importing this package imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from recfeat.errors import MissingDependencyError, UsageError, closest, require
from recfeat.plugin.hookspecs import hookimpl

#: --peers names -> the peer models they add, in the order they are listed.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "implicit": ("implicit-als", "implicit-bpr"),
    "lightfm": ("lightfm-warp", "lightfm-warp-text"),
    "cornac": ("cornac-bpr", "cornac-mf"),
}
#: peers that need item features; --peers adds them only when features are given.
TEXT_PEERS = ("lightfm-warp-text",)
EXTRA = "peers-cf"
LIGHTFM_BUILD = "bash benchmarks/peers/install_lightfm.sh"


def peer_classes() -> list[type]:
    from .cornac_models import CornacBPR, CornacMF
    from .implicit_models import ImplicitALS, ImplicitBPR
    from .lightfm_models import LightFMWarp, LightFMWarpText

    return [ImplicitALS, ImplicitBPR, LightFMWarp, LightFMWarpText, CornacBPR, CornacMF]


@hookimpl
def register_models(register):
    for cls in peer_classes():
        register(cls)


def require_library(library: str, purpose: str):
    """Import a peer's library or raise one line saying how to install it.

    ``pip install lightfm`` fails to build on current setuptools (its setup.py sets an
    attribute on ``__builtins__``, a dict when the PEP 517 backend runs it), so LightFM's
    message names the build script that patches that one line instead of the extra.
    """
    if library != "lightfm":
        return require(library, EXTRA, purpose)
    try:
        return require("lightfm", EXTRA, purpose)
    except MissingDependencyError as exc:
        exc.args = (
            f"lightfm is not installed (needed for {purpose}); `pip install lightfm` fails to "
            "build (its setup.py assigns to __builtins__, a dict under the PEP 517 backend): "
            f"build it from a recfeat checkout with: {LIGHTFM_BUILD}",
        )
        raise


def expand_peers(libraries: str | Iterable[str], *, text: bool = True) -> list[str]:
    """``"implicit,lightfm"`` -> the peer model names of those libraries; peers that need
    item features (``lightfm-warp-text``) only when ``text``. An unknown library is a
    UsageError; a library that is not installed fails here, before any model is fitted."""
    names = libraries.split(",") if isinstance(libraries, str) else list(libraries)
    out: list[str] = []
    for raw in names:
        library = raw.strip().lower()
        if not library:
            continue
        if library not in LIBRARIES:
            raise UsageError(
                f"unknown peer library {raw.strip()!r}; choose from "
                f"{', '.join(LIBRARIES)}.{closest(library, LIBRARIES)}"
            )
        require_library(library, f"--peers {library}")
        out.extend(n for n in LIBRARIES[library] if n not in out and (text or n not in TEXT_PEERS))
    if not out:
        raise UsageError(f"--peers names no library; choose from {', '.join(LIBRARIES)}")
    return out


def add_peers(models, peers, options: dict[str, dict] | None = None) -> list:
    """``models`` (names or ``(name, options)``) followed by the ``peers`` not already in it;
    every peer, listed before or added here, gets its ``options`` entry
    (``-O implicit-als.factors=64``) on top of the options it has."""
    options = options or {}
    out, listed = [], set()
    for name in [*models, *peers]:
        name, opts = (name, {}) if isinstance(name, str) else (name[0], dict(name[1]))
        if name in listed and name in peers:
            continue
        listed.add(name)
        if name in peers:
            opts.update(options.get(name, {}))
        out.append((name, opts) if opts else name)
    return out
