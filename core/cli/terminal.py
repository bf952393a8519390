"""Text from data files (review text, ids, JSON keys, file names) made safe to print.

A review holding ``ESC [ 2 J`` would clear the user's screen if printed raw, and an OSC
sequence can retitle the window or forge a link. Everything recfeat prints for people
(tables, ids, snippets, error lines) goes through ``clean``: control characters, C1 codes,
bidirectional overrides and Unicode line separators are shown as visible ``\\xNN`` /
``\\uNNNN`` escapes instead, so nothing is lost and nothing is interpreted.

JSON output stays JSON: ``json.dumps`` already escapes C0 controls; ``json_text`` also
escapes C1 codes and bidi controls, which ``ensure_ascii=False`` would leave raw.
"""

from __future__ import annotations

import re

import click

# C0 controls (except tab and newline, handled below), DEL, C1 controls, bidi embeddings,
# overrides and isolates, LRM/RLM/ALM, the Unicode line/paragraph separators, and lone
# surrogates (from JSON "\ud800" escapes: they cannot even be encoded for output).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object, *, newlines: bool = False) -> str:
    """``text`` as a string with every unsafe character replaced by a visible escape. Tabs
    become spaces; newlines are kept when ``newlines`` (multi-line messages), else escaped."""
    s = text if isinstance(text, str) else str(text)
    s = _UNSAFE.sub(_visible, s.replace("\t", " "))
    return s if newlines else s.replace("\n", "\\n")


def echo(text: object = "", *, err: bool = False) -> None:
    """``click.echo`` of ``clean(text)`` (newlines kept: a message may span lines)."""
    click.echo(clean(text, newlines=True), err=err)


def json_text(text: str) -> str:
    """A ``json.dumps`` result with C1 and bidi controls escaped too (still valid JSON)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def rich_text(text: object) -> str:
    """``clean(text)`` with rich markup escaped, so ``[red]`` in a review stays literal."""
    from rich.markup import escape

    return escape(clean(text))


def for_stream(text: str, stream) -> str:
    """Data written to ``stream`` (a command's output): cleaned when it is a terminal, so
    nothing in it is interpreted; unchanged into a file or pipe, where it is data."""
    isatty = getattr(stream, "isatty", None)
    try:
        # tabs separate output columns: kept, each column cleaned
        return "\t".join(map(clean, text.split("\t"))) if isatty and isatty() else text
    except ValueError:  # a closed stream
        return text
