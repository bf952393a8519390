"""Pipeline configuration in TOML: each component is ``{ use = "name", ...options }``.

Example (``examples/pipeline.toml`` is a complete one)::

    cleaners = ["html", { use = "cap", max_chars = 2000 }]

    [dataset]
    use = "amazon"

    [encoder]
    use = "minilm"
    pooling = "mean"

    [[models]]
    use = "mf"

A component may also be written as a bare name (``"html"``) when it needs no options.
``validate_config`` returns every problem at once, one line each, so a user fixes them in
one pass instead of one per run.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from recfeat.plugin.options import validate_options
from recfeat.plugin.registry import get_registry

from .errors import ConfigError, RecfeatError, closest

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
# tables of plain settings allowed beside the components (read by the commands using them)
SETTINGS = {"pipeline"}


def read_config(path: str | Path) -> dict[str, Any]:
    """Parse the TOML file at ``path``; ConfigError (one line) when unreadable or malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"config {path} is a folder; give the path of a .toml file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)"
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def validate_config(config: dict[str, Any], source: str = "config") -> list[str]:
    """Every problem in ``config``, one line each; an empty list means valid."""
    problems: list[str] = []
    for key, value in config.items():
        if key in SETTINGS:
            if not isinstance(value, dict):
                problems.append(f"{source}: {key} must be a table ([{key}]) of settings")
            continue
        if key not in SECTIONS:
            problems.append(
                f"{source}: unknown section {key!r}.{closest(key, [*SECTIONS, *SETTINGS])} "
                f"Sections: {', '.join([*SECTIONS, *SETTINGS])}"
            )
            continue
        kind, is_list = SECTIONS[key]
        if is_list and not isinstance(value, list):
            problems.append(
                f"{source}: {key} must be a list of components: write [[{key}]] tables or "
                f'{key} = [{{ use = "name" }}, ...]'
            )
            continue
        if not is_list and isinstance(value, list):
            problems.append(
                f"{source}: {key} takes one component, got a list; write [{key}] with use = \"name\""
            )
            continue
        specs = value if is_list else [value]
        for i, spec in enumerate(specs):
            where = f"{source}: {key}[{i}]" if is_list else f"{source}: {key}"
            problems.extend(_check_spec(kind, spec, where))
    return problems


def _check_spec(kind: str, spec: Any, where: str) -> list[str]:
    if isinstance(spec, str):
        spec = {"use": spec}
    if not isinstance(spec, dict):
        return [f'{where}: expected a table like {{ use = "name" }}, got {type(spec).__name__}']
    if "use" not in spec:
        return [f'{where}: missing use = "name" (the {kind}); list them with `recfeat components {kind}s`']
    if not isinstance(spec["use"], str) or not spec["use"]:
        return [f"{where}: use must be a {kind} name (a string), got {spec['use']!r}"]
    name, options = component_spec(spec)
    misplaced = [k for k in options if k in SECTIONS or k in SETTINGS]
    if misplaced:
        # TOML puts every key written after a [table] header into that table
        return [
            f"{where}: {misplaced[0]!r} is inside this table; move `{misplaced[0]} = ...` above "
            "the first [table] header (TOML puts later keys into the table above them)"
        ]
    try:
        cls = get_registry(kind).get(name)
        validate_options(cls, options, what=f"{kind} {name!r}")
    except RecfeatError as exc:
        return [f"{where}: {line}" for line in str(exc).splitlines()]
    return []


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate; raise ConfigError listing every problem, one per line."""
    config = read_config(path)
    problems = validate_config(config, str(path))
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def component_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{use = "name", ...}`` -> ``(name, options)``."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, dict) or "use" not in spec:
        raise ConfigError(f'expected a component like {{ use = "name", ... }}, got {spec!r}')
    return spec["use"], {k: v for k, v in spec.items() if k != "use"}


def create_component(kind: str, spec: Any):
    """Instantiate the ``kind`` component described by ``spec`` (options validated)."""
    name, options = component_spec(spec)
    return get_registry(kind).create(name, **options)
