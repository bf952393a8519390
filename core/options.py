"""Validate a component's options against its ``__init__`` signature.

Components declare their options as keyword arguments of ``__init__`` with type hints and
defaults (the scikit-learn convention), so one mechanism serves cleaners, encoders and
estimators alike. Validation goes through a pydantic model built from that signature:
unknown keys are rejected with the list of valid ones, wrong types one line per field.
"""

from __future__ import annotations

import inspect
import typing
from functools import lru_cache
from typing import Any

from .errors import OptionError


def option_specs(cls: type) -> dict[str, dict[str, Any]]:
    """Return ``{option: {"default": ..., "type": "..."}}`` for ``cls.__init__``."""
    sig = inspect.signature(cls.__init__)
    hints = _hints(cls)
    specs: dict[str, dict[str, Any]] = {}
    for pname, param in sig.parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        ann = hints.get(pname, Any)
        specs[pname] = {
            "default": None if param.default is param.empty else param.default,
            "required": param.default is param.empty,
            "type": _type_name(ann),
        }
    return specs


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable forward reference: fall back to no checking
        return {}


def _type_name(ann: Any) -> str:
    if ann is Any:
        return "any"
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")


@lru_cache(maxsize=None)
def _model_for(cls: type):
    import pydantic

    sig = inspect.signature(cls.__init__)
    hints = _hints(cls)
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        ann = hints.get(pname, Any)
        default = ... if param.default is param.empty else param.default
        fields[pname] = (ann, default)
    config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True, strict=False)
    return pydantic.create_model(f"{cls.__name__}Options", __config__=config, **fields)


def validate_options(cls: type, options: dict[str, Any], *, what: str) -> dict[str, Any]:
    """Return the validated (and coerced) options, or raise OptionError.

    ``what`` names the component in messages, e.g. ``"encoder 'minilm'"``.
    """
    import pydantic

    specs = option_specs(cls)
    unknown = [k for k in options if k not in specs]
    if unknown:
        valid = ", ".join(specs) or "(none)"
        raise OptionError(
            f"unknown option {', '.join(repr(u) for u in unknown)} for {what}; valid options: {valid}"
        )
    try:
        validated = _model_for(cls)(**options)
    except pydantic.ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "options"
            lines.append(f"{what}: option {loc!r}: {err['msg']} (got {err.get('input')!r})")
        raise OptionError("\n".join(lines)) from None
    # Only pass what the user gave: defaults stay the class's own, so get_params() matches.
    return {k: getattr(validated, k) for k in options}
