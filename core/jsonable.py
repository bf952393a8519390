"""One rule for turning Python values into plain JSON data.

Every JSON recfeat writes (benchmark reports, export manifests, the auto-backend cache,
feature metadata, component listings, cleaner specs and cache fingerprints) goes through
``jsonable``, so the same value is written the same way everywhere. Standard library only
and no recfeat imports: every layer (core, plugins, exporters, CLI, benchmark scripts) may
use it, and numpy is handled without being imported.

The rule:

- ``None``, ``bool``, ``int``, ``str`` stay; a finite ``float`` stays a float;
- NaN and infinities become ``None`` (standard JSON has neither; strict parsers reject them),
  or their repr (``"nan"``, ``"inf"``) with ``nonfinite="repr"`` where null would read as
  "no value" (a component option's default in ``recfeat components``);
- numpy scalars become the Python number (``.item()``), numpy arrays nested lists;
- mappings become dicts with ``str`` keys; lists, tuples become lists; sets and frozensets
  sorted lists (so the output does not depend on hash order);
- dataclass instances become dicts of their fields, enums their value;
- anything else (a Path, a regex, a class) its ``str``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from typing import Any


def _is_numpy(value: Any) -> bool:
    return type(value).__module__ == "numpy"


def jsonable(value: Any, *, nonfinite: str = "null") -> Any:
    """``value`` as plain JSON data (see the module docstring for the rule).

    ``nonfinite``: ``"null"`` (default) or ``"repr"``, what NaN and infinities become."""
    if nonfinite not in ("null", "repr"):
        raise ValueError(f"nonfinite must be 'null' or 'repr', got {nonfinite!r}")
    return _convert(value, nonfinite == "repr")


def _convert(value: Any, keep_repr: bool) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return repr(float(value)) if keep_repr else None
    if _is_numpy(value):
        if hasattr(value, "tolist"):  # ndarray and numpy scalars alike
            return _convert(value.tolist(), keep_repr)
    if isinstance(value, enum.Enum):
        return _convert(value.value, keep_repr)
    if isinstance(value, Mapping):
        return {str(k): _convert(v, keep_repr) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_convert(v, keep_repr) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [_convert(v, keep_repr) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _convert(getattr(value, f.name), keep_repr) for f in dataclasses.fields(value)}
    return str(value)


def dumps(value: Any, *, nonfinite: str = "null", **kwargs: Any) -> str:
    """``json.dumps(jsonable(value))``: never NaN, never a TypeError on an exotic value."""
    return json.dumps(jsonable(value, nonfinite=nonfinite), allow_nan=False, **kwargs)


__all__ = ["dumps", "jsonable"]
