"""The labelled window a model learns from: the newest cohorts whose labels are known."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets.features.feature_sets import complete_cohorts, keep_common_features
from churn_assets.partitions import add_months, latest_labelled_cohort
from churn_assets.warehouse import run_sql_file

SQL = Path(__file__).parent / "training_frame.sql"
# One cohort to train on and a later one to validate on.
MIN_COMPLETE_COHORTS = 2


@dataclass(frozen=True)
class LabelledWindow:
    frame: pd.DataFrame
    incomplete_cohorts: list[date]  # left out, or (fallback) kept and named here
    used_incomplete: bool


def load_labelled_window(
    warehouse: DuckDBResource,
    as_of: date,
    window_cohorts: int,
    include_incomplete: bool = False,
) -> LabelledWindow:
    """Rows of the newest ``window_cohorts`` cohorts whose labels are known at ``as_of``.

    Cohorts built with a hole in their windows are left out, unless fewer than two complete ones
    remain: then all are used and the fact is recorded (a first model on what there is beats no
    model at all; it is replaced once complete cohorts have labels).
    """
    last = latest_labelled_cohort(as_of)
    first = add_months(last, -(window_cohorts - 1))
    with warehouse.get_connection() as conn:
        frame = run_sql_file(conn, SQL, {"first_cohort": first, "last_cohort": last}).df()
        if frame.empty:
            return LabelledWindow(frame, [], False)
        cohorts = sorted(pd.to_datetime(frame["cohort_month"]).dt.date.unique())
        complete = set(complete_cohorts(conn, cohorts))
        incomplete = [c for c in cohorts if c not in complete]
        use_all = include_incomplete or len(complete) < MIN_COMPLETE_COHORTS
        if not use_all:
            frame = frame[pd.to_datetime(frame["cohort_month"]).dt.date.isin(complete)]
        # A model learns only the features every cohort of its window has.
        frame = keep_common_features(conn, frame)
    return LabelledWindow(frame, incomplete, use_all and bool(incomplete))
