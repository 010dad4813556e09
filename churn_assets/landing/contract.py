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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class LandingFormatError(ValueError):
    """A landing file does not follow the format; the message names file, line and column."""


def is_parquet(path: Path) -> bool:
    """Names are matched case-insensitively: ``.PARQUET`` is parquet too."""
    return path.name.lower().endswith(".parquet")


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def csv_compression(path: Path) -> str:
    """DuckDB's ``compression`` for a CSV file, named rather than guessed from a case-sensitive
    extension."""
    return "gzip" if is_gzip(path) else "none"


@dataclass(frozen=True)
class LandingFile:
    path: Path
    columns: tuple[str, ...]

    @property
    def is_parquet(self) -> bool:
        return is_parquet(self.path)


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _where(path: Path | str, line: int | None = None, column: str | None = None) -> str:
    parts = [f"line {line}"] if line is not None else []
    if column is not None:
        parts.append(f"column {column}")
    return f"{path}: " + (", ".join(parts) + ": " if parts else "")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
