"""The landing-folder contract of DESIGN §2: which files make a table, with which columns.

Files are read by DuckDB (streaming, never through pandas). Every problem with a file is raised as
:class:`LandingFormatError` naming the file, and where DuckDB knows them, the line and the column.
"""

from __future__ import annotations

import csv
import gzip
import re
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

FILE_PREFIX = {"members": "members", "transactions": "transactions", "user_logs": "user_logs"}
SUFFIXES = (".csv", ".csv.gz", ".parquet")
LABEL_FILE = re.compile(r"^train_(\d{4})(\d{2})\.(csv|csv\.gz|parquet)$")
# KKBox's own names for the two labelled cohorts it shipped.
KKBOX_LABEL_FILES = {"train": "201702", "train_v2": "201703"}


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


def inspect_file(conn: duckdb.DuckDBPyConnection, path: Path, table: str) -> LandingFile:
    """Read a file's header and check it carries every contract column."""
    if path.stat().st_size == 0:
        raise LandingFormatError(f"{path}: empty file, expected a header with {table} columns")
    if path.name.endswith(".parquet"):
        try:
            described = conn.execute(
                f"DESCRIBE SELECT * FROM read_parquet({sql_literal(str(path))})"
            ).fetchall()
        except duckdb.Error as exc:
            raise LandingFormatError(
                f"{path}: unreadable {table} file: {_first_line(exc)}"
            ) from exc
        columns = tuple(row[0].strip() for row in described)
    else:
        columns = _csv_header(path, table)
    missing = [c for c in LANDING_COLUMNS[table] if c not in columns]
    if missing:
        raise LandingFormatError(
            f"{path}: missing column(s) {', '.join(missing)} for table {table}; "
            f"found {', '.join(columns)}"
        )
    return LandingFile(path=path, columns=columns)


def _csv_header(path: Path, table: str) -> tuple[str, ...]:
    """The header line of a CSV file, read directly.

    DuckDB's sniffer would read further and, on a file with one short row, either fail or take the
    whole header for a single column, hiding the row at fault; the load names that row instead.
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            header = next(csv.reader([handle.readline()]), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise LandingFormatError(f"{path}: unreadable {table} file: {exc}") from exc
    if not any(c.strip() for c in header):
        raise LandingFormatError(f"{path}: no header line, expected {table} columns")
    return tuple(c.strip() for c in header)


def source_sql(files: list[LandingFile], table: str) -> str:
    """A SELECT over all files of a table with the contract's column names and types."""
    types = LANDING_COLUMNS[table]
    parts = []
    for f in files:
        path = sql_literal(str(f.path))
        if f.is_parquet:
            cols = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in types.items())
            parts.append(f"SELECT {cols}, {path} AS source_file FROM read_parquet({path})")
        else:
            spec = ", ".join(
                f"{sql_literal(c)}: {sql_literal(types.get(c, 'VARCHAR'))}" for c in f.columns
            )
            cols = ", ".join(f'"{c}"' for c in types)
            parts.append(
                f"SELECT {cols}, {path} AS source_file FROM read_csv({path}, header=true, "
                f"auto_detect=false, delim=',', quote='\"', columns={{{spec}}})"
            )
    return "\nUNION ALL\n".join(parts)


_LINE = re.compile(r"CSV Error on Line: (\d+)")
_COLUMN = re.compile(r'converting column "([^"]+)"')


def describe_load_error(exc: duckdb.Error, table: str) -> LandingFormatError:
    """Turn DuckDB's long CSV error into one line naming file, line and column."""
    text = str(exc)
    file_match = re.search(r"file = (\S+)", text)
    line = _LINE.search(text)
    column = _COLUMN.search(text)
    where = file_match.group(1) if file_match else f"a {table} landing file"
    details = []
    if line:
        details.append(f"line {line.group(1)}")
    if column:
        details.append(f"column {column.group(1)}")
    return LandingFormatError(
        f"{where}: {', '.join(details) + ': ' if details else ''}{_first_line(exc)}"
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
