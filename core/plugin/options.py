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
    return {k: getattr(validated, by_alias[k]) for k in options}
