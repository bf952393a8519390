"""Argument checks at the entry of every function the Python API exposes.

The command line parses text into values and calls the same functions, so a check here
serves both: a script's ``evaluate(k="10")`` and ``recfeat evaluate --k 0`` are refused by
the same line, before any work. Each check raises one ``UsageError`` line naming the
argument, what it takes and what it got, so nothing raw (AttributeError, TypeError,
KeyError) escapes from deep inside the library, and no NaN or negative count travels on to
become a silent wrong result.

``name`` is how the user spells the argument: a flag (``--k``) where a settings function
mirrors a command's flags, else the keyword (``bundle``).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recfeat.errors import DataError, UsageError

#: Seeds feed numpy, torch and the standard library, which all take 0 .. 2**32 - 1.
SEED_RANGE = (0, 2**32 - 1)


def shown(value: Any) -> str:
    """A value as a message names it: short, with its type where the repr hides it."""
    kind = type(value).__name__
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"{text!r} (a str)"
    if is_frame(value):
        return f"a pandas {kind}"
    if isinstance(value, (list, tuple, dict, set)):
        text = repr(value)
        return text if len(text) <= 40 else f"a {kind} of {len(value)}"
    return f"a {kind}"


def is_frame(value: Any) -> bool:
    """True for a pandas DataFrame (without importing pandas)."""
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def refuse(name: str, wanted: str, value: Any, fix: str = "") -> UsageError:
    """``UsageError("{name} must be {wanted}, got {value}; {fix}")``."""
    return UsageError(f"{name} must be {wanted}, got {shown(value)}" + (f"; {fix}" if fix else ""))


def integer(value: Any, name: str, *, low: int | None = None, high: int | None = None,
            example: Any = None) -> int:  # fmt: skip
    """``value`` as an int in ``[low, high]``: an int (numpy's too), never a bool, a str or a
    float, since a count given as "10" or 2.5 is a mistake the caller should see."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise refuse(name, f"a whole number{_bounds(low, high)}", value,
                     f"pass an int, e.g. {spelled(name, _example(example, low, high))}")  # fmt: skip
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise refuse(name, f"a whole number{_bounds(low, high)}", value,
                     f"pass e.g. {spelled(name, _example(example, low, high))}")  # fmt: skip
    return number


def optional_integer(value: Any, name: str, **limits: Any) -> int | None:
    """None (not given) or ``integer(value, name, **limits)``."""
    return None if value is None else integer(value, name, **limits)


def number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, example: Any = None) -> float:  # fmt: skip
    """``value`` as a finite float within the bounds (``*_open``: the bound itself is out).
    NaN and infinities are refused: compared with a bound they pass or fail silently."""
    wanted = f"a finite number{_bounds(low, high, low_open, high_open)}"
    hint = f"pass e.g. {spelled(name, _example(example, low, high))}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise refuse(name, wanted, value, hint)
    x = float(value)
    if not math.isfinite(x):
        raise refuse(name, wanted, value, hint)
    if low is not None and (x <= low if low_open else x < low):
        raise refuse(name, wanted, value, hint)
    if high is not None and (x >= high if high_open else x > high):
        raise refuse(name, wanted, value, hint)
    return x


def optional_number(value: Any, name: str, **limits: Any) -> float | None:
    """None (not given) or ``number(value, name, **limits)``."""
    return None if value is None else number(value, name, **limits)


def fraction(value: Any, name: str, example: float = 0.2) -> float:
    """A share strictly between 0 and 1 (a held-out part, a probability)."""
    return number(value, name, low=0, high=1, low_open=True, high_open=True, example=example)


def seed(value: Any, name: str = "seed") -> int:
    """A random seed: a whole number in ``SEED_RANGE``."""
    return integer(value, name, low=SEED_RANGE[0], high=SEED_RANGE[1], example=0)


def flag(value: Any, name: str, *, none: bool = False) -> bool | None:
    """True or False (numpy's bool too); ``none``: None passes as "not given"."""
    if value is None and none:
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise refuse(name, "True or False", value, "pass a bool")


def text(value: Any, name: str, *, none: bool = False, example: str | None = None) -> str | None:
    """A non-empty string; ``none``: None passes as "not given"."""
    if value is None and none:
        return None
    if not isinstance(value, str) or not value.strip():
        fix = f"pass e.g. {spelled(name, example)}" if example else "pass a non-empty str"
        raise refuse(name, "a non-empty string", value, fix)
    return value


def choice(value: Any, name: str, choices: Sequence[str], *, none: bool = False) -> str | None:
    """One of ``choices``; ``none``: None passes as "not given"."""
    if value is None and none:
        return None
    if not isinstance(value, str) or value not in choices:
        from recfeat.errors import closest

        hint = closest(value, choices) if isinstance(value, str) else ""
        raise UsageError(f"{name} must be one of {', '.join(choices)}, got {shown(value)};"
                         f"{hint or ' pick one of those'}")  # fmt: skip
    return value


def path(value: Any, name: str, *, none: bool = False, what: str = "a file or folder path",
         fix: str = "") -> Path | None:  # fmt: skip
    """A str or os.PathLike naming ``what`` (not checked on disk); ``none``: None passes."""
    if value is None and none:
        return None
    if isinstance(value, (str, os.PathLike)) and str(os.fspath(value)).strip():
        return Path(os.fspath(value))
    if is_frame(value):
        fix = fix or "pass the file's path; an in-memory table goes to the function that takes data"
    raise refuse(name, f"{what} (a str or pathlib.Path)", value, fix or "pass a path")


def existing_file(value: Any, name: str, *, what: str = "file", fix: str = "") -> Path:
    """A path to a file that exists: DataError when it is missing, UsageError for a folder."""
    p = path(value, name, what=f"a {what} path").expanduser()
    if not p.exists():
        raise DataError(f"{name}: {what} {p} does not exist; check the path"
                        + (f" ({fix})" if fix else ""))  # fmt: skip
    if p.is_dir():
        raise UsageError(f"{name}: {p} is a folder; give the {what} itself")
    return p


def names(value: Any, name: str, *, example: str, none: bool = False) -> list[str] | None:
    """``"a,b"`` or a list of non-empty strings -> the names; an empty list is refused."""
    if value is None and none:
        return None
    if isinstance(value, str):
        found = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        found = [v.strip() for v in value if v.strip()]
    else:
        raise refuse(name, "names as 'a,b' or a list of str", value, f"pass e.g. {spelled(name, example)}")
    if not found:
        raise refuse(name, "at least one name", value, f"pass e.g. {spelled(name, example)}")
    return found


def key_values(value: Any, name: str, *, example: str) -> dict[str, Any] | list[str]:
    """Options as a dict, or ``KEY=VALUE`` strings (one string is one pair, not its
    characters); None is none."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise refuse(f"{name} key", "a str", bad[0], f"name options as strings, e.g. {example!r}")
        return dict(value)
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise refuse(name, "a dict or KEY=VALUE strings", value, f"pass e.g. {spelled(name, [example])}")


def texts(value: Any, name: str = "texts", *, none: bool = False) -> list[str] | None:
    """A list (or other iterable) of str, not one str, whose characters would be read as
    texts; an empty one is refused."""
    if value is None and none:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise refuse(name, "a list of strings", value, "wrap one text in a list: ['...']")
    found = list(value)
    bad = next((t for t in found if not isinstance(t, str)), None)
    if bad is not None:
        raise refuse(f"each of {name}", "a str", bad, "convert or drop missing texts first")
    if not found:
        raise refuse(name, "a non-empty list of strings", value, "pass at least one text")
    return found


def callable_or_none(value: Any, name: str) -> Callable[..., Any] | None:
    """None or a function (``echo``, ``on_step``)."""
    if value is None or callable(value):
        return value
    raise refuse(name, "a function or None", value, "pass e.g. print")


def _bounds(low, high, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        if low_open and high_open:
            return f" between {low} and {high} (both excluded)"
        if low_open:
            return f" > {low} and <= {high}"
        if high_open:
            return f" >= {low} and < {high}"
        return f" between {low} and {high}"
    if low is not None:
        return f" > {low}" if low_open else f" >= {low}"
    if high is not None:
        return f" < {high}" if high_open else f" <= {high}"
    return ""


def _example(example, low, high) -> Any:
    if example is not None:
        return example
    return low if low is not None else 1


def spelled(name: str, example: Any) -> str:
    """How to pass ``example`` as ``name``: ``--k 10`` for a flag, ``k=10`` for a keyword."""
    if name.startswith("-"):
        return f"{name} {example}"
    return f"{name}={example!r}"
