"""Which feature columns each cohort was built with, as the feature SQL evolves.

Adding a feature to ``cohort_features.sql`` adds a column to ``features``; dropping one leaves the
column in place for the cohorts that have it. Readers (training, scoring, backtests, drift) ask
here for the columns their cohorts really have, so a model that needs a dropped feature fails
naming it rather than scoring a column of NULLs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import date
from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from churn_assets.warehouse import table_exists

KEY_COLUMNS = ("msno", "cohort_month")

# Feature columns that hold codes, not quantities (drift and reasons treat them as categories).
CATEGORICAL_FEATURES = ("city", "gender_code", "registered_via", "last_payment_method_id")
# Codes that say who a customer is and how they pay: drift and performance are also judged within
# each of their values (the plan's length read as a category, as plans are sold).
SEGMENT_COLUMNS = ("city", "registered_via", "last_payment_method_id", "last_plan_days")
# Feature columns whose distribution the calendar shapes: a member's registration ages a month
# each month, and the days to expiry of a cohort span its month's 28 to 31 days (February's
# cohort shifts every decile of it). Their shift is mostly the calendar, so drift weighs them by
# importance but never lets one stand out on its own.
CALENDAR_SHAPED_FEATURES = ("registration_age_days", "days_to_expiry")


def feature_columns_of(columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c not in KEY_COLUMNS]


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in conn.execute(f"DESCRIBE {table}").fetchall()]


def add_new_feature_columns(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Add to ``features`` the columns of ``cohort_features`` it lacks; the names added."""
    if not table_exists(conn, "features"):
        return []
    have = {name for name, _ in _columns(conn, "features")}
    added = [(n, t) for n, t in _columns(conn, "cohort_features") if n not in have]
    for name, column_type in added:
        conn.execute(f'ALTER TABLE features ADD COLUMN "{name}" {column_type}')
    return [name for name, _ in added]


def columns_not_produced(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Columns of ``features`` the current feature SQL no longer produces."""
    if not table_exists(conn, "features"):
        return []
    produced = {name for name, _ in _columns(conn, "cohort_features")}
    return [n for n, _ in _columns(conn, "features") if n not in produced]


def _lacking_columns(conn: duckdb.DuckDBPyConnection, cohorts: Sequence[date]) -> set[str]:
    """Feature columns of the table that some of ``cohorts`` were built without.

    Cohorts stored before feature sets were recorded (or written by other tools) count as having
    every column of the table.
    """
    lacking: set[str] = set()
    if cohorts and table_exists(conn, "feature_sets"):
        stored = feature_columns_of([name for name, _ in _columns(conn, "features")])
        recorded = conn.execute(
            "SELECT list(column_name) FROM feature_sets "
            "WHERE cohort_month IN (SELECT unnest(?::DATE[])) GROUP BY cohort_month",
            [list(cohorts)],
        ).fetchall()
        for (names,) in recorded:
            lacking |= set(stored) - set(names)
    return lacking


def keep_common_features(
    conn: duckdb.DuckDBPyConnection, frame: pd.DataFrame, cohorts: Sequence[date] | None = None
) -> pd.DataFrame:
    """``frame`` without the feature columns some of its cohorts (or ``cohorts``) lack."""
    if cohorts is None:
        cohorts = sorted(pd.to_datetime(frame["cohort_month"]).dt.date.unique())
    lacking = _lacking_columns(conn, cohorts)
    return frame[[c for c in frame.columns if c not in lacking]]


def read_cohort_features(
    conn: duckdb.DuckDBPyConnection, cohort: date, common_with: Sequence[date] = ()
) -> pd.DataFrame:
    """One cohort's rows by msno, with the features it and every ``common_with`` cohort have."""
    frame = conn.execute(
        "SELECT * FROM features WHERE cohort_month = ? ORDER BY msno", [cohort]
    ).df()
    return keep_common_features(conn, frame, [cohort, *common_with])


# DuckDB types read straight into a matrix as DOUBLE (exactly pandas' float conversion of them);
# columns of other types (text codes) go through ``pd.to_numeric``, as ``as_matrix`` reads them.
_NUMERIC_TYPES = frozenset(
    {"BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"}
    | {"UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE"}
)
# Rows read at a time: a block of 65,536 x 54 doubles is 28 MB.
MATRIX_BATCH_ROWS = 65_536


def _as_double_in_sql(column_type: str) -> bool:
    return column_type in _NUMERIC_TYPES or column_type.startswith("DECIMAL")


def _as_float(column: pa.Array, column_type: str) -> np.ndarray:
    if _as_double_in_sql(column_type):
        return column.to_numpy(zero_copy_only=False)  # cast to DOUBLE in SQL; NULL -> NaN
    return pd.to_numeric(column.to_pandas(), errors="coerce").to_numpy(dtype="float64")


def read_cohort_matrix(
    conn: duckdb.DuckDBPyConnection, cohort: date, columns: Sequence[str]
) -> tuple[pa.ChunkedArray, np.ndarray]:
    """One cohort's msno in order and its ``columns`` as a C-ordered float64 matrix: the values
    ``as_matrix(read_cohort_features(conn, cohort), columns)`` holds, without the frame.

    The matrix is read batch by batch, so no frame of the whole cohort (pandas' copy of every
    column) is built only to be converted. Only (rowid, msno) is sorted; each row of values goes
    straight to its place in msno order.
    """
    select, types, missing = _matrix_select(conn, cohort, columns)
    order = conn.sql(
        "SELECT rowid, msno FROM features WHERE cohort_month = ? ORDER BY msno", params=[cohort]
    ).to_arrow_table()
    values = np.empty((order.num_rows, len(columns)))
    if not order.num_rows:
        return order.column("msno"), values
    _refuse_missing(missing)
    rowids = order.column("rowid").to_numpy()
    by_rowid = np.argsort(rowids)
    for block in _blocks(conn, f"{select} WHERE cohort_month = ?", [cohort], columns, types):
        found = np.searchsorted(rowids, block.rowid, sorter=by_rowid)
        values[by_rowid[found]] = block.values
    return order.column("msno"), values


class CohortBlock(NamedTuple):
    """Consecutive rows of a cohort as the table holds them: their rowids, msno, and values in
    the requested column order (a view of a buffer the next block overwrites)."""

    rowid: np.ndarray
    msno: pa.Array
    values: np.ndarray


def cohort_blocks(
    conn: duckdb.DuckDBPyConnection,
    cohort: date,
    columns: Sequence[str],
    rowids: np.ndarray | None = None,
    block_rows: int = MATRIX_BATCH_ROWS,
) -> Iterator[CohortBlock]:
    """A cohort's ``columns`` block by block, in the table's order (all rows, or those with the
    given ``rowids``), as float64 rows a booster takes; ``as_matrix`` converts values the same.

    For scoring a million users: no matrix of the whole cohort is held, only one block, whose
    buffer is reused (fresh memory is the costly part of reading). KeyError naming the columns
    the feature table lacks, before any block is read; none for a cohort with no rows.
    """
    select, types, missing = _matrix_select(conn, cohort, columns)
    if missing:
        [(rows,)] = conn.execute(
            "SELECT count(*) FROM features WHERE cohort_month = ?", [cohort]
        ).fetchall()
        if not rows:
            return iter(())
        _refuse_missing(missing)
    if rowids is None:
        where = f"{select} WHERE cohort_month = ?"
        return _blocks(conn, where, [cohort], columns, types, block_rows)
    name = f"wanted_rowids_{uuid.uuid4().hex}"
    query = f"{select} SEMI JOIN {name} w ON features.rowid = w.rowid WHERE cohort_month = ?"

    def registered() -> Iterator[CohortBlock]:
        conn.register(name, pa.table({"rowid": pa.array(rowids, pa.int64())}))
        try:
            yield from _blocks(conn, query, [cohort], columns, types, block_rows)
        finally:
            conn.unregister(name)

    return registered()


def _matrix_select(
    conn: duckdb.DuckDBPyConnection, cohort: date, columns: Sequence[str]
) -> tuple[str, dict[str, str], list[str]]:
    """``SELECT rowid, msno, <columns as DOUBLE where SQL converts them>`` over ``features``,
    the types of the columns it reads, and the columns the cohort lacks."""
    types = dict(_columns(conn, "features"))
    lacking = _lacking_columns(conn, [cohort])
    missing = [c for c in columns if c not in types or c in lacking]
    select = ", ".join(
        f'"{c}"::DOUBLE' if _as_double_in_sql(types.get(c, "")) else f'"{c}"' for c in columns
    )
    read = {c: types[c] for c in columns if c in types}
    return f"SELECT features.rowid, msno, {select} FROM features", read, missing


def _refuse_missing(missing: list[str]) -> None:
    if missing:
        raise KeyError(f"feature column(s) missing from the feature table: {', '.join(missing)}")


def _blocks(
    conn: duckdb.DuckDBPyConnection,
    query: str,
    params: list,
    columns: Sequence[str],
    types: dict[str, str],
    block_rows: int = MATRIX_BATCH_ROWS,
) -> Iterator[CohortBlock]:
    """The query's rows as blocks, the next one read on a worker thread while the caller works
    on this one (DuckDB's scan and numpy's copies leave the GIL to LightGBM's predict)."""
    # One block with the caller, one waiting in the queue, one being filled.
    buffers = [np.empty((block_rows, len(columns))) for _ in range(3)]
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fill() -> None:
        try:
            turn = 0
            for batch in conn.sql(query, params=params).to_arrow_reader(block_rows):
                for start in range(0, batch.num_rows, block_rows):  # a reader may give more
                    part = batch.slice(start, block_rows)
                    block = buffers[turn % 3][: part.num_rows]
                    for position, name in enumerate(columns):
                        block[:, position] = _as_float(part.column(position + 2), types[name])
                    ready.put(CohortBlock(part.column(0).to_numpy(), part.column(1), block))
                    turn += 1
                    if stop.is_set():
                        return
            ready.put(None)
        except BaseException as exc:  # handed to the caller, raised where it reads
            ready.put(exc)

    reader = threading.Thread(target=fill, name="cohort-blocks", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # let a reader blocked on a full queue finish
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        reader.join()


def cohort_coverage(conn: duckdb.DuckDBPyConnection, cohort: date) -> dict:
    """The stored coverage of a cohort's windows (complete=False when never evaluated)."""
    if table_exists(conn, "cohort_coverage"):
        cursor = conn.execute(
            "SELECT * EXCLUDE (cohort_month) FROM cohort_coverage WHERE cohort_month = ?", [cohort]
        )
        row = cursor.fetchone()
        if row is not None:
            return dict(zip([d[0] for d in cursor.description], row, strict=True))
    return {"complete": False, "missing_months": "coverage never evaluated"}


def complete_cohorts(conn: duckdb.DuckDBPyConnection, cohorts: Sequence[date]) -> list[date]:
    """Those of ``cohorts`` whose windows were fully loaded when their features were built."""
    if not cohorts or not table_exists(conn, "cohort_coverage"):
        return []
    rows = conn.execute(
        "SELECT cohort_month FROM cohort_coverage "
        "WHERE complete AND cohort_month IN (SELECT unnest(?::DATE[])) ORDER BY 1",
        [list(cohorts)],
    ).fetchall()
    return [r[0] for r in rows]
