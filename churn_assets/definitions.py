"""The project's Dagster definitions: what ``dagster dev`` serves and ``churn-assets`` replays."""

from __future__ import annotations

from collections.abc import Mapping
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

ASSETS = [
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
