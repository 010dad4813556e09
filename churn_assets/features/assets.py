"""The ``features`` asset: one row per user of cohort M, computed by DuckDB from rows before M."""

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from churn_assets import keys
from churn_assets.features.feature_sets import (
    add_new_feature_columns,
    cohort_coverage,
    columns_not_produced,
)
from churn_assets.features.windows import LISTENING, PAYMENTS, bulk_starts, truncated_features
from churn_assets.keys import COHORT_NOT_EMPTY_CHECK, COVERAGE_CHECK
from churn_assets.partitions import add_months, month_start, monthly_partitions
from churn_assets.raw.assets import SQL as RAW_SQL
from churn_assets.readable import readable
from churn_assets.warehouse import run_sql_file, transaction

SQL = Path(__file__).parent / "cohort_features.sql"
COVERAGE_SQL = Path(__file__).parent / "cohort_coverage.sql"
STORE_SQL = Path(__file__).parent / "store_features.sql"
SUMMARY_SQL = Path(__file__).parent / "feature_summary.sql"
# A cohort reads every payment before its cut-off and 90 days of listening: all earlier months
# of both tables (rows of later months are filtered out by the feature SQL, DESIGN §3).
HISTORY = dg.AllPartitionMapping()


FEATURE_CHECKS = [
    dg.AssetCheckSpec(
        COHORT_NOT_EMPTY_CHECK,
        asset=keys.FEATURES,
        blocking=True,
        partitions_def=monthly_partitions,
        description="The cohort has users; an empty cohort means the history was not loaded.",
    ),
    dg.AssetCheckSpec(
        COVERAGE_CHECK,
        asset=keys.FEATURES,
        partitions_def=monthly_partitions,
        description="Every month the cohort's listening (90 days) and payment (365 days) "
        "windows read is loaded; an incomplete cohort is left out of training and drift "
        "references and scored with a warning.",
    ),
]


@dg.asset(
    group_name="features",
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    deps=[
        dg.AssetDep(keys.TRANSACTIONS, partition_mapping=HISTORY),
        dg.AssetDep(keys.USER_LOGS, partition_mapping=HISTORY),
        keys.MEMBERS,
    ],
    check_specs=FEATURE_CHECKS,
)
def features(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
    """Point-in-time features of the cohort whose membership expires in the partition's month.

    Listening over 7/14/30/60/90 days, its 14-day trend and recency, the current plan and its
    payment, the subscription history (cancels, lapses, tenure) and cleaned member attributes;
    docs/feature_catalogue.md says what each column means and why it is there.
    """
    cutoff = month_start(context.partition_key)
    with warehouse.get_connection() as conn:
        added, retired = _build_cohort(conn, cutoff)
        users = conn.execute("SELECT count(*) FROM cohort_features").fetchone()[0]
        summary = run_sql_file(conn, SUMMARY_SQL).df().set_index("statistic").T
        coverage = cohort_coverage(conn, cutoff)
    if not coverage["complete"]:
        context.log.warning(
            f"cohort {cutoff:%Y-%m} is incomplete, missing {coverage['missing_months']}: it is "
            "left out of training and drift references"
        )
    truncated = truncated_features(cutoff, bulk_starts(coverage), list(summary.index))
    return dg.MaterializeResult(
        metadata=readable(
            {
                "dagster/row_count": users,
                "cohort_month": cutoff.isoformat(),
                "feature_count": len(summary),
                # The feature SQL changed: columns it now adds, and stored ones it no longer makes.
                "columns_added": dg.MetadataValue.json(added),
                "columns_not_produced": dg.MetadataValue.json(retired),
                "null_shares": dg.MetadataValue.json(
                    summary["null_share"].fillna(0.0).round(4).to_dict() if users else {}
                ),
                "summary": dg.MetadataValue.md(summary.round(2).to_markdown() if users else ""),
                **_coverage_metadata(coverage, truncated),
            }
        ),
        check_results=_checks(users, coverage, truncated),
    )


def _build_cohort(conn: duckdb.DuckDBPyConnection, cutoff: date) -> tuple[list, list]:
    """Compute the cohort's rows and store them with its coverage, all in one transaction; the
    feature columns the SQL now adds to the stored table, and stored ones it no longer makes."""
    params = {"cutoff": cutoff, "next_month": add_months(cutoff, 1)}
    run_sql_file(conn, RAW_SQL / "create_raw_tables.sql")
    with transaction(conn):
        run_sql_file(conn, SQL, params)
        added = add_new_feature_columns(conn)
        retired = columns_not_produced(conn)
        run_sql_file(conn, STORE_SQL, params)
        run_sql_file(conn, COVERAGE_SQL, params)
    return added, retired


def _coverage_metadata(coverage: dict, truncated: list[str]) -> dict[str, object]:
    """Which of the months the cohort's windows read were loaded, and which features reach
    before the bulk of their table's history."""
    starts = bulk_starts(coverage)
    return {
        "payment_history_bulk_from": f"{starts[PAYMENTS]:%Y-%m}" if starts[PAYMENTS] else "none",
        "listening_history_bulk_from": f"{starts[LISTENING]:%Y-%m}"
        if starts[LISTENING]
        else "none",
        "truncated_features": dg.MetadataValue.json(truncated),
        "window_complete": coverage["complete"],
        "missing_months": coverage["missing_months"] or "none",
        "listening_months_loaded": f"{coverage['listening_months_loaded']} of "
        f"{coverage['listening_months_required']}",
        "payment_months_loaded": f"{coverage['payment_months_loaded']} of "
        f"{coverage['payment_months_required']}",
    }


def _shown(value: object) -> object:
    """A coverage value as check metadata takes it (dates as YYYY-MM-DD, unknown as 'none')."""
    if value is None:
        return "none"
    return value.isoformat() if isinstance(value, date) else value


def _checks(users: int, coverage: dict, truncated: list[str]) -> list[dg.AssetCheckResult]:
    """The cohort has users; the months its windows read are all loaded (a window reaching
    before the bulk of the history is no hole: it is named, and drift leaves it unjudged)."""
    return [
        dg.AssetCheckResult(
            check_name=COHORT_NOT_EMPTY_CHECK,
            passed=users > 0,
            # Empty although every month it reads was loaded: something is wrong, block.
            # Empty because a month is missing: the coverage check names it; warn only.
            severity=dg.AssetCheckSeverity.ERROR
            if coverage["complete"]
            else dg.AssetCheckSeverity.WARN,
            metadata=readable({"users": users, "window_complete": bool(coverage["complete"])}),
        ),
        dg.AssetCheckResult(
            check_name=COVERAGE_CHECK,
            passed=bool(coverage["complete"]),
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                "complete" if coverage["complete"] else f"missing {coverage['missing_months']}"
            )
            + (
                f"; {len(truncated)} feature(s) truncated, their window reaching before the bulk "
                f"of the history: {', '.join(truncated)}"
                if truncated
                else ""
            ),
            metadata=readable(
                {
                    **{k: _shown(v) for k, v in coverage.items() if k != "evaluated_at"},
                    "truncated_features": ", ".join(truncated) or "none",
                }
            ),
        ),
    ]
