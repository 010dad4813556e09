"""The measurements of one cohort: feature drift weighted by the champion's importance, the
new members' drift, and the drift of the champion's own scores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg
import lightgbm as lgb
import numpy as np
import pandas as pd

from churn_assets.features.feature_sets import CALENDAR_SHAPED_FEATURES, CATEGORICAL_FEATURES
from churn_assets.modeling.frame import predict_probability
from churn_assets.monitoring import psi
from churn_assets.monitoring.config import DriftConfig
from churn_assets.monitoring.reference import Reference, compared_columns, row_count, sample_rows
from churn_assets.monitoring.target import TargetDrift, target_drift


@dataclass(frozen=True)
class DataDrift:
    """Per-column statistics of the whole cohort and of its new members, and the verdict."""

    judged: pd.DataFrame  # whole cohort, one row per column (psi.judge_columns + stands_out)
    new_members: pd.DataFrame  # the same over the new members; empty when not compared
    weighted: float
    tier: str

    def standing_out(self) -> list[str]:
        """Columns that stand out on their own, named with their population and PSI."""
        return [
            f"{r.column_name}{label} (PSI {r.psi:.2f})"
            for frame, label in ((self.judged, ""), (self.new_members, " among new members"))
            for r in frame.itertuples()
            if r.stands_out
        ]


def measure_data_drift(
    conn, cohort: date, reference: list[date], columns: list[str], importance, config
) -> DataDrift:
    """PSI of every column over the cohort and over its new members, and the data-drift tier."""

    def judged(max_registration_days: int | None) -> pd.DataFrame:
        stats = psi.feature_psi(
            conn,
            cohort,
            reference,
            columns,
            CATEGORICAL_FEATURES,
            config.max_reference_rows,
            max_registration_days,
        )
        stats = stats[(stats["reference_rows"] > 0) & (stats["current_rows"] > 0)]
        return psi.judge_columns(stats, importance, config.moderate_psi, config.major_psi)

    whole = judged(None)
    sliced = config.new_member_days and "registration_age_days" in table_columns(conn)
    new_members = judged(config.new_member_days) if sliced else whole.iloc[:0]
    tested = len(whole) + len(new_members)
    for frame in (whole, new_members):
        frame["stands_out"] = psi.standouts(frame, tested, config.major_psi).astype(bool) & (
            ~frame["column_name"].isin(CALENDAR_SHAPED_FEATURES)
        )
    weighted = float(whole["weighted_contribution"].sum())
    tier = psi.tier_of(weighted, config.moderate_psi, config.major_psi)
    if whole["stands_out"].any() or new_members["stands_out"].any():
        tier = psi.worst([tier, "warn"])
    return DataDrift(whole, new_members, weighted, tier)


def table_columns(conn, table: str = "features") -> set[str]:
    return {row[0] for row in conn.execute(f"DESCRIBE {table}").fetchall()}


def measure_prediction_drift(
    conn, booster, reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig
) -> dict:
    """PSI of the champion's scores, or n/a with the reason when the cohort cannot be scored."""
    try:
        reference_scores = predict_probability(booster, reference)
        current_scores = predict_probability(booster, current)
    except KeyError as exc:
        return {"tier": "n/a", "reason": str(exc)}
    row = psi.score_psi(conn, reference_scores, current_scores)
    frame = row.to_frame().T
    score = float(psi.adjusted(frame["psi"], frame["expected_psi"], frame["noise_limit"]).iloc[0])
    return {
        "tier": psi.tier_of(score, config.moderate_psi, config.major_psi),
        "psi": float(row["psi"]),
        "adjusted": score,
        "expected": float(row["expected_psi"]),
        "noise_limit": float(row["noise_limit"]),
        "js_distance": float(row["js_distance"]),
        "bins": int(row["bins"]),
        "reference_rows": int(row["reference_rows"]),
        "current_rows": int(row["current_rows"]),
        "reference_mean": float(np.mean(reference_scores)),
        "current_mean": float(np.mean(current_scores)),
    }


@dataclass(frozen=True)
class Measured:
    """Everything measured of one cohort against its reference."""

    data: DataDrift
    prediction: dict  # tier, and the score PSI when the champion could score both sides
    target: TargetDrift
    reference_rows: int
    current_rows: int
    numerical: list[str]  # the HTML report's columns
    categorical: list[str]
    html_reference: pd.DataFrame
    html_current: pd.DataFrame

    @property
    def drifted(self) -> list[str]:
        return self.data.judged[self.data.judged["drifted"]]["column_name"].tolist()


def measure_cohort(
    conn, cohort: date, basis: Reference, booster: lgb.Booster, config: DriftConfig
) -> Measured:
    """Data drift over the whole cohort, prediction drift and the report's samples."""
    reference = basis.cohorts
    reference_rows, current_rows = row_count(conn, reference), row_count(conn, [cohort])
    if not reference_rows:
        raise dg.Failure(
            f"drift needs both sides: {current_rows} current rows for {cohort:%Y-%m}, "
            f"{reference_rows} reference rows from cohorts "
            f"{', '.join(f'{c:%Y-%m}' for c in reference) or 'none'}"
        )
    columns = compared_columns(conn, cohort, reference)
    if not columns:
        raise dg.Failure(f"cohort {cohort:%Y-%m} shares no numeric feature with the reference")
    importance = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    data = measure_data_drift(conn, cohort, reference, columns, importance, config)
    # The booster's features both sides have; one it needs and they lack: n/a.
    scored = [c for c in booster.feature_name() if c in columns]
    prediction = (
        measure_prediction_drift(
            conn,
            booster,
            sample_rows(conn, reference, scored, reference_rows, config.max_scored_rows),
            sample_rows(conn, [cohort], scored, current_rows, config.max_scored_rows),
            config,
        )
        if scored
        else {"tier": "n/a", "reason": "no feature of the model in both sides"}
    )
    numerical, categorical = choose_html_columns(data.judged, config.html_columns)
    shown = numerical + categorical
    return Measured(
        data=data,
        prediction=prediction,
        target=target_drift(conn, cohort, reference),
        reference_rows=reference_rows,
        current_rows=current_rows,
        numerical=numerical,
        categorical=categorical,
        html_reference=sample_rows(conn, reference, shown, reference_rows, config.html_rows),
        html_current=sample_rows(conn, [cohort], shown, current_rows, config.html_rows),
    )


def choose_html_columns(judged: pd.DataFrame, count: int) -> tuple[list[str], list[str]]:
    chosen = judged["column_name"].head(count).tolist()
    categorical = [c for c in chosen if c in CATEGORICAL_FEATURES]
    return [c for c in chosen if c not in categorical], categorical
