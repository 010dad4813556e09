"""The ``drift_report`` asset and its ``feature_drift`` check.

The reference is what the champion learnt from: the features of its training cohorts. A failing
check (too large a share of drifted columns) is what the retraining sensor listens for.
"""

import json
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from churn_assets.features.assets import CATEGORICAL_FEATURES
from churn_assets.features.feature_sets import (
    complete_cohorts,
    feature_columns_of,
    read_cohort_features,
)
from churn_assets.monitoring.drift import data_drift
from churn_assets.monitoring.verdicts import record_verdict
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.resources import ModelRegistryResource, ReportsResource
from churn_assets.warehouse import run_sql_file, transaction

SQL = Path(__file__).parent / "drift_tables.sql"
DRIFT_CHECK = "feature_drift"
# At most this many reference rows: enough for stable tests, bounded in memory.
MAX_REFERENCE_ROWS = 50_000


class DriftConfig(dg.Config):
    drift_share: float = Field(
        default=0.5, description="Share of drifted feature columns at which the cohort drifts."
    )


@dg.asset(
    group_name="monitoring",
    kinds={"evidently", "duckdb"},
    partitions_def=monthly_partitions,
    deps=["features", "churn_model"],
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="drift_report",
            partitions_def=monthly_partitions,
            description="Share of drifted feature columns against the champion's training data.",
        )
    ],
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    warehouse: DuckDBResource,
    registry: ModelRegistryResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """Evidently data-drift report of the cohort's features; HTML under CHURN_HOME/reports."""
    cohort = month_start(context.partition_key)
    champion = registry.champion()
    if champion is None:
        raise dg.Failure("no champion model: drift is measured against its training data")
    # Everything the champion learnt from: its training cohorts and the one it was validated on.
    learnt_from = json.loads(champion.tags.get("training_cohorts", "[]"))
    learnt_from.append(champion.tags.get("validation_cohort", ""))
    feature_names = json.loads(champion.tags.get("feature_columns", "[]"))
    with warehouse.get_connection() as conn:
        # Cohorts built with a hole in their windows would make every later cohort look drifted:
        # the reference keeps the complete ones, when there are any.
        complete = complete_cohorts(conn, [month_start(c) for c in learnt_from if c])
        if complete:
            learnt_from = [f"{c:%Y-%m-01}" for c in complete]
        # Only the features both sides were built with are comparable.
        current = read_cohort_features(
            conn, cohort, common_with=[month_start(c) for c in learnt_from if c]
        )
        reference = conn.execute(
            "SELECT * FROM features WHERE cohort_month IN (SELECT unnest(?::DATE[])) "
            f"USING SAMPLE reservoir({int(MAX_REFERENCE_ROWS)} ROWS) REPEATABLE (7)",
            [[c for c in learnt_from if c]],
        ).df()
        reference = reference[[c for c in reference.columns if c in current.columns]]
    if current.empty or reference.empty:
        raise dg.Failure(
            f"drift needs both sides: {len(current)} current rows for {cohort:%Y-%m}, "
            f"{len(reference)} reference rows from cohorts {learnt_from}"
        )
    columns = feature_columns_of(list(current.columns))
    if feature_names:
        columns = [c for c in columns if c in feature_names]
    categorical = [c for c in columns if c in CATEGORICAL_FEATURES]
    numerical = [c for c in columns if c not in categorical]
    html_path = reports.folder / "drift" / f"drift_{cohort:%Y-%m}.html"
    result = data_drift(reference, current, numerical, categorical, config.drift_share, html_path)

    drifted = result.columns[result.columns["drifted"]]["column_name"].tolist()
    severity = "warn" if result.dataset_drift else "pass"
    detail = (
        f"{len(drifted)} of {len(result.columns)} feature columns drifted "
        f"({result.drifted_share:.0%}, limit {config.drift_share:.0%}) against model "
        f"v{champion.version}'s training cohorts: {', '.join(drifted) or 'none'}"
    )
    drift_rows = result.columns.assign(
        cohort_month=cohort, reference_model_version=str(champion.version)
    )
    with warehouse.get_connection() as conn:
        conn.register("drift_rows", drift_rows)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort})
            record_verdict(conn, cohort, "data_drift", severity, detail)

    return dg.MaterializeResult(
        metadata={
            "report_path": dg.MetadataValue.path(str(html_path)),
            "cohort_month": cohort.isoformat(),
            "reference_model_version": str(champion.version),
            "reference_rows": len(reference),
            "current_rows": len(current),
            "drifted_share": result.drifted_share,
            "drifted_columns": dg.MetadataValue.json(drifted),
            "columns": dg.MetadataValue.md(result.columns.round(4).to_markdown(index=False)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=DRIFT_CHECK,
                passed=not result.dataset_drift,
                severity=dg.AssetCheckSeverity.WARN,
                description=detail,
                metadata={
                    "cohort_month": cohort.isoformat(),
                    "drifted_share": result.drifted_share,
                    "drift_share_limit": config.drift_share,
                    "drifted_columns": ", ".join(drifted) or "none",
                    "reference_model_version": str(champion.version),
                },
            )
        ],
    )
