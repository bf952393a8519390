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

Every section the schema accepts is read by some command (``recfeat config validate
--help`` lists who reads what); a section or ``[pipeline]`` setting nobody reads is
rejected, so nothing in a file is silently ignored. Precedence everywhere: command-line
flag > config file > built-in default.

``parse_key_values`` is the one parser for command-line ``KEY=VALUE`` / ``MODEL.KEY=VALUE``
pairs, typed the way TOML values are (JSON: ints, floats, true/false, null, lists; anything
else is a string), so ``-o x=5`` and ``x = 5`` in a file mean the same.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

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
# [pipeline] setting -> (type, allowed values or None, the command that reads it)
PIPELINE_SETTINGS: dict[str, tuple[type | tuple[type, ...], tuple[Any, ...] | None, str]] = {
    "level": (str, ("review", "item", "user"), "extract"),
    "split": (str, ("random", "temporal", "item-cold", "user-cold"), "evaluate"),
    "k": (int, None, "evaluate"),
    "seed": (int, None, "evaluate"),
    "test_fraction": ((int, float), None, "evaluate"),
    "relevance_threshold": ((int, float), None, "evaluate"),
}


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
            else:
                problems.extend(_check_settings(value, f"{source}: {key}"))
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
        # create = option types + the component's own value checks (validate()), no work done
        get_registry(kind).create(name, **options)
    except RecfeatError as exc:
        return [f"{where}: {line}" for line in str(exc).splitlines()]
    return []


def _check_settings(table: dict[str, Any], where: str) -> list[str]:
    """Unknown [pipeline] keys and values of the wrong type or outside the allowed set."""
    problems = []
    known = list(PIPELINE_SETTINGS)
    for key, value in table.items():
        if key not in PIPELINE_SETTINGS:
            problems.append(
                f"{where}: unknown setting {key!r} (no command reads it).{closest(key, known)} "
                f"Settings: {', '.join(known)}"
            )
            continue
        typ, allowed, _ = PIPELINE_SETTINGS[key]
        if isinstance(value, bool) or not isinstance(value, typ):
            names = " or ".join(t.__name__ for t in (typ if isinstance(typ, tuple) else (typ,)))
            problems.append(f"{where}: {key} must be {names}, got {value!r}")
        elif allowed is not None and value not in allowed:
            problems.append(
                f"{where}: {key} = {value!r} is not one of {', '.join(map(str, allowed))}"
            )
    return problems


def pipeline_setting(config: dict[str, Any], key: str, flag: Any = None, default: Any = None) -> Any:
    """``flag`` when given (not None), else ``[pipeline] key`` from the config, else ``default``."""
    if flag is not None:
        return flag
    return config.get("pipeline", {}).get(key, default)


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


def chosen_component(
    config: dict[str, Any], section: str, name: str | None, default: str
) -> tuple[str, dict[str, Any]]:
    """(name, options) for a one-component ``section``: a ``name`` from the command line wins;
    the config's options carry over only when it names the same component."""
    base, options = component_spec(config[section]) if section in config else (default, {})
    if name and name != base:
        return name, {}  # options of another component do not carry over
    return name or base, dict(options)


def create_component(kind: str, spec: Any):
    """Instantiate the ``kind`` component described by ``spec`` (options validated)."""
    name, options = component_spec(spec)
    return get_registry(kind).create(name, **options)


def _typed(text: str) -> Any:
    """A command-line value typed like a TOML one: JSON when it parses, else the string."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_key_values(
    pairs, *, flag: str = "--option", example: str = "name=value", scoped: bool = False
) -> dict[str, Any]:
    """``("a=1", "b=x")`` -> ``{"a": 1, "b": "x"}``; with ``scoped``, ``("mf.factors=50",)`` ->
    ``{"mf": {"factors": 50}}``. A malformed pair is a one-line UsageError naming the pair,
    the flag and an ``example``."""
    from .errors import UsageError

    form = "MODEL.KEY=VALUE" if scoped else "KEY=VALUE"
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        scope, dot, option = key.partition(".")
        if not sep or not key or (scoped and (not dot or not scope.strip() or not option.strip())):
            raise UsageError(f"{flag} {pair!r} is not {form}; write e.g. {flag} {example}")
        if scoped:
            out.setdefault(scope.strip(), {})[option.strip()] = _typed(raw)
        else:
            out[key] = _typed(raw)
    return out
