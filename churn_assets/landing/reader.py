"""The typed read of a table's landing files, in DuckDB: the SELECT a load streams them through.

Every file becomes one SELECT with the contract's column names and types, and the files of a
table one UNION ALL; a value that does not fit its column fails the query with a mark that
:mod:`churn_assets.landing.errors` turns into a message naming file, line and column.
"""

from __future__ import annotations

from pathlib import Path

from churn_assets.landing.contract import (
    INT32_MAX,
    INT32_MIN,
    LANDING_COLUMNS,
    LandingFile,
    csv_compression,
    sql_literal,
)

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
        f"compression='{csv_compression(f.path)}', "
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
