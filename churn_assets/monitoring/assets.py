"""The ``drift_report`` asset and its ``feature_drift`` and ``prediction_drift`` checks.

The reference is what the champion learnt from: the features of its complete training cohorts
(and the cohort it was validated on); for a champion that learnt only from incomplete ones, as
many complete cohorts before this one stand in (:func:`_reference`). Against it, for the whole
cohort (statistics and tiers in :mod:`churn_assets.monitoring.psi`):

* **data drift** (check ``feature_drift``, verdict ``data_drift``): every feature's PSI, beyond
  sampling noise, weighted by the champion's gain importance; the weighted sum is judged, and a
  column that stands out on its own (a major shift beyond noise over all columns tested, see
  :func:`churn_assets.monitoring.psi.standouts`) makes it at least a warning. The same columns
  are also compared over the **new members** alone (registered within ``new_member_days`` of
  their cut-off, on both sides): a change in who joins (a new acquisition channel, a campaign's
  younger sign-ups) is diluted in the whole cohort for months, but plain among its newest members;
* **prediction drift** (check ``prediction_drift``, verdict ``prediction_drift``): PSI of the
  champion's scores on the cohort against its scores on the reference;
* **target drift** (verdict ``target_drift``, :mod:`churn_assets.monitoring.target`): the churn
  rate of the newest labelled cohort against the reference's, or n/a.

A check passes on ``pass`` and fails with severity WARN on ``warn`` and ERROR on ``error``; the
retraining sensor reads the ``feature_drift`` check's severity. One row per column (and one each
for the weighted and the prediction score) goes to ``drift_metrics``; the Evidently HTML, on a
sample, goes to ``reports/drift/drift_YYYY-MM_vN.html`` and to an MLflow run ``drift-YYYY-MM``.
"""

import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import lightgbm as lgb
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.exceptions import MlflowException
from pydantic import Field

from churn_assets.features.assets import CALENDAR_SHAPED_FEATURES, CATEGORICAL_FEATURES
from churn_assets.features.feature_sets import (
    complete_cohorts,
    feature_columns_of,
    keep_common_features,
)
from churn_assets.monitoring import psi
from churn_assets.monitoring.drift import html_report_path, log_drift_run, save_html_report
from churn_assets.monitoring.target import TargetDrift, target_drift
from churn_assets.monitoring.verdicts import record_verdict
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.resources import ModelRegistryResource, ReportsResource
from churn_assets.settings import drift_html_enabled
from churn_assets.training.model import predict_probability
from churn_assets.warehouse import run_sql_file, transaction

SQL = Path(__file__).parent / "drift_tables.sql"
SAMPLE_SQL = Path(__file__).parent / "feature_sample.sql"
DRIFT_CHECK = "feature_drift"
PREDICTION_CHECK = "prediction_drift"
SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}
TOP_COLUMNS = 5  # named in the verdicts and the check descriptions


class DriftConfig(dg.Config):
    moderate_psi: float = Field(
        default=psi.MODERATE_PSI,
        description="PSI (beyond sampling noise) from which a column, the weighted score or the "
        "prediction score warns: the credit-scoring convention for a moderate shift.",
    )
    major_psi: float = Field(
        default=psi.MAJOR_PSI,
        description="PSI from which they are an error: the convention for a major shift.",
    )
    new_member_days: int = Field(
        default=90,
        ge=0,
        description="Also compare the members registered within this many days of their "
        "cut-off (the first three months, where a change in who joins shows first); 0: never.",
    )
    max_reference_rows: int = Field(
        default=psi.MAX_REFERENCE_ROWS,
        description="Reference rows the feature statistics read at most (a hash sample of users).",
    )
    max_scored_rows: int = Field(
        default=200_000,
        description="Rows of each side the champion scores for prediction drift, at most.",
    )
    html_report: bool = Field(
        default_factory=drift_html_enabled,
        description="Build Evidently's HTML report (CHURN_DRIFT_HTML; about 10 s a cohort "
        "whatever its size). The verdicts never depend on it.",
    )
    html_rows: int = Field(default=5_000, description="Rows of each side in the HTML report.")
    html_columns: int = Field(
        default=25, description="Columns in the HTML report: the largest contributions first."
    )
    log_to_mlflow: bool = Field(
        default=True, description="Log the HTML and the scores as an MLflow run drift-YYYY-MM."
    )


@dataclass(frozen=True)
class Reference:
    """The cohorts a cohort is compared with, and why those."""

    cohorts: list[date]
    learnt_from: list[date]  # what the champion learnt from
    stand_in: bool  # True: complete cohorts standing in for a champion that learnt from holes

    @property
    def fair(self) -> bool:
        return bool(self.cohorts)

    def describe(self, version: str) -> str:
        text = ", ".join(f"{c:%Y-%m}" for c in self.cohorts)
        if not self.stand_in:
            return f"model v{version}'s training cohorts {text}"
        learnt = ", ".join(f"{c:%Y-%m}" for c in self.learnt_from)
        return (
            f"complete cohorts {text}, standing in for model v{version}'s training cohorts "
            f"{learnt} (incomplete windows)"
        )


def _reference(conn, champion, cohort: date) -> Reference:
    """Everything the champion learnt from: its training cohorts and the one it validated on;
    only the complete ones (a hole in a window would make every later cohort look drifted).

    A champion that learnt only from incomplete cohorts (the first model of a short history) is
    compared through as many complete cohorts before this one, the nearest to its validation
    cohort: otherwise drift would be blind exactly while that provisional model is in charge.
    With none, the reference is empty: nothing fair to compare with.
    """
    learnt_tags = json.loads(champion.tags.get("training_cohorts", "[]"))
    learnt_tags.append(champion.tags.get("validation_cohort", ""))
    learnt_from = sorted({month_start(c) for c in learnt_tags if c})
    complete = complete_cohorts(conn, learnt_from)
    if complete:
        return Reference(complete, learnt_from, stand_in=False)
    earlier = complete_cohorts(conn, _cohorts_before(conn, cohort))
    anchor = max(learnt_from, default=cohort)
    nearest = sorted(earlier, key=lambda c: (abs((c - anchor).days), c))
    return Reference(sorted(nearest[: max(len(learnt_from), 1)]), learnt_from, stand_in=True)


def _cohorts_before(conn, cohort: date) -> list[date]:
    rows = conn.execute(
        "SELECT DISTINCT cohort_month FROM features WHERE cohort_month < ? ORDER BY 1", [cohort]
    ).fetchall()
    return [r[0] for r in rows]


def _compared_columns(conn, cohort: date, reference: list[date]) -> list[str]:
    """Numeric feature columns both sides were built with, in the table's order."""
    empty = conn.execute("SELECT * FROM features LIMIT 0").df()
    common = feature_columns_of(list(keep_common_features(conn, empty, [cohort, *reference])))
    return psi.numeric_feature_columns(conn, common)


def _rows(conn, cohorts: list[date]) -> int:
    return conn.execute(
        "SELECT count(*) FROM features WHERE cohort_month IN (SELECT unnest(?::DATE[]))",
        [cohorts],
    ).fetchone()[0]


def _sample(conn, cohorts: list[date], columns: list[str], rows: int, keep: int) -> pd.DataFrame:
    return run_sql_file(
        conn,
        SAMPLE_SQL,
        {"cohorts": cohorts, "columns": columns, "hash_cut": psi.hash_cut(rows, keep)},
    ).df()


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


def _data_drift(
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
    sliced = config.new_member_days and "registration_age_days" in _table_columns(conn)
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


def _table_columns(conn, table: str = "features") -> set[str]:
    return {row[0] for row in conn.execute(f"DESCRIBE {table}").fetchall()}


def _prediction_drift(
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


def _top(judged: pd.DataFrame, count: int = TOP_COLUMNS) -> str:
    top = judged[judged["weighted_contribution"] > 0].head(count)
    return (
        ", ".join(
            f"{r.column_name} (PSI {r.psi:.2f}, weight {r.importance:.2f})"
            for r in top.itertuples()
        )
        or "none"
    )


def _drift_rows(data: DataDrift, prediction: dict, config: DriftConfig) -> pd.DataFrame:
    judged, weighted, data_tier = data.judged, data.weighted, data.tier
    renamed = {"psi": "score", "expected_psi": "expected_noise"}
    columns = pd.concat(
        [
            data.judged.rename(columns=renamed).assign(method="psi"),
            data.new_members.rename(columns=renamed).assign(method="psi_new_members"),
        ],
        ignore_index=True,
    ).assign(threshold=config.moderate_psi, major_threshold=config.major_psi)
    summary = [
        {
            "column_name": "*",
            "method": "weighted_psi",
            "score": float((judged["importance"] * judged["psi"]).sum()),
            "adjusted_score": weighted,
            "tier": data_tier,
            "drifted": data_tier != "pass",
            "importance": float(judged["importance"].sum()),
            "weighted_contribution": weighted,
            "reference_rows": int(judged["reference_rows"].max()),
            "current_rows": int(judged["current_rows"].max()),
        }
    ]
    if prediction["tier"] != "n/a":
        summary.append(
            {
                "column_name": psi.SCORE_COLUMN,
                "method": "prediction_psi",
                "score": prediction["psi"],
                "adjusted_score": prediction["adjusted"],
                "expected_noise": prediction["expected"],
                "noise_limit": prediction["noise_limit"],
                "js_distance": prediction["js_distance"],
                "bins": prediction["bins"],
                "tier": prediction["tier"],
                "drifted": prediction["tier"] != "pass",
                "reference_rows": prediction["reference_rows"],
                "current_rows": prediction["current_rows"],
            }
        )
    summary_frame = pd.DataFrame(summary).assign(
        threshold=config.moderate_psi, major_threshold=config.major_psi
    )
    return pd.concat([columns, summary_frame], ignore_index=True)


def _html_columns(judged: pd.DataFrame, count: int) -> tuple[list[str], list[str]]:
    chosen = judged["column_name"].head(count).tolist()
    categorical = [c for c in chosen if c in CATEGORICAL_FEATURES]
    return [c for c in chosen if c not in categorical], categorical


def _check(name: str, tier: str, description: str, metadata: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=tier in ("pass", "n/a"),
        severity=SEVERITY.get(tier, dg.AssetCheckSeverity.WARN),
        description=description,
        metadata={"tier": tier, **metadata},
    )


@dg.asset(
    group_name="monitoring",
    kinds={"duckdb", "evidently"},
    partitions_def=monthly_partitions,
    deps=["features", "churn_model"],
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="drift_report",
            partitions_def=monthly_partitions,
            description="Importance-weighted PSI of the features against the champion's "
            "training data: fails WARN from 0.1, ERROR from 0.25; WARN too when one column, in "
            "the cohort or among its new members, stands out on its own.",
        ),
        dg.AssetCheckSpec(
            PREDICTION_CHECK,
            asset="drift_report",
            partitions_def=monthly_partitions,
            description="PSI of the champion's scores on the cohort against its scores on its "
            "training data: fails WARN from 0.1, ERROR from 0.25.",
        ),
    ],
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    warehouse: DuckDBResource,
    registry: ModelRegistryResource,
    reports: ReportsResource,
) -> dg.MaterializeResult:
    """Data, prediction and target drift of the cohort against the champion's training data."""
    cohort = month_start(context.partition_key)
    champion = registry.champion()
    if champion is None:
        raise dg.Failure("no champion model: drift is measured against its training data")
    version = str(champion.version)
    booster = registry.load_model(version)
    with warehouse.get_connection() as conn:
        basis = _reference(conn, champion, cohort)
        current_rows = _rows(conn, [cohort])
        if not basis.fair or (_rows(conn, basis.cohorts) and not current_rows):
            return _nothing_to_judge(conn, cohort, version, basis)
        measured = _measure(conn, cohort, basis, booster, config)
    data_detail = _data_detail(measured, basis, version, config)
    prediction_detail = _prediction_detail(measured, version, cohort)
    rows = _drift_rows(measured.data, measured.prediction, config).assign(
        cohort_month=cohort, reference_model_version=version, evaluated_at=datetime.now()
    )
    with warehouse.get_connection() as conn:
        conn.register("drift_rows", rows)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort})
            record_verdict(conn, cohort, "data_drift", measured.data.tier, data_detail)
            record_verdict(
                conn, cohort, "prediction_drift", measured.prediction["tier"], prediction_detail
            )
            record_verdict(
                conn, cohort, "target_drift", measured.target.severity, measured.target.detail
            )
    html_path = (
        _html_report(
            context,
            html_report_path(reports.folder, cohort, version),
            measured.html_reference,
            measured.html_current,
            measured.numerical,
            measured.categorical,
        )
        if config.html_report
        else None
    )
    run_id = _log_run(
        context,
        config,
        registry,
        cohort,
        version,
        html_path,
        rows,
        measured.target,
        {
            "weighted_psi": measured.data.weighted,
            "prediction_psi": measured.prediction.get("psi", math.nan),
            "drifted_columns": float(len(measured.drifted)),
        },
    )
    return _drift_result(
        cohort, version, basis, measured, (data_detail, prediction_detail), html_path, run_id
    )


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


def _nothing_to_judge(conn, cohort: date, version: str, basis: Reference) -> dg.MaterializeResult:
    """A cohort emptied by a hole in the data (its coverage check says which month), or a
    champion that learnt only from cohorts with holes in their windows and no complete cohort to
    stand in: comparing would measure the holes, not drift. Nothing to judge is not an alarm."""
    detail = (
        f"n/a: cohort {cohort:%Y-%m} has no users"
        if basis.fair
        else f"n/a: champion v{version} learnt only from cohorts with incomplete "
        f"windows ({', '.join(f'{c:%Y-%m}' for c in basis.learnt_from)}) and no complete "
        f"cohort before {cohort:%Y-%m} stands in: no fair reference"
    )
    with transaction(conn):
        for monitor in ("data_drift", "prediction_drift"):
            record_verdict(conn, cohort, monitor, "n/a", detail)
    return dg.MaterializeResult(
        metadata={"cohort_month": cohort.isoformat(), "status": detail},
        check_results=[
            _check(DRIFT_CHECK, "n/a", detail, {}),
            _check(PREDICTION_CHECK, "n/a", detail, {}),
        ],
    )


def _measure(
    conn, cohort: date, basis: Reference, booster: lgb.Booster, config: DriftConfig
) -> Measured:
    """Data drift over the whole cohort, prediction drift and the report's samples."""
    reference = basis.cohorts
    reference_rows, current_rows = _rows(conn, reference), _rows(conn, [cohort])
    if not reference_rows:
        raise dg.Failure(
            f"drift needs both sides: {current_rows} current rows for {cohort:%Y-%m}, "
            f"{reference_rows} reference rows from cohorts "
            f"{', '.join(f'{c:%Y-%m}' for c in reference) or 'none'}"
        )
    columns = _compared_columns(conn, cohort, reference)
    if not columns:
        raise dg.Failure(f"cohort {cohort:%Y-%m} shares no numeric feature with the reference")
    importance = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    data = _data_drift(conn, cohort, reference, columns, importance, config)
    # The booster's features both sides have; one it needs and they lack: n/a.
    scored = [c for c in booster.feature_name() if c in columns]
    prediction = (
        _prediction_drift(
            conn,
            booster,
            _sample(conn, reference, scored, reference_rows, config.max_scored_rows),
            _sample(conn, [cohort], scored, current_rows, config.max_scored_rows),
            config,
        )
        if scored
        else {"tier": "n/a", "reason": "no feature of the model in both sides"}
    )
    numerical, categorical = _html_columns(data.judged, config.html_columns)
    shown = numerical + categorical
    return Measured(
        data=data,
        prediction=prediction,
        target=target_drift(conn, cohort, reference),
        reference_rows=reference_rows,
        current_rows=current_rows,
        numerical=numerical,
        categorical=categorical,
        html_reference=_sample(conn, reference, shown, reference_rows, config.html_rows),
        html_current=_sample(conn, [cohort], shown, current_rows, config.html_rows),
    )


def _data_detail(measured: Measured, basis: Reference, version: str, config: DriftConfig) -> str:
    data, drifted, standing_out = measured.data, measured.drifted, measured.data.standing_out()
    return (
        f"weighted PSI {data.weighted:.3f} ({data.tier}; warn from {config.moderate_psi:g}, "
        f"error from {config.major_psi:g}) against {basis.describe(version)}; top "
        f"contributions: {_top(data.judged)}; {len(drifted)} of {len(data.judged)} columns "
        "drifted on their own"
        + (f"; standing out on their own: {', '.join(standing_out)}" if standing_out else "")
    )


def _prediction_detail(measured: Measured, version: str, cohort: date) -> str:
    prediction = measured.prediction
    if prediction["tier"] == "n/a":
        return f"model v{version} cannot score cohort {cohort:%Y-%m}: {prediction['reason']}"
    return (
        f"PSI of model v{version}'s scores {prediction['psi']:.3f}, "
        f"{prediction['adjusted']:.3f} beyond noise ({prediction['tier']}); mean score "
        f"{prediction['current_mean']:.3f} vs {prediction['reference_mean']:.3f} on the reference"
    )


def _drift_result(
    cohort: date,
    version: str,
    basis: Reference,
    measured: Measured,
    details: tuple[str, str],
    html_path: Path | None,
    run_id: str | None,
) -> dg.MaterializeResult:
    """The materialization's metadata and both checks' results."""
    data, prediction, drifted = measured.data, measured.prediction, measured.drifted
    evidence = {
        "cohort_month": cohort.isoformat(),
        "reference_model_version": version,
        "reference_cohorts": ", ".join(f"{c:%Y-%m}" for c in basis.cohorts),
        "reference_stands_in": basis.stand_in,
    }
    table = data.judged.head(15)[
        ["column_name", "psi", "adjusted_score", "importance", "weighted_contribution", "tier"]
    ]
    top_columns = dg.MetadataValue.md(table.round(4).to_markdown(index=False))
    prediction_psi = prediction.get("psi", math.nan)
    report = (
        {
            "report_path": dg.MetadataValue.path(str(html_path)),
            "report_url": dg.MetadataValue.url(html_path.resolve().as_uri()),
        }
        if html_path
        else {}
    )
    return dg.MaterializeResult(
        metadata={
            **evidence,
            **report,
            "mlflow_run_id": run_id,
            "reference_rows": measured.reference_rows,
            "current_rows": measured.current_rows,
            "weighted_psi": data.weighted,
            "data_drift": data.tier,
            "prediction_drift": prediction["tier"],
            "prediction_psi": prediction_psi,
            "target_drift": measured.target.severity,
            "target_drift_detail": measured.target.detail,
            "drifted_columns": dg.MetadataValue.json(drifted),
            "columns": top_columns,
        },
        check_results=[
            _check(
                DRIFT_CHECK,
                data.tier,
                details[0],
                {
                    **evidence,
                    "weighted_psi": data.weighted,
                    "prediction_psi": prediction_psi,
                    "top_columns": top_columns,
                    "drifted_share": len(drifted) / len(data.judged),
                    "drifted_columns": ", ".join(drifted) or "none",
                    "standing_out": ", ".join(data.standing_out()) or "none",
                    "new_members_compared": int(data.new_members["current_rows"].max())
                    if len(data.new_members)
                    else 0,
                },
            ),
            _check(
                PREDICTION_CHECK,
                prediction["tier"],
                details[1],
                {
                    **evidence,
                    **{
                        k: v
                        for k, v in prediction.items()
                        if k not in ("tier", "reason") and isinstance(v, int | float)
                    },
                    "weighted_psi": data.weighted,
                },
            ),
        ],
    )


def _html_report(
    context: dg.AssetExecutionContext,
    path: Path,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
) -> Path | None:
    """Evidently's HTML, or None (with a warning) when Evidently fails on this sample: the
    report is for people, the verdicts stored already stand without it."""
    # A column empty on either side (a feature a late file left without values) has no
    # distribution to draw: Evidently refuses it, so it is left out of the picture.
    empty = {
        c for c in numerical + categorical if reference[c].isna().all() or current[c].isna().all()
    }
    numerical = [c for c in numerical if c not in empty]
    categorical = [c for c in categorical if c not in empty]
    try:
        return save_html_report(reference, current, numerical, categorical, path)
    except Exception as exc:
        context.log.warning(f"no drift HTML report for this cohort: Evidently failed: {exc!r}")
        return None


def _log_run(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    registry: ModelRegistryResource,
    cohort: date,
    version: str,
    html_path: Path | None,
    rows: pd.DataFrame,
    target: TargetDrift,
    metrics: dict[str, float],
) -> str:
    """The MLflow run of this report, or '' (with a warning) when MLflow cannot take it: the
    verdicts are stored already, and the HTML stays on disk."""
    if not config.log_to_mlflow:
        return ""
    tiers = dict(zip(rows["method"], rows["tier"], strict=False))
    try:
        return log_drift_run(
            registry.tracking_uri,
            cohort,
            version,
            {k: v for k, v in metrics.items() if math.isfinite(v)},
            {
                "data_drift": str(tiers.get("weighted_psi", "")),
                "prediction_drift": str(tiers.get("prediction_psi", "n/a")),
                "target_drift": target.severity,
                "dagster_run_id": context.run_id,
            },
            {"drift": html_path} if html_path else {},
            {"drift/drift_metrics.csv": rows.to_csv(index=False)},
        )
    except (MlflowException, OSError) as exc:
        context.log.warning(f"drift report not logged to MLflow: {exc}")
        return ""
