"""``recfeat clean`` and ``recfeat tokenize``: stream a text column through cleaners or a tokenizer.

Input is a text file (one text per line), a CSV column or a JSONL field, from a file (plain or
``.gz``) or stdin. It is read and processed in chunks so memory stays flat on large files;
bytes are decoded line by line, so an undecodable byte is reported with its line number.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

import recfeat.api as api
from recfeat.errors import DataError, UsageError

CHUNK_ROWS = 1000
FORMATS = ("auto", "text", "csv", "jsonl")


# -- reading --------------------------------------------------------------------------------


def _open_binary(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return open(path, "rb")  # a FIFO streams once: peeking at its magic would eat it
        with open(path, "rb") as fh:
            magic = fh.read(2)
        return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
    except FileNotFoundError:
        raise UsageError(f"input file {path} does not exist; check the path (or pass - for stdin)") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}; check the path") from None


def _count_lines(path: str) -> int | None:
    """Line count of a plain file, for the progress bar's ETA (one fast pass over the bytes)."""
    if path == "-":
        return None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a FIFO or pipe is read once, by the command itself: never count it
        with open(path, "rb") as fh:
            if fh.read(2) == b"\x1f\x8b":
                return None
            fh.seek(0)
            return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return None


def decoded_lines(stream: IO[bytes], name: str, encoding: str) -> Iterator[str]:
    """Lines (with their end) decoded incrementally; bad bytes -> DataError with the line number."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise UsageError(f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None
    # utf-8-sig drops a leading byte-order mark (Excel writes one) and is otherwise utf-8.
    decoder = codecs.getincrementaldecoder("utf-8-sig" if codec.name == "utf-8" else codec.name)()
    done = 0
    pending = ""
    try:
        for raw in stream:
            try:
                pending += decoder.decode(raw)
            except UnicodeDecodeError as exc:
                line = done + pending.count("\n") + 1
                raise DataError(
                    f"{name}: line {line}: bytes are not valid {encoding} ({exc.reason}); "
                    "pass the file's encoding with --encoding (e.g. --encoding latin-1)"
                ) from None
            if "\n" in pending:
                *complete, pending = pending.split("\n")
                for line_text in complete:
                    done += 1
                    yield line_text + "\n"
        pending += decoder.decode(b"", final=True)
    except (OSError, EOFError) as exc:  # truncated or corrupt gzip
        raise DataError(f"cannot read {name}: {exc}; is the file complete?") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name}: line {done + 1}: bytes are not valid {encoding} ({exc.reason}); "
            "pass the file's encoding with --encoding"
        ) from None
    if pending:
        yield pending


class _Text:
    """One text per line; line ends are not part of the text."""

    def __init__(self, name: str, column: str | None):
        if column is not None:
            raise UsageError(
                f"--column {column} applies to CSV and JSONL input, but {name} is read as plain text; "
                "pass --format csv or --format jsonl"
            )

    def rows(self, lines: Iterator[str]) -> Iterator[tuple[Any, str | None]]:
        for line in lines:
            yield None, line.rstrip("\r\n")

    def header(self, out: IO[str]) -> None:
        pass

    def write(self, out: IO[str], row: Any, text: str | None) -> None:
        # One line stays one text: a line break that cleaning produced (e.g. from &#10;) becomes a space.
        from recfeat.cli.terminal import for_stream

        out.write(for_stream((text or "").replace("\r", " ").replace("\n", " "), out) + "\n")


def _missing_column(name: str, column: str | None, found: list[str]) -> UsageError:
    listing = ", ".join(found) or "(none)"
    if column is None:
        return UsageError(f"{name}: which column holds the text? pass --column NAME (columns found: {listing})")
    from recfeat.errors import closest

    return UsageError(
        f"{name}: no column {column!r}.{closest(column, found)} Columns found: {listing}; pass --column NAME"
    )


class _Csv:
    """A CSV (or TSV) with a header row; other columns pass through unchanged."""

    def __init__(self, name: str, column: str | None):
        self.name = name
        self.column = column
        self.delimiter = "\t" if name.lower().removesuffix(".gz").endswith(".tsv") else ","
        self.fields: list[str] = []

    def rows(self, lines: Iterator[str]) -> Iterator[tuple[Any, str | None]]:
        reader = csv.reader(lines, delimiter=self.delimiter)
        try:
            self.fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{self.name}: line 1: malformed CSV header ({exc})") from None
        column = self.column if self.column is not None else "text"
        if column not in self.fields:
            raise _missing_column(self.name, self.column, self.fields)
        self.idx = idx = self.fields.index(column)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"{self.name}: line {reader.line_num}: malformed CSV ({exc})") from None
            if not row:
                continue  # blank line
            if len(row) <= idx:
                raise DataError(
                    f"{self.name}: line {reader.line_num}: {len(row)} fields but the header has "
                    f"{len(self.fields)}; fix the row or quote fields that contain {self.delimiter!r}"
                )
            yield row, row[idx]

    def header(self, out: IO[str]) -> None:
        """Write the header row; called once, before any ``write``."""
        self._writer = csv.writer(out, delimiter=self.delimiter, lineterminator="\n")
        if self.fields:
            self._writer.writerow(self.fields)

    def write(self, out: IO[str], row: Any, text: str | None) -> None:
        row[self.idx] = text
        self._writer.writerow(row)


class _Jsonl:
    """One JSON object per line; other fields pass through unchanged; ``null`` text stays null."""

    def __init__(self, name: str, column: str | None):
        self.name = name
        self.column = column
        self.fields: list[str] = []

    def rows(self, lines: Iterator[str]) -> Iterator[tuple[Any, str | None]]:
        first = True
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{self.name}: line {lineno}: not valid JSON ({exc.msg}); one JSON object per line expected") from None
            if not isinstance(obj, dict):
                raise DataError(f"{self.name}: line {lineno}: expected a JSON object, got {type(obj).__name__}")
            column = self.column if self.column is not None else "text"
            if column not in obj:
                if first:
                    raise _missing_column(self.name, self.column, list(obj))
                raise DataError(f"{self.name}: line {lineno}: no field {column!r}; every line needs it")
            first = False
            value = obj[column]
            if value is not None and not isinstance(value, str):
                raise DataError(
                    f"{self.name}: line {lineno}: field {column!r} is a {type(value).__name__}, not text"
                )
            yield obj, value

    def header(self, out: IO[str]) -> None:
        pass

    def write(self, out: IO[str], row: Any, text: str | None) -> None:
        column = self.column if self.column is not None else "text"
        if row[column] is not None:
            row[column] = text
        from recfeat.cli.terminal import json_text

        out.write(json_text(json.dumps(row, ensure_ascii=False)) + "\n")  # C1/bidi escaped too


_HANDLERS = {"text": _Text, "csv": _Csv, "jsonl": _Jsonl}


def read_chunks(
    path: str, fmt: str, column: str | None, encoding: str, size: int = CHUNK_ROWS
) -> tuple[Any, Iterator[list[tuple[Any, str | None]]]]:
    """``(handler, chunks)``: lists of at most ``size`` ``(row, text)`` pairs, read lazily."""
    name = "<stdin>" if path == "-" else path
    handler = _HANDLERS[api.detect_format(path, fmt, stream=True)](name, column)

    def chunks():
        stream = _open_binary(path)
        try:
            chunk = []
            for item in handler.rows(decoded_lines(stream, name, encoding)):
                chunk.append(item)
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
        finally:
            if path != "-":
                stream.close()

    return handler, chunks()


# -- commands ---------------------------------------------------------------------------------

_input_arg = click.argument(
    "input_path", metavar="[INPUT|-]", default="-", type=click.Path(dir_okay=False, allow_dash=True)
)
_column_opt = click.option("--column", help="CSV column or JSONL field holding the text [default: text].")
_format_opt = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
    help="Input format; auto goes by the file name (.csv, .tsv, .jsonl, .json, optionally .gz).",
)
_encoding_opt = click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the input.")


@click.command("clean")
@_input_arg
@click.option(
    "--cleaners",
    help="Comma-separated cleaner names, applied in order "
    "[default: html,control-chars,nfkc,pii,whitespace]; see `recfeat components cleaners`.",
)
@click.option("--keep-pii", is_flag=True,
              help="Leave personal data in the texts: the default chain without pii.")
@click.option("--config", help="Take the chain from the `cleaners` list of a TOML pipeline file.")
@_column_opt
@_format_opt
@_encoding_opt
@click.option("--out", type=click.Path(dir_okay=False), help="Write here (atomically) instead of stdout.")
def clean_command(input_path, cleaners, keep_pii, config, column, fmt, encoding, out) -> None:
    """Clean texts: a text file (one per line), a CSV column or a JSONL field.

    Output has the input's format; other CSV columns and JSONL fields are kept.
    """
    # The input is streamed while the output is written: they may never be one file.
    api.guard_outputs({"--out": out}, {"INPUT": input_path, "--config": config})
    chain = api.cleaner_chain(cleaners, config=config, keep_pii=keep_pii)
    handler, chunks = read_chunks(input_path, fmt, column, encoding)
    total = _count_lines(input_path)

    def run(sink: IO[str]) -> int:
        n = 0
        with api.progress_bar(total, f"cleaning ({', '.join(chain.names) or 'no cleaners'})") as bar:
            for i, chunk in enumerate(chunks):
                texts = [t for _, t in chunk]
                cleaned = chain.clean(texts)
                if i == 0:
                    handler.header(sink)
                for (row, raw), text in zip(chunk, cleaned, strict=True):
                    handler.write(sink, row, text if raw is not None else None)
                n += len(chunk)
                bar.advance(len(chunk))
        if n == 0:
            handler.header(sink)
        return n

    if out:
        with api.atomic_open(out, "w") as sink:
            n = run(sink)
        click.echo(f"cleaned {n} texts -> {out}", err=True)
    else:
        run(sys.stdout)


@click.command("tokenize")
@_input_arg
@click.option("--tokenizer", "tokenizer_name", default=None, help="Tokenizer component [default: hf].")
@click.option("--config",
              help="Take the tokenizer from the [tokenizer] table of a TOML pipeline file; flags override it.")
@click.option("--encoder", help="Text encoder whose tokenizer to use: a Hugging Face model folder "
              "or hub name, or minilm [default: all-MiniLM-L6-v2].")
@click.option("--max-length", type=int, help="Truncate to this many tokens (special tokens included) [default: 256].")
@click.option(
    "--option", "-o", "extra_options", multiple=True, metavar="KEY=VALUE",
    help="Another tokenizer option, e.g. -o corpus=texts.txt for gpt2-bpe (VALUE is read as JSON when it parses).",
)
@_column_opt
@_format_opt
@_encoding_opt
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text on stdout.")
@click.option("--show-tokens", is_flag=True, help="Also print the token strings.")
def tokenize_command(
    input_path, tokenizer_name, config, encoder, max_length, extra_options, column, fmt, encoding, as_json, show_tokens
) -> None:
    """Tokenize texts and report token counts and truncation.

    Per text: `n_tokens<TAB>n_dropped<TAB>ids...` (or JSON lines with --json). A summary line
    (texts, tokens, truncated texts, tokens dropped) goes to stderr.
    """
    tokenizer = api.tokenizer(tokenizer_name, config=config, encoder=encoder,
                              max_length=max_length, options=extra_options)  # fmt: skip
    _handler, chunks = read_chunks(input_path, fmt, column, encoding)
    total = _count_lines(input_path)
    from recfeat.cli.terminal import for_stream, json_text

    out = sys.stdout
    n_texts = n_tokens = n_truncated = n_dropped = 0
    with api.progress_bar(total, "tokenizing") as bar:
        for chunk in chunks:
            texts = [t if t is not None else "" for _, t in chunk]
            batch = tokenizer.tokenize(texts)
            for ids, nt, nd in zip(batch.ids, batch.n_tokens.tolist(), batch.n_dropped.tolist(), strict=True):
                if as_json:
                    record: dict[str, Any] = {
                        "row": n_texts, "n_tokens": nt, "n_kept": len(ids), "n_dropped": nd, "ids": ids
                    }
                    if show_tokens:
                        record["tokens"] = tokenizer.convert_ids_to_tokens(ids)
                    out.write(json_text(json.dumps(record, ensure_ascii=False)) + "\n")
                else:
                    shown = tokenizer.convert_ids_to_tokens(ids) if show_tokens else ids
                    out.write(for_stream(f"{nt}\t{nd}\t{' '.join(map(str, shown))}", out) + "\n")
                n_texts += 1
                n_tokens += nt
                n_truncated += nd > 0
                n_dropped += nd
            bar.advance(len(chunk))
    click.echo(
        f"texts: {n_texts}, tokens: {n_tokens}, truncated texts: {n_truncated}, "
        f"tokens dropped: {n_dropped} (max_length={getattr(tokenizer, 'max_length', '?')})",
        err=True,
    )


def register(cli: click.Group) -> None:
    cli.add_command(clean_command)
    cli.add_command(tokenize_command)
