"""The monthly schedule: on the first day of month T, load month T-1 and the labels of T-2.

Everything after the loads is event-driven (see ``sensors``), so each step starts as soon as its
inputs exist rather than at a guessed hour.
"""

import dagster as dg

from churn_assets.automation.jobs import load_job
from churn_assets.partitions import LABEL_DELAY_MONTHS, add_months, month_start, partition_key
from churn_assets.raw.landing import LandingFormatError, label_files
from churn_assets.resources import LandingResource

RAW_MONTHLY = [dg.AssetKey("members"), dg.AssetKey("transactions"), dg.AssetKey("user_logs")]


@dg.schedule(
    cron_schedule="0 3 1 * *",
    job=load_job,
    description="Monthly: load last month's raw data and the labels that just became known.",
)
def monthly_schedule(context: dg.ScheduleEvaluationContext, landing: LandingResource):
    today = month_start(context.scheduled_execution_time.date())
    data_month = add_months(today, -1)
    labeled_cohort = add_months(today, -LABEL_DELAY_MONTHS)
    yield dg.RunRequest(
        run_key=f"raw-{partition_key(data_month)}",
        partition_key=partition_key(data_month),
        asset_selection=RAW_MONTHLY,
    )
    try:
        has_labels = bool(label_files(landing.folder, f"{labeled_cohort:%Y%m}"))
    except LandingFormatError:
        has_labels = False
    if has_labels:
        yield dg.RunRequest(
            run_key=f"labels-{partition_key(labeled_cohort)}",
            partition_key=partition_key(labeled_cohort),
            # Labels in, then every registered model is backtested on the cohort.
            asset_selection=[dg.AssetKey("labels"), dg.AssetKey("model_performance")],
        )
    else:
        context.log.info(f"no label file for cohort {labeled_cohort:%Y-%m} has landed yet")
