"""Pipeline configuration in TOML: each component is ``{ use = "name", ...options }``.

Example::

    cleaners = [{ use = "html" }, { use = "whitespace" }]

    [dataset]
    use = "amazon"

    [encoder]
    use = "minilm"
    pooling = "mean"

    [[models]]
    use = "mf"

``validate_config`` returns every problem at once, one line each, so a user fixes them in
one pass instead of one per run.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError, RecfeatError
from .options import validate_options
from .registry import get_registry

# section -> (component kind, whether the section holds a list of components)
SECTIONS: dict[str, tuple[str, bool]] = {
    "dataset": ("dataset", False),
    "cleaners": ("cleaner", True),
    "tokenizer": ("tokenizer", False),
    "token_features": ("tokenizer", False),
    "encoder": ("encoder", False),
    "models": ("model", True),
    "metrics": ("metric", True),
    "exporter": ("exporter", False),
}
# plain settings allowed beside the components
SETTINGS = {"pipeline"}


def read_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def validate_config(config: dict[str, Any], source: str = "config") -> list[str]:
    """Every problem in ``config``, one line each; an empty list means valid."""
    problems: list[str] = []
    for key, value in config.items():
        if key in SETTINGS:
            continue
        if key not in SECTIONS:
            from .errors import closest

            problems.append(
                f"{source}: unknown section {key!r}.{closest(key, SECTIONS)} "
                f"Sections: {', '.join(SECTIONS)}"
            )
            continue
        kind, is_list = SECTIONS[key]
        specs = value if is_list else [value]
        if is_list and not isinstance(value, list):
            problems.append(f"{source}: {key} must be a list of {{ use = \"name\", ... }} tables")
            continue
        for i, spec in enumerate(specs):
            where = f"{source}: {key}[{i}]" if is_list else f"{source}: {key}"
            problems.extend(_check_spec(kind, spec, where))
    return problems


def _check_spec(kind: str, spec: Any, where: str) -> list[str]:
    if isinstance(spec, str):
        spec = {"use": spec}
    if not isinstance(spec, dict):
        return [f"{where}: expected a table like {{ use = \"name\" }}, got {type(spec).__name__}"]
    if "use" not in spec:
        return [f"{where}: missing 'use' (the {kind} name); see `recfeat components {kind}s`"]
    options = {k: v for k, v in spec.items() if k != "use"}
    registry = get_registry(kind)
    try:
        cls = registry.get(spec["use"])
        validate_options(cls, options, what=f"{kind} {spec['use']!r}")
    except RecfeatError as exc:
        return [f"{where}: {line}" for line in str(exc).splitlines()]
    return []


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate; raise ConfigError listing every problem."""
    config = read_config(path)
    problems = validate_config(config, str(path))
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def component_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{use = "name", ...}`` -> ``(name, options)``."""
    if isinstance(spec, str):
        return spec, {}
    return spec["use"], {k: v for k, v in spec.items() if k != "use"}
