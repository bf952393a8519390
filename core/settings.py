"""Settings, resolved once: built-in defaults < a config file < flags or keyword arguments.

Each command's settings are one typed object built by one function here, which the CLI and
the Python API both call: the CLI passes its flags (None: not given), a script passes
keyword arguments, and both may pass a config file (a path, or an already read dict). So a
flag, its config key and its keyword argument cannot drift apart, and the API honours a
config file exactly as ``--config`` does.

- :func:`extract_settings` -> :class:`ExtractSettings` (``recfeat extract``,
  ``recfeat.extract_file``);
- :func:`evaluate_settings` -> :class:`EvaluateSettings` (``recfeat evaluate``,
  ``recfeat.evaluate``).

The primitives (``setting``: flag > ``[table] key`` > default, and ``component_spec``) are
``recfeat.config``'s; a config file is validated against ``recfeat.config.SCHEMA`` when read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recfeat.config import component_spec, load_config, parse_key_values, pipeline_setting
from recfeat.errors import ConfigError, UsageError

DEFAULT_ENCODER = "minilm"


def read_config(config: str | Path | dict[str, Any] | None) -> tuple[dict[str, Any], Path | None]:
    """``(config dict, its path or None)``: a path is read and validated; a dict is
    validated as it is; None is the empty config."""
    if config is None:
        return {}, None
    if isinstance(config, dict):
        from recfeat.config import validate_config

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


def _cleaners(flag: str | Sequence[Any] | None, config: dict[str, Any]):
    """Cleaner specs: a flag ("a,b", "none", or a list) over the config's ``cleaners`` over
    None (the default chain)."""
    if flag is None:
        return config.get("cleaners")
    if isinstance(flag, str):
        text = flag.strip()
        return [] if text.lower() == "none" else [c.strip() for c in text.split(",") if c.strip()]
    return list(flag)


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
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def make_encoder(self):
        """The encoder (validated, not loaded)."""
        from recfeat.plugin.registry import get_registry

        return get_registry("encoder").create(self.encoder, **self.encoder_options)


def extract_settings(
    config: str | Path | dict[str, Any] | None = None, *,
    data: str | Path | None = None, format: str | None = None,
    loader_options: dict[str, Any] | Sequence[str] | None = None, encoding: str | None = None,
    skip_bad_rows: bool = False, level: str | None = None, encoder: str | None = None,
    backend: str | None = None, pooling: str | None = None, precision: str | None = None,
    batch_tokens: int | None = None, max_length: int | None = None, device: str | None = None,
    cleaners: str | Sequence[Any] | None = None, token_features: Any = None,
    aggregate: str | None = None, user_from: str | None = None, train: Any = None,
    cache: Any = None, chunk_size: int | None = None, batch_rows: int | None = None,
    stream: bool | None = None, ray: bool | dict[str, Any] | None = None,
    min_cosine: float | None = None, max_drop: float | str | None = None,
    gate_interactions: int | None = None,
) -> ExtractSettings:  # fmt: skip
    """Defaults < ``config`` (``[dataset]``, ``cleaners``, ``[encoder]``, ``token_features``,
    ``[pipeline] level``) < these arguments (None: not given). ``loader_options``: a dict, or
    ``KEY=VALUE`` strings (``-o``); ``cache``: None, False or a folder; ``max_drop``: a
    fraction or text such as "1%"."""
    from recfeat.selection.gate import parse_drop

    cfg, cfg_path = read_config(config)
    if data is None and format not in ("sample", "synthetic-books"):
        raise UsageError("missing DATA: the input file or folder ('sample' for the SYNTHETIC "
                         "sample)")  # fmt: skip
    if isinstance(loader_options, dict):
        given = dict(loader_options)
    else:
        given = parse_key_values(loader_options or (), example="text_col=review")
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
    inputs: dict[str, Any] = {"--config": cfg_path}
    if encoder and Path(str(encoder)).expanduser().exists():
        inputs["--encoder"] = encoder
    if cache is not False:
        from recfeat.extraction.outputs import cache_files

        inputs.update(cache_files(str(cache) if isinstance(cache, (str, Path)) else None, False))
    values = ExtractSettings(
        data=data, format=fmt, loader_options=options,
        level=pipeline_setting(cfg, "level", level, "review"), encoder=name,
        encoder_options=enc_options, auto_backend=backend == "auto",
        cleaners=_cleaners(cleaners, cfg), token_features=spec or None, aggregate=aggregate,
        user_from=user_from or "auto", train=train, cache=cache,
        chunk_size=2048 if chunk_size is None else int(chunk_size), batch_rows=batch_rows,
        stream=stream, ray=({} if ray is True else dict(ray)) if ray else None,
        min_cosine=0.99 if min_cosine is None else float(min_cosine),
        max_drop=0.01 if max_drop is None else parse_drop(max_drop),
        gate_interactions=gate_interactions, inputs=inputs,
    )  # fmt: skip
    from recfeat.extraction.manifest import check_request

    check_request(values.level, values.aggregate, values.user_from, values.chunk_size)
    return values
