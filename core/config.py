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
Models may also be ``[models.NAME]`` tables (``model_tables``), and a model's ``search``
table is the space tuning searches, apart from its fixed options (``split_search``): a
whole experiment (``[data]``, ``peers``, ``[tuning]``, ``[outputs]``; examples/experiments/)
fits in one file.
``validate_config`` returns every problem at once, one line each, so a user fixes them in
one pass instead of one per run.

Every section the schema accepts is read by some command: ``SCHEMA`` below declares each
table, its keys (type, allowed values or range) and the commands that read it, and
``recfeat config validate --help`` lists the same. A section or setting nobody reads is
rejected with the accepted ones and a did-you-mean, so nothing in a file is silently
ignored. Precedence everywhere: command-line
flag > config file > built-in default.

``parse_key_values`` is the one parser for command-line ``KEY=VALUE`` / ``MODEL.KEY=VALUE``
pairs, typed the way TOML values are (JSON: ints, floats, true/false, null, lists; anything
else is a string), so ``-o x=5`` and ``x = 5`` in a file mean the same.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from recfeat.plugin.options import range_text
from recfeat.plugin.registry import get_registry

from .errors import ConfigError, RecfeatError, UsageError, closest


@dataclasses.dataclass(frozen=True)
class Components:
    """A section naming components of ``kind``: one table, or a list of them (``many``)."""

    kind: str
    many: bool
    readers: str  # the commands that read it (shown by `recfeat config validate --help`)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One plain setting: its type(s), allowed values or inclusive range, and its reader.
    ``path``: a file or folder path, whose ``${VAR}`` and ``~`` are expanded when read
    (``expand_path``). A list setting's ``choices`` are the values each element may take.
    At the top of SCHEMA (not inside a table), a Setting is a key above every [table]."""

    types: type | tuple[type, ...]
    reader: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    path: bool = False


# THE schema: every table and key a config file may hold, and who reads it. A table of
# plain settings is a dict of Setting; add a new one (say [tune]) here, read it with
# ``setting(config, "tune", key, flag, default)``, and it is validated like [pipeline].
#: every split kind, the one vocabulary of --split, [pipeline] split and
#: recfeat.evaluation.splits (which documents each)
SPLIT_KINDS = ("random", "temporal", "item-cold", "user-cold", "leave-last-out",
               "leave-last-out-new")  # fmt: skip
#: next-item splits: their relevance default is every held-out interaction, as the
#: sequential literature counts (the next item is the answer, whatever its rating)
SEQUENTIAL_SPLITS = ("leave-last-out", "leave-last-out-new")
#: ``peers`` libraries (``recfeat.plugins.peers.LIBRARIES``, kept here so that a config is
#: checked without importing plugins; tests/test_experiments.py keeps the two equal)
PEER_LIBRARIES = ("implicit", "lightfm", "cornac")
#: the key of a model's table that holds its search space (``[models.ease.search]``)
SEARCH = "search"
SCHEMA: dict[str, Components | dict[str, Setting] | Setting] = {
    "peers": Setting(list, "evaluate", choices=PEER_LIBRARIES),
    "dataset": Components("dataset", False, "extract, evaluate, serve"),
    "cleaners": Components("cleaner", True, "extract, clean, serve"),
    "tokenizer": Components("tokenizer", False, "tokenize"),
    "token_features": Components("tokenizer", False, "extract"),
    "encoder": Components("encoder", False, "extract, export, serve"),
    "models": Components("model", True, "evaluate"),
    "metrics": Components("metric", True, "evaluate"),
    "exporter": Components("exporter", False, "export"),
    "data": {
        "path": Setting(str, "evaluate", path=True),
        "features": Setting(str, "evaluate", path=True),
        "user_features": Setting(str, "evaluate", path=True),
        "extract_features": Setting(bool, "evaluate"),
        "load_split": Setting(str, "evaluate", path=True),
    },
    "pipeline": {
        "level": Setting(str, "extract", choices=("review", "item", "user")),
        "split": Setting(str, "evaluate", choices=SPLIT_KINDS),
        "k": Setting(int, "evaluate", low=1),
        "seed": Setting(int, "evaluate", low=0, high=2**32 - 1),
        "test_fraction": Setting((int, float), "evaluate", low=0, high=1),
        "relevance_threshold": Setting((int, float), "evaluate"),
        "cold_reviews": Setting(int, "evaluate", low=1),
        "cold_protocol": Setting(str, "evaluate", choices=("first-reviews", "leave-one-out")),
        "candidates": Setting(str, "evaluate", choices=("cold", "mixed")),
        "rank_rating_models": Setting(bool, "evaluate"),
        "merge_variants": Setting(bool, "evaluate"),
        "trust_features": Setting(bool, "evaluate"),
    },
    "tuning": {
        "tune": Setting(bool, "evaluate"),
        "trials": Setting(int, "evaluate", low=1),
        "objective": Setting(str, "evaluate"),
    },
    "outputs": {
        "dir": Setting(str, "evaluate", path=True),
        "json": Setting(str, "evaluate", path=True),
        "markdown": Setting(str, "evaluate", path=True),
        "plot": Setting(str, "evaluate", path=True),
        "save_split": Setting(str, "evaluate", path=True),
    },
}
# Views of SCHEMA kept for callers: section -> (component kind, many); settings tables;
# top-level settings; [pipeline] key -> (type, choices, reader).
SECTIONS: dict[str, tuple[str, bool]] = {
    k: (v.kind, v.many) for k, v in SCHEMA.items() if isinstance(v, Components)
}
SETTINGS = {k for k, v in SCHEMA.items() if isinstance(v, dict)}
TOP_SETTINGS = {k for k, v in SCHEMA.items() if isinstance(v, Setting)}
PIPELINE_SETTINGS: dict[str, tuple[type | tuple[type, ...], tuple[Any, ...] | None, str]] = {
    k: (v.types, v.choices, v.reader) for k, v in SCHEMA["pipeline"].items()  # type: ignore[union-attr]
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
        if key in TOP_SETTINGS:
            problem = _check_value(SCHEMA[key], key, value)  # type: ignore[arg-type]
            problems.extend([f"{source}: {problem}"] if problem else [])
            continue
        if key in SETTINGS:
            if not isinstance(value, dict):
                problems.append(f"{source}: {key} must be a table ([{key}]) of settings")
            else:
                problems.extend(_check_settings(key, value, f"{source}: {key}"))
            continue
        if key not in SECTIONS:
            home = _table_of(key)
            hint = (f" {key!r} is a setting of [{home}]; write it under that header"
                    if home else closest(key, SCHEMA))  # fmt: skip
            problems.append(f"{source}: unknown section {key!r}.{hint} "
                            f"Sections: {', '.join(SCHEMA)}")  # fmt: skip
            continue
        tables = None  # [models.NAME] tables: their problems are named models.NAME
        if key == "models" and isinstance(value, dict):
            tables = list(value)
            try:
                value = model_tables(value)
            except ConfigError as exc:
                problems.append(f"{source}: {exc}")
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
            if tables is not None:
                where = f"{source}: {key}.{tables[i]}"
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
    misplaced = [k for k in options if k in SECTIONS or k in SETTINGS or k in TOP_SETTINGS]
    if misplaced:
        # TOML puts every key written after a [table] header into that table
        return [
            f"{where}: {misplaced[0]!r} is inside this table; move `{misplaced[0]} = ...` above "
            "the first [table] header (TOML puts later keys into the table above them)"
        ]
    search: dict[str, Any] = {}
    if kind == "model":
        try:
            options, search = split_search(name, options)
        except ConfigError as exc:
            return [f"{where}: {exc}"]
    # create = option types + the component's own value checks (validate()), no work done;
    # each value a search tries is checked as a fixed one would be
    tries = [(where, options)] + [(f"{where}.{SEARCH}.{option}", {**options, option: value})
                                  for option, values in search.items() for value in values]  # fmt: skip
    for place, chosen in tries:
        try:
            get_registry(kind).create(name, **chosen)
        except RecfeatError as exc:
            return [f"{place}: {line}" for line in str(exc).splitlines()]
    return []


def model_tables(models: dict[str, Any]) -> list[dict[str, Any]]:
    """``[models.NAME]`` tables (the form that names each model once) -> the ``[[models]]``
    list form: ``{"ease": {"reg": 500}}`` -> ``[{"use": "ease", "reg": 500}]``."""
    out = []
    for name, table in models.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"models.{name} must be a table of that model's options ([models.{name}]), "
                f"got {table!r}; list models as [models.NAME] tables or [[models]] with use"
            )
        if "use" in table:
            raise ConfigError(
                f"models.{name}: a [models.NAME] table is named by its model, so it takes no "
                "use = ...; to list one model twice, write [[models]] tables with use"
            )
        out.append({"use": name, **table})
    return out


def split_search(name: str, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list]]:
    """A model's options -> (its fixed options, its search space). The space is the
    ``search`` table (``[models.ease.search] reg = [100, 300]``): option -> the values
    tuning tries, each a non-empty list. An option both fixed and searched is a
    ConfigError: a fixed option is never searched, so one of the two would be ignored."""
    options = dict(options)
    search = options.pop(SEARCH, None)
    if search is None:
        return options, {}
    if not isinstance(search, dict):
        raise ConfigError(
            f"{SEARCH} must be a table of option = [values] ([models.{name}.{SEARCH}]), "
            f"got {search!r}"
        )
    for option, values in search.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{SEARCH}.{option} must be a non-empty list of the values tuning tries, got "
                f"{values!r}; e.g. {option} = [{values!r}, ...], or fix it with "
                f"{option} = {values!r} above [models.{name}.{SEARCH}]"
            )
    both = sorted(set(search) & set(options))
    if both:
        raise ConfigError(
            f"{both[0]!r} is both fixed ({both[0]} = {options[both[0]]!r}) and searched "
            f"({SEARCH}.{both[0]}); keep the fixed value or the list of values to search"
        )
    return options, {k: list(v) for k, v in search.items()}


def model_specs(config: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, list]]]:
    """``(name, fixed options, search space)`` for every model of ``config`` (either form)."""
    models = config.get("models", [])
    if isinstance(models, dict):
        models = model_tables(models)
    out = []
    for spec in models:
        name, options = component_spec(spec)
        out.append((name, *split_search(name, options)))
    return out


def _table_of(key: str) -> str | None:
    """The settings table that declares ``key`` (a setting written in the wrong place)."""
    return next((t for t, v in SCHEMA.items() if isinstance(v, dict) and key in v), None)


def _check_settings(table_name: str, table: dict[str, Any], where: str) -> list[str]:
    """Unknown keys of a settings table, values of the wrong type, outside the allowed set
    or outside the allowed range."""
    schema: dict[str, Setting] = SCHEMA[table_name]  # type: ignore[assignment]
    problems = []
    known = list(schema)
    for key, value in table.items():
        if key not in schema:
            home = _table_of(key)
            if key in TOP_SETTINGS:
                hint = (f" {key!r} is a top-level key: move `{key} = ...` above the first "
                        "[table] header (TOML puts later keys into the table above them)")  # fmt: skip
            elif home is not None:
                hint = f" {key!r} is a setting of [{home}]; move it there"
            else:
                hint = closest(key, known)
            problems.append(f"{where}: unknown setting {key!r} (no command reads it).{hint} "
                            f"Settings: {', '.join(known)}")  # fmt: skip
            continue
        problem = _check_value(schema[key], key, value)
        if problem is None and (table_name, key) == ("tuning", "objective"):
            problem = _check_objective(value)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _check_value(spec: Setting, key: str, value: Any) -> str | None:
    """What is wrong with ``key = value`` against ``spec`` (type, choices, range), or None."""
    types = spec.types if isinstance(spec.types, tuple) else (spec.types,)
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        names = " or ".join({bool: "true/false", list: "a list [...]"}.get(t, t.__name__)
                            for t in types)  # fmt: skip
        return f"{key} must be {names}, got {value!r}"
    if isinstance(value, list):
        choices = spec.choices or ()
        bad = next((v for v in value if not isinstance(v, str) or (choices and v not in choices)), None)
        example = f"write e.g. {key} = [{', '.join(map(repr, choices[:2]))}]"
        if not value:
            return f"{key} is empty; {example}, or leave it out"
        if bad is not None:
            return f"{key}: {bad!r} is not one of {', '.join(choices)}.{closest(str(bad), choices)}"
        return None
    if spec.choices is not None and value not in spec.choices:
        return (f"{key} = {value!r} is not one of {', '.join(map(str, spec.choices))}"
                f".{closest(str(value), map(str, spec.choices))}")  # fmt: skip
    if isinstance(value, float) and value != value:
        return f"{key} must be a number, got nan"
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        return f"{key} must be {range_text(spec.low, spec.high)}, got {value!r}"
    if spec.path and not value.strip():
        return f"{key} is empty; give a path"
    return None


def _check_objective(name: str) -> str | None:
    """The tuning objective must be a metric tuning can score: a rating or ranking one."""
    from recfeat.components.metric import objective_problem

    return objective_problem(name)


def expand_path(value: str, where: str) -> str:
    """A path setting as written, with ``${VAR}`` / ``$VAR`` from the environment and ``~``
    expanded (``path = "${RECFEAT_DATA_DIR}/movielens_100k"``); a relative path stays
    relative to the current folder, as on the command line. A variable that is not set is a
    ConfigError naming it: a path that silently kept ``${X}`` would point nowhere."""
    import os
    import string

    try:
        text = string.Template(value).substitute(os.environ)
    except KeyError as exc:
        var = exc.args[0]
        raise ConfigError(
            f"{where} = {value!r}: ${{{var}}} is not set; export {var}=... (or write the "
            "path out)"
        ) from None
    except ValueError:
        raise ConfigError(
            f"{where} = {value!r}: a $ must start ${{NAME}} or $NAME (write $$ for a $ sign)"
        ) from None
    return os.path.expanduser(text)


def setting(config: dict[str, Any], table: str, key: str, flag: Any = None, default: Any = None) -> Any:
    """``flag`` when given (not None), else ``[table] key`` from the config, else ``default``."""
    if key not in SCHEMA.get(table, {}):  # a typo in the caller, caught by the tests
        raise KeyError(f"{table}.{key} is not in recfeat.config.SCHEMA; declare it there")
    if flag is not None:
        return flag
    return config.get(table, {}).get(key, default)


def pipeline_setting(config: dict[str, Any], key: str, flag: Any = None, default: Any = None) -> Any:
    """``setting(config, "pipeline", key, flag, default)``."""
    return setting(config, "pipeline", key, flag, default)


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
