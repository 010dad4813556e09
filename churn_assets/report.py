"""A plain-text account of a replay: what ran, what drifted, which models were registered."""

from __future__ import annotations

import dagster as dg
import duckdb
from mlflow.tracking import MlflowClient

from churn_assets.dagster_internals import AssetCheckExecutionRecordStatus
from churn_assets.keys import DRIFT_CHECK_KEY, PROMOTED_TAG
from churn_assets.replay import ReplaySummary
from churn_assets.reports.at_risk import FOLDER as AT_RISK_FOLDER
from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME, ChurnPaths
from churn_assets.warehouse import table_exists


def print_drift_checks(summary: ReplaySummary, instance: dg.DagsterInstance) -> None:
    """Every evaluation of the drift check, and the retraining it led to (Dagster event log)."""
    print("\n== drift check evaluations (drift_report.feature_drift)")
    retrains = {run.partition: run for run in summary.runs if run.origin == "training_sensor"}
    history = instance.event_log_storage.get_asset_check_execution_history(
        DRIFT_CHECK_KEY, limit=1000
    )
    for execution in sorted(history, key=lambda e: e.id):
        if execution.status not in (
            AssetCheckExecutionRecordStatus.SUCCEEDED,
            AssetCheckExecutionRecordStatus.FAILED,
        ):
            continue
        metadata = execution.event.dagster_event.asset_check_evaluation_data.metadata
        failed = execution.status == AssetCheckExecutionRecordStatus.FAILED
        line = (
            f"{str(execution.partition)[:7]}  {'FAILED' if failed else 'passed':<6} "
            f"drifted share {metadata['drifted_share'].value:.0%} against model "
            f"v{metadata['reference_model_version'].value}"
        )
        retrain = retrains.get(execution.partition)
        if failed and retrain is not None and retrain.run_id != execution.run_id:
            line += f"  -> training_sensor retrained ({retrain.job} run {retrain.run_id[:8]})"
        print(line)


def print_at_risk_lists(paths: ChurnPaths) -> None:
    """The weekly lists the replay wrote, and where the newest one is."""
    with duckdb.connect(str(paths.warehouse), read_only=True) as conn:
        if not table_exists(conn, "at_risk_lists"):
            return
        weeks = conn.execute(
            "SELECT week, any_value(cohort_month), count(*) FILTER (bucket = 'A' AND change <> "
            "'left'), count(*) FILTER (bucket = 'B' AND change <> 'left'), "
            "count(*) FILTER (change = 'new'), count(*) FILTER (change = 'left') "
            "FROM at_risk_lists GROUP BY week ORDER BY week"
        ).fetchall()
    print("\n== weekly at-risk lists")
    for week, cohort, a, b, new, left in weeks:
        print(f"{week}  cohort {cohort:%Y-%m}  call {a}  offer {b}  new {new}  left {left}")
    if weeks:
        print(f"newest: {paths.reports / AT_RISK_FOLDER / f'at_risk_{weeks[-1][0]}.html'}")


def print_summary(
    summary: ReplaySummary, paths: ChurnPaths, instance: dg.DagsterInstance | None = None
) -> None:
    print("\n== runs")
    for run in summary.runs:
        print(
            f"{run.month:%Y-%m}  {run.origin:<17} {run.job:<13} {str(run.partition)[:7]:<8} "
            f"{'ok' if run.success else 'FAILED':<6} {', '.join(run.assets)}"
        )
    with duckdb.connect(str(paths.warehouse), read_only=True) as conn:
        print("\n== drift verdicts (monitor_verdicts)")
        for cohort, severity, detail in conn.execute(
            "SELECT cohort_month, severity, detail FROM monitor_verdicts "
            "WHERE monitor = 'data_drift' ORDER BY evaluated_at"
        ).fetchall():
            print(f"{cohort:%Y-%m}  {severity:<5} {detail[:110]}")
    if instance is not None:
        print_drift_checks(summary, instance)
    with duckdb.connect(str(paths.warehouse), read_only=True) as conn:
        print("\n== predictions")
        for cohort, version, users, a, b, c in conn.execute(
            "SELECT cohort_month, model_version, count(*), count(*) FILTER (bucket = 'A'), "
            "count(*) FILTER (bucket = 'B'), count(*) FILTER (bucket = 'C') "
            "FROM predictions GROUP BY ALL ORDER BY cohort_month"
        ).fetchall():
            print(f"{cohort:%Y-%m}  model v{version}  {users} users  A {a}  B {b}  C {c}")
    print_at_risk_lists(paths)
    client = MlflowClient(paths.mlflow_tracking_uri)
    # Search results leave aliases out: fetch each version whole.
    versions = [
        client.get_model_version(REGISTERED_MODEL_NAME, v.version)
        for v in sorted(
            client.search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'"),
            key=lambda v: int(v.version),
        )
    ]
    print(f"\n== registered versions of {REGISTERED_MODEL_NAME}")
    for v in versions:
        if PROMOTED_TAG not in v.tags:  # cut off mid-registration: never served nor backtested
            print(f"v{v.version}  registration cut off (no '{PROMOTED_TAG}' tag): ignored")
            continue
        print(
            f"v{v.version}  as of {v.tags.get('as_of_month')}  "
            f"val AUC {float(v.tags.get('val_auc', 'nan')):.3f}"
            f"  promoted {v.tags.get(PROMOTED_TAG)}  aliases {', '.join(v.aliases) or '-'}"
        )
    retrains = [r for r in summary.runs if r.origin == "training_sensor"]
    champion = next((v.version for v in versions if CHAMPION_ALIAS in v.aliases), None)
    print(
        f"\n{len(retrains)} training run(s) launched by training_sensor; "
        f"{len(versions)} registered version(s); champion v{champion}"
    )
