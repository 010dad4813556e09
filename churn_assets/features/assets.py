"""The ``features`` asset: one row per user of cohort M, computed by DuckDB from rows before M."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from churn_assets.partitions import add_months, month_start, monthly_partitions
from churn_assets.warehouse import run_sql_file, transaction

SQL = Path(__file__).parent / "cohort_features.sql"
KEY_COLUMNS = ("msno", "cohort_month")
# Feature columns that hold codes, not quantities (drift and reasons treat them as categories).
CATEGORICAL_FEATURES = ("city", "gender_code", "registered_via", "last_payment_method_id")

# Up to 410 days of plan history and 90 days of listening feed one cohort.
HISTORY = dg.TimeWindowPartitionMapping(
    start_offset=-14, end_offset=-1, allow_nonexistent_upstream_partitions=True
)


@dg.asset(
    group_name="features",
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    deps=[
        dg.AssetDep("transactions", partition_mapping=HISTORY),
        dg.AssetDep("user_logs", partition_mapping=HISTORY),
        "members",
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "cohort_not_empty",
            asset="features",
            blocking=True,
            partitions_def=monthly_partitions,
            description="The cohort has users; an empty cohort means the history was not loaded.",
        )
    ],
)
def features(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
    """Point-in-time features of the cohort whose membership expires in the partition's month.

    Listening over 7/14/30/60/90 days, its 14-day trend and recency, the current plan and its
    payment, the subscription history (cancels, lapses, tenure) and cleaned member attributes;
    docs/feature_catalogue.md says what each column means and why it is there.
    """
    cutoff = month_start(context.partition_key)
    params = {"cutoff": cutoff, "next_month": add_months(cutoff, 1)}
    with warehouse.get_connection() as conn:
        with transaction(conn):
            run_sql_file(conn, SQL, params)
        frame = conn.execute(
            "SELECT * FROM features WHERE cohort_month = ? ORDER BY msno", [cutoff]
        ).df()
    feature_columns = [c for c in frame.columns if c not in KEY_COLUMNS]
    null_shares = frame[feature_columns].isna().mean().round(4).to_dict() if len(frame) else {}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "cohort_month": cutoff.isoformat(),
            "feature_count": len(feature_columns),
            "null_shares": dg.MetadataValue.json(null_shares),
            "summary": dg.MetadataValue.md(
                frame[feature_columns].describe().T.round(2).to_markdown() if len(frame) else ""
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="cohort_not_empty",
                passed=len(frame) > 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"users": len(frame)},
            )
        ],
    )


def feature_columns_of(columns: list[str]) -> list[str]:
    return [c for c in columns if c not in KEY_COLUMNS]
