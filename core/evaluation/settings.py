"""What ``recfeat evaluate`` runs, resolved from command-line flags over a config file over
the built-in defaults: the models (with options), the metrics (with options) and the split
protocol. Kept apart from the command so a script gets the same resolution."""

from __future__ import annotations

import dataclasses
from typing import Any

SPLITS = ("random", "temporal", "item-cold", "user-cold")
DEFAULT_MODELS = "global-mean,bias,popularity,random"
DEFAULTS = {
    "split": "random",
    "k": 10,
    "seed": 0,
    "test_fraction": 0.2,
    # Ranking relevance: held-out interactions rated >= 4 (of 1-5); 0 or "none": all of them.
    "relevance_threshold": 4.0,
}


def relevance_threshold(value: Any) -> float | None:
    """``--relevance-threshold`` text or config value -> a float, or 0.0 for "none"/"all"
    (every held-out interaction is relevant); None: not given."""
    from recfeat.errors import UsageError

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


@dataclasses.dataclass
class EvaluateSettings:
    models: list[Any]  # names or (name, options), as ``evaluate(models=...)`` takes them
    metrics: list[Any] | None  # names or (name, options); None: the default metrics
    split: str
    k: int
    seed: int
    test_fraction: float
    relevance_threshold: float | None
    dataset: tuple[str | None, dict[str, Any]]  # (format or None, loader options)


def resolve(config: dict[str, Any], *, models: str | None = None,
            model_options: dict[str, dict[str, Any]] | None = None, metrics: str | None = None,
            fmt: str | None = None, **flags: Any) -> EvaluateSettings:  # fmt: skip
    """Flags (None: not given) > config (``[[models]]``, ``[[metrics]]``, ``[dataset]``,
    ``[pipeline]`` split/k/seed/test_fraction/relevance_threshold) > defaults.

    ``--models`` replaces the config's list, keeping a config model's options when the
    same name is kept; ``-O MODEL.KEY=VALUE`` (``model_options``) is applied last and must
    name a model in the list."""
    from recfeat.config import component_spec, pipeline_setting
    from recfeat.errors import UsageError

    configured = [component_spec(s) for s in config.get("models", [])]
    if models is not None:
        first: dict[str, dict[str, Any]] = {}
        for name, options in configured:
            first.setdefault(name, options)
        entries = [(n, dict(first.get(n, {}))) for n in split_names(models)]
    elif configured:
        entries = [(n, dict(o)) for n, o in configured]
    else:
        entries = [(n, {}) for n in split_names(DEFAULT_MODELS)]
    per_model = model_options or {}
    unknown = set(per_model) - {n for n, _ in entries}
    if unknown:
        raise UsageError(f"-O names model(s) not in --models: {', '.join(sorted(unknown))}")
    specs: list[Any] = []
    for name, options in entries:
        options.update(per_model.get(name, {}))
        specs.append((name, options) if options else name)

    if metrics is not None:
        metric_specs: list[Any] | None = split_names(metrics)
    elif "metrics" in config:
        metric_specs = [
            name if not opts else (name, opts)
            for name, opts in map(component_spec, config["metrics"])
        ]
    else:
        metric_specs = None

    ds_fmt, ds_options = None, {}
    if "dataset" in config:
        cfg_fmt, cfg_options = component_spec(config["dataset"])
        if fmt in (None, "auto", cfg_fmt):
            ds_fmt, ds_options = cfg_fmt, dict(cfg_options)
    if ds_fmt is None:
        ds_fmt = fmt
    values = {key: pipeline_setting(config, key, flags.get(key), default)
              for key, default in DEFAULTS.items()}  # fmt: skip
    return EvaluateSettings(
        models=specs, metrics=metric_specs, dataset=(ds_fmt, ds_options), **values
    )
