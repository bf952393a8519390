"""Tables that fit the terminal: the one place that decides what a printed table shows.

``fit(header, rows, width=...)`` takes cells as strings (first column: the row labels) and,
while the table is wider than ``width``, in this order:

1. leaves out columns whose every cell is a not-applicable label (``na``): always, since
   such a column says nothing per row (one footnote names them and the label);
2. abbreviates headers (the caller's ``abbreviations``, named in a footnote);
3. writes not-applicable labels as ``n/a`` (a footnote says which label each row carried);
4. wraps text (left-aligned) columns longer than a third of the width onto more lines;
5. leaves out columns, the caller's ``drop_first`` first, then from the right, and says
   which ("3 columns left out to fit 80 columns (f1@10, map@10, mrr): --wide shows all");
6. wraps text columns further, down to 8 characters.

Numbers are never cut: a table is narrowed by leaving whole columns out, never by an
ellipsis inside a cell. ``width=None`` (``--wide``) shows every column as it is.
The width is the terminal's when stdout is one, else 80 (logs, pipes, tests), so output
that is read by programs stays one row per line with one header line.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence

import click

#: Columns of output that is not a terminal (a file, a pipe, a test runner).
DEFAULT_WIDTH = 80
#: Narrower than this, a table cannot show a label and a number side by side anyway.
MIN_WIDTH = 20
#: Spaces between columns in plain text (as pandas prints); rich adds a divider: 3.
TEXT_GAP = 2
RICH_GAP = 3
#: A wrapped text column keeps at least this many characters a line.
MIN_TEXT = 8
WIDE_HELP = "Show every column, however wide [default: fit the terminal, 80 columns when not one]."
NA = "n/a"


def wide_option(f):
    """``--wide``: the table's every column, unfitted."""
    return click.option("--wide", is_flag=True, help=WIDE_HELP)(f)


def is_terminal(stream=None) -> bool:
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def output_width(wide: bool = False, stream=None) -> int | None:
    """Columns a table may use on ``stream`` (stdout): None with ``wide``; the terminal's
    width on a terminal (``COLUMNS`` first, as ``shutil`` reads it); else 80."""
    if wide:
        return None
    if is_terminal(stream):
        return max(shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns, MIN_WIDTH)
    return DEFAULT_WIDTH


@dataclasses.dataclass
class FittedTable:
    """A table ready to print: ``cells[row][col]`` are lists of lines (wrapped text)."""

    title: str | None
    header: list[list[str]]
    cells: list[list[list[str]]]
    align: list[str]
    widths: list[int]
    gap: int
    width: int | None
    notes: list[str]
    footer: list[str]

    @property
    def columns(self) -> list[str]:
        """The shown column titles, each on one line."""
        return [" ".join(h) for h in self.header]

    def _wrap(self, line: str, indent: str = "  ") -> list[str]:
        if self.width is None or len(line) <= self.width:
            return [line]
        return textwrap.wrap(line, self.width, subsequent_indent=indent,
                             break_on_hyphens=False)  # fmt: skip

    def _row_lines(self, row: Sequence[Sequence[str]]) -> list[str]:
        height = max((len(c) for c in row), default=1)
        out = []
        for n in range(height):
            parts = []
            for cell, w, a in zip(row, self.widths, self.align, strict=True):
                text = cell[n] if n < len(cell) else ""
                parts.append(text.ljust(w) if a == "left" else text.rjust(w))
            out.append((" " * self.gap).join(parts).rstrip())
        return out

    def table_lines(self) -> list[str]:
        """The header and rows as plain aligned text (no title, no notes)."""
        lines = self._row_lines(self.header)
        for row in self.cells:
            lines += self._row_lines(row)
        return lines

    def after_lines(self) -> list[str]:
        """Footnotes (what was left out or shortened), then the caller's footer."""
        out: list[str] = []
        for line in [*self.notes, *self.footer]:
            out += self._wrap(line, indent=" " * (len(line) - len(line.lstrip())) + "  ")
        return out

    def text(self) -> str:
        """Title, table and footnotes as plain text, every line within ``width``."""
        title = self._wrap(self.title, indent="") if self.title else []
        return "\n".join([*title, *self.table_lines(), *self.after_lines()])

    def total_width(self) -> int:
        return sum(self.widths) + self.gap * (len(self.widths) - 1)

    def print(self, rich: bool | None = None) -> None:
        """To stdout: a rich table on a terminal (``rich`` None: decide), plain text else."""
        if rich is None:
            rich = is_terminal()
        if not rich:
            click.echo(self.text())
            return
        from rich import box
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=escape(self.title) if self.title else None, box=box.SIMPLE_HEAD,
                      show_edge=False, pad_edge=False, padding=(0, 1), title_justify="left")  # fmt: skip
        for head, a, w in zip(self.header, self.align, self.widths, strict=True):
            table.add_column(escape("\n".join(head)), justify=a, width=w, no_wrap=True,
                             overflow="fold")  # fmt: skip
        for row in self.cells:
            table.add_row(*[escape("\n".join(c)) for c in row])
        # the layout was measured here; rich must neither squeeze nor stretch it
        Console(width=max(self.width or 0, self.total_width())).print(table)
        for line in self.after_lines():
            click.echo(line)


def _is_na(cell: str, na: frozenset[str]) -> bool:
    return cell in na


def _width(lines_of: Iterable[Sequence[str]]) -> int:
    return max((len(line) for lines in lines_of for line in lines), default=0)


def _names(items: Sequence[str]) -> str:
    return ", ".join(items)


def fit(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    width: int | None,
    title: str | None = None,
    align: Sequence[str] | None = None,
    na: Iterable[str] = (),
    abbreviations: Mapping[str, str] | None = None,
    drop_first: Sequence[str] = (),
    row_noun: str = "row",
    hint: str = "--wide shows all",
    footer: Sequence[str] = (),
    gap: int = TEXT_GAP,
) -> FittedTable:
    """``rows`` (first cell: the row label) laid out within ``width`` columns, as the module
    docstring says; ``width=None`` keeps every column. Every cell, title and footer line is
    made safe for the terminal (``recfeat.cli.terminal.clean``).

    ``na``: cell texts that mean "not applicable"; ``abbreviations``: header prefix ->
    shorter prefix (``{"precision": "prec"}``); ``drop_first``: header names or prefixes to
    leave out before the others (the least telling first); ``align``: "left"/"right" per
    column (default: the labels left, the rest right); ``hint``: how to see everything."""
    from recfeat.cli.terminal import clean

    names = [clean(h) for h in header]
    body = [[clean(c) for c in row] for row in rows]
    if any(len(row) != len(names) for row in body):
        raise ValueError("every row needs one cell per header")
    aligns = list(align) if align is not None else ["left"] + ["right"] * (len(names) - 1)
    na_set = frozenset(clean(x) for x in na)
    notes: list[str] = []
    shown = list(names)  # the header as shown (abbreviated)
    keep = list(range(len(names)))
    cells = [list(row) for row in body]

    caps: dict[int, int] = {}  # text columns wrapped to this width

    def col_width(j: int) -> int:
        natural = max(len(shown[j]), max((len(r[j]) for r in cells), default=0))
        return min(natural, caps.get(j, natural))

    def total() -> int:
        return sum(col_width(j) for j in keep) + gap * (len(keep) - 1)

    def too_wide() -> bool:
        return width is not None and total() > width

    if width is not None:
        width = max(width, MIN_WIDTH)
        # 1. a column that is n/a for every row says nothing row by row: one line says it
        empty = [j for j in keep[1:] if cells and all(_is_na(r[j], na_set) for r in cells)]
        if empty:
            labels = "/".join(sorted({r[j] if r[j] != "-" else "no value" for r in cells
                                      for j in empty}))  # fmt: skip
            notes.append(f"left out {_names([names[j] for j in empty])}: {labels} for every "
                         f"{row_noun}")  # fmt: skip
            keep = [j for j in keep if j not in empty]
        # 2. abbreviated headers
        short_of: dict[int, tuple[str, str]] = {}
        if too_wide() and abbreviations:
            for j in keep[1:]:
                for full, short in abbreviations.items():
                    if shown[j].startswith(full) and len(short) < len(full):
                        shown[j] = short + shown[j][len(full):]
                        short_of[j] = (short, full)
                        break
        # 3. not-applicable labels as n/a, the label per row in a footnote
        na_of: dict[int, list[tuple[str, str]]] = {}
        if too_wide() and na_set:
            for r in cells:
                for j in keep[1:]:
                    if _is_na(r[j], na_set) and r[j] != NA:
                        na_of.setdefault(j, []).append((r[j], r[0]))
                        r[j] = NA
        # 4. long text (labels) wraps at a third of the width before any column goes
        if too_wide():
            caps.update({j: max(MIN_TEXT, width // 3) for j in keep if aligns[j] == "left"})
        # 5. whole columns left out, the least telling first, then from the right
        order = [j for p in drop_first for j in keep[1:] if names[j] == p or names[j].startswith(p)]
        order += [j for j in reversed(keep[1:]) if j not in order]
        dropped = []
        for j in dict.fromkeys(order):
            if not too_wide() or len(keep) <= 2:
                break
            keep.remove(j)
            dropped.append(j)
        if dropped:
            dropped.sort()
            count = f"{len(dropped)} column{'s' if len(dropped) > 1 else ''}"
            notes.append(f"{count} left out to fit {width} columns "
                         f"({_names([names[j] for j in dropped])}): {hint}")  # fmt: skip
        # what the shown columns' short titles and n/a cells stand for
        used = dict(short_of[j] for j in keep if j in short_of)
        if used:
            notes.append(_names([f"{s} = {f}" for s, f in used.items()]))
        where: dict[str, list[str]] = {}
        for j in keep:
            for label, row in na_of.get(j, []):
                if row not in where.setdefault(label, []):
                    where[label].append(row)
        if where:
            notes.append(f"{NA} stands for " + "; ".join(
                f"{label} ({row_noun}s {_names(rows_of)})" for label, rows_of in where.items()))  # fmt: skip
    widths = {j: col_width(j) for j in keep}
    # 6. text columns wrap further (a number never does)
    if width is not None:
        text_cols = [j for j in keep if aligns[j] == "left"]
        over = sum(widths.values()) + gap * (len(keep) - 1) - width
        while over > 0:
            widest = max(text_cols, key=lambda j: widths[j], default=None)
            if widest is None or widths[widest] <= MIN_TEXT:
                break
            widths[widest] -= 1
            over -= 1

    def lines(text: str, w: int) -> list[str]:
        if len(text) <= w:
            return [text]
        return textwrap.wrap(text, w, break_on_hyphens=True) or [""]

    return FittedTable(
        title=clean(title) if title else None,
        header=[lines(shown[j], widths[j]) for j in keep],
        cells=[[lines(r[j], widths[j]) for j in keep] for r in cells],
        align=[aligns[j] for j in keep],
        widths=[widths[j] for j in keep],
        gap=gap,
        width=width,
        notes=notes,
        footer=[clean(line) for line in footer],
    )


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, wide: bool = False,
                **options) -> FittedTable:  # fmt: skip
    """``fit`` to stdout's width (``output_width``) and print: rich on a terminal, plain
    aligned text otherwise. ``options``: those of ``fit``."""
    rich = is_terminal()
    table = fit(header, rows, width=output_width(wide), gap=RICH_GAP if rich else TEXT_GAP,
                **options)  # fmt: skip
    table.print(rich=rich)
    return table
