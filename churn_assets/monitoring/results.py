"""What drift_report records and shows: drift_metrics rows, the checks' results and details,
the Evidently HTML and the MLflow run."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
from mlflow.exceptions import MlflowException

from churn_assets.keys import DAGSTER_RUN_TAG, DRIFT_CHECK, PREDICTION_CHECK
from churn_assets.monitoring import psi
from churn_assets.monitoring.config import DriftConfig
from churn_assets.monitoring.drift import log_drift_run, save_html_report
from churn_assets.monitoring.measure import DataDrift, Measured
from churn_assets.monitoring.reference import Reference
from churn_assets.monitoring.segments import segments_markdown
from churn_assets.monitoring.target import TargetDrift
from churn_assets.readable import readable
from churn_assets.resources import ModelRegistryResource, ReportsResource

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


TOP_COLUMNS = 5  # named in the verdicts and the check descriptions


def name_top_columns(judged: pd.DataFrame, count: int = TOP_COLUMNS) -> str:
    top = judged[judged["weighted_contribution"] > 0].head(count)
    return (
        ", ".join(
            f"{r.column_name} (PSI {r.psi:.2f}, weight {r.importance:.2f})"
            for r in top.itertuples()
        )
        or "none"
    )


def drift_metric_rows(data: DataDrift, prediction: dict, config: DriftConfig) -> pd.DataFrame:
    judged, weighted, data_tier = data.judged, data.weighted, data.tier
    renamed = {"psi": "score", "expected_psi": "expected_noise"}
    columns = pd.concat(
        [
            data.judged.rename(columns=renamed).assign(method="psi"),
            data.new_members.rename(columns=renamed).assign(method="psi_new_members"),
        ],
        ignore_index=True,
    ).assign(threshold=config.moderate_psi, major_threshold=config.major_psi)
    segments = segment_metric_rows(data.segments, config)
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
    return pd.concat(
        [frame for frame in (columns, segments, summary_frame) if not frame.empty],
        ignore_index=True,
    )


def segment_metric_rows(segments: pd.DataFrame, config: DriftConfig) -> pd.DataFrame:
    """One drift_metrics row per judged segment (method ``psi_segment``, column ``city=13``):
    its weighted PSI, noise mean and Bonferroni limit, adjusted score, share; ``stands_out``
    says it warns."""
    return pd.DataFrame(
        {
            "column_name": segments["segment"],
            "method": "psi_segment",
            "segment_column": segments["segment_column"],
            "segment_value": segments["segment_value"].astype(float),
            "segment_share": segments["share"].astype(float),
            "score": segments["psi"].astype(float),
            "expected_noise": segments["expected_psi"].astype(float),
            "noise_limit": segments["noise_limit"].astype(float),
            "adjusted_score": segments["adjusted_score"].astype(float),
            "tier": segments["tier"],
            "drifted": segments["tier"] != "pass",
            "moves": segments["moves"].astype(bool),
            "stands_out": segments["warns"].astype(bool),
            "reference_rows": segments["reference_rows"].astype("int64"),
            "current_rows": segments["current_rows"].astype("int64"),
            "threshold": config.moderate_psi,
            "major_threshold": config.major_psi,
        }
    )


def check_result(name: str, tier: str, description: str, metadata: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=tier in ("pass", "n/a"),
        severity=SEVERITY.get(tier, dg.AssetCheckSeverity.WARN),
        description=description,
        metadata=readable({"tier": tier, **metadata}),
    )


def describe_data_drift(
    measured: Measured, basis: Reference, version: str, config: DriftConfig
) -> str:
    data, drifted, standing_out = measured.data, measured.drifted, measured.data.standing_out()
    moving = data.moving()
    return (
        f"weighted PSI {data.weighted:.3f} ({data.tier}; warn from {config.moderate_psi:g}, "
        f"error from {config.major_psi:g}) against {basis.describe(version)}; top "
        f"contributions: {name_top_columns(data.judged)}; {len(drifted)} of {len(data.judged)} "
        "columns drifted on their own"
        + (f"; standing out on their own: {', '.join(standing_out)}" if standing_out else "")
        + (
            f"; moving but barely used (weight under {data.relied_on_from:.3f}, information): "
            f"{', '.join(moving)}"
            if moving
            else ""
        )
        + (f"; {describe_truncated(data.truncated)}" if data.truncated else "")
        + describe_segments(data)
    )


def describe_segments(data: DataDrift) -> str:
    """The segments that warn, or how many were judged (and too small to judge)."""
    warning = data.segments_warning()
    if warning:
        return f"; segments warning: {', '.join(warning)}"
    return (
        f"; {len(data.segments)} segment(s) judged, none warns"
        f" ({data.segments_too_small} too small to judge)"
    )


def describe_truncated(truncated: dict[str, list[date]]) -> str:
    """The columns left unjudged for reaching before the bulk of the history, and where."""
    months = sorted({m for ms in truncated.values() for m in ms})
    return (
        f"not judged: {len(truncated)} column(s) whose window reaches before the bulk of the "
        f"history in cohort(s) {', '.join(f'{m:%Y-%m}' for m in months)} "
        f"({', '.join(sorted(truncated))}): no reference with the same truncation"
    )


def describe_prediction_drift(measured: Measured, version: str, cohort: date) -> str:
    prediction = measured.prediction
    if prediction["tier"] == "n/a":
        return f"model v{version} cannot score cohort {cohort:%Y-%m}: {prediction['reason']}"
    shared = prediction.get("truncated_shared", 0)
    return (
        f"PSI of model v{version}'s scores {prediction['psi']:.3f}, "
        f"{prediction['adjusted']:.3f} beyond noise ({prediction['tier']}); mean score "
        f"{prediction['current_mean']:.3f} vs {prediction['reference_mean']:.3f} on the reference"
        + (
            f"; {shared} truncated feature(s) drawn from one pool for both sides, so their "
            "filling windows do not move the scores"
            if shared
            else ""
        )
    )


def drift_result(
    cohort: date,
    version: str,
    basis: Reference,
    measured: Measured,
    details: tuple[str, str],
    html_path: Path | None,
    run_id: str | None,
    links: dict[str, str],
) -> dg.MaterializeResult:
    """The materialization's metadata and both checks' results; ``links`` are http URLs."""
    data, prediction = measured.data, measured.prediction
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
    segments = dg.MetadataValue.md(segments_markdown(data.segments))
    report = {
        **({"report_path": dg.MetadataValue.path(str(html_path))} if html_path else {}),
        **{label: dg.MetadataValue.url(url) for label, url in links.items()},
    }
    return dg.MaterializeResult(
        metadata=readable(
            {
                **evidence,
                **report,
                "mlflow_run_id": run_id,
                "reference_rows": measured.reference_rows,
                "current_rows": measured.current_rows,
                "weighted_psi": data.weighted,
                "data_drift": data.tier,
                "prediction_drift": prediction["tier"],
                "prediction_psi": prediction.get("psi", math.nan),
                "target_drift": measured.target.severity,
                "target_drift_detail": measured.target.detail,
                "drifted_columns": dg.MetadataValue.json(measured.drifted),
                "columns": top_columns,
                "segments": segments,
                "segments_warning": ", ".join(data.segments_warning()) or "none",
            }
        ),
        check_results=[
            _data_drift_check(measured, details[0], evidence, top_columns, segments),
            _prediction_drift_check(measured, details[1], evidence),
        ],
    )


def _data_drift_check(
    measured: Measured,
    detail: str,
    evidence: dict,
    top_columns: dg.MetadataValue,
    segments: dg.MetadataValue,
) -> dg.AssetCheckResult:
    """The feature_drift check: the weighted score's tier, with what drifted and stood out."""
    data, drifted = measured.data, measured.drifted
    return check_result(
        DRIFT_CHECK,
        data.tier,
        detail,
        {
            **evidence,
            "weighted_psi": data.weighted,
            "prediction_psi": measured.prediction.get("psi", math.nan),
            "top_columns": top_columns,
            "drifted_share": len(drifted) / len(data.judged) if len(data.judged) else 0.0,
            "drifted_columns": ", ".join(drifted) or "none",
            "standing_out": ", ".join(data.standing_out()) or "none",
            "moving_not_relied_on": ", ".join(data.moving()) or "none",
            "relied_on_from_weight": round(data.relied_on_from, 4),
            "truncated_not_judged": ", ".join(sorted(data.truncated)) or "none",
            "new_members_compared": int(data.new_members["current_rows"].max())
            if len(data.new_members)
            else 0,
            "segments_warning": ", ".join(data.segments_warning()) or "none",
            "segments_judged": len(data.segments),
            "segments_too_small": data.segments_too_small,
            "segments": segments,
        },
    )


def _prediction_drift_check(measured: Measured, detail: str, evidence: dict) -> dg.AssetCheckResult:
    """The prediction_drift check: the PSI of the champion's scores and its figures."""
    prediction = measured.prediction
    return check_result(
        PREDICTION_CHECK,
        prediction["tier"],
        detail,
        {
            **evidence,
            **{
                k: v
                for k, v in prediction.items()
                if k not in ("tier", "reason") and isinstance(v, int | float)
            },
            "weighted_psi": measured.data.weighted,
        },
    )


def drift_links(
    reports: ReportsResource,
    registry: ModelRegistryResource,
    version: str,
    html_path: Path | None,
    run_id: str,
) -> dict[str, str]:
    """One click from the materialization: the report through ``churn-assets serve``, the
    drift run and the reference version in the MLflow UI."""
    links = {"report_url": reports.url(html_path)} if html_path else {}
    if run_id:
        experiment = registry.client.get_run(run_id).info.experiment_id
        links["mlflow_run"] = reports.run_url(experiment, run_id)
    links["mlflow_model_version"] = reports.version_url(version)
    return links


def evidently_note(measured: Measured) -> str:
    """What the Evidently page's share of drifted columns is, beside the project's verdict.

    The two count different things: Evidently tests a sample of rows on the columns the champion
    relies on most, each column by its own default test, with no allowance for the noise of the
    sample and no weight; the verdict reads every row of every judged column, counts a column
    only beyond the noise expected at its sizes, and weighs columns by importance.
    """
    data = measured.data
    shown = len(measured.numerical) + len(measured.categorical)
    judged, drifted = len(data.judged), len(measured.drifted)
    share = f"{drifted / judged:.0%}" if judged else "n/a"
    return (
        "<b>How this page relates to the project's drift verdict.</b> "
        f"Evidently below compares {shown} of the {judged} judged columns (those the champion "
        f"relies on most) on a sample of {len(measured.html_reference)} reference and "
        f"{len(measured.html_current)} current rows, each column with Evidently's own default "
        "test and threshold; its share of drifted columns is the share of those columns its "
        "tests flag on that sample. It makes no allowance for sampling noise and weighs every "
        "column alike, and the columns shown are the ones a shift in the population moves most, "
        "so its share is not the project's and usually runs higher. "
        "<br>The verdict that alerts and retraining act on is the project's: PSI over every row "
        "of both sides, a column counted as drifted only beyond the noise expected at its sizes, "
        f"columns weighted by importance. For this cohort: <b>{drifted} of {judged} columns "
        f"drifted ({share})</b>, weighted PSI beyond noise {data.weighted:.3f}, tier "
        f"<b>{data.tier}</b>. This page is for looking at the distributions, not for the verdict."
    )


def write_html_report(
    context: dg.AssetExecutionContext,
    path: Path,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    note: str = "",
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
        return save_html_report(reference, current, numerical, categorical, path, note)
    except Exception as exc:
        context.log.warning(f"no drift HTML report for this cohort: Evidently failed: {exc!r}")
        return None


def log_run(
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
            registry.artifact_folder,
            cohort,
            version,
            {k: v for k, v in metrics.items() if math.isfinite(v)},
            {
                "data_drift": str(tiers.get("weighted_psi", "")),
                "prediction_drift": str(tiers.get("prediction_psi", "n/a")),
                "target_drift": target.severity,
                DAGSTER_RUN_TAG: context.run_id,
            },
            {"drift": html_path} if html_path else {},
            {"drift/drift_metrics.csv": rows.to_csv(index=False)},
        )
    except (MlflowException, OSError) as exc:
        context.log.warning(f"drift report not logged to MLflow: {exc}")
        return ""
