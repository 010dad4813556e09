"""Asset jobs: one per moment of the monthly loop."""

from __future__ import annotations

import dagster as dg
from dagster_mlflow import end_mlflow_on_run_finished

from churn_assets import keys
from churn_assets.partitions import monthly_partitions
from churn_assets.training.lifecycle_ops import change_champion_op, delete_old_versions_op

# New raw data: a month of transactions and listening, members refreshed, a cohort's labels.
# The schedule picks the subset and partition of each run (labels lag the logs by a month); a
# cohort's labels are loaded together with the backtest they make possible.
load_job = dg.define_asset_job(
    keys.LOAD_JOB,
    selection=dg.AssetSelection.assets(
        keys.MEMBERS,
        keys.TRANSACTIONS,
        keys.USER_LOGS,
        keys.LABELS,
        keys.MODEL_PERFORMANCE,
        keys.RETENTION_OUTCOME,
    ),
    partitions_def=monthly_partitions,
    description="Load raw landing files into DuckDB, one monthly partition at a time; backtest "
    "the registered models on a cohort whose labels landed.",
)

# Cohort of the new month: its features, its scores (published to the online store too), the
# performance they promise, how far it drifted, and the month's health page; a labelled cohort
# rebuilt (a file it read was replaced) is backtested again too.
cohort_job = dg.define_asset_job(
    keys.COHORT_JOB,
    selection=dg.AssetSelection.assets(
        keys.FEATURES,
        keys.PREDICTIONS,
        keys.ONLINE_FEATURES,
        keys.PERFORMANCE_ESTIMATE,
        keys.DRIFT_REPORT,
        keys.MODEL_PERFORMANCE,
        keys.RETENTION_OUTCOME,
        keys.MODEL_HEALTH_REPORT,
    ),
    partitions_def=monthly_partitions,
    description="Build a cohort's features, score it with the champion, estimate its "
    "performance before labels, and measure drift; backtest a labelled cohort that was rebuilt; "
    "draw the month's health page.",
)

# Retrain, then re-score (and re-publish), re-estimate and re-measure the cohort that asked for it.
training_job = dg.define_asset_job(
    keys.TRAINING_JOB,
    selection=dg.AssetSelection.assets(
        keys.CHURN_MODEL,
        keys.PREDICTIONS,
        keys.ONLINE_FEATURES,
        keys.PERFORMANCE_ESTIMATE,
        keys.DRIFT_REPORT,
        keys.MODEL_HEALTH_REPORT,
    ),
    partitions_def=monthly_partitions,
    hooks={end_mlflow_on_run_finished},
    description="Train and register a new model version, then re-score (and re-estimate) the "
    "cohort, and redraw its health page with the new version's card.",
)


@dg.job(
    name=keys.PROMOTION_JOB,
    description="Promote a registered version to champion, or roll back (config: action, "
    "version, reason). Every change is recorded in model_promotions and MLflow tags.",
)
def promotion_job() -> None:
    change_champion_op()


@dg.job(
    name=keys.RETENTION_JOB,
    description="Delete registered versions created before a date (config: created_before); "
    "the champion, the challenger and the rollback target are never deleted.",
)
def retention_job() -> None:
    delete_old_versions_op()


# The weekly at-risk list, from the newest scored cohort (the week comes in its config).
at_risk_job = dg.define_asset_job(
    keys.AT_RISK_JOB,
    selection=dg.AssetSelection.assets(keys.AT_RISK_LIST),
    description="Write the week's at-risk list (CSV, HTML, mail) from the newest scored cohort.",
)

ALL_JOBS = [load_job, cohort_job, training_job, promotion_job, retention_job, at_risk_job]
