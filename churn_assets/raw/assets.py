"""Raw assets: members (dated snapshots), transactions and user_logs (by month), labels (by cohort).

A load replaces exactly the partitions it covers, in one transaction, reading only the landing
files that hold rows of those months (:mod:`churn_assets.landing.catalog`), so a bad old file never
blocks a later month. Transactions and user_logs load a whole partition range in one run
(``BackfillPolicy.single_run``): an initial backfill of years of history is one pass. Every month
loaded is entered in the ``raw_loads`` ledger (rows, files, their fingerprint), which is what a
cohort's coverage is judged on. Each load reports its checks per partition (see
:mod:`churn_assets.raw.quality`): ``schema`` (blocking), ``nulls``, ``ranges``, ``duplicates``,
``referential`` and ``volume``, with their numbers.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets.landing.catalog import LandingCatalog
from churn_assets.landing.contract import LANDING_COLUMNS, LandingFile, LandingFormatError
from churn_assets.landing.errors import describe_load_error
from churn_assets.landing.files import label_files, name_month
from churn_assets.landing.header import inspect_file
from churn_assets.landing.reader import source_sql
from churn_assets.partitions import add_months, month_start, monthly_partitions, partition_key
from churn_assets.raw import quality as qc
from churn_assets.raw.results import (
    SNAPSHOT,
    SQL,
    LoadReport,
    RawEvent,
    monthly_results,
    quality_by_month,
    snapshot_result,
)
from churn_assets.resources import LandingResource
from churn_assets.warehouse import run_sql_file, transaction

RAW_GROUP = "raw"

class MonthlyLoadConfig(qc.VolumeBand):
    """A monthly table's load: its volume band, and whether it retracts departed files' rows.

    Rows of a file that has left the landing folder are kept (archiving is not deleting); a run
    with ``retract_departed_files`` rebuilds its months from the files present now only, as
    ``churn-assets retract`` asks.
    """

    retract_departed_files: bool = False


@dataclass(frozen=True)
class MonthFiles:
    """The landing files a month of a monthly table is read from, as the catalog sees them now."""

    fingerprint: str
    signatures: dict[str, str]  # file name -> "name:size:mtime"
    undated_rows: int


Ledger = dict[date, MonthFiles]
NO_FILES = MonthFiles("", {}, 0)


def window_params(start: date, end: date) -> dict[str, Any]:
    """SQL parameters of the months [start, end) as DATEs and as the files' YYYYMMDD integers."""
    return {
        "window_start": start,
        "window_end": end,
        "window_start_int": int(start.strftime("%Y%m%d")),
        "window_end_int": int(end.strftime("%Y%m%d")),
    }


# Tables loaded by month: their duplicates and volume are counted per month.
MONTHLY = ("transactions", "user_logs")
# The SQL files that replace a table's window, in order, inside one transaction. Small tables are
# staged (exact duplicates folded) before they replace the stored rows; the monthly tables, which
# run to hundreds of millions of rows, stream straight into the table and are deduplicated there.
LOAD_STEPS = {
    "members": ("stage_members.sql", "load_members.sql"),
    "labels": ("stage_labels.sql", "load_labels.sql"),
    "transactions": ("load_transactions.sql", "dedupe_transactions.sql"),
    "user_logs": ("load_user_logs.sql", "dedupe_user_logs.sql"),
}
# Temporary tables a load leaves on its connection.
LOAD_TEMP_TABLES = (
    "staged",
    "repeated_keys",
    "repeated_rows",
    "duplicate_counts",
    "stored_files",
    "window_files",
)


def member_file_dates(files: list[Path]) -> pd.DataFrame:
    """When each members file became known: the month after the month its name carries.

    ``members_201603.csv`` describes members as of March 2016, known from 2016-04-01 on; a file
    whose name carries no month (KKBox's ``members_v3.csv``) is all there is and counts as known
    from the start.
    """
    known = []
    for path in files:
        month = name_month(path)
        known.append(add_months(month_start(month), 1) if month else SNAPSHOT)
    return pd.DataFrame({"source_file": [str(f) for f in files], "known_from": known})


def record_raw_loads(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    window: list[date],
    ledger: Ledger,
    params: dict[str, Any],
) -> dict[date, int]:
    """Enter each month of the window in ``raw_loads``; the stored rows per month before it."""
    counts = dict(run_sql_file(conn, SQL / f"volume_{table}.sql", params).fetchall())
    loaded = pd.DataFrame(
        [
            {
                "table_name": table,
                "month": month,
                "rows": int(counts.get(month, 0)),
                "files": ", ".join(sorted(ledger.get(month, NO_FILES).signatures)),
                "fingerprint": ledger.get(month, NO_FILES).fingerprint,
                "undated_rows": ledger.get(month, NO_FILES).undated_rows,
            }
            for month in window
        ]
    )
    conn.register("loaded_months", loaded)
    run_sql_file(conn, SQL / "record_raw_loads.sql")
    conn.unregister("loaded_months")
    return counts


def load_table(
    warehouse: DuckDBResource,
    table: str,
    files: list[Path],
    params: dict[str, Any],
    ledger: Ledger | None = None,
    present: list[str] | None = None,
    retract: bool = False,
) -> LoadReport:
    """Validate the files, replace the window in one transaction, return its quality numbers.

    Nothing stored changes when a file is unreadable or a row does not convert. For the monthly
    tables, ``ledger`` (month -> the files read, their fingerprint, rows without a valid date) is
    entered in ``raw_loads`` and ``raw_files`` in the same transaction; the load replaces the
    rows of the files ``present`` in the landing folder, and keeps those of files that have left
    it unless it ``retract``s them.
    """
    with warehouse.get_connection() as conn:
        run_sql_file(conn, SQL / "create_raw_tables.sql")
        landing = _landing_source(conn, table, files)
        retracted = _register_files(conn, table, params, ledger, present or [], retract)
        history, months, stored = _replace_window(
            conn, table, files, landing, params, ledger, retract
        )
        members_loaded = bool(conn.execute("SELECT count(*) > 0 FROM members").fetchone()[0])
        for month, month_files in (ledger or {}).items():
            months.setdefault(month, {"rows": 0, "invalid_key_rows": 0})
            months[month]["undated_rows_in_files"] = month_files.undated_rows
        signatures = _recorded_signatures(conn, table, params, ledger) if ledger else {}
        for temp in LOAD_TEMP_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {temp}")
    extra = sorted({c for f in landing for c in f.columns} - set(LANDING_COLUMNS[table]))
    report = LoadReport(months, [f.name for f in files], extra, members_loaded, history)
    # Recorded stored or not: a month judged on these files is not asked for again until they
    # change.
    report.fingerprints = {partition_key(m): f.fingerprint for m, f in (ledger or {}).items()}
    report.file_signatures, report.stored = signatures, stored
    kept = {signature_name(s) for names in signatures.values() for s in names}
    if table == "members":
        kept = {name for (name,) in _stored_member_files(warehouse)}
    report.departed_files_kept = sorted(kept - set(present or []))
    report.retracted_files = retracted if stored else []
    report.retracting = retract
    return report


def _stored_member_files(warehouse: DuckDBResource) -> list[tuple[str]]:
    with warehouse.get_connection() as conn:
        return conn.execute(
            "SELECT DISTINCT source_file FROM members WHERE source_file IS NOT NULL"
        ).fetchall()


def signature_name(signature: str) -> str:
    """The file name of a catalog signature ("name:size:mtime"; a name may hold a colon)."""
    return signature.rsplit(":", 2)[0]


def _register_files(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    params: dict[str, Any],
    ledger: Ledger | None,
    present: list[str],
    retract: bool,
) -> list[str]:
    """Offer a monthly load's SQL the files whose rows it replaces and the files it reads; the
    departed files whose rows a retracting load removes.

    The replaced files are all of the table's files in the landing folder (a replaced file may no
    longer hold rows of a month it held before), and, when retracting, every file with rows in
    the window.
    """
    retracted: list[str] = []
    if retract:
        if table in MONTHLY:
            run_sql_file(conn, SQL / f"stored_files_{table}.sql", params)
            query = conn.execute("SELECT DISTINCT source_file FROM stored_files")
        else:
            query = conn.execute(f"SELECT DISTINCT source_file FROM {table}")
        stored = {name for (name,) in query.fetchall()}
        retracted = sorted(n for n in stored - set(present) if n is not None)
    replaced = pd.DataFrame({"source_file": pd.Series([*present, *retracted], dtype=object)})
    conn.register("replaced_files", replaced)
    conn.register(
        "retracted_files", pd.DataFrame({"source_file": pd.Series(retracted, dtype=object)})
    )
    if ledger is None:
        return retracted
    read = [
        {"month": month, "source_file": name, "signature": signature}
        for month, month_files in ledger.items()
        for name, signature in month_files.signatures.items()
    ]
    conn.register("read_files", pd.DataFrame(read, columns=["month", "source_file", "signature"]))
    return retracted


def _recorded_signatures(
    conn: duckdb.DuckDBPyConnection, table: str, params: dict[str, Any], ledger: Ledger
) -> dict[str, list[str]]:
    """Per month of the window: the signatures of the files read now and of every file whose
    rows are stored (as ``raw_files`` holds them after the load, or before it when it stored
    nothing)."""
    recorded = {partition_key(m): set(f.signatures.values()) for m, f in ledger.items()}
    rows = conn.execute(
        "SELECT month, signature FROM raw_files WHERE table_name = ? AND month >= ? "
        "AND month < ? AND signature IS NOT NULL",
        [table, params["window_start"], params["window_end"]],
    ).fetchall()
    for month, signature in rows:
        recorded.setdefault(partition_key(month), set()).add(signature)
    return {month: sorted(signatures) for month, signatures in sorted(recorded.items())}


def _landing_source(
    conn: duckdb.DuckDBPyConnection, table: str, files: list[Path]
) -> list[LandingFile]:
    """Check every file's header, then offer the files to the load's SQL as ``landing_source``.

    The headers are checked before any row is written, so a file missing a column fails the load
    with nothing stored changed; members files also get the day each became known.
    """
    landing = [inspect_file(conn, f, table) for f in files]
    if table == "members":
        conn.register("member_files", member_file_dates(files))
    if landing:
        conn.execute(f"CREATE OR REPLACE TEMP VIEW landing_source AS {source_sql(landing, table)}")
    elif table in MONTHLY:
        # No file to read (a retracted month whose files are all gone): the load still runs,
        # replacing the window's rows with none.
        columns = ", ".join(
            f'NULL::{kind} AS "{name}"' for name, kind in LANDING_COLUMNS[table].items()
        )
        conn.execute(
            f"CREATE OR REPLACE TEMP VIEW landing_source AS "
            f"SELECT {columns}, NULL::VARCHAR AS source_file WHERE false"
        )
    return landing


class _Blocked(Exception):
    """Raised inside a load's transaction to roll it back: its schema check blocks."""


def _replace_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    files: list[Path],
    landing: list[LandingFile],
    params: dict[str, Any],
    ledger: Ledger | None,
    retract: bool = False,
) -> tuple[dict[date, int], dict[date, dict[str, Any]], bool]:
    """Replace the window's rows and enter its months in ``raw_loads``: the stored rows per month
    before, the quality numbers per month, and whether anything was stored.

    All in one transaction, so that a row that does not convert, a single month left without a
    valid row, or numbers that fail the blocking schema check leave the stored rows as they were;
    DuckDB's error is retold naming file, line and column. A range (a history backfill) that
    blocks fails whole, naming the months; a single partition that blocks stores nothing and its
    failed check says so.
    """
    history: dict[date, int] = {}
    ranged = ledger is not None and len(ledger) > 1
    months: dict[date, dict[str, Any]] = {}
    try:
        with transaction(conn):
            if retract and table == "members":
                run_sql_file(conn, SQL / "retract_members.sql")
            if landing or table in MONTHLY:
                for step in LOAD_STEPS[table]:
                    run_sql_file(conn, SQL / step, params)
            else:
                run_sql_file(conn, SQL / "no_duplicates.sql")
                if table == "labels":
                    run_sql_file(conn, SQL / "no_labels.sql")
            if ledger is not None:
                history = _record_window(conn, table, files, params, ledger, retract)
            months = quality_by_month(conn, table, params)
            blocked = [
                m for m, q in months.items() if qc.schema_blocks(q, allow_empty=ranged or retract)
            ]
            if blocked:
                raise _Blocked
    except _Blocked:
        if ranged:
            raise LandingFormatError(
                f"nothing of {table} {min(ledger):%Y-%m}..{max(ledger):%Y-%m} was stored: "
                "the schema check fails for "
                + ", ".join(_blocked_month(table, m, months[m]) for m in blocked)
            ) from None
        return history, months, False
    except duckdb.Error as exc:
        raise describe_load_error(exc, table) from exc
    return history, months, True


def _blocked_month(table: str, month: date, quality: dict[str, Any]) -> str:
    """A month of a ranged load that blocks, with what its schema check found."""
    where = f"{month:%Y-%m}"
    return f"{where} ({qc.schema_outcome(table, quality, where, [], True).description})"


def _record_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    files: list[Path],
    params: dict[str, Any],
    ledger: Ledger,
    retract: bool = False,
) -> dict[date, int]:
    """The window's months in ``raw_loads`` and their files in ``raw_files``; a single month with
    no valid row refuses the load, unless it is retracted (it then leaves the ledger: its
    cohorts' coverage says it is missing)."""
    window = sorted(ledger)
    run_sql_file(conn, SQL / f"stored_files_{table}.sql", params)
    run_sql_file(conn, SQL / "record_raw_files.sql", params | {"table_name": table})
    history = record_raw_loads(conn, table, window, ledger, params)
    if retract:
        run_sql_file(conn, SQL / "forget_empty_months.sql", params | {"table_name": table})
    elif len(window) == 1 and not history.get(window[0]):
        # Inside the transaction: the month stays as it was stored before.
        raise LandingFormatError(
            f"the {table} files covering {window[0]:%Y-%m} "
            f"({', '.join(f.name for f in files)}) hold no valid rows of that month"
        )
    return history


def _load_or_fail(
    warehouse: DuckDBResource,
    table: str,
    files: list[Path],
    params: dict[str, Any],
    ledger: Ledger | None = None,
    **monthly: Any,
) -> LoadReport:
    try:
        return load_table(warehouse, table, files, params, ledger, **monthly)
    except LandingFormatError as exc:
        raise dg.Failure(description=str(exc)) from exc


def _catalog_or_fail(landing: LandingResource) -> LandingCatalog:
    try:
        return landing.catalog()
    except LandingFormatError as exc:
        raise dg.Failure(str(exc)) from exc


def _window(context: dg.AssetExecutionContext) -> list[date]:
    """The months of the run's partition (or partition range), in calendar order."""
    return sorted(month_start(key) for key in context.partition_keys)


def _load_months(
    context: dg.AssetExecutionContext,
    table: str,
    warehouse: DuckDBResource,
    landing: LandingResource,
    config: MonthlyLoadConfig,
) -> Iterator[RawEvent]:
    window = _window(context)
    catalog = _catalog_or_fail(landing)
    files = catalog.files_for(table, window)
    retract = config.retract_departed_files
    if len(window) == 1 and not files and not retract:
        # A single month with no file is a delivery that has not happened: fail, so that the
        # month is loaded again once its file lands. History backfills tolerate empty months.
        raise dg.Failure(
            f"no {table} file in {landing.folder} holds rows dated {window[0]:%Y-%m}: "
            "the month's file has not landed (it is loaded once it does)"
        )
    ledger = {
        month: MonthFiles(
            catalog.fingerprint(table, month),
            catalog.signatures(table, month),
            catalog.undated_rows(table, month),
        )
        for month in window
    }
    params = window_params(window[0], add_months(window[-1], 1))
    present = catalog.names(table)
    report = _load_or_fail(
        warehouse, table, files, params, ledger, present=present, retract=retract
    )
    yield from monthly_results(context, table, report, window, config)


class MembersLoadConfig(dg.Config):
    """Whether the members load retracts the snapshots of files that have left the landing
    folder (``churn-assets retract members``); they are kept otherwise."""

    retract_departed_files: bool = False


@dg.asset(group_name=RAW_GROUP, kinds={"duckdb"}, check_specs=qc.check_specs("members"))
def members(
    config: MembersLoadConfig, warehouse: DuckDBResource, landing: LandingResource
) -> dg.MaterializeResult:
    """Member attributes (city, age, gender, registration) as dated snapshots.

    Every landed members file is kept, dated by the month its name carries: features of a cohort
    read, per member, the newest snapshot known before the cohort's first day.
    """
    catalog = _catalog_or_fail(landing)
    files = catalog.files_for("members")
    report = _load_or_fail(
        warehouse,
        "members",
        files,
        window_params(SNAPSHOT, SNAPSHOT),
        present=[f.name for f in files],
        retract=config.retract_departed_files,
    )
    report.unclaimed = catalog.unclaimed()
    return snapshot_result("members", report, "all members")


@dg.asset(
    group_name=RAW_GROUP,
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=qc.check_specs("transactions", monthly_partitions),
)
def transactions(
    context: dg.AssetExecutionContext,
    config: MonthlyLoadConfig,
    warehouse: DuckDBResource,
    landing: LandingResource,
) -> Iterator[RawEvent]:
    """Subscription payments, renewals and cancels dated in the partitions' months."""
    yield from _load_months(context, "transactions", warehouse, landing, config)


@dg.asset(
    group_name=RAW_GROUP,
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=qc.check_specs("user_logs", monthly_partitions),
)
def user_logs(
    context: dg.AssetExecutionContext,
    config: MonthlyLoadConfig,
    warehouse: DuckDBResource,
    landing: LandingResource,
) -> Iterator[RawEvent]:
    """Daily listening summaries (plays by completion, unique songs, seconds) of the months."""
    yield from _load_months(context, "user_logs", warehouse, landing, config)


@dg.asset(
    group_name=RAW_GROUP,
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    check_specs=qc.check_specs("labels", monthly_partitions),
)
def labels(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, landing: LandingResource
) -> dg.MaterializeResult:
    """Churn labels of the cohort whose membership expires in the partition's month.

    They are known only from the first day of the month after next; the schedule loads them then.
    """
    month = month_start(context.partition_key)
    try:
        files = label_files(landing.folder, f"{month:%Y%m}")
    except LandingFormatError as exc:
        raise dg.Failure(str(exc)) from exc
    params = window_params(month, add_months(month, 1))
    report = _load_or_fail(warehouse, "labels", files, params)
    return snapshot_result("labels", report, f"cohort {month:%Y-%m}")
