"""Validate a component's options against its ``__init__`` signature.

Components declare their options as keyword arguments of ``__init__`` with type hints and
defaults (the scikit-learn convention), so one mechanism serves cleaners, encoders and
estimators alike. Validation goes through a pydantic model built from that signature:
unknown keys are rejected with the list of valid ones, wrong types one line per field.
"""

from __future__ import annotations

import inspect
import typing
from functools import cache
from typing import Any

from recfeat.errors import OptionError, closest


def option_specs(cls: type) -> dict[str, dict[str, Any]]:
    """Return ``{option: {"default": ..., "required": bool, "type": "..."}}`` for
    ``cls.__init__``; ``default`` is None for a required option."""
    specs: dict[str, dict[str, Any]] = {}
    for pname, ann, param in _fields(cls):
        specs[pname] = {
            "default": None if param.default is param.empty else param.default,
            "required": param.default is param.empty,
            "type": _type_name(ann),
        }
    return specs


def _hints(cls: type) -> dict[str, Any]:
    init = cls.__init__
    try:
        return typing.get_type_hints(init)
    except Exception:
        pass
    # One unresolvable annotation (e.g. imported only under TYPE_CHECKING) must not switch
    # off checking of the others: resolve each on its own, unresolvable ones become Any.
    hints: dict[str, Any] = {}
    namespace = getattr(init, "__globals__", {})
    for pname, ann in getattr(init, "__annotations__", {}).items():
        if isinstance(ann, str):
            try:
                ann = eval(ann, namespace)  # noqa: S307 - evaluating the class's own annotation
            except Exception:
                ann = Any
        hints[pname] = ann
    return hints


def _type_name(ann: Any) -> str:
    if ann is Any:
        return "any"
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")


def _fields(cls: type):
    sig = inspect.signature(cls.__init__)
    hints = _hints(cls)
    for pname, param in sig.parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        yield pname, hints.get(pname, Any), param


@cache
def _model_for(cls: type):
    import pydantic

    fields: dict[str, Any] = {}
    for i, (pname, ann, param) in enumerate(_fields(cls)):
        default = ... if param.default is param.empty else param.default
        # Internal field names plus an alias, so an option called e.g. ``json`` or
        # ``model_name`` cannot clash with pydantic's own BaseModel attributes.
        fields[f"f{i}"] = (ann, pydantic.Field(default, alias=pname))
    config = pydantic.ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, strict=False, populate_by_name=False
    )
    return pydantic.create_model(f"{cls.__name__}Options", __config__=config, **fields)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_options(cls: type, options: dict[str, Any], *, what: str) -> dict[str, Any]:
    """Return the validated (and coerced) options, or raise OptionError.

    ``what`` names the component in messages, e.g. ``"encoder 'minilm'"``. Unknown keys
    are rejected with the list of valid ones; otherwise every bad value gets one line.
    """
    import pydantic

    specs = option_specs(cls)
    lines: list[str] = []
    unknown = [k for k in options if k not in specs]
    if unknown:
        valid = ", ".join(specs) or "(none)"
        hint = closest(unknown[0], specs) if len(unknown) == 1 else ""
        lines.append(
            f"unknown option {', '.join(repr(u) for u in unknown)} for {what}.{hint} "
            f"Valid options: {valid}"
        )
    known = {k: v for k, v in options.items() if k in specs}
    model = _model_for(cls)
    try:
        validated = model.model_validate(known)
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "options"
            field = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "missing":
                lines.append(f"{what}: missing required option {loc!r}")
                continue
            expected = specs[field]["type"] if field in specs else "?"
            lines.append(
                f"{what}: option {loc!r}: {err['msg']} (got {_short(err.get('input'))}; "
                f"expected {expected})"
            )
    if lines:
        raise OptionError("\n".join(lines))
    by_alias = {info.alias: key for key, info in model.model_fields.items()}
    # Only pass what the user gave: defaults stay the class's own, so get_params() matches.
    out = {k: getattr(validated, by_alias[k]) for k in options}
    _check_seed(out, what)
    return out


# Any option called ``seed`` seeds numpy / torch / the standard library, which all take
# 0 .. 2**32 - 1 (numpy refuses negative seeds), so the range is checked for every component.
SEED_RANGE = (0, 2**32 - 1)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def range_text(low, high) -> str:
    if low is not None and high is not None:
        return f"between {_number(low)} and {_number(high)}"
    return f">= {_number(low)}" if low is not None else f"<= {_number(high)}"


def check_ranges(
    component: Any, ranges: dict[str, tuple[float | None, float | None]], kind: str = "model"
) -> None:
    """Raise OptionError, one line per option, when an option of ``component`` lies outside
    its inclusive ``(low, high)`` range (None: unbounded) or is not a finite number. For a
    component's ``validate()``: ``check_ranges(self, {"factors": (1, 10_000)})``."""
    import math

    what = f"{kind} {getattr(component, 'name', '') or type(component).__name__!r}"
    lines = []
    specs = option_specs(type(component))
    for option, (low, high) in ranges.items():
        value = getattr(component, option, None)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # types are checked by validate_options; None means "not set"
        if not math.isfinite(value):
            lines.append(f"{what}: option {option!r} must be a finite number (got {value!r})")
        elif (low is not None and value < low) or (high is not None and value > high):
            default = specs.get(option, {}).get("default")
            hint = f"; the default is {default!r}" if default is not None else ""
            lines.append(f"{what}: option {option!r} must be {range_text(low, high)} (got {value!r}){hint}")
    if lines:
        raise OptionError("\n".join(lines))


def _check_seed(options: dict[str, Any], what: str) -> None:
    seed = options.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        low, high = SEED_RANGE
        if not low <= seed <= high:
            raise OptionError(
                f"{what}: option 'seed' must be between {low} and {high} (got {seed}); "
                "random seeds cannot be negative"
            )
