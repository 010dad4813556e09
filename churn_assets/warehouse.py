"""Running the project's ``.sql`` files against the DuckDB warehouse.

Each stage keeps its SQL next to the asset that runs it; this module only executes it: statements
one by one, with ``$name`` parameters, inside one transaction so that a failure leaves what was
stored before untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_CREATE = re.compile(r"^CREATE\s", re.IGNORECASE)


def sql_statements(path: Path) -> list[str]:
    """Split a ``.sql`` file into statements (the files keep semicolons out of literals)."""
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in text.split(";") if s.strip()]


def run_sql_file(
    conn: duckdb.DuckDBPyConnection, path: Path, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Execute every statement of ``path``; each gets the parameters it names."""
    params = params or {}
    result = conn
    for statement in sql_statements(path):
        names = set(_PARAM.findall(statement))
        missing = names - set(params)
        if missing:
            raise KeyError(f"{path.name} needs parameter(s) {sorted(missing)}")
        result = conn.execute(statement, {n: params[n] for n in names} if names else None)
    return result


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: roll back on any error so stored partitions are never half-replaced."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    # fetchall, not fetchone: a result left unfinished blocks the connection's next relation.
    [(count,)] = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()
    return bool(count)


def table_schema(
    table: str, sql_files: list[Path], params: Mapping[str, Any] | None = None
) -> dg.TableSchema:
    """``table``'s columns as the ``.sql`` files create it: their CREATE statements run, in order,
    on an empty in-memory DuckDB, so the schema shown in Dagster is the one the SQL writes."""
    with duckdb.connect(":memory:") as conn:
        for path in sql_files:
            for statement in sql_statements(path):
                if _CREATE.match(statement):
                    names = set(_PARAM.findall(statement))
                    conn.execute(statement, {n: (params or {})[n] for n in names} or None)
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
    if not rows:
        raise ValueError(f"no table {table} is created by {', '.join(p.name for p in sql_files)}")
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                data_type.lower(),
                constraints=dg.TableColumnConstraints(nullable=nullable == "YES"),
            )
            for name, data_type, nullable in rows
        ]
    )
