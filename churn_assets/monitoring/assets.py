"""The ``drift_report`` asset and its ``feature_drift`` and ``prediction_drift`` checks.

The reference is what the champion learnt from: the features of its complete training cohorts
(and the cohort it was validated on); for a champion that learnt only from incomplete ones, as
many complete cohorts before this one stand in
(:func:`churn_assets.monitoring.reference.reference_for`). Against it, for the whole cohort
(statistics and tiers in :mod:`churn_assets.monitoring.psi`):

* **data drift** (check ``feature_drift``, verdict ``data_drift``): every feature's PSI, beyond
  sampling noise, weighted by the champion's gain importance; the weighted sum is judged, and a
  column that stands out on its own (a major shift beyond noise over all columns tested, see
  :func:`churn_assets.monitoring.psi.standouts`) makes it at least a warning. The same columns
  are also compared over the **new members** alone (registered within ``new_member_days`` of
  their cut-off, on both sides): a change in who joins (a new acquisition channel, a campaign's
  younger sign-ups) is diluted in the whole cohort for months, but plain among its newest members,
  and within each **customer segment** (a city, channel, payment method or plan, on both sides,
  :mod:`churn_assets.monitoring.segments`): a segment whose weighted shift is major and beyond
  noise over every segment tested warns too when its share of users times that shift reaches the
  moderate tier;
* **prediction drift** (check ``prediction_drift``, verdict ``prediction_drift``): PSI of the
  champion's scores on the cohort against its scores on the reference;
* **target drift** (verdict ``target_drift``, :mod:`churn_assets.monitoring.target`): the churn
  rate of the newest labelled cohort against the reference's, or n/a.

A check passes on ``pass`` and fails with severity WARN on ``warn`` and ERROR on ``error``; the
retraining sensor reads the ``feature_drift`` check's severity. One row per column (and one each
for the weighted and the prediction score) goes to ``drift_metrics``; the Evidently HTML, on a
sample, goes to ``reports/drift/drift_YYYY-MM_vN.html`` and to an MLflow run ``drift-YYYY-MM``.
"""

import math
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets import keys
from churn_assets.keys import DRIFT_CHECK, PREDICTION_CHECK
from churn_assets.modeling.calibration import load_churn_model
from churn_assets.monitoring.config import DriftConfig
from churn_assets.monitoring.drift import html_report_path
from churn_assets.monitoring.measure import Measured, measure_cohort
from churn_assets.monitoring.reference import SQL, Reference, reference_for, row_count
from churn_assets.monitoring.results import (
    check_result,
    describe_data_drift,
    describe_prediction_drift,
    drift_links,
    drift_metric_rows,
    drift_result,
    evidently_note,
    log_run,
    write_html_report,
)
from churn_assets.monitoring.verdicts import record_verdict
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.readable import readable
from churn_assets.resources import ModelRegistryResource, ReportsResource
from churn_assets.warehouse import run_sql_file, transaction

DRIFT_CHECKS = [
    dg.AssetCheckSpec(
        DRIFT_CHECK,
        asset=keys.DRIFT_REPORT,
        partitions_def=monthly_partitions,
        description="Importance-weighted PSI of the features against the champion's "
        "training data: fails WARN from 0.1, ERROR from 0.25; WARN too when one column, in "
        "the cohort or among its new members, stands out on its own, or one customer segment "
        "(city, channel, payment method, plan) shifts on its own.",
    ),
    dg.AssetCheckSpec(
        PREDICTION_CHECK,
        asset=keys.DRIFT_REPORT,
        partitions_def=monthly_partitions,
        description="PSI of the champion's scores on the cohort against its scores on its "
        "training data: fails WARN from 0.1, ERROR from 0.25.",
    ),
]


@dg.asset(
    group_name="monitoring",
    kinds={"duckdb", "evidently"},
    partitions_def=monthly_partitions,
    deps=[keys.FEATURES, keys.CHURN_MODEL],
    check_specs=DRIFT_CHECKS,
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
    model = load_churn_model(registry, champion)
    with warehouse.get_connection() as conn:
        basis = reference_for(conn, champion, cohort)
        current_rows = row_count(conn, [cohort])
        if not basis.fair or (row_count(conn, basis.cohorts) and not current_rows):
            return _nothing_to_judge(conn, cohort, version, basis)
        measured = measure_cohort(conn, cohort, basis, model, config)
    details = (
        describe_data_drift(measured, basis, version, config),
        describe_prediction_drift(measured, version, cohort),
    )
    rows = drift_metric_rows(measured.data, measured.prediction, config).assign(
        cohort_month=cohort, reference_model_version=version, evaluated_at=datetime.now()
    )
    _record(warehouse, cohort, rows, measured, details)
    html_path, run_id = _publish(
        context, config, registry, reports, cohort, version, measured, rows
    )
    links = drift_links(reports, registry, version, html_path, run_id)
    return drift_result(cohort, version, basis, measured, details, html_path, run_id, links)


def _publish(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    registry: ModelRegistryResource,
    reports: ReportsResource,
    cohort: date,
    version: str,
    measured: Measured,
    rows: pd.DataFrame,
) -> tuple[Path | None, str]:
    """Evidently's HTML (when asked for) and the MLflow run: what a person opens to look."""
    build_html = reports.drift_html if config.html_report is None else config.html_report
    html_path = (
        write_html_report(
            context,
            html_report_path(reports.folder, cohort, version),
            measured.html_reference,
            measured.html_current,
            measured.numerical,
            measured.categorical,
            evidently_note(measured),
        )
        if build_html
        else None
    )
    run_id = log_run(
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
    return html_path, run_id


def _record(
    warehouse: DuckDBResource,
    cohort: date,
    rows: pd.DataFrame,
    measured: Measured,
    details: tuple[str, str],
) -> None:
    """drift_metrics rows and the three drift verdicts, in one transaction."""
    with warehouse.get_connection() as conn:
        conn.register("drift_rows", rows)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort})
            record_verdict(conn, cohort, "data_drift", measured.data.tier, details[0])
            record_verdict(
                conn, cohort, "prediction_drift", measured.prediction["tier"], details[1]
            )
            record_verdict(
                conn, cohort, "target_drift", measured.target.severity, measured.target.detail
            )


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
        metadata=readable({"cohort_month": cohort.isoformat(), "status": detail}),
        check_results=[
            check_result(DRIFT_CHECK, "n/a", detail, {}),
            check_result(PREDICTION_CHECK, "n/a", detail, {}),
        ],
    )
