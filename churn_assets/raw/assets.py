"""Raw assets: members (a snapshot), transactions and user_logs (by month), labels (by cohort).

A load replaces exactly the partitions it covers, in one transaction. Transactions and user_logs
load a whole partition range in one run (``BackfillPolicy.single_run``): the landing files are
scanned once for the range, so an initial backfill of years of history is one pass. Each load
reports its checks per partition (see :mod:`churn_assets.raw.quality`): ``schema`` (blocking),
``nulls``, ``ranges``, ``duplicates``, ``referential`` and ``volume``, with their numbers.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from churn_assets.partitions import add_months, month_start, monthly_partitions, partition_key
from churn_assets.raw import quality as qc
from churn_assets.raw.landing import (
    LANDING_COLUMNS,
    LandingFormatError,
    describe_load_error,
    inspect_file,
    label_files,
    source_sql,
    table_files,
)
from churn_assets.resources import LandingResource
from churn_assets.warehouse import run_sql_file, transaction

SQL = Path(__file__).parent / "sql"
RAW_GROUP = "raw"
# The members snapshot and a labels cohort have no date range; their checks use this key.
SNAPSHOT = date(1970, 1, 1)

RawEvent = dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output


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
LOAD_TEMP_TABLES = ("staged", "repeated_keys", "repeated_rows", "duplicate_counts")


@dataclass
class LoadReport:
    """What one load measured: quality numbers per month, and facts about the files."""

    months: dict[date, dict[str, Any]]
    files: list[str]
    extra_columns: list[str]
    members_loaded: bool
    volume_history: dict[date, int] = field(default_factory=dict)


def load_table(
    warehouse: DuckDBResource,
    table: str,
    files: list[Path],
    params: dict[str, Any],
) -> LoadReport:
    """Validate the files, replace the window in one transaction, return its quality numbers.

    Nothing stored changes when a file is unreadable or a row does not convert.
    """
    with warehouse.get_connection() as conn:
        run_sql_file(conn, SQL / "create_raw_tables.sql")
        landing = [inspect_file(conn, f, table) for f in files]
        if landing:
            conn.execute(
                f"CREATE OR REPLACE TEMP VIEW landing_source AS {source_sql(landing, table)}"
            )
            try:
                with transaction(conn):
                    for step in LOAD_STEPS[table]:
                        run_sql_file(conn, SQL / step, params)
            except duckdb.Error as exc:
                raise describe_load_error(exc, table) from exc
        else:
            run_sql_file(conn, SQL / "no_duplicates.sql")
        duplicates = {
            month: {"exact_duplicates": int(exact), "key_duplicates": int(keyed)}
            for month, exact, keyed in conn.execute(
                "SELECT month, exact_duplicates, key_duplicates FROM duplicate_counts"
            ).fetchall()
        }
        cursor = run_sql_file(conn, SQL / f"quality_{table}.sql", params)
        names = [d[0] for d in cursor.description]
        months = {}
        for row in cursor.fetchall():
            numbers = dict(zip(names, row, strict=True))
            month = numbers.pop("month")
            months[month] = numbers | duplicates.get(
                month, {"exact_duplicates": 0, "key_duplicates": 0}
            )
        members_loaded = bool(conn.execute("SELECT count(*) > 0 FROM members").fetchone()[0])
        history: dict[date, int] = {}
        if table in MONTHLY:
            history = dict(run_sql_file(conn, SQL / f"volume_{table}.sql", params).fetchall())
        for temp in LOAD_TEMP_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {temp}")
    extra = sorted({c for f in landing for c in f.columns} - set(LANDING_COLUMNS[table]))
    return LoadReport(months, [f.name for f in files], extra, members_loaded, history)


def _numbers(quality: dict[str, Any]) -> dict[str, int | float]:
    return {k: (float(v) if isinstance(v, float) else int(v or 0)) for k, v in quality.items()}


def _outcomes(
    table: str, report: LoadReport, month: date, where: str, band: qc.VolumeBand | None
) -> list[qc.Outcome]:
    quality = report.months.get(month) or {"rows": 0, "invalid_key_rows": 0}
    volume = (
        qc.volume_outcome(month, int(quality["rows"] or 0), report.volume_history, band)
        if band is not None
        else None
    )
    return qc.evaluate(
        table,
        quality,
        where,
        extra_columns=report.extra_columns,
        members_loaded=report.members_loaded,
        volume=volume,
    )


def _check_result(outcome: qc.Outcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=outcome.check,
        passed=outcome.passed,
        severity=outcome.severity,
        description=outcome.description,
        metadata=outcome.metadata,
    )


def _materialization_metadata(report: LoadReport, where: str) -> dict[str, Any]:
    rows = sum(int(q["rows"] or 0) for q in report.months.values())
    return {
        "dagster/row_count": rows,
        "partition_scope": where,
        "source_files": dg.MetadataValue.json(report.files),
        "extra_columns_ignored": dg.MetadataValue.json(report.extra_columns),
        "quality": dg.MetadataValue.json(
            {f"{m:%Y-%m}": _numbers(q) for m, q in sorted(report.months.items())}
            if len(report.months) > 1
            else _numbers(next(iter(report.months.values()), {"rows": 0}))
        ),
    }


def snapshot_result(table: str, report: LoadReport, where: str) -> dg.MaterializeResult:
    """Materialization of an unpartitioned or single-cohort load, with its checks."""
    month = next(iter(report.months), SNAPSHOT)
    return dg.MaterializeResult(
        metadata=_materialization_metadata(report, where),
        check_results=[_check_result(o) for o in _outcomes(table, report, month, where, None)],
    )


def monthly_results(
    context: dg.AssetExecutionContext,
    table: str,
    report: LoadReport,
    window: list[date],
    band: qc.VolumeBand,
) -> Iterator[RawEvent]:
    """One materialization for the run, and every check on every month of its window.

    A single-partition run reports checks the usual way; a range run reports them per partition
    as evaluations, so each month's verdict is kept with that month, then closes each check's
    output (which an ``AssetCheckResult`` would otherwise do).
    """
    where = f"{window[0]:%Y-%m}" + (f"..{window[-1]:%Y-%m}" if len(window) > 1 else "")
    if len(window) == 1:
        outcomes = _outcomes(table, report, window[0], where, band)
        yield dg.MaterializeResult(
            metadata=_materialization_metadata(report, where),
            check_results=[_check_result(o) for o in outcomes],
        )
        return
    yield dg.MaterializeResult(metadata=_materialization_metadata(report, where))
    selected = context.selected_asset_check_keys
    for month in window:
        for outcome in _outcomes(table, report, month, f"{month:%Y-%m}", band):
            if dg.AssetCheckKey(context.asset_key, outcome.check) not in selected:
                continue
            yield dg.AssetCheckEvaluation(
                asset_key=context.asset_key,
                check_name=outcome.check,
                passed=outcome.passed,
                severity=outcome.severity,
                description=outcome.description,
                metadata=outcome.metadata,
                blocking=outcome.check == qc.SCHEMA,
                partition=partition_key(month),
            )
    for key in sorted(selected, key=lambda k: k.name):
        yield dg.Output(
            None, output_name=context.assets_def.get_output_name_for_asset_check_key(key)
        )


def _files_or_fail(landing: LandingResource, table: str) -> list[Path]:
    try:
        return table_files(landing.folder, table)
    except LandingFormatError as exc:
        raise dg.Failure(str(exc)) from exc


def _load_or_fail(
    warehouse: DuckDBResource, table: str, files: list[Path], params: dict[str, Any]
) -> LoadReport:
    try:
        return load_table(warehouse, table, files, params)
    except LandingFormatError as exc:
        raise dg.Failure(description=str(exc)) from exc


def _window(context: dg.AssetExecutionContext) -> list[date]:
    """The months of the run's partition range (one month for a single partition)."""
    time_window = context.partition_time_window
    first, end = month_start(time_window.start.date()), month_start(time_window.end.date())
    months = []
    while first < end:
        months.append(first)
        first = add_months(first, 1)
    return months


def _load_months(
    context: dg.AssetExecutionContext,
    table: str,
    warehouse: DuckDBResource,
    landing: LandingResource,
    config: qc.VolumeBand,
) -> Iterator[RawEvent]:
    window = _window(context)
    files = _files_or_fail(landing, table)
    params = window_params(window[0], add_months(window[-1], 1))
    report = _load_or_fail(warehouse, table, files, params)
    yield from monthly_results(context, table, report, window, config)


@dg.asset(group_name=RAW_GROUP, kinds={"duckdb"}, check_specs=qc.check_specs("members"))
def members(warehouse: DuckDBResource, landing: LandingResource) -> dg.MaterializeResult:
    """Member attributes (city, age, gender, registration); a snapshot replaced on every load."""
    files = _files_or_fail(landing, "members")
    report = _load_or_fail(warehouse, "members", files, window_params(SNAPSHOT, SNAPSHOT))
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
    config: qc.VolumeBand,
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
    config: qc.VolumeBand,
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
