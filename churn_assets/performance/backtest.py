"""Every registered version scored on a newly labelled cohort, and the metrics it was
validated with, to compare against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.entities.model_registry import ModelVersion

from churn_assets.features.feature_sets import keep_common_features
from churn_assets.modeling.calibration import load_churn_model
from churn_assets.modeling.frame import LABEL
from churn_assets.modeling.metrics import classification_metrics
from churn_assets.performance.config import PerformanceConfig
from churn_assets.resources import ModelRegistryResource, ModelUnavailableError
from churn_assets.warehouse import run_sql_file, table_exists

SQL = Path(__file__).parent / "model_performance.sql"


COHORT_SQL = Path(__file__).parent / "labelled_cohort.sql"


METRIC_COLUMNS = (
    "auc",
    "log_loss",
    "normalized_log_loss",
    "f2",
    "ks",
    "lift_top_decile",
    "brier",
    "lift_top_1pct",
    "lift_top_5pct",
    "churn_rate",
    "churn_rate_top_decile",
    "churn_rate_second_decile",
    "bucket_a_precision",
    "bucket_a_recall",
)


def out_of_time_rows(conn, version: str, cohort: date) -> list[dict]:
    """The version's out-of-time backtests before ``cohort`` (two-class ones), oldest first."""
    if not table_exists(conn, "model_performance"):
        return []
    frame = conn.execute(
        "SELECT * FROM model_performance WHERE model_version = ? AND out_of_time "
        "AND cohort_month < ? AND auc IS NOT NULL AND NOT isnan(auc) ORDER BY cohort_month",
        [version, cohort],
    ).df()
    frame["cohort_month"] = pd.to_datetime(frame["cohort_month"]).dt.date
    return frame.to_dict("records")


def load_labelled_cohort(warehouse: DuckDBResource, cohort: date) -> pd.DataFrame:
    """The cohort's features joined to its labels, in the columns it was built with."""
    with warehouse.get_connection() as conn:
        if not (table_exists(conn, "features") and table_exists(conn, "labels")):
            return pd.DataFrame()
        frame = run_sql_file(conn, COHORT_SQL, {"cohort": cohort}).df()
        return keep_common_features(conn, frame, [cohort]) if not frame.empty else frame


@dataclass(frozen=True)
class ScoredVersions:
    """Every registered version's metrics on the cohort, and the champion's scores."""

    rows: list[dict]  # one per version that could score the cohort
    unscorable: dict[str, str]  # version -> why it cannot score the cohort
    champion_version: str | None
    champion_probability: np.ndarray | None
    evaluated_at: datetime

    @property
    def performance(self) -> pd.DataFrame:
        """The rows as the ``model_performance`` table's columns."""
        return pd.DataFrame(
            self.rows,
            columns=[
                "model_version",
                "cohort_month",
                *METRIC_COLUMNS,
                "users",
                "is_champion",
                "out_of_time",
                "evaluated_at",
            ],
        )

    @property
    def champion_row(self) -> dict | None:
        return next((r for r in self.rows if r["is_champion"]), None)

    @property
    def cannot_score(self) -> str | None:
        if self.champion_version in self.unscorable:
            return (
                f"champion v{self.champion_version} cannot score: "
                f"{self.unscorable[self.champion_version]}"
            )
        return None


def score_versions(
    registry: ModelRegistryResource,
    frame: pd.DataFrame,
    cohort: date,
    config: PerformanceConfig,
    champion: ModelVersion | None,
) -> ScoredVersions:
    y = frame[LABEL].to_numpy()
    champion_version = str(champion.version) if champion is not None else None
    versions = registry.registered_versions()
    now = datetime.now()
    rows, unscorable, champion_probability = [], {}, None
    for version in versions:
        try:
            probability = load_churn_model(registry, version).probability(frame)
        except (KeyError, ModelUnavailableError) as exc:
            # The version needs a feature this cohort lacks, or its artifacts are gone.
            unscorable[str(version.version)] = str(exc).strip("'\"")
            continue
        if str(version.version) == champion_version:
            champion_probability = probability
        validated_on = version.tags.get("validation_cohort", "")
        rows.append(
            {
                "model_version": str(version.version),
                "cohort_month": cohort,
                **classification_metrics(y, probability, config.bucket_a_min_probability),
                "users": len(frame),
                "is_champion": str(version.version) == champion_version,
                "out_of_time": bool(validated_on) and f"{cohort:%Y-%m-01}" > validated_on,
                "evaluated_at": now,
            }
        )
    return ScoredVersions(rows, unscorable, champion_version, champion_probability, now)
