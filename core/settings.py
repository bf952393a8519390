"""Settings, resolved once: built-in defaults < a config file < flags or keyword arguments.

Each command's settings are one typed object built by one function here, which the CLI and
the Python API both call: the CLI passes its flags (None: not given), a script passes
keyword arguments, and both may pass a config file (a path, or an already read dict). So a
flag, its config key and its keyword argument cannot drift apart, and the API honours a
config file exactly as ``--config`` does.

- :func:`extract_settings` -> :class:`ExtractSettings` (``recfeat extract``,
  ``recfeat.extract_file``);
- :func:`evaluate_settings` -> :class:`EvaluateSettings` (``recfeat evaluate``,
  ``recfeat.evaluate``);
- :func:`export_settings` -> :class:`ExportSettings` (``recfeat export``, ``recfeat.export``);
- :func:`serve_settings` -> :class:`ServeSettings` (``recfeat serve``, ``recfeat.serve``);
- :func:`train_settings` -> :class:`TrainSettings` (``recfeat train``, ``recfeat.train``) and
  :func:`recommend_settings` -> :class:`RecommendSettings` (``recfeat recommend``,
  ``recfeat.recommend``): flags over defaults, no config section.

The primitives (``setting``: flag > ``[table] key`` > default, and ``component_spec``) are
``recfeat.config``'s; a config file is validated against ``recfeat.config.SCHEMA`` when read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recfeat.config import (
    SEQUENTIAL_SPLITS,
    SPLIT_KINDS,
    component_spec,
    load_config,
    parse_key_values,
    pipeline_setting,
)
from recfeat.data import checks
from recfeat.errors import ConfigError, OptionError, UsageError

DEFAULT_ENCODER = "minilm"
#: The smallest sample the downstream gate measures a drop on (``--gate-interactions``).
GATE_INTERACTIONS_MIN = 100


def key_value_options(value: Any, flag: str, example: str, *, scoped: bool = False,
                      keyword: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Options given as a dict, or as ``KEY=VALUE`` strings (one string is one pair): checked
    and parsed the same way for a flag and a keyword argument. ``scoped``: ``MODEL.KEY=VALUE``
    strings or ``{model: {key: value}}``. Messages name the ``flag`` for the tuple the command
    line passes, else the ``keyword`` argument a script used."""
    flag = flag if keyword is None or isinstance(value, tuple) else keyword
    given = checks.key_values(value, flag, example=example)
    if isinstance(given, list):
        return parse_key_values(given, flag=flag, example=example, scoped=scoped)
    if scoped:
        for scope, options in given.items():
            if not isinstance(options, dict):
                raise checks.refuse(f"{flag} {scope!r}", "a dict of that model's options", options,
                                    f"pass e.g. {{{scope!r}: {{'factors': 50}}}}")  # fmt: skip
        return {scope: dict(options) for scope, options in given.items()}
    return given


def data_argument(value: Any, name: str = "data", *, loaded: bool = True, none: bool = True) -> Any:
    """A dataset argument: a path (str or os.PathLike), or with ``loaded`` a RecData or a
    pandas DataFrame of interactions (``recfeat.api.load_dataset`` wraps it); None passes
    with ``none``. Anything else is one UsageError naming what to pass."""
    if value is None and none:
        return None
    if isinstance(value, (str, Path)) or hasattr(value, "__fspath__"):
        checks.path(value, name, what="a dataset path")  # not empty
        return value
    if loaded and checks.is_frame(value):
        return value
    from recfeat.data.recdata import RecData  # (pandas) only for a value that is no path

    if loaded and isinstance(value, RecData):
        return value
    wanted = "a dataset path, a RecData or a pandas DataFrame" if loaded else "a file or folder path"
    fix = ("load one with recfeat.load_dataset(path)" if loaded
           else "for a RecData or a DataFrame in memory use recfeat.extract(data)")  # fmt: skip
    if loaded and type(value).__name__ == "Split" and hasattr(value, "train"):
        fix = "pass split.train, its training part (a DataFrame)"
    raise checks.refuse(name, wanted, value, fix)


def features_argument(value: Any, name: str) -> Any:
    """A features argument: None, a feature file path, ``Features`` / ``ReviewVectors``, an
    ``extract()`` result, or a DataFrame with a features file's columns (checked by its
    columns here, read later); anything else is one UsageError (pandas is imported only to
    tell)."""
    if value is None or isinstance(value, (str, Path)) or hasattr(value, "__fspath__"):
        return value
    if hasattr(value, "to_features"):
        return value
    from recfeat.data.features import FEATURES_WANTED, Features, ReviewVectors, frame_level

    if isinstance(value, (Features, ReviewVectors)):
        return value
    if checks.is_frame(value):
        frame_level(value, name)
        return value
    raise checks.refuse(name, FEATURES_WANTED, value,
                        "pass the .parquet file recfeat extract wrote, or recfeat.read_features(path)")  # fmt: skip


def read_config(config: str | Path | dict[str, Any] | None) -> tuple[dict[str, Any], Path | None]:
    """``(config dict, its path or None)``: a path is read and validated; a dict is
    validated as it is; None is the empty config."""
    if config is None:
        return {}, None
    if isinstance(config, dict):
        from recfeat.config import validate_config

        bad = next((key for key in config if not isinstance(key, str)), None)
        if bad is not None:  # TOML keys are strings; another one cannot name a section
            raise checks.refuse("config key", "a section name (a str)", bad,
                                "name sections as in a TOML file, e.g. 'pipeline'")  # fmt: skip
        problems = validate_config(config, "config")
        if problems:
            raise ConfigError("\n".join(problems))
        return config, None
    if isinstance(config, (str, Path)):
        return load_config(config), Path(config).expanduser()
    raise UsageError(f"config: give a TOML file's path or a dict, not {type(config).__name__}")


def _dataset(config: dict[str, Any], fmt: str | None, loader_options: dict[str, Any]):
    """``(format, loader options)``: the config's ``[dataset]`` when the flag names no other
    format, with the flag's options on top."""
    chosen, options = fmt, {}
    if "dataset" in config:
        cfg_fmt, cfg_options = component_spec(config["dataset"])
        if fmt in (None, "auto", cfg_fmt):
            chosen, options = cfg_fmt, dict(cfg_options)
    options.update(loader_options)
    return chosen or "auto", options


def _cleaners(flag: str | Sequence[Any] | None, config: dict[str, Any], keep_pii: bool = False):
    """Cleaner specs: a flag ("a,b", "none", or a list) over the config's ``cleaners`` over
    None (the default chain); ``keep_pii`` (``--keep-pii``) takes the ``pii`` cleaner out
    of the default chain, and contradicts a chain that names it."""
    from recfeat.extraction.cleaning import with_keep_pii

    checks.flag(keep_pii, "--keep-pii")
    if flag is None:
        specs = config.get("cleaners")
    elif isinstance(flag, str):
        text = flag.strip()
        specs = [] if text.lower() == "none" else [c.strip() for c in text.split(",") if c.strip()]
    else:
        specs = list(flag)
    return with_keep_pii(specs, keep_pii)


def encoder_spec(config: dict[str, Any], name: str | None = None, backend: str | None = None,
                 options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """``(registry name, options)`` in the one backend vocabulary: the config's
    ``[encoder]``, overridden by ``name`` (a registry name, a Hugging Face model or an export
    folder), ``backend`` and encoder ``options``. The config's options carry over only while
    ``name`` names the same encoder."""
    from recfeat.encode.vocabulary import is_export_folder, resolve_encoder
    from recfeat.plugin.registry import get_registry

    options = dict(options or {})
    base_name, base_options = (
        component_spec(config["encoder"]) if "encoder" in config else (DEFAULT_ENCODER, {})
    )
    target = name or base_name
    if backend in ("onnx", "openvino") and not is_export_folder(target):
        if target in get_registry("encoder"):
            raise UsageError(
                f"--backend {backend} needs --encoder DIR: a folder from `recfeat export` "
                f"(make one with `recfeat export --encoder {target} --out DIR`)"
            )
        # the encoder names what is missing (no folder, no manifest.json) in one line
        return backend, {"path": target, **options}
    if backend == "auto" and "precision" in options:
        raise UsageError("--backend auto chooses the precision itself; drop --precision")
    if name and name != base_name:
        base_options = {}  # options of another component do not carry over
    return resolve_encoder(target, backend=None if backend == "auto" else backend,
                           **{**base_options, **options})  # fmt: skip


def _ray(ray: Any) -> dict[str, Any] | None:
    """``ray``: None/False (local engines), True (Ray with its defaults) or a dict of
    ``RayOptions`` fields, whose numbers are checked here (the command line only parses
    them): a reservation of 0 CPUs or NaN GPUs would reach Ray's scheduler."""
    if ray is None or ray is False:
        return None
    if ray is True:
        return {}
    if isinstance(ray, dict):
        options = dict(ray)
        if options.get("cpus_per_actor") is not None:
            checks.number(options["cpus_per_actor"], "--cpus-per-actor", low=0, low_open=True,
                          example=1)  # fmt: skip
        if options.get("gpus_per_actor") is not None:
            checks.number(options["gpus_per_actor"], "--gpus-per-actor", low=0, example=1)
        checks.optional_integer(options.get("batch_rows"), "--batch-rows", low=1, example=1024)
        checks.text(options.get("address"), "--ray-address", none=True, example="auto")
        return options
    raise UsageError(f"ray: give True or a dict of RayOptions fields (address, actors, "
                     f"cpus_per_actor, batch_rows...), not {ray!r}")  # fmt: skip


def _extract_inputs(config, encoder: str | None, cache) -> dict[str, Any]:
    """The files an extraction reads besides DATA and --train, by flag: outputs must not
    overwrite them."""
    inputs: dict[str, Any] = {}
    if isinstance(config, (str, Path)):
        inputs["--config"] = config
    if encoder and Path(str(encoder)).expanduser().exists():
        inputs["--encoder"] = encoder
    if cache is not False:
        from recfeat.extraction.outputs import cache_files

        inputs.update(cache_files(str(cache) if isinstance(cache, (str, Path)) else None, False))
    return inputs


@dataclasses.dataclass
class ExtractSettings:
    """Everything one extraction runs with. ``encoder``/``encoder_options``: the registry
    name and options (``encoder_spec``); ``cleaners``: specs, None for the default chain;
    ``cache``: None (the default folder), False (none) or a folder; ``ray``: None, or the
    ``RayOptions`` fields; ``inputs``: the other files the run reads, by label, which the
    outputs must not overwrite."""

    data: str | Path | None
    format: str = "auto"
    loader_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    level: str = "review"
    encoder: str = DEFAULT_ENCODER
    encoder_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    auto_backend: bool = False
    cleaners: list[Any] | None = None
    token_features: Any = None
    aggregate: str | None = None
    user_from: str = "auto"
    train: Any = None
    cache: Any = None
    chunk_size: int = 2048
    batch_rows: int | None = None
    stream: bool | None = None
    ray: dict[str, Any] | None = None
    min_cosine: float = 0.99
    max_drop: float = 0.01
    gate_interactions: int | None = None
    students: tuple[str, ...] = ()  # --backend auto: distilled students as candidates
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def make_encoder(self):
        """The encoder (validated, not loaded)."""
        from recfeat.plugin.registry import get_registry

        return get_registry("encoder").create(self.encoder, **self.encoder_options)


def extract_settings(
    config: str | Path | dict[str, Any] | None = None, *,
    data: str | Path | None = None, out: str | Path | None = None, format: str | None = None,
    loader_options: dict[str, Any] | Sequence[str] | None = None, encoding: str | None = None,
    skip_bad_rows: bool = False, level: str | None = None, encoder: str | None = None,
    backend: str | None = None, pooling: str | None = None, precision: str | None = None,
    batch_tokens: int | None = None, max_length: int | None = None, device: str | None = None,
    cleaners: str | Sequence[Any] | None = None, keep_pii: bool = False,
    token_features: Any = None,
    aggregate: str | None = None, user_from: str | None = None, train: Any = None,
    cache: Any = None, chunk_size: int | None = None, batch_rows: int | None = None,
    stream: bool | None = None, ray: bool | dict[str, Any] | None = None,
    min_cosine: float | None = None, max_drop: float | str | None = None,
    gate_interactions: int | None = None, students: Sequence[str | Path] | None = None,
) -> ExtractSettings:  # fmt: skip
    """Defaults < ``config`` (``[dataset]``, ``cleaners``, ``[encoder]``, ``token_features``,
    ``[pipeline] level``) < these arguments (None: not given). ``loader_options``: a dict, or
    ``KEY=VALUE`` strings (``-o``); ``keep_pii``: leave personal data in the texts (the
    default chain without ``pii``); ``cache``: None, False or a folder; ``max_drop``: a
    fraction or text such as "1%". ``out``, when given, is checked first: it must not be one
    of the inputs (DATA, the config file, --train, an --encoder folder, the vector cache)."""
    from recfeat.selection.gate import parse_drop

    data = data_argument(data, "DATA", loaded=False)
    checks.path(out, "--out", none=True, what="a .parquet file path")
    format = checks.text(format, "--format", none=True, example="csv")
    if data is None and format not in ("sample", "synthetic-books"):
        raise UsageError("missing DATA: the input file or folder ('sample' for the SYNTHETIC "
                         "sample)")  # fmt: skip
    _check_extract_values(encoder=encoder, backend=backend, pooling=pooling, precision=precision,
                          device=device, level=level, aggregate=aggregate, user_from=user_from,
                          encoding=encoding, skip_bad_rows=skip_bad_rows, cache=cache,
                          batch_tokens=batch_tokens, max_length=max_length,
                          chunk_size=chunk_size, batch_rows=batch_rows, stream=stream,
                          min_cosine=min_cosine, gate_interactions=gate_interactions,
                          cleaners=cleaners, train=train)  # fmt: skip
    inputs = _extract_inputs(config, encoder, cache)
    students = _students(students, backend)
    inputs.update({f"--student {s}": s for s in students})
    if out is not None and not ray:
        # before anything is read: a malformed file that --out would overwrite is refused
        # as an input, not parsed
        from recfeat.extraction.outputs import check_out_path, check_outputs

        train_path = train if isinstance(train, (str, Path)) else None
        data_path = None if data is None or str(data) == "sample" else data
        paths = {"DATA": data_path, "--train": train_path, **inputs}
        # "--out is your input" first: it is the message that names the danger, whatever
        # else is wrong with the name (extract_file('x.json', 'x.json'))
        check_outputs(Path(out).expanduser(), paths)
        check_out_path(out)
    cfg, _ = read_config(config)
    given = key_value_options(loader_options, "--option", "text_col=review", keyword="loader_options")
    if encoding:
        given["encoding"] = encoding
    if skip_bad_rows:
        given["skip_bad_rows"] = True
    fmt, options = _dataset(cfg, format, given)
    if str(data) == "sample" and not Path(str(data)).exists() and fmt in ("auto", "sample"):
        data = None
    if data is None and fmt in ("auto", "sample", "synthetic-books"):
        fmt = "synthetic-books"
    flag_options = {k: v for k, v in (("pooling", pooling), ("precision", precision),
                                      ("batch_tokens", batch_tokens), ("max_length", max_length),
                                      ("device", device)) if v is not None}  # fmt: skip
    name, enc_options = encoder_spec(cfg, encoder, backend, flag_options)
    spec = token_features if token_features is not None else cfg.get("token_features")
    values = ExtractSettings(
        data=data, format=fmt, loader_options=options,
        level=pipeline_setting(cfg, "level", level, "review"), encoder=name,
        encoder_options=enc_options, auto_backend=backend == "auto",
        cleaners=_cleaners(cleaners, cfg, keep_pii), token_features=spec or None,
        aggregate=aggregate,
        user_from=user_from or "auto", train=train, cache=cache,
        chunk_size=2048 if chunk_size is None else int(chunk_size), batch_rows=batch_rows,
        stream=stream, ray=_ray(ray),
        min_cosine=0.99 if min_cosine is None else float(min_cosine),
        max_drop=0.01 if max_drop is None else parse_drop(max_drop),
        gate_interactions=gate_interactions, students=students, inputs=inputs,
    )  # fmt: skip
    from recfeat.extraction.manifest import check_request

    check_request(values.level, values.aggregate, values.user_from, values.chunk_size)
    return values


def _students(students: Any, backend: str | None) -> tuple[str, ...]:
    """``--student`` folders: paths, only with ``--backend auto`` (they are its candidates)."""
    if students is None:
        return ()
    if isinstance(students, (str, Path)):
        students = [students]
    if not isinstance(students, (list, tuple)) or not all(isinstance(s, (str, Path)) for s in students):
        raise checks.refuse("--student", "a student folder or a list of them", students,
                            "pass the folder recfeat distill wrote")  # fmt: skip
    if students and backend != "auto":
        raise UsageError("--student makes a distilled student a candidate of --backend auto; "
                         "add --backend auto, or pass the student as --encoder")  # fmt: skip
    return tuple(str(s) for s in students)


def _check_extract_values(*, encoder, backend, pooling, precision, device, level, aggregate,
                          user_from, encoding, skip_bad_rows, cache, batch_tokens, max_length,
                          chunk_size, batch_rows, stream, min_cosine, gate_interactions,
                          cleaners, train) -> None:  # fmt: skip
    """The types and ranges of ``extract_settings``' arguments, named as the command's flags
    (the command line only parses them): before any file is read."""
    if encoder is not None and not isinstance(encoder, (str, Path)):
        raise checks.refuse("--encoder", "an encoder name, a Hugging Face model or an export "
                            "folder", encoder, "pass e.g. 'minilm'")  # fmt: skip
    for flag, value in (("--backend", backend), ("--pooling", pooling),
                        ("--precision", precision), ("--device", device), ("--level", level),
                        ("--aggregate", aggregate), ("--user-from", user_from),
                        ("--encoding", encoding)):  # fmt: skip
        checks.text(value, flag, none=True)
    checks.flag(skip_bad_rows, "--skip-bad-rows")
    checks.flag(stream, "--stream", none=True)
    if not (cache is None or cache is False or isinstance(cache, (str, Path))):
        raise checks.refuse("--cache", "None (the default folder), False (no cache) or a folder",
                            cache, "pass e.g. cache=False")  # fmt: skip
    checks.optional_integer(batch_tokens, "--batch-tokens", low=1, example=8192)
    checks.optional_integer(max_length, "--max-length", low=2, example=256)
    checks.optional_integer(chunk_size, "--chunk-size", low=1, example=2048)
    checks.optional_integer(batch_rows, "--batch-rows", low=1, example=1024)
    checks.optional_number(min_cosine, "--min-cosine", low=0, high=1, low_open=True, example=0.99)
    checks.optional_integer(gate_interactions, "--gate-interactions", low=GATE_INTERACTIONS_MIN,
                            example=10_000)  # fmt: skip
    check_cleaners(cleaners)
    if train is not None and not (isinstance(train, (str, Path)) or checks.is_frame(train)):
        raise checks.refuse("--train", "a split .json or user,item table path, or a DataFrame",
                            train, "pass the file evaluate --save-split wrote")  # fmt: skip


def check_cleaners(cleaners: Any, name: str = "--cleaners", *, chain: bool = False) -> None:
    """Cleaners: None (the default chain), "a,b", "none", or a list of specs (names or
    ``{use = ...}`` tables; [] for none); with ``chain``, also a built chain (``.clean``)."""
    if cleaners is None or isinstance(cleaners, (str, list, tuple)):
        return
    if chain and hasattr(cleaners, "clean"):
        return
    raise checks.refuse(name, "'a,b', 'none' or a list of cleaner names or specs", cleaners,
                        "pass e.g. 'html,whitespace'")  # fmt: skip


def _at_least(flag: str, value: Any, low: float, *, high: float | None = None,
              open_low: bool = False) -> None:  # fmt: skip
    """The range a command line's click type checks, for keyword arguments too: OptionError
    (exit 2) naming the flag."""
    if value is None:
        return
    below = value <= low if open_low else value < low
    if below or (high is not None and value > high):
        bound = f"> {low}" if open_low else f">= {low}"
        where = f"between {low} and {high}" if high is not None else bound
        raise OptionError(f"{flag} must be {where}, got {value!r}")


# -- export ---------------------------------------------------------------------------------

#: Options of the exported graph that override the encoder's own (``--pooling`` ...).
GRAPH_OPTIONS = ("pooling", "normalize", "max_length")


@dataclasses.dataclass
class ExportSettings:
    """Everything one export runs with. ``encoder``/``encoder_options``: the torch encoder to
    export (``encoder_spec``); ``exporter``/``exporter_options``: the registry exporter
    (``onnx``, ``openvino``) and its options (``optimize``, ``quantize``, ``min_cosine``...);
    ``graph``: ``GRAPH_OPTIONS`` of the exported graph over the encoder's; ``calibration``:
    texts, or a file of them read as ``calibration_format``; ``gate``: a dataset (read as
    ``gate_format``) the exported model is judged on against torch fp32 (None: no gate);
    ``inputs``: the files the run reads, by label, which the output folder must not hold."""

    encoder: str = DEFAULT_ENCODER
    encoder_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    exporter: str = "onnx"
    exporter_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    graph: dict[str, Any] = dataclasses.field(default_factory=dict)
    calibration: Any = None
    calibration_format: str = "auto"
    gate: str | Path | None = None
    gate_format: str = "auto"
    max_drop: float = 0.01
    gate_interactions: int | None = None
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def make_encoder(self, *, graph: bool = False):
        """The torch encoder to export (validated, not loaded); with ``graph``, the graph
        options applied: the torch fp32 reference of the gate."""
        from recfeat.plugin.registry import get_registry

        options = {**self.encoder_options, **self.graph} if graph else self.encoder_options
        return get_registry("encoder").create(self.encoder, **options)

    def make_exporter(self):
        """The exporter (options validated)."""
        from recfeat.plugin.registry import get_registry

        return get_registry("exporter").create(self.exporter, **self.exporter_options)

    def calibration_texts(self) -> list[str] | None:
        """The calibration texts: read from the file (stratified later by length), or as
        given; None: the exporter's built-in varied set."""
        if self.calibration is None:
            return None
        if isinstance(self.calibration, (str, Path)):
            from recfeat.components.dataset import read_texts

            return read_texts(str(self.calibration), self.calibration_format)
        return list(self.calibration)


def export_settings(
    config: str | Path | dict[str, Any] | None = None, *, encoder: str | None = None,
    init: str | None = None, pooling: str | None = None, normalize: bool | None = None,
    max_length: int | None = None, backend: str | None = None, optimize: str | None = None,
    quantize: str | None = None, preset: str | None = None, per_channel: bool | None = None,
    calibration: str | Path | Sequence[str] | None = None, calibration_format: str | None = None,
    calibration_method: str | None = None, calibration_size: int | None = None,
    min_cosine: float | None = None, auto_exclude: bool | None = None,
    exclude_nodes: str | Sequence[str] | None = None, opset: int | None = None,
    external_data: bool | None = None, gate: str | Path | None = None,
    gate_format: str | None = None, max_drop: float | str | None = None,
    gate_interactions: int | None = None,
) -> ExportSettings:  # fmt: skip
    """Defaults < ``config`` (``[encoder]``: what to export; ``[exporter]``: ``use`` = the
    backend and its options) < these arguments (None: not given), named as ``recfeat
    export``'s flags (``backend`` picks the exporter; another one than the config's drops
    the config's options, as ``--encoder`` does for ``[encoder]``). ``calibration``: a file
    (``.txt``, one text per line, or a dataset) or the texts; ``max_drop``: a fraction or text
    such as "1%". Every value is checked here, before any work: an export folder given as
    the encoder, bad exporter options, ranges."""
    from recfeat.config import chosen_component
    from recfeat.encode.vocabulary import is_export_folder
    from recfeat.selection.gate import parse_drop

    cfg, cfg_path = read_config(config)
    drop = 0.01 if max_drop is None else parse_drop(max_drop)  # a bad value fails before any work
    for flag, value, low in (("--max-length", max_length, 2), ("--calibration-size", calibration_size, 1),
                             ("--opset", opset, 7),
                             ("--gate-interactions", gate_interactions, GATE_INTERACTIONS_MIN)):  # fmt: skip
        checks.optional_integer(value, flag, low=low)
    checks.optional_number(min_cosine, "--min-cosine", low=0, high=1, low_open=True, example=0.99)
    for flag, value in (("--encoder", encoder), ("--init", init), ("--pooling", pooling),
                        ("--backend", backend), ("--optimize", optimize), ("--quantize", quantize),
                        ("--preset", preset), ("--calibration-format", calibration_format),
                        ("--calibration-method", calibration_method),
                        ("--gate-format", gate_format)):  # fmt: skip
        checks.text(value, flag, none=True)
    for flag, value in (("--normalize", normalize), ("--per-channel", per_channel),
                        ("--auto-exclude", auto_exclude), ("--external-data", external_data)):  # fmt: skip
        checks.flag(value, flag, none=True)
    if exclude_nodes is not None and not isinstance(exclude_nodes, str) and not (
        isinstance(exclude_nodes, (list, tuple)) and all(isinstance(n, str) for n in exclude_nodes)
    ):
        raise checks.refuse("--exclude-node", "a node name or a list of them", exclude_nodes,
                            "pass the names the validation table shows")  # fmt: skip
    if calibration is not None and not isinstance(calibration, (str, Path)):
        checks.texts(calibration, "--calibration")
    checks.path(gate, "--gate", none=True, what="a dataset path")
    name, enc_options = encoder_spec(cfg, encoder, None, None if init is None else {"init": init})
    if "path" in enc_options and is_export_folder(enc_options["path"]):
        raise UsageError(
            f"--encoder {enc_options['path']} is already an export folder; export the model it "
            "was made from (its manifest's source)"
        )
    exporter, exp_options = chosen_component(cfg, "exporter", backend, "onnx")
    if isinstance(exclude_nodes, str):
        exclude_nodes = [exclude_nodes]
    flags = dict(
        optimize=optimize, quantize=quantize, preset=preset, per_channel=per_channel,
        calibration_method=calibration_method, calibration_size=calibration_size,
        min_cosine=min_cosine, auto_exclude=auto_exclude,
        exclude_nodes=tuple(exclude_nodes) if exclude_nodes else None, opset=opset,
        external_data=external_data,
    )  # fmt: skip
    exp_options.update({k: v for k, v in flags.items() if v is not None})
    graph = {k: v for k, v in zip(GRAPH_OPTIONS, (pooling, normalize, max_length), strict=True)
             if v is not None}  # fmt: skip
    given_path = isinstance(calibration, (str, Path))
    inputs: dict[str, Any] = {
        "--config": cfg_path, "--calibration": calibration if given_path else None, "--gate": gate,
        "--encoder": encoder if encoder and Path(str(encoder)).expanduser().exists() else None,
    }  # fmt: skip
    values = ExportSettings(
        encoder=name, encoder_options=enc_options, exporter=exporter,
        exporter_options=exp_options, graph=graph,
        calibration=calibration if calibration is None or given_path else list(calibration),
        calibration_format=calibration_format or "auto", gate=gate,
        gate_format=gate_format or "auto", max_drop=drop, gate_interactions=gate_interactions,
        inputs=inputs,
    )  # fmt: skip
    values.make_exporter()  # the exporter's option checks (values, presets), before any work
    return values


# -- serve ----------------------------------------------------------------------------------


@dataclasses.dataclass
class ServeSettings:
    """Everything one server runs with. ``encoder``/``encoder_options``: the text encoder
    (``encoder_spec``); ``label``: the encoder as it was asked for, the ``model`` name
    responses carry; ``cleaners``: specs for input texts, None for ``extract``'s default
    chain, [] for none; ``model``: a recommendation model file (``trust``: also an old
    pickle one, which runs code); ``data``: a dataset whose item texts are encoded at start
    (``format``, ``loader_options``); ``item_features``: item vectors from ``recfeat extract
    --level item`` instead; ``server``: the address, key and limits of the HTTP server
    (``recfeat.serve.state.ServeSettings``: host, port, api_key, max_batch_tokens,
    batch_window_ms, max_queue, max_inputs, max_chars, max_body_bytes, request_timeout, body_timeout,
    cache_size, max_items, index)."""

    encoder: str = DEFAULT_ENCODER
    encoder_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    label: str = DEFAULT_ENCODER
    cleaners: list[Any] | None = None
    model: str | Path | None = None
    trust: bool = False
    data: str | Path | None = None
    format: str = "auto"
    loader_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    item_features: str | Path | None = None
    server: Any = None

    def make_encoder(self):
        """The text encoder (validated, not loaded)."""
        from recfeat.plugin.registry import get_registry

        return get_registry("encoder").create(self.encoder, **self.encoder_options)


#: serve_settings' keyword arguments that are the HTTP server's (recfeat.serve.state's
#: ServeSettings), with the type and range a value must have: (type, low, high, low is open).
#: Every bound is finite: an infinite window or timeout would make requests wait forever.
SERVER_LIMITS: dict[str, tuple[type, float, float, bool]] = {
    "port": (int, 0, 65535, False), "max_batch_tokens": (int, 1, 10_000_000, False),
    "batch_window_ms": (float, 0, 1000, False), "max_queue": (int, 1, 1_000_000, False),
    "max_inputs": (int, 1, 1_000_000, False), "max_chars": (int, 1, 100_000_000, False),
    "max_body_bytes": (int, 1, 2**31 - 1, False), "request_timeout": (float, 0, 3600, True),
    "body_timeout": (float, 0, 3600, True), "cache_size": (int, 0, 100_000_000, False),
    "max_items": (int, 1, 1_000_000_000, False),
}  # fmt: skip


def _server_limit(key: str, value: Any) -> None:
    """OptionError (exit 2) naming the flag for a server option that is not a finite number
    of the right type within its range (the Python API passes values no click type saw)."""
    import math

    kind, low, high, open_low = SERVER_LIMITS[key]
    flag = f"--{key.replace('_', '-')}"
    number = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, number) or not math.isfinite(value):
        what = "a whole number" if kind is int else "a finite number"
        raise OptionError(f"{flag} must be {what} between {low} and {high}, got {value!r}")
    _at_least(flag, value, low, high=high, open_low=open_low)


def _api_key(api_key: str | None) -> str | None:
    """``--api-key``, else ``RECFEAT_API_KEY``, else None (no key); OptionError for a key
    that would silently turn authentication off or that no client could send."""
    import os

    flag = "--api-key"
    if api_key is None:
        api_key, flag = os.environ.get("RECFEAT_API_KEY"), "RECFEAT_API_KEY"
    if api_key is None:
        return None
    if not isinstance(api_key, str) or not api_key.strip():
        unset = "leave out --api-key" if flag == "--api-key" else "unset RECFEAT_API_KEY"
        raise OptionError(f"{flag} is empty, which would turn authentication off; set a "
                          f"non-empty key, or {unset} to serve without one")  # fmt: skip
    if api_key != api_key.strip() or not (api_key.isascii() and api_key.isprintable()):
        raise OptionError(f"{flag} has spaces at its ends or characters other than printable "
                          "ASCII, which no client sends in an HTTP header; use a plain key")  # fmt: skip
    return api_key


def serve_settings(
    config: str | Path | dict[str, Any] | None = None, *, encoder: str | None = None,
    backend: str | None = None, precision: str | None = None, device: str | None = None,
    threads: int | None = None, cleaners: str | Sequence[Any] | None = None,
    keep_pii: bool = False,
    model: str | Path | None = None, trust: bool = False, data: str | Path | None = None,
    format: str | None = None, loader_options: dict[str, Any] | Sequence[str] | None = None,
    item_features: str | Path | None = None, host: str | None = None, port: int | None = None,
    api_key: str | None = None, max_batch_tokens: int | None = None,
    batch_window_ms: float | None = None, max_queue: int | None = None,
    max_inputs: int | None = None, max_chars: int | None = None,
    max_body_bytes: int | None = None, request_timeout: float | None = None,
    body_timeout: float | None = None, cache_size: int | None = None,
    max_items: int | None = None, index: str | None = None,
) -> ServeSettings:  # fmt: skip
    """Defaults < ``config`` (``[encoder]``, ``cleaners``, ``[dataset]`` for ``data``) < these
    arguments (None: not given), named as ``recfeat serve``'s flags. ``cleaners``: "a,b",
    "none" or a list of specs; ``keep_pii``: leave personal data in input texts (the default
    chain without ``pii``); ``loader_options``: a dict or ``KEY=VALUE`` strings;
    ``api_key``: None reads ``RECFEAT_API_KEY`` (unset: no key). Every value is checked
    here, before anything loads (types, finite ranges, the key, the backend)."""
    from recfeat.serve.state import ServeSettings as ServerSettings

    cfg, _ = read_config(config)
    if backend == "auto":
        raise UsageError("--backend auto chooses a backend for one extraction run; serve runs "
                         "the one you name: torch, onnx or openvino")  # fmt: skip
    _at_least("--threads", threads, 1)
    limits = {"port": port, "max_batch_tokens": max_batch_tokens,
              "batch_window_ms": batch_window_ms, "max_queue": max_queue,
              "max_inputs": max_inputs, "max_chars": max_chars, "max_body_bytes": max_body_bytes,
              "request_timeout": request_timeout, "body_timeout": body_timeout,
              "cache_size": cache_size, "max_items": max_items}  # fmt: skip
    for key, value in limits.items():
        if value is not None:
            _server_limit(key, value)
    chosen = {k: v for k, v in limits.items() if v is not None}
    defaults = ServerSettings()
    window = chosen.get("batch_window_ms", defaults.batch_window_ms)
    timeout = chosen.get("request_timeout", defaults.request_timeout)
    if window / 1000 >= timeout:
        raise OptionError(f"--batch-window-ms {window:g} is not below --request-timeout "
                          f"{timeout:g} s, so requests would time out waiting for a batch; "
                          "lower the window or raise the timeout")  # fmt: skip
    if index is not None:
        from recfeat.serve.index import check_index_kind, require_faiss

        chosen["index"] = check_index_kind(index)
        if index == "hnsw":  # before any data or model loads
            require_faiss("recfeat serve --index hnsw")
    api_key = _api_key(api_key)
    flag_options = {k: v for k, v in (("precision", precision), ("device", device),
                                      ("threads", threads)) if v is not None}  # fmt: skip
    name, enc_options = encoder_spec(cfg, encoder, backend, flag_options)
    label = encoder or (component_spec(cfg["encoder"])[0] if "encoder" in cfg else DEFAULT_ENCODER)
    given = {}
    if data is not None:
        if isinstance(loader_options, dict):
            given = dict(loader_options)
        else:
            given = parse_key_values(loader_options or (), example="text_col=review")
    fmt, options = _dataset(cfg, format, given) if data is not None else (format or "auto", {})
    server = ServerSettings(**({"host": host} if host is not None else {}), api_key=api_key,
                            **chosen)  # fmt: skip
    return ServeSettings(
        encoder=name, encoder_options=enc_options, label=str(label),
        cleaners=_cleaners(cleaners, cfg, keep_pii), model=model, trust=bool(trust), data=data,
        format=fmt, loader_options=options, item_features=item_features, server=server,
    )  # fmt: skip


# -- evaluate -------------------------------------------------------------------------------

#: ``--split`` kinds (``recfeat.evaluation.splits.KINDS``, kept here so ``--help`` imports
#: no pandas) and the models run when neither ``--models`` nor the config names any.
SPLITS = SPLIT_KINDS
DEFAULT_SPLIT = "random"
DEFAULT_MODELS = "global-mean,bias,popularity,random"


def parse_relevance_threshold(value: Any) -> float | None:
    """``--relevance-threshold`` text or config value -> a float, or 0.0 for "none"/"all"
    (every held-out interaction is relevant); None: not given."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if value is None else float(value)
    text = str(value).strip().lower()
    if text in ("none", "all", "off"):
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise UsageError(
            f"--relevance-threshold takes a rating (e.g. 4) or 'none' for every held-out "
            f"interaction (got {value!r})"
        ) from None


def split_names(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [p.strip() for p in text.split(",") if p.strip()]


def _specs(given: str | Sequence[Any]) -> list[tuple[str, dict[str, Any], dict[str, list]]]:
    """``"a,b"``, or a list of names, ``(name, options)`` and ``(name, options, space)`` ->
    ``[(name, options, space)]``."""
    if isinstance(given, str):
        return [(n, {}, {}) for n in split_names(given)]
    return [(s, {}, {}) if isinstance(s, str) else
            (s[0], dict(s[1]), dict(s[2]) if len(s) > 2 else {}) for s in given]  # fmt: skip


def _model_list(config: dict[str, Any], models: str | Sequence[Any] | None,
                peer_models: Sequence[str], model_options: Any) -> list[Any]:  # fmt: skip
    """Models as ``evaluate(models=...)`` takes them: ``models`` (a config model kept by name
    keeps its options and search space), else the config's models, else
    ``DEFAULT_MODELS``; then the peer models not listed yet; then ``-O MODEL.KEY=VALUE``
    (``model_options``: strings or ``{model: {key: value}}``) on top, each naming a listed
    model. An option ``-O`` fixes leaves that model's search space: the flag overrides the
    file. A spec is a name, ``(name, options)``, or ``(name, options, space)`` when the
    config gives a search space (``[models.NAME.search]``)."""
    from recfeat.config import model_specs

    configured = model_specs(config)
    if models is not None:
        first: dict[str, tuple[dict[str, Any], dict[str, list]]] = {}
        for name, options, space in configured:
            first.setdefault(name, (options, space))
        entries = []
        for n, o, sp in _specs(models):
            kept_options, kept_space = first.get(n, ({}, {}))
            entries.append((n, {**kept_options, **o}, sp or dict(kept_space)))
    elif configured:
        entries = [(n, dict(o), dict(sp)) for n, o, sp in configured]
    else:
        entries = _specs(DEFAULT_MODELS)
    listed = {n for n, _, _ in entries}
    entries += [(n, {}, {}) for n in dict.fromkeys(peer_models) if n not in listed]
    per_model = key_value_options(model_options, "-O", "mf.factors=50", scoped=True,
                                  keyword="model_options")  # fmt: skip
    unknown = set(per_model) - {n for n, _, _ in entries}
    if unknown:
        raise UsageError(f"-O names model(s) not in --models: {', '.join(sorted(unknown))}")
    specs: list[Any] = []
    for name, options, space in entries:
        fixed = per_model.get(name, {})
        options.update(fixed)
        space = {k: v for k, v in space.items() if k not in fixed}
        specs.append((name, options, space) if space else (name, options) if options else name)
    return specs


def _metric_list(config: dict[str, Any], metrics: str | Sequence[Any] | None) -> list[Any] | None:
    """``metrics`` ("a,b" or a list) over the config's ``[[metrics]]`` over None (all)."""
    if metrics is not None:
        return split_names(metrics) if isinstance(metrics, str) else list(metrics)
    if "metrics" in config:
        return [name if not opts else (name, opts)
                for name, opts in map(component_spec, config["metrics"])]  # fmt: skip
    return None


@dataclasses.dataclass
class EvaluateSettings:
    """Everything one evaluation runs with. ``models``: names or ``(name, options)``, peers
    included, as ``evaluate(models=...)`` takes them; ``protocol``: how it measures, a
    ``recfeat.evaluation.protocol.Protocol`` (k, seed, metrics, test_fraction, relevance,
    cold-start protocol, tuning...); ``split``: the kind made with the protocol's seed and
    test_fraction unless ``load_split`` names a saved split; ``data``, ``item_features``,
    ``user_features``: paths or loaded objects; ``dataset``: ``(format, loader options)`` a
    ``data`` path is read with; ``inputs``: the files the run reads, by label, which its
    outputs must not overwrite."""

    models: list[Any]
    protocol: Any  # recfeat.evaluation.protocol.Protocol
    split: str = DEFAULT_SPLIT
    data: Any = None
    item_features: Any = None
    user_features: Any = None
    dataset: tuple[str, dict[str, Any]] = dataclasses.field(default_factory=lambda: ("auto", {}))
    load_split: str | Path | None = None
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: item features to extract from ``data`` before evaluating (``[data] extract_features``):
    #: ``level``, ``encoder``, ``encoder_options``, ``cleaners``, ``token_features``, as
    #: ``recfeat extract --config`` reads them from the same file; None: none extracted
    extract: dict[str, Any] | None = None
    #: the files written once the run passed, by kind: ``out`` (JSON), ``markdown``,
    #: ``plot``, ``save_split`` (None: not written)
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)


#: [outputs] key -> (evaluate's keyword, file name inside ``[outputs] dir`` when not named)
OUTPUT_FILES = {"json": ("out", "results.json"), "markdown": ("markdown", "results.md"),
                "plot": ("plot", "results.png"), "save_split": ("save_split", None)}  # fmt: skip


def _config_path(config: dict[str, Any], table: str, key: str) -> str | None:
    """A path setting of ``config`` with ``${VAR}`` and ``~`` expanded (None: not set)."""
    from recfeat.config import expand_path, setting

    value = setting(config, table, key)
    return None if value is None else expand_path(value, f"[{table}] {key}")


def _outputs(config: dict[str, Any], given: dict[str, Any], out_dir: Any) -> dict[str, Any]:
    """The output files: a flag (``given``, by keyword) over ``[outputs]``; ``dir`` (the
    ``--out-dir`` flag over ``[outputs] dir``) holds the file's relative paths, and the
    results' JSON, Markdown and chart under their default names when the file names none."""
    folder = out_dir if out_dir is not None else _config_path(config, "outputs", "dir")
    out: dict[str, Any] = {}
    for key, (keyword, default) in OUTPUT_FILES.items():
        value = given.get(keyword)
        if value is None:
            value = _config_path(config, "outputs", key)
            if value is not None and folder is not None and not Path(value).is_absolute():
                value = str(Path(folder) / value)
            elif value is None and folder is not None and default is not None:
                value = str(Path(folder) / default)
        out[keyword] = value
    return out


def _extraction(config: dict[str, Any]) -> dict[str, Any]:
    """How ``[data] extract_features`` makes item features: the encoder, cleaners, token
    features and ``[pipeline] level`` of the same file, as ``recfeat extract --config`` reads
    them (so one file gives the same vectors to both commands)."""
    level = pipeline_setting(config, "level", None, "review")
    if level == "user":
        raise ConfigError("[data] extract_features makes ITEM features for the models: set "
                          "[pipeline] level to review (Amazon reviews) or item (item texts), "
                          "not user")  # fmt: skip
    name, options = encoder_spec(config)
    return {"level": level, "encoder": name, "encoder_options": options,
            "cleaners": _cleaners(None, config), "token_features": config.get("token_features")}  # fmt: skip


def evaluate_settings(
    config: str | Path | dict[str, Any] | None = None, *, data: Any = None,
    item_features: Any = None, user_features: Any = None, format: str | None = None,
    models: str | Sequence[Any] | None = None, peers: str | Sequence[str] | None = None,
    expand_peers: Any = None,
    model_options: dict[str, dict[str, Any]] | Sequence[str] | None = None,
    metrics: str | Sequence[Any] | None = None, split: str | None = None, k: int | None = None,
    seed: int | None = None, test_fraction: float | None = None,
    relevance_threshold: float | str | None = None, cold_reviews: int | None = None,
    cold_protocol: str | None = None, candidates: str | None = None,
    rank_rating_models: bool | None = None, merge_variants: bool | None = None,
    trust_features: bool | None = None, tune: bool | None = None,
    tune_trials: int | None = None, tune_objective: str | None = None,
    load_split: str | Path | None = None, extract_features: bool | None = None,
    out: str | Path | None = None, markdown: str | Path | None = None,
    plot: str | Path | None = None, save_split: str | Path | None = None,
    out_dir: str | Path | None = None,
) -> EvaluateSettings:  # fmt: skip
    """Defaults (``Protocol``'s, ``DEFAULT_MODELS``, a random split) < ``config`` (a whole
    experiment: ``[data]``, ``[dataset]``, ``[pipeline]``, ``[tuning]``, the models with
    their search spaces, ``peers``, ``[[metrics]]``, ``[outputs]``; docs/evaluation.md) <
    these arguments (None: not given), named as ``recfeat evaluate``'s flags.

    ``models`` ("a,b", or names, ``(name, options)`` and ``(name, options, space)``)
    replaces the config's list, keeping a config model's options and search space when the
    same name is kept; ``peers`` (``--peers`` libraries, else the config's; expanded by
    ``expand_peers``, which ``recfeat.api`` hands in) follow; ``model_options`` (``-O
    MODEL.KEY=VALUE`` strings, or ``{model: {key: value}}``) apply last, must name a listed
    model, and take the option out of its search space. ``relevance_threshold``: a rating,
    or "none" (every held-out interaction). ``out``, ``markdown``, ``plot``, ``save_split``:
    output files, ``out_dir`` the folder of ``[outputs]``' relative paths."""
    from recfeat.config import setting
    from recfeat.evaluation.protocol import Protocol, component_specs
    from recfeat.evaluation.tuning import check_trials

    # every argument's type and range before any file is read (the protocol's own fields
    # are checked by Protocol.of below, whoever builds one)
    data = data_argument(data, "DATA")
    item_features = features_argument(item_features, "--features")
    user_features = features_argument(user_features, "--user-features")
    format = checks.text(format, "--format", none=True, example="csv")
    split = checks.choice(split, "--split", SPLITS, none=True)
    checks.path(load_split, "--load-split", none=True, what="a split file path")
    for name, value in (("--out", out), ("--markdown", markdown), ("--plot", plot),
                        ("--save-split", save_split), ("--out-dir", out_dir)):  # fmt: skip
        checks.path(value, name, none=True, what="a file path" if name != "--out-dir" else "a folder")
    checks.text(tune_objective, "--tune-objective", none=True, example="recall@k")
    for name, value in (("models", models), ("--metrics", metrics)):
        if value is not None:
            component_specs(value, name, example="bias,popularity" if name == "models" else "rmse")
    for flag, value in (("--rank-rating-models", rank_rating_models),
                        ("--merge-variants", merge_variants),
                        ("--trust-features", trust_features), ("--tune", tune),
                        ("extract_features", extract_features)):  # fmt: skip
        checks.flag(value, flag, none=True)
    cfg, cfg_path = read_config(config)
    tune = setting(cfg, "tuning", "tune", tune, False)
    if tune_trials is not None:  # checked before any data is read
        if not tune:
            raise UsageError("--tune-trials only applies with --tune; add --tune")
        check_trials(tune_trials)
    if tune_objective is not None and not tune:
        raise UsageError("--tune-objective only applies with --tune; add --tune")
    data = data if data is not None else _config_path(cfg, "data", "path")
    if item_features is None:
        item_features = _config_path(cfg, "data", "features")
        extract = setting(cfg, "data", "extract_features", extract_features, False)
        if extract and item_features is not None:
            raise ConfigError("[data] has both features (a file) and extract_features = true; "
                              "keep the one the models should use")  # fmt: skip
    elif extract_features:
        raise UsageError("extract_features makes the item features; drop it or --features")
    else:
        extract = False
    if user_features is None:
        user_features = _config_path(cfg, "data", "user_features")
    if load_split is None:
        load_split = _config_path(cfg, "data", "load_split")
    libraries = peers if peers else cfg.get("peers")
    peer_models: list[str] = []
    if libraries:
        if expand_peers is None:  # recfeat.api hands it in: settings never import plugins
            raise UsageError("peers: use recfeat.api.evaluate_settings, which expands them")
        peer_models = expand_peers(libraries, text=item_features is not None or bool(extract))
    specs = _model_list(cfg, models, peer_models, model_options)
    base = Protocol()
    threshold = parse_relevance_threshold(relevance_threshold)
    kind = checks.choice(pipeline_setting(cfg, "split", split, DEFAULT_SPLIT), "--split", SPLITS)
    # next-item splits count every next interaction (the field's convention) unless told
    # otherwise; a loaded split file's kind is only known later, so it keeps the default
    relevance_default = (0.0 if kind in SEQUENTIAL_SPLITS and load_split is None
                         else base.relevance_threshold)  # fmt: skip
    measured = {
        "k": pipeline_setting(cfg, "k", k, base.k),
        "seed": pipeline_setting(cfg, "seed", seed, base.seed),
        "test_fraction": pipeline_setting(cfg, "test_fraction", test_fraction, base.test_fraction),
        "relevance_threshold": pipeline_setting(cfg, "relevance_threshold", threshold,
                                                relevance_default),
    }  # fmt: skip
    flags = {"cold_reviews": cold_reviews, "cold_protocol": cold_protocol,
             "candidates": candidates, "rank_rating_models": rank_rating_models,
             "merge_variants": merge_variants, "trust_features": trust_features}  # fmt: skip
    given = {key: value for key, value in (
        *((key, pipeline_setting(cfg, key, flag)) for key, flag in flags.items()),
        ("tune_trials", setting(cfg, "tuning", "trials", tune_trials) if tune else None),
        ("tune_objective", setting(cfg, "tuning", "objective", tune_objective) if tune else None),
    ) if value is not None}  # fmt: skip
    protocol = Protocol.of(base, metrics=_metric_list(cfg, metrics), tune=bool(tune),
                           **measured, **given)  # fmt: skip
    inputs = {label: value for label, value in (
        ("DATA", data), ("--features", item_features), ("--user-features", user_features),
        ("--load-split", load_split), ("--config", cfg_path)) if isinstance(value, (str, Path))}  # fmt: skip
    outputs = _outputs(cfg, {"out": out, "markdown": markdown, "plot": plot,
                             "save_split": save_split}, out_dir)  # fmt: skip
    return EvaluateSettings(
        models=specs, protocol=protocol,
        split=kind,
        data=data, item_features=item_features, user_features=user_features,
        dataset=_dataset(cfg, format, {}), load_split=load_split, inputs=inputs,
        extract=_extraction(cfg) if extract else None, outputs=outputs,
    )  # fmt: skip


# -- train / recommend ----------------------------------------------------------------------


@dataclasses.dataclass
class TrainSettings:
    """What ``recfeat train`` fits: ``model`` with its ``options`` (checked) on every
    interaction of ``data`` (a path read as ``format``, a RecData or a DataFrame), or only
    on the training part of the split saved in ``load_split``, with ``item_features`` and
    ``user_features`` (paths, DataFrames or loaded); ``inputs``: the files it reads, by
    label, which the model file must not overwrite."""

    data: Any
    model: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    format: str = "auto"
    item_features: Any = None
    user_features: Any = None
    load_split: Path | None = None
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)


def train_settings(
    *, data: Any = None, model: str | None = None,
    options: dict[str, Any] | Sequence[str] | None = None, format: str | None = None,
    item_features: Any = None, user_features: Any = None, load_split: Any = None,
) -> TrainSettings:  # fmt: skip
    """Defaults < these arguments (None: not given), named as ``recfeat train``'s flags;
    ``options``: the model's, a dict or ``KEY=VALUE`` strings (``-O``); ``load_split``: a
    split file (``evaluate --save-split``) whose training part to fit on. The model name and
    options are checked here, before anything loads. Training reads no config file."""
    from recfeat.plugin.registry import get_registry

    if data is None:
        raise UsageError("train: give data (a dataset path, RecData or DataFrame)")
    data = data_argument(data, "data")
    load_split = checks.path(load_split, "--load-split", none=True, what="a split file path")
    if model is None or model == "":
        raise UsageError("train: give model, a registered model name (recfeat components model)")
    checks.text(model, "model", example="popularity")
    opts = key_value_options(options, "-O", "factors=50", keyword="options")
    format = checks.text(format, "--format", none=True, example="csv")
    item_features = features_argument(item_features, "--features")
    user_features = features_argument(user_features, "--user-features")
    get_registry("model").create(model, **opts)  # a bad name or option fails before loading
    inputs = {label: value for label, value in (
        ("DATA", data), ("--features", item_features), ("--user-features", user_features),
        ("--load-split", load_split)) if isinstance(value, (str, Path))}  # fmt: skip
    return TrainSettings(data=data, model=model, options=opts, format=format or "auto",
                         item_features=item_features, user_features=user_features,
                         load_split=load_split, inputs=inputs)  # fmt: skip


@dataclasses.dataclass
class RecommendSettings:
    """What ``recfeat recommend`` ranks: the top ``k`` items for each of ``users``, new items
    of ``features`` (a path or item-level Features) included, seen items left out unless
    ``include_seen``; item text snippets from ``data`` (a path read as ``format``, or a
    RecData; None: the ones saved with the model)."""

    users: list[str]
    k: int = 10
    features: Any = None
    data: Any = None
    format: str = "auto"
    include_seen: bool = False


def recommend_settings(
    *, users: str | Sequence[Any] | None = None, k: int | None = None, features: Any = None,
    data: Any = None, format: str | None = None, include_seen: bool = False,
) -> RecommendSettings:  # fmt: skip
    """Defaults < these arguments (None: not given), named as ``recfeat recommend``'s flags;
    ``users``: one id ("196" or 196 is ONE user), "u1,u2", or a list of ids. Every value is
    checked here, before the model is used."""
    from recfeat.training.bundle import user_ids

    if users is None:
        raise UsageError("--users is empty; pass user ids separated by commas")
    ids = user_ids(users.split(",") if isinstance(users, str) else users)
    return RecommendSettings(users=ids, k=10 if k is None else checks.integer(k, "--k", low=1, example=10),
                             features=features_argument(features, "--features"),
                             data=data_argument(data, "--data"),
                             format=checks.text(format, "--format", none=True) or "auto",
                             include_seen=checks.flag(include_seen, "--include-seen"))  # fmt: skip
