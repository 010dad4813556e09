"""Raw assets: members (a snapshot), transactions and user_logs (by month), labels (by cohort).

Re-materializing a partition replaces exactly that partition, in one transaction. Each load
reports two checks: ``schema`` (blocking: no rows, or rows whose keys do not parse, stop everything
downstream) and ``nulls`` (null shares of the columns features rely on, against a threshold).
"""

from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from churn_assets.partitions import add_months, month_start, monthly_partitions
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
# A column the features rely on may be null in at most this share of a partition's rows.
MAX_NULL_SHARE = 0.05
# Rows whose keys do not parse (no user id, no expiry date) tolerated before the load is blocked.
MAX_INVALID_KEY_SHARE = 0.01


def raw_check_specs(
    asset: str, partitions_def: dg.PartitionsDefinition | None = None
) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "schema",
            asset=asset,
            blocking=True,
            partitions_def=partitions_def,
            description="Rows were loaded and their keys (user, dates) parse; blocks downstream.",
        ),
        dg.AssetCheckSpec(
            "nulls",
            asset=asset,
            partitions_def=partitions_def,
            description=f"Columns features use are null in at most {MAX_NULL_SHARE:.0%} of rows.",
        ),
    ]


def _month_params(month: date) -> dict[str, Any]:
    end = add_months(month, 1)
    return {
        "month_start": month,
        "month_end": end,
        "month_start_int": int(month.strftime("%Y%m%d")),
        "month_end_int": int(end.strftime("%Y%m%d")),
    }


def load_table(
    warehouse: DuckDBResource,
    table: str,
    files: list[Path],
    sql_name: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Validate the files, replace the partition in one transaction, return its quality numbers."""
    with warehouse.get_connection() as conn:
        run_sql_file(conn, SQL / "create_raw_tables.sql")
        if files:
            landing = [inspect_file(conn, f, table) for f in files]
            conn.execute(
                f"CREATE OR REPLACE TEMP VIEW landing_source AS {source_sql(landing, table)}"
            )
            try:
                with transaction(conn):
                    run_sql_file(conn, SQL / f"load_{sql_name}.sql", params)
            except duckdb.Error as exc:
                raise describe_load_error(exc, table) from exc
        cursor = run_sql_file(conn, SQL / f"quality_{sql_name}.sql", params)
        names = [d[0] for d in cursor.description]
        quality = dict(zip(names, cursor.fetchone(), strict=True))
    extra = (
        sorted({c for f in landing for c in f.columns} - set(LANDING_COLUMNS[table]))
        if files
        else []
    )
    quality["files"] = [f.name for f in files]
    quality["extra_columns"] = extra
    return quality


def raw_result(table: str, quality: dict[str, Any], where: str) -> dg.MaterializeResult:
    """Materialization plus the two checks, all numbers in the metadata."""
    rows = int(quality["rows"] or 0)
    invalid = int(quality["invalid_key_rows"] or 0)
    invalid_share = invalid / rows if rows else 0.0
    null_shares = {
        k.removeprefix("null_"): (int(v or 0) / rows if rows else 0.0)
        for k, v in quality.items()
        if k.startswith("null_")
    }
    too_null = {k: round(v, 4) for k, v in null_shares.items() if v > MAX_NULL_SHARE}
    schema_ok = rows > 0 and invalid_share <= MAX_INVALID_KEY_SHARE
    if rows == 0:
        schema_text = f"no {table} rows for {where} in the landing folder"
    else:
        schema_text = f"{invalid} of {rows} rows with unparseable keys ({invalid_share:.2%})"
    numbers = {
        k: (float(v) if isinstance(v, float) else int(v or 0))
        for k, v in quality.items()
        if k not in ("files", "extra_columns")
    }
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "partition_scope": where,
            "source_files": dg.MetadataValue.json(quality["files"]),
            "extra_columns_ignored": dg.MetadataValue.json(quality["extra_columns"]),
            "quality": dg.MetadataValue.json(numbers),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="schema",
                passed=schema_ok,
                severity=dg.AssetCheckSeverity.ERROR,
                description=schema_text,
                metadata={
                    "rows": rows,
                    "invalid_key_rows": invalid,
                    "invalid_key_share": invalid_share,
                    "extra_columns_ignored": ", ".join(quality["extra_columns"]) or "none",
                },
            ),
            dg.AssetCheckResult(
                check_name="nulls",
                passed=not too_null,
                severity=dg.AssetCheckSeverity.WARN,
                description=(
                    f"null share above {MAX_NULL_SHARE:.0%}: {too_null}" if too_null else "ok"
                ),
                metadata={f"null_share_{k}": float(v) for k, v in null_shares.items()},
            ),
        ],
    )


def _files_or_fail(landing: LandingResource, table: str) -> list[Path]:
    try:
        return table_files(landing.folder, table)
    except LandingFormatError as exc:
        raise dg.Failure(str(exc)) from exc


def _run_load(
    warehouse: DuckDBResource, table: str, files: list[Path], sql: str, params: dict, where: str
) -> dg.MaterializeResult:
    try:
        quality = load_table(warehouse, table, files, sql, params)
    except LandingFormatError as exc:
        raise dg.Failure(description=str(exc)) from exc
    return raw_result(table, quality, where)


@dg.asset(group_name=RAW_GROUP, kinds={"duckdb"}, check_specs=raw_check_specs("members"))
def members(warehouse: DuckDBResource, landing: LandingResource) -> dg.MaterializeResult:
    """Member attributes (city, age, gender, registration); a snapshot replaced on every load."""
    files = _files_or_fail(landing, "members")
    return _run_load(warehouse, "members", files, "members", {}, "all members")


@dg.asset(
    group_name=RAW_GROUP,
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    check_specs=raw_check_specs("transactions", monthly_partitions),
)
def transactions(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, landing: LandingResource
) -> dg.MaterializeResult:
    """Subscription payments, renewals and cancels dated in the partition's month."""
    month = month_start(context.partition_key)
    files = _files_or_fail(landing, "transactions")
    return _run_load(
        warehouse, "transactions", files, "transactions", _month_params(month), f"{month:%Y-%m}"
    )


@dg.asset(
    group_name=RAW_GROUP,
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    check_specs=raw_check_specs("user_logs", monthly_partitions),
)
def user_logs(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, landing: LandingResource
) -> dg.MaterializeResult:
    """Daily listening summaries (plays by completion, unique songs, seconds) of the month."""
    month = month_start(context.partition_key)
    files = _files_or_fail(landing, "user_logs")
    return _run_load(
        warehouse, "user_logs", files, "user_logs", _month_params(month), f"{month:%Y-%m}"
    )


@dg.asset(
    group_name=RAW_GROUP,
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    check_specs=raw_check_specs("labels", monthly_partitions),
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
    return _run_load(
        warehouse, "labels", files, "labels", _month_params(month), f"cohort {month:%Y-%m}"
    )
