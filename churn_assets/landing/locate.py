"""Streaming passes over a landing file, made only after a load failed, to find the line at fault.

Each reads the file once from the start, chunk by chunk or line by line, and never holds it
whole; lines are numbered from 1, the header being line 1.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from churn_assets.landing.contract import INT32_MAX, INT32_MIN, _where, is_gzip
from churn_assets.landing.header import _open_binary

_CHUNK = 1 << 20


def _is_whole_int(value: str) -> bool:
    try:
        number = float(value.strip())
    except ValueError:
        return False
    return math.isfinite(number) and number == int(number) and INT32_MIN <= number <= INT32_MAX


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


def _gzip_problem(path: Path, line: int | None = None) -> str | None:
    """Whether a ``.gz`` file is truncated or corrupt (DuckDB checks neither CRC nor length).

    A corrupt file may fail DuckDB's CSV parse at some line rather than the decompression, so
    a ``.gz`` file's CSV error is checked here first. One streaming pass over the file.
    """
    if not is_gzip(path):
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
