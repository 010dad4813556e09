"""The measurements of one cohort: feature drift weighted by the champion's importance, the
new members' drift, and the drift of the champion's own scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd

from churn_assets.features.feature_sets import CALENDAR_SHAPED_FEATURES, CATEGORICAL_FEATURES
from churn_assets.modeling.calibration import ChurnModel
from churn_assets.monitoring import psi
from churn_assets.monitoring.config import DriftConfig
from churn_assets.monitoring.reference import (
    Reference,
    compared_columns,
    row_count,
    sample_rows,
    truncated_columns,
)
from churn_assets.monitoring.segments import measure_segments, no_segments, warning_names
from churn_assets.monitoring.target import TargetDrift, target_drift

# The statistics feature_psi gives per column (psi.sql), for a cohort with nothing to compare.
PSI_COLUMNS = [
    "column_name", "reference_rows", "current_rows", "bins", "psi", "js_distance",
    "expected_psi", "noise_limit",
]  # fmt: skip


@dataclass(frozen=True)
class DataDrift:
    """Per-column statistics of the whole cohort and of its new members, and the verdict."""

    judged: pd.DataFrame  # whole cohort, one row per judged column (judge_columns + stands_out)
    new_members: pd.DataFrame  # the same over the new members; empty when not compared
    weighted: float
    tier: str
    # Columns left unjudged: their window reaches before the bulk of the history in this cohort
    # or a reference cohort, so they differ by how much history was loaded (column -> cohorts).
    truncated: dict[str, list[date]] = field(default_factory=dict)
    relied_on_from: float = 0.0  # the importance from which a column may stand out on its own
    segments: pd.DataFrame = field(default_factory=no_segments)  # judged segments (segments.py)
    segments_too_small: int = 0  # segments counted but under 50 rows a side: not judged

    def segments_warning(self) -> list[str]:
        """Segments whose shift warns on its own, named with their PSI and share."""
        return warning_names(self.segments)

    def standing_out(self) -> list[str]:
        """Columns that stand out on their own, named with their population and PSI."""
        return self._named("stands_out")

    def moving(self) -> list[str]:
        """Columns with a major shift beyond noise that the champion barely uses: information
        (a column that moves and is relied on stands out instead, and is named there)."""
        return self._named("moves", unless="stands_out")

    def _named(self, flag: str, unless: str | None = None) -> list[str]:
        return [
            f"{r.column_name}{label} (PSI {r.psi:.2f}, weight {r.importance:.3f})"
            for frame, label in ((self.judged, ""), (self.new_members, " among new members"))
            for r in frame.itertuples()
            if getattr(r, flag) and not (unless and getattr(r, unless))
        ]


def relied_on_floor(importance: pd.Series) -> float:
    """The gain share from which the champion relies on a column: an even share of the columns
    it uses (1 / how many carry any gain). A column below it moves the model less than an
    average column it uses; its shift alone is information, not an alarm."""
    used = int((importance > 0).sum())
    return 1.0 / used if used else 1.0


def measure_data_drift(
    conn,
    cohort: date,
    reference: list[date],
    columns: list[str],
    importance,
    config,
    truncated: dict[str, list[date]] | None = None,
) -> DataDrift:
    """PSI of every judged column over the cohort and over its new members, and the data-drift
    tier; ``truncated`` columns are left out of both (see :mod:`churn_assets.features.windows`)."""
    truncated = {c: months for c, months in (truncated or {}).items() if c in columns}
    judged_columns = [c for c in columns if c not in truncated]

    def judged(max_registration_days: int | None) -> pd.DataFrame:
        if not judged_columns:
            return psi.judge_columns(pd.DataFrame(columns=PSI_COLUMNS), importance)
        stats = psi.feature_psi(
            conn,
            cohort,
            reference,
            judged_columns,
            CATEGORICAL_FEATURES,
            config.max_reference_rows,
            max_registration_days,
        )
        stats = stats[(stats["reference_rows"] > 0) & (stats["current_rows"] > 0)]
        return psi.judge_columns(stats, importance, config.moderate_psi, config.major_psi)

    whole = judged(None)
    sliced = config.new_member_days and "registration_age_days" in table_columns(conn)
    new_members = judged(config.new_member_days) if sliced else whole.iloc[:0].copy()
    floor = relied_on_floor(whole["importance"])
    _flag_standouts(whole, new_members, floor, config.major_psi)
    weighted = float(whole["weighted_contribution"].sum())
    tier = psi.tier_of(weighted, config.moderate_psi, config.major_psi)
    segments, too_small = measure_segments(
        conn, cohort, reference, judged_columns, importance, config
    )
    if whole["stands_out"].any() or new_members["stands_out"].any() or segments["warns"].any():
        tier = psi.worst([tier, "warn"])
    return DataDrift(whole, new_members, weighted, tier, truncated, floor, segments, too_small)


def _flag_standouts(
    whole: pd.DataFrame, new_members: pd.DataFrame, floor: float, major: float
) -> None:
    """``moves``: a major shift beyond noise over every column tested (calendar-shaped columns
    aside); ``stands_out``: one that moves and that the champion relies on (``floor``)."""
    tested = len(whole) + len(new_members)
    relied = set(whole.loc[whole["importance"] >= floor, "column_name"])
    for frame in (whole, new_members):
        frame["moves"] = psi.standouts(frame, tested, major).astype(bool) & (
            ~frame["column_name"].isin(CALENDAR_SHAPED_FEATURES)
        )
        frame["stands_out"] = frame["moves"] & frame["column_name"].isin(relied)


def table_columns(conn, table: str = "features") -> set[str]:
    return {row[0] for row in conn.execute(f"DESCRIBE {table}").fetchall()}


def share_truncated_columns(
    reference: pd.DataFrame, current: pd.DataFrame, truncated: list[str], seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both sides with their ``truncated`` columns drawn, row by row, from one pool of both.

    A truncated feature grows as its window fills, so the champion's scores would move with it
    on a world where nothing changed. Giving both sides the same joint distribution of those
    columns (whole rows of them, so they keep their relation to one another) leaves the score
    PSI to what the other inputs do to the model; it is the same on both sides by construction.
    """
    if not truncated:
        return reference, current
    pool = pd.concat([reference[truncated], current[truncated]], ignore_index=True)
    rng = np.random.default_rng(seed)

    def drawn(frame: pd.DataFrame) -> pd.DataFrame:
        rows = pool.iloc[rng.integers(0, len(pool), len(frame))].set_index(frame.index)
        return frame.assign(**{c: rows[c] for c in truncated})

    return drawn(reference), drawn(current)


def measure_prediction_drift(
    conn,
    model: ChurnModel,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    truncated: list[str] | None = None,
) -> dict:
    """PSI of the champion's scores, or n/a with the reason when the cohort cannot be scored;
    ``truncated`` columns are shared between the sides first (:func:`share_truncated_columns`)."""
    reference, current = share_truncated_columns(reference, current, list(truncated or []))
    try:
        reference_scores = model.probability(reference)
        current_scores = model.probability(current)
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
        "truncated_shared": len(truncated or []),
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
    conn, cohort: date, basis: Reference, model: ChurnModel, config: DriftConfig
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
    booster = model.booster
    importance = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    truncated = truncated_columns(conn, [cohort, *reference], columns)
    data = measure_data_drift(conn, cohort, reference, columns, importance, config, truncated)
    # The booster's features both sides have; one it needs and they lack: n/a.
    scored = [c for c in booster.feature_name() if c in columns]
    prediction = (
        measure_prediction_drift(
            conn,
            model,
            sample_rows(conn, reference, scored, reference_rows, config.max_scored_rows),
            sample_rows(conn, [cohort], scored, current_rows, config.max_scored_rows),
            config,
            [c for c in scored if c in data.truncated],
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
