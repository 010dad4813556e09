"""The project's Dagster definitions: what ``dagster dev`` serves and ``churn-assets`` replays."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg

from churn_assets.alerts.sensors import ALERT_SENSORS
from churn_assets.automation.jobs import ALL_JOBS
from churn_assets.automation.schedules import monthly_schedule, weekly_schedule
from churn_assets.automation.sensors import (
    cohort_sensor,
    landing_sensor,
    mlflow_run_closer,
    training_sensor,
)
from churn_assets.features.assets import features
from churn_assets.keys import TEAM_OWNER
from churn_assets.monitoring.assets import drift_report
from churn_assets.outcomes.assets import retention_outcome
from churn_assets.performance.assets import model_performance
from churn_assets.performance.estimates import performance_estimate
from churn_assets.raw.assets import labels, members, transactions, user_logs
from churn_assets.reports.at_risk import at_risk_list
from churn_assets.reports.health import model_health_report
from churn_assets.resources import default_resources
from churn_assets.scoring.assets import predictions
from churn_assets.scoring.online import online_features
from churn_assets.training.assets import churn_model
from churn_assets.warehouse import table_schema

PACKAGE = Path(__file__).parent
_RAW = PACKAGE / "raw" / "sql" / "create_raw_tables.sql"
# The warehouse table each asset writes, and the .sql files that create it, in order. churn_model
# is a registered model and online_features a key-value store: neither writes a table.
ASSET_TABLES: dict[str, tuple[str, list[Path]]] = {
    "members": ("members", [_RAW]),
    "transactions": ("transactions", [_RAW]),
    "user_logs": ("user_logs", [_RAW]),
    "labels": ("labels", [_RAW]),
    "features": (
        "features",
        [
            _RAW,
            PACKAGE / "features" / "cohort_features.sql",
            PACKAGE / "features" / "store_features.sql",
        ],
    ),
    "predictions": ("predictions", [PACKAGE / "scoring" / "predictions.sql"]),
    "performance_estimate": (
        "performance_estimates",
        [PACKAGE / "performance" / "performance_estimates.sql"],
    ),
    "drift_report": ("drift_metrics", [PACKAGE / "monitoring" / "drift_tables.sql"]),
    "model_performance": ("model_performance", [PACKAGE / "performance" / "model_performance.sql"]),
    "retention_outcome": ("retention_outcomes", [PACKAGE / "outcomes" / "store_outcome.sql"]),
    "at_risk_list": ("at_risk_lists", [PACKAGE / "reports" / "at_risk_list.sql"]),
}
# Any cohort: the feature SQL needs one to be run, and its columns do not depend on which.
_ANY_COHORT = {"cutoff": date(2016, 1, 1), "next_month": date(2016, 2, 1)}


def _described(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The team as owner, and the columns of the table the asset writes (from its SQL)."""
    table = ASSET_TABLES.get(spec.key.to_user_string())
    metadata = (
        {
            "dagster/table_name": table[0],
            "dagster/column_schema": table_schema(table[0], table[1], _ANY_COHORT),
        }
        if table is not None
        else {}
    )
    return spec.merge_attributes(owners=[TEAM_OWNER], metadata=metadata)


_ASSETS = [
    members,
    transactions,
    user_logs,
    labels,
    features,
    churn_model,
    predictions,
    online_features,
    performance_estimate,
    drift_report,
    model_performance,
    retention_outcome,
    at_risk_list,
    model_health_report,
]
ASSETS = dg.map_asset_specs(_described, _ASSETS)


def build_definitions(resources: Mapping[str, Any] | None = None) -> dg.Definitions:
    """Definitions wired to ``resources`` (default: the embedded DuckDB/SQLite configuration).

    Runs execute in process: DuckDB takes one writer per file, so steps of a run go one by one.
    """
    return dg.Definitions(
        assets=ASSETS,
        jobs=ALL_JOBS,
        schedules=[monthly_schedule, weekly_schedule],
        # Order matters to replay only: loads first, then what they make possible.
        sensors=[landing_sensor, cohort_sensor, training_sensor, mlflow_run_closer, *ALERT_SENSORS],
        resources=dict(resources) if resources is not None else default_resources(),
        executor=dg.in_process_executor,
    )


defs = build_definitions()
