"""The landing-folder contract of DESIGN §2: which files make a table, with which columns.

Files are read by DuckDB (streaming, never through pandas). Python reads only a file's header
line before the load (:func:`inspect_file`); the typed read of the rows is DuckDB's. Every problem
with a file is raised as :class:`LandingFormatError`, one line that starts with the file's path
and names the line (1-based, the header being line 1) and the column where there is one, then
what was expected. What is accepted and what is refused:

- accepted: a UTF-8 byte-order mark (stripped from the header; DuckDB skips it with the header
  line), CRLF or LF line endings, columns in any order, extra columns (read as text and ignored;
  the load reports them as ``extra_columns_ignored``), empty fields (NULL), integers written as
  ``41.0``, a header-only file (no rows: the load decides whether its month may be empty);
- refused: a zero-byte file or one without a header line, missing contract columns, a contract
  column named twice, a row with too few or too many fields, an unbalanced quote, a truncated or
  corrupt ``.gz`` file, text in a numeric column, a fraction in an integer column (DuckDB would
  round ``149.5`` to 150), a date that is not a YYYYMMDD integer (``2016-03-01``, ``01/03/2016``),
  one file mixing line endings, and bytes that are not UTF-8.

Encodings: files must be UTF-8 (ASCII being a part of it). Latin-1 is not guessed: every byte
string is valid latin-1, so a UTF-8 file read as latin-1 would load silently wrong, and telling
the two apart would mean reading the whole file before the load.

Line numbers: DuckDB numbers records, counting the header and blank lines, which is the physical
line unless an earlier quoted value spans lines; those are mapped back to the physical line by
re-reading the file up to the record. Errors DuckDB reports without a line (a value that is not a
whole number, a truncated ``.gz``, mixed line endings) are located by one streaming pass over the
file at fault. All of this happens only once a load has failed; a good load reads each file once,
in DuckDB, plus its header line.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import math
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

# Column -> DuckDB type as the files carry them (dates are YYYYMMDD integers).
LANDING_COLUMNS: dict[str, dict[str, str]] = {
    "members": {
        "msno": "VARCHAR",
        "city": "INTEGER",
        "bd": "INTEGER",
        "gender": "VARCHAR",
        "registered_via": "INTEGER",
        "registration_init_time": "INTEGER",
    },
    "transactions": {
        "msno": "VARCHAR",
        "payment_method_id": "INTEGER",
        "payment_plan_days": "INTEGER",
        "plan_list_price": "INTEGER",
        "actual_amount_paid": "INTEGER",
        "is_auto_renew": "INTEGER",
        "transaction_date": "INTEGER",
        "membership_expire_date": "INTEGER",
        "is_cancel": "INTEGER",
    },
    "user_logs": {
        "msno": "VARCHAR",
        "date": "INTEGER",
        "num_25": "INTEGER",
        "num_50": "INTEGER",
        "num_75": "INTEGER",
        "num_985": "INTEGER",
        "num_100": "INTEGER",
        "num_unq": "INTEGER",
        "total_secs": "DOUBLE",
    },
    "labels": {"msno": "VARCHAR", "is_churn": "INTEGER"},
}
# Columns holding a date as a YYYYMMDD integer.
DATE_COLUMNS = frozenset(
    {"registration_init_time", "transaction_date", "membership_expire_date", "date"}
)

FILE_PREFIX = {"members": "members", "transactions": "transactions", "user_logs": "user_logs"}
SUFFIXES = (".csv", ".csv.gz", ".parquet")
LABEL_FILE = re.compile(r"^train_(\d{4})(\d{2})\.(csv|csv\.gz|parquet)$")
# KKBox's own names for the two labelled cohorts it shipped.
KKBOX_LABEL_FILES = {"train": "201702", "train_v2": "201703"}

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# A header line longer than this is not a header (and is never read whole into memory).
MAX_HEADER_BYTES = 1 << 20
_CHUNK = 1 << 20


class LandingFormatError(ValueError):
    """A landing file does not follow the format; the message names file, line and column."""


@dataclass(frozen=True)
class LandingFile:
    path: Path
    columns: tuple[str, ...]

    @property
    def is_parquet(self) -> bool:
        return self.path.name.endswith(".parquet")


def _stem(path: Path) -> str:
    for suffix in SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.name


def table_files(folder: Path, table: str) -> list[Path]:
    """The files of one table: ``members*.csv`` etc.; labels are found by :func:`label_files`."""
    if not folder.is_dir():
        raise LandingFormatError(f"landing folder {folder} does not exist")
    prefix = FILE_PREFIX[table]
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.startswith(prefix) and p.name.endswith(SUFFIXES)
    )


def label_files(folder: Path, cohort: str) -> list[Path]:
    """Label files of cohort ``YYYYMM``: ``train_YYYYMM.*`` or KKBox's ``train``/``train_v2``."""
    if not folder.is_dir():
        raise LandingFormatError(f"landing folder {folder} does not exist")
    found = []
    for p in sorted(folder.iterdir()):
        match = LABEL_FILE.match(p.name)
        if (match and match.group(1) + match.group(2) == cohort) or (
            p.name.endswith(SUFFIXES) and KKBOX_LABEL_FILES.get(_stem(p)) == cohort
        ):
            found.append(p)
    return found


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _where(path: Path | str, line: int | None = None, column: str | None = None) -> str:
    parts = [f"line {line}"] if line is not None else []
    if column is not None:
        parts.append(f"column {column}")
    return f"{path}: " + (", ".join(parts) + ": " if parts else "")


# --- before the load: the header ----------------------------------------------------------


def inspect_file(conn: duckdb.DuckDBPyConnection, path: Path, table: str) -> LandingFile:
    """Read a file's header and check it carries every contract column."""
    expected = ", ".join(LANDING_COLUMNS[table])
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LandingFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise LandingFormatError(
            f"{_where(path, 1)}empty file (0 bytes); expected a header line with the {table} "
            f"columns {expected}"
        )
    if path.name.endswith(".parquet"):
        try:
            described = conn.execute(
                f"DESCRIBE SELECT * FROM read_parquet({sql_literal(str(path))})"
            ).fetchall()
        except duckdb.Error as exc:
            raise LandingFormatError(
                f"{path}: unreadable {table} parquet file: {_first_line(exc)}"
            ) from exc
        columns = tuple(row[0].strip() for row in described)
        line = None
    else:
        columns = _csv_header(path, table)
        line = 1
    missing = [c for c in LANDING_COLUMNS[table] if c not in columns]
    if missing:
        raise LandingFormatError(
            f"{_where(path, line)}missing column(s) {', '.join(missing)} for table {table}; "
            f"expected {expected} (any order, extra columns ignored); "
            f"found {', '.join(columns)}"
        )
    return LandingFile(path=path, columns=columns)


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _csv_header(path: Path, table: str) -> tuple[str, ...]:
    """The header line of a CSV file, read directly: the column names as the file orders them.

    DuckDB's sniffer would read further and, on a file with one short row, either fail or take the
    whole header for a single column, hiding the row at fault; the load names that row instead.
    A byte-order mark is dropped; an empty name becomes ``unnamed_<position>``; a repeated extra
    column gets a ``_<n>`` suffix (DuckDB needs distinct names), a repeated contract column is an
    error since it is ambiguous which one holds the values.
    """
    expected = ", ".join(LANDING_COLUMNS[table])
    try:
        with _open_binary(path) as handle:
            raw = handle.readline(MAX_HEADER_BYTES + 1)
    except (EOFError, zlib.error) as exc:
        raise LandingFormatError(
            f"{_where(path, 1)}the gzip data ends or breaks inside the header (truncated or "
            f"corrupt file: {exc}); expected a complete gzip file"
        ) from exc
    except gzip.BadGzipFile as exc:
        raise LandingFormatError(
            f"{_where(path, 1)}not gzip data ({exc}); expected a gzip-compressed CSV file "
            "for a .gz name"
        ) from exc
    except OSError as exc:
        raise LandingFormatError(f"{path}: cannot be read ({exc})") from exc
    content = raw.removeprefix(codecs.BOM_UTF8)
    # A file ending its lines with a bare CR has them all in ``raw``: the header ends at the first.
    raw = re.split(rb"\r\n|\r|\n", content, maxsplit=1)[0]
    if len(raw) > MAX_HEADER_BYTES:
        raise LandingFormatError(
            f"{_where(path, 1)}no line break in the first {MAX_HEADER_BYTES} bytes; "
            f"expected a header line with the {table} columns {expected}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.end + 8]
        raise LandingFormatError(
            f"{_where(path, 1)}bytes that are not UTF-8 at byte {exc.start + 1} ({bad!r}); "
            "expected UTF-8 text (convert latin-1 or other encodings to UTF-8)"
        ) from exc
    header = next(csv.reader([text]), [])
    names = [c.strip() for c in header]
    if not any(names):
        what = "starts with an empty line" if content.strip(b" \t,") else "holds no text"
        raise LandingFormatError(
            f"{_where(path, 1)}no header line (the file {what}); "
            f"expected the {table} columns {expected}"
        )
    contract = LANDING_COLUMNS[table]
    columns: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        name = name or f"unnamed_{position}"
        if name.lower() in seen:
            if name in contract:
                raise LandingFormatError(
                    f"{_where(path, 1, name)}named twice in the header; expected each {table} "
                    "column once"
                )
            suffix = 2
            while f"{name}_{suffix}".lower() in seen:
                suffix += 1
            name = f"{name}_{suffix}"
        seen.add(name.lower())
        columns.append(name)
    return tuple(columns)


# --- the typed read, in DuckDB --------------------------------------------------------------

# Marks a value the read's own checks refused; describe_load_error turns it into a message.
_VALUE_MARK = "LANDING-VALUE"
_SEP = "chr(31)"

# The files each table's source was last composed of in this process. An error raised after the
# read (a NOT NULL constraint of the warehouse table) names no file: it is traced back to these.
# One load of a table runs at a time in a process (a step is one asset), so this stays its own.
_recent_sources: dict[str, tuple[Path, ...]] = {}


def _refuse(column: str, value_sql: str, path: Path, row_sql: str = "''") -> str:
    return (
        f"error(concat('{_VALUE_MARK}', {_SEP}, {sql_literal(column)}, {_SEP}, {row_sql}, "
        f"{_SEP}, {sql_literal(str(path))}, {_SEP}, CAST({value_sql} AS VARCHAR)))"
    )


def _whole(column: str, number_sql: str, raw_sql: str, path: Path, row_sql: str = "''") -> str:
    """``number_sql`` (a DOUBLE) as an INTEGER, refusing fractions and values beyond INTEGER."""
    return (
        f"CASE WHEN {number_sql} IS NULL THEN NULL "
        f"WHEN {number_sql} = trunc({number_sql}) "
        f"AND {number_sql} BETWEEN {INT32_MIN} AND {INT32_MAX} "
        f"THEN CAST({number_sql} AS INTEGER) "
        f"ELSE {_refuse(column, raw_sql, path, row_sql)} END"
    )


def _csv_select(f: LandingFile, types: dict[str, str]) -> str:
    path = sql_literal(str(f.path))
    # Integers are read as DOUBLE so that a fraction is refused rather than rounded; extra
    # columns as text, whatever they hold.
    read_types = {c: "DOUBLE" if t == "INTEGER" else t for c, t in types.items()}
    spec = ", ".join(
        f"{sql_literal(c)}: {sql_literal(read_types.get(c, 'VARCHAR'))}" for c in f.columns
    )
    cols = []
    for c, t in types.items():
        quoted = f'"{c}"'
        cols.append(
            f"{_whole(c, quoted, quoted, f.path)} AS {quoted}" if t == "INTEGER" else quoted
        )
    return (
        f"SELECT {', '.join(cols)}, {path} AS source_file FROM read_csv({path}, header=true, "
        f"auto_detect=false, delim=',', quote='\"', escape='\"', columns={{{spec}}})"
    )


def _parquet_select(f: LandingFile, types: dict[str, str]) -> str:
    path = sql_literal(str(f.path))
    row = "CAST(file_row_number + 1 AS VARCHAR)"
    cols = []
    for c, t in types.items():
        quoted = f'"{c}"'
        # An empty string is NULL, as an empty CSV field is.
        value = f"NULLIF(trim(CAST({quoted} AS VARCHAR)), '')"
        if t == "VARCHAR":
            cols.append(f"CAST({quoted} AS VARCHAR) AS {quoted}")
            continue
        number = f"TRY_CAST({value} AS DOUBLE)"
        checked = f"CASE WHEN {value} IS NOT NULL AND {number} IS NULL THEN "
        checked += f"{_refuse(c, quoted, f.path, row)} "
        if t == "INTEGER":
            checked += f"ELSE {_whole(c, number, quoted, f.path, row)} END"
        else:
            checked += f"ELSE {number} END"
        cols.append(f"{checked} AS {quoted}")
    return (
        f"SELECT {', '.join(cols)}, {path} AS source_file "
        f"FROM read_parquet({path}, file_row_number=true)"
    )


def source_sql(files: list[LandingFile], table: str) -> str:
    """A SELECT over all files of a table with the contract's column names and types.

    Each row carries ``source_file``, its file's path as given. A value that does not fit its
    column fails the query; :func:`describe_load_error` says where.
    """
    _recent_sources[table] = tuple(f.path for f in files)
    types = LANDING_COLUMNS[table]
    parts = [_parquet_select(f, types) if f.is_parquet else _csv_select(f, types) for f in files]
    return "\nUNION ALL\n".join(parts)


# --- after a failed load: where and why -----------------------------------------------------

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
    if path.name.endswith(".gz"):
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


def _is_whole_int(value: str) -> bool:
    try:
        number = float(value.strip())
    except ValueError:
        return False
    return math.isfinite(number) and number == int(number) and INT32_MIN <= number <= INT32_MAX


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


# A field written as a plain integer of at most 9 digits (always within INTEGER), and one that
# is empty (NULL to DuckDB): what the fast searches below skip, or look for.
_PLAIN_INTEGER = rb"(?![ \t]*[-+]?\d{1,9}(?:\.0*)?[ \t]*(?:,|\r?$))[^,\r\n]*[^,\r\n \t][^,\r\n]*"
_EMPTY = rb"(?=,|\r?$)"


def _first_fraction(path: Path, position: int) -> tuple[int, str] | None:
    """The first row whose field ``position`` is a number but not a whole INTEGER: line, text."""
    return _first_field(
        path, position, _PLAIN_INTEGER, lambda text: bool(text.strip()) and not _is_whole_int(text)
    )


def _first_empty(path: Path, position: int) -> tuple[int, str] | None:
    """The first row whose field ``position`` is empty: line, text."""
    return _first_field(path, position, _EMPTY, lambda text: text == "")


def _first_field(
    path: Path, position: int, suspect: bytes, is_bad: Callable[[str], bool]
) -> tuple[int, str] | None:
    """The first data row whose field ``position`` ``is_bad``: its line and the field's text.

    A file without quotes is searched by a regular expression over large chunks, matching only
    fields that look ``suspect``; a file with quotes (or bare-CR line ends) is parsed as CSV,
    record by record. One streaming pass either way.
    """
    candidate = re.compile(rb"^(?:[^,\r\n]*,){%d}(%s)" % (position, suspect), re.MULTILINE)
    try:
        with _open_binary(path) as handle:
            before, start = 0, -1
            while chunk := handle.read(_CHUNK):
                chunk += handle.readline(_CHUNK)
                if start < 0:  # the first chunk: rows start after the header line
                    start = chunk.find(b"\n") + 1
                    if not start:
                        break  # one line, or bare-CR line ends: parsed below
                if b'"' in chunk:
                    break
                for match in candidate.finditer(chunk, start):
                    text = match.group(1).decode("utf-8", errors="replace")
                    if is_bad(text):
                        return before + chunk.count(b"\n", 0, match.start()) + 1, text
                before, start = before + chunk.count(b"\n"), 0
            else:
                return None
    except (EOFError, zlib.error):
        pass
    for line, fields in _records(path):
        if line > 1 and len(fields) > position and is_bad(_as_utf8(fields[position])):
            return line, _as_utf8(fields[position])
    return None


def _describe_empty(table: str, column: str) -> str | None:
    """The first row, in the files last read for ``table``, that leaves ``column`` empty."""
    for path in _recent_sources.get(table, ()):
        if path.name.endswith(".parquet") or column not in LANDING_COLUMNS[table]:
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


def _gzip_problem(path: Path, line: int | None = None) -> str | None:
    """Whether a ``.gz`` file is truncated or corrupt (DuckDB checks neither CRC nor length).

    A corrupt file may fail DuckDB's CSV parse at some line rather than the decompression, so
    a ``.gz`` file's CSV error is checked here first. One streaming pass over the file.
    """
    if not path.name.endswith(".gz"):
        return None
    complete = 0
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read1(_CHUNK):
                complete += chunk.count(b"\n")
    except EOFError:
        return (
            f"{_where(path, complete + 1)}the gzip data ends before its end marker, after line "
            f"{complete} (a truncated or corrupt file); expected a complete gzip file "
            "(land it again)"
        )
    except (gzip.BadGzipFile, zlib.error) as exc:
        return (
            f"{_where(path, line or complete + 1)}corrupt gzip data ({exc}); expected an "
            "intact gzip file (land it again)"
        )
    return None


def _line_ending_problem(path: Path) -> str | None:
    """The first line whose ending differs from the header's (DuckDB names neither)."""
    try:
        lines = _binary_lines(path)
        first = next(lines, b"")
        crlf = first.endswith(b"\r\n")
        if not first.endswith(b"\n"):
            return None  # one line, or bare-CR endings: nothing to compare here
        for number, raw in enumerate(lines, start=2):
            body = raw[:-2] if crlf and raw.endswith(b"\r\n") else raw.rstrip(b"\n")
            if b"\r" in body:
                what = "ends with CRLF" if raw.endswith(b"\r\n") else "holds a carriage return"
                style = "LF"
            elif crlf and raw.endswith(b"\n") and not raw.endswith(b"\r\n"):
                what, style = "ends with a bare LF", "CRLF"
            else:
                continue
            return (
                f"{_where(path, number)}the line {what} while the header line ends with {style}; "
                "expected one line ending (LF or CRLF) throughout the file"
            )
    except (EOFError, OSError, zlib.error):
        return None
    return None


# --- streaming views of a file, for locating an error -----------------------------------------


def _binary_lines(path: Path) -> Iterator[bytes]:
    """The file's physical lines (split at LF), each at most a chunk long."""
    with _open_binary(path) as handle:
        pending = b""
        while True:
            piece = handle.readline(_CHUNK)
            if not piece:
                break
            if not piece.endswith(b"\n") and len(piece) == _CHUNK:
                pending += piece[:64]  # an overlong line: only its start is kept
                continue
            yield pending + piece if pending else piece
            pending = b""
        if pending:
            yield pending


def _text_lines(path: Path) -> Iterator[str]:
    """Physical lines as latin-1 text (one char per byte), line ends kept, CR, LF or CRLF."""
    with _open_binary(path) as binary:
        handle = io.TextIOWrapper(binary, encoding="latin-1", newline="")
        while line := handle.readline(_CHUNK):
            yield line


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the physical line it starts on (header: 1), blank lines included."""
    lines = _text_lines(path)
    reader = csv.reader(lines)
    start = 1
    try:
        for fields in reader:
            yield start, fields
            start = reader.line_num + 1
    except (csv.Error, EOFError, zlib.error, gzip.BadGzipFile):
        return


def _physical_line(path: Path, record: int) -> int:
    """The physical line DuckDB's record number ``record`` starts on.

    They differ only when an earlier quoted value spans lines; a file without quotes before the
    record (the usual case) is settled by counting line feeds, without parsing.
    """
    try:
        with _open_binary(path) as handle:
            seen = 0
            while chunk := handle.read(_CHUNK):
                if seen == 0 and b"\n" not in chunk and b"\r" in chunk:
                    break  # bare-CR line ends: parse
                newlines = chunk.count(b"\n")
                if seen + newlines >= record - 1:
                    end = -1
                    for _ in range(record - 1 - seen):
                        end = chunk.index(b"\n", end + 1)
                    if b'"' in chunk[: end + 1]:
                        break
                    return record
                if b'"' in chunk:
                    break
                seen += newlines
            else:
                return record
    except (EOFError, OSError, zlib.error):
        return record
    for number, (line, _) in enumerate(_records(path), start=1):
        if number == record:
            return line
    return record


def _physical_line_text(path: Path, line: int) -> str | None:
    """Physical line ``line`` as latin-1 text (bytes kept one to one)."""
    try:
        for number, text in enumerate(_text_lines(path), start=1):
            if number == line:
                return text
    except (EOFError, OSError, zlib.error):
        return None
    return None


def _as_utf8(latin1_text: str) -> str:
    return latin1_text.encode("latin-1").decode("utf-8", errors="replace")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
