"""After a failed load: DuckDB's error as one line naming the file, line and column at fault.

Line numbers: DuckDB numbers records, counting the header and blank lines, which is the physical
line unless an earlier quoted value spans lines; those are mapped back to the physical line by
re-reading the file up to the record. Errors DuckDB reports without a line (a value that is not a
whole number, a truncated ``.gz``, mixed line endings) are located by one streaming pass over the
file at fault. All of this happens only once a load has failed; a good load reads each file once,
in DuckDB, plus its header line.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import duckdb

from churn_assets.landing.contract import (
    DATE_COLUMNS,
    INT32_MAX,
    INT32_MIN,
    LANDING_COLUMNS,
    LandingFormatError,
    _first_line,
    _where,
    is_gzip,
    is_parquet,
)
from churn_assets.landing.header import _csv_header
from churn_assets.landing.locate import (
    _first_empty,
    _first_fraction,
    _gzip_problem,
    _line_ending_problem,
    _physical_line,
    _physical_line_text,
)
from churn_assets.landing.reader import _VALUE_MARK, _recent_sources

_LINE = re.compile(r"CSV Error on Line: (\d+)")
_FILE = re.compile(r"^\s*file = (.+?)\s*$", re.MULTILINE)
_CONVERT = re.compile(
    r'Error when converting column "(?P<column>[^"]+)"\. '
    r'Could not convert string "(?P<value>.*)" to \''
)
_FIELDS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_GZIP_END = re.compile(r"Unexpected end of GZIP stream: (.+)$", re.MULTILINE)
_NOT_GZIP = re.compile(r"Input is not a GZIP stream: (.+)$", re.MULTILINE)
_NOT_NULL = re.compile(r'NOT NULL constraint failed: "?([^".]+)"?\."?(\w+)"?')
_DATE_HINT = "dates must be YYYYMMDD integers such as 20160301"


def describe_load_error(exc: duckdb.Error, table: str) -> LandingFormatError:
    """Turn DuckDB's long error of a failed read into one line naming file, line and column.

    Locating the line may read the file at fault once more, streaming (see the module's notes).
    """
    try:
        return LandingFormatError(_describe(str(exc), table))
    except OSError as failure:  # the file went away while being examined
        return LandingFormatError(f"a {table} landing file: {_first_line(exc)} ({failure})")


def _describe(text: str, table: str) -> str:
    if _VALUE_MARK in text:
        return _describe_refused(text, table)
    gzip_end = _GZIP_END.search(text)
    if gzip_end:
        return _describe_gzip(Path(gzip_end.group(1).strip()), None)
    not_gzip = _NOT_GZIP.search(text)
    if not_gzip:
        return (
            f"{_where(not_gzip.group(1).strip(), 1)}not gzip data; expected a gzip-compressed "
            "CSV file for a .gz name"
        )
    file_match = _FILE.search(text)
    line_match = _LINE.search(text)
    if file_match is None:  # DuckDB names the file it reads: this came after the read
        not_null = _NOT_NULL.search(text)
        located = _describe_empty(table, not_null.group(2)) if not_null else None
        return located or (
            f"loading {table} failed after reading its landing files (DuckDB names none): "
            f"{text.strip().splitlines()[0]}"
        )
    path = Path(file_match.group(1))
    if is_gzip(path):
        broken = _gzip_problem(path, int(line_match.group(1)) if line_match else None)
        if broken:
            return broken
    if line_match is None:
        # DuckDB's parser stopped without saying where: one file mixing line endings, say.
        return _line_ending_problem(path) or f"{path}: {_duckdb_problem(text)}"
    line = _physical_line(path, int(line_match.group(1)))
    convert = _CONVERT.search(text)
    if convert:
        column, value = convert.group("column"), convert.group("value")
        return f"{_where(path, line, column)}{_value_problem(column, value, table)}"
    fields = _FIELDS.search(text)
    if fields:
        return _describe_field_count(path, table, line, int(fields.group(1)), int(fields.group(2)))
    if "unterminated quote" in text:
        return _describe_quote(path, table, line)
    if "Invalid unicode" in text:
        return _describe_encoding(path, table, line)
    return f"{_where(path, line)}{_duckdb_problem(text)}"


def _duckdb_problem(text: str) -> str:
    """DuckDB's own words for an error this module does not know, without its line prefix.

    A CSV error's first line is only its kind and line; the sentence saying what went wrong comes
    after the quoted original line.
    """
    lines = [s.strip() for s in text.strip().splitlines()]
    first = _LINE.sub("", lines[0]).rstrip(" :")
    if first != lines[0]:
        sentences = [s for s in lines[1:] if s.endswith(".") and not s.startswith("Original")]
        if sentences:
            return f"{first}: {sentences[0]}"
    return first or lines[0]


def _value_problem(column: str, value: str, table: str) -> str:
    """What is wrong with ``value`` in ``column``, and what was expected instead."""
    kind = LANDING_COLUMNS.get(table, {}).get(column, "VARCHAR")
    shown = value if len(value) <= 40 else value[:37] + "..."
    if column in DATE_COLUMNS:
        return f'"{shown}" is not a YYYYMMDD date; {_DATE_HINT}'
    if kind != "INTEGER":
        return f'"{shown}" is not a number; expected a decimal number such as 1234.5'
    try:
        number = float(value.strip())
    except ValueError:
        return f'"{shown}" is not an integer; expected a whole number'
    if not math.isfinite(number):
        return f'"{shown}" is not a finite number; expected a whole number'
    if number != int(number):
        return f'"{shown}" is not a whole number; expected an integer'
    return (
        f'"{shown}" is beyond the INTEGER range; '
        f"expected an integer from {INT32_MIN} to {INT32_MAX}"
    )


def _describe_refused(text: str, table: str) -> str:
    """A value the read's own checks refused: find the first such value's line in the file."""
    payload = text[text.index(_VALUE_MARK) + len(_VALUE_MARK) + 1 :]
    column, row, path_text, value = [*payload.split("\x1f", 3), "", "", ""][:4]
    value = value.rstrip()
    path = Path(path_text)
    if row:  # parquet: no lines, rows numbered from 1
        return f"{path}: row {row}, column {column}: {_value_problem(column, value, table)}"
    found = _first_fraction(path, _csv_header(path, table).index(column))
    if found is not None:
        line, original = found
        return f"{_where(path, line, column)}{_value_problem(column, original, table)}"
    return f"{_where(path, None, column)}{_value_problem(column, value, table)}"


def _describe_empty(table: str, column: str) -> str | None:
    """The first row, in the files last read for ``table``, that leaves ``column`` empty."""
    for path in _recent_sources.get(table, ()):
        if is_parquet(path) or column not in LANDING_COLUMNS[table]:
            continue
        try:
            header = _csv_header(path, table)
        except LandingFormatError:
            continue
        found = _first_empty(path, header.index(column)) if column in header else None
        if found is not None:
            what = "a user id" if column == "msno" else "a value"
            return (
                f"{_where(path, found[0], column)}empty value; expected {what} in every row "
                f"(the {table} table keeps no row without one)"
            )
    return None


def _describe_field_count(path: Path, table: str, line: int, expected: int, found: int) -> str:
    header = _csv_header(path, table)
    if found < expected:
        missing = header[found] if found < len(header) else None
        return (
            f"{_where(path, line, missing)}the row has {found} of the header's {expected} "
            f"fields (cut short or malformed); expected one value per header column"
        )
    return (
        f"{_where(path, line)}the row has {found} fields where the header has {expected} (a "
        f"stray comma or unquoted value after column {header[-1]}); expected one value per "
        "header column"
    )


def _describe_quote(path: Path, table: str, line: int) -> str:
    text = _physical_line_text(path, line) or ""
    header = _csv_header(path, table)
    found = _quote_problem(text)
    if found is None:
        column, what = None, "a quoted value is not closed"
    else:
        position, what = found
        column = header[position] if position < len(header) else f"field {position + 1}"
    return (
        f"{_where(path, line, column)}{what}; expected balanced double quotes, "
        'a quoted value closed by " right before the next comma or line end'
    )


def _quote_problem(text: str) -> tuple[int, str] | None:
    """The field of one line where a quote goes wrong, and how."""
    text = text.rstrip("\r\n")
    position, i = 0, 0
    while i <= len(text):
        if i < len(text) and text[i] == '"':
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    return position, "a quoted value is never closed"
                if text[k + 1 : k + 2] == '"':
                    j = k + 2
                    continue
                after = text[k + 1 : k + 2]
                if after not in ("", ","):
                    return position, f"text ({after!r}) follows a closing quote"
                i = k + 1
                break
        comma = text.find(",", i)
        if comma < 0:
            return None
        i, position = comma + 1, position + 1
    return None


def _describe_encoding(path: Path, table: str, line: int) -> str:
    text = _physical_line_text(path, line) or ""
    header = _csv_header(path, table)
    fields = next(csv.reader([text.rstrip("\r\n")]), [])
    for position, field in enumerate(fields):
        raw = field.encode("latin-1")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            column = header[position] if position < len(header) else f"field {position + 1}"
            return (
                f"{_where(path, line, column)}bytes that are not UTF-8 ({raw[:40]!r}); expected "
                "UTF-8 text (convert latin-1 or other encodings to UTF-8)"
            )
    return (
        f"{_where(path, line)}bytes that are not UTF-8; expected UTF-8 text (convert latin-1 or "
        "other encodings to UTF-8)"
    )


def _describe_gzip(path: Path, line: int | None) -> str:
    return _gzip_problem(path, line) or (
        f"{_where(path, line)}unreadable gzip data; expected a complete gzip file"
    )
