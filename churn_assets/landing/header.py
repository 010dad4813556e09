"""Before a load: a landing file's header line, read by Python and checked against the contract.

CSV files, plain or gzip-compressed, have only their first line read (byte-order mark, line
ends and UTF-8 decoding handled here); a parquet file's columns are DuckDB's description of it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from pathlib import Path

import duckdb

from churn_assets.landing.contract import (
    LANDING_COLUMNS,
    LandingFile,
    LandingFormatError,
    _first_line,
    _where,
    is_gzip,
    is_parquet,
    sql_literal,
)

# A header line longer than this is not a header (and is never read whole into memory).
MAX_HEADER_BYTES = 1 << 20


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
    if is_parquet(path):
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
    if is_gzip(path):
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
    content = _first_bytes(path).removeprefix(codecs.BOM_UTF8)
    text = _header_text(path, table, content)
    header = next(csv.reader([text]), [])
    names = [c.strip() for c in header]
    if not any(names):
        what = "starts with an empty line" if content.strip(b" \t,") else "holds no text"
        raise LandingFormatError(
            f"{_where(path, 1)}no header line (the file {what}); "
            f"expected the {table} columns {expected}"
        )
    return _distinct_names(path, table, names)


def _first_bytes(path: Path) -> bytes:
    """The file's first line, at most one byte past ``MAX_HEADER_BYTES``, decompressed.

    A broken ``.gz`` file shows on this first read: it is refused here as truncated, corrupt or
    not gzip at all, which the person landing it can act on, rather than in zlib's words.
    """
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
    return raw


def _header_text(path: Path, table: str, content: bytes) -> str:
    """The header line as UTF-8 text, cut at the first line end of any kind.

    A first line longer than ``MAX_HEADER_BYTES`` is no header, and latin-1 is never guessed (see
    :mod:`churn_assets.landing.contract`): both are refused before DuckDB reads a row.
    """
    expected = ", ".join(LANDING_COLUMNS[table])
    # A file ending its lines with a bare CR has them all here: the header ends at the first.
    raw = re.split(rb"\r\n|\r|\n", content, maxsplit=1)[0]
    if len(raw) > MAX_HEADER_BYTES:
        raise LandingFormatError(
            f"{_where(path, 1)}no line break in the first {MAX_HEADER_BYTES} bytes; "
            f"expected a header line with the {table} columns {expected}"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.end + 8]
        raise LandingFormatError(
            f"{_where(path, 1)}bytes that are not UTF-8 at byte {exc.start + 1} ({bad!r}); "
            "expected UTF-8 text (convert latin-1 or other encodings to UTF-8)"
        ) from exc


def _distinct_names(path: Path, table: str, names: list[str]) -> tuple[str, ...]:
    """The header's names, each usable as a DuckDB column: none empty, none twice.

    DuckDB needs distinct names, so an empty one is named by its position and a repeated extra
    column is suffixed; a repeated contract column is refused, since which copy holds the values
    would be a guess.
    """
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
