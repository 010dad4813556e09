"""What the monthly health page draws, read from the warehouse as it stood for that month.

Point in time: a page for month M shows the cohorts scored up to M and the realised metrics of
the cohorts whose labels were known by M (labels of cohort C land on the first day of C + 2), so
a page rebuilt later draws what was known then, not what came after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from churn_assets.partitions import latest_labelled_cohort
from churn_assets.performance.calibration import CALIBRATION_BINS, reliability_bins
from churn_assets.warehouse import run_sql_file, table_exists

HERE = Path(__file__).parent
# Each frame: the file that reads it, the tables it needs and the columns it has. A frame whose
# tables do not exist yet (early months, before any backtest or drift) is empty with its columns.
QUERIES = {
    "performance": (
        "health_performance.sql",
        ("model_performance",),
        ["model_version", "cohort_month", "auc", "log_loss", "lift_top_decile", "is_champion"],
    ),
    "estimates": (
        "health_estimates.sql",
        ("performance_estimates",),
        ["cohort_month", "model_version", "metric", "estimate", "low", "high"],
    ),
    "drift": (
        "health_drift.sql",
        ("drift_metrics",),
        [
            "cohort_month",
            "weighted_psi",
            "data_tier",
            "prediction_psi",
            "prediction_tier",
            "judged_columns",
            "drifted_columns",
        ],
    ),
    "importance": (
        "health_importance.sql",
        ("drift_metrics",),
        ["column_name", "importance", "psi", "tier", "reference_model_version"],
    ),
    "buckets": (
        "health_buckets.sql",
        ("predictions",),
        ["cohort_month", "bucket", "users", "model_version"],
    ),
    "decisions": (
        "health_decisions.sql",
        ("retraining_decisions",),
        ["cohort_month", "decided_at", "trigger", "action", "reason"],
    ),
    "calibration": (
        "health_calibration.sql",
        ("predictions", "labels"),
        ["cohort_month", "model_version", "churn_probability", "is_churn"],
    ),
}


def labelled_by(month: date) -> date:
    """The newest cohort whose labels are known on the first day of ``month``."""
    return latest_labelled_cohort(month)


@dataclass(frozen=True)
class HealthData:
    """The frames of one month's page."""

    month: date
    performance: pd.DataFrame
    estimates: pd.DataFrame
    drift: pd.DataFrame
    importance: pd.DataFrame
    buckets: pd.DataFrame
    decisions: pd.DataFrame
    calibration: pd.DataFrame  # the champion's scores and labels of the newest labelled cohort

    def reliability(self) -> pd.DataFrame:
        """Equal-mass bins of the newest labelled cohort: mean score against churn seen."""
        if self.calibration.empty:
            return pd.DataFrame(columns=["users", "mean_score", "observed_rate"])
        return reliability_bins(
            self.calibration["is_churn"].to_numpy(dtype=float),
            self.calibration["churn_probability"].to_numpy(dtype=float),
            CALIBRATION_BINS,
        )

    def calibration_error(self) -> float:
        """Users-weighted mean gap between score and churn over the bins (NaN without labels)."""
        bins = self.reliability()
        if bins.empty:
            return float("nan")
        gaps = (bins["mean_score"] - bins["observed_rate"]).abs()
        return float(np.average(gaps, weights=bins["users"]))

    def bucket_table(self) -> pd.DataFrame:
        """Users per bucket (columns A, B, C), a row per cohort."""
        if self.buckets.empty:
            return pd.DataFrame(columns=["A", "B", "C"])
        table = self.buckets.pivot_table(
            index="cohort_month", columns="bucket", values="users", aggfunc="sum", fill_value=0
        )
        return table.reindex(columns=["A", "B", "C"], fill_value=0).astype(int)

    def scoring_versions(self) -> pd.Series:
        """The version that scored each cohort: where the champion changed, on the timeline."""
        if self.buckets.empty:
            return pd.Series(dtype=str)
        return self.buckets.groupby("cohort_month")["model_version"].first().astype(str)

    def champion_estimates(self, metric: str) -> pd.DataFrame:
        """The estimates of ``metric`` by the version that scored each cohort (a cohort
        re-scored by a new champion was estimated twice)."""
        if self.estimates.empty:
            return self.estimates
        scorers = self.scoring_versions().rename("scorer")
        rows = self.estimates[self.estimates["metric"] == metric].join(scorers, on="cohort_month")
        return rows[rows["model_version"].astype(str) == rows["scorer"]]

    def this_month(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of the page's own cohort."""
        if frame.empty:
            return frame
        return frame[frame["cohort_month"] == pd.Timestamp(self.month)]

    def newest_realised(self) -> pd.DataFrame:
        """The champion's backtest on the newest cohort labelled by the page's month."""
        if self.performance.empty:
            return self.performance
        champion = self.performance[self.performance["is_champion"].astype(bool)]
        return champion[champion["cohort_month"] == champion["cohort_month"].max()]


def load_health(conn: duckdb.DuckDBPyConnection, month: date) -> HealthData:
    """Every frame of ``month``'s page, from the warehouse as it stood for that month."""
    params = {"month": month, "labelled_by": labelled_by(month)}
    frames: dict[str, pd.DataFrame] = {}
    for name, (file, tables, columns) in QUERIES.items():
        present = all(table_exists(conn, t) for t in tables)
        frame = run_sql_file(conn, HERE / file, params).df() if present else pd.DataFrame()
        frame = frame.reindex(columns=list(dict.fromkeys([*columns, *frame.columns])))
        if "cohort_month" in frame:
            frame["cohort_month"] = pd.to_datetime(frame["cohort_month"])
        frames[name] = frame
    return HealthData(month=month, **frames)
