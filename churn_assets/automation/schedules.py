"""The monthly schedule: on the first day of month T, load month T-1 and the labels of T-2; and
the weekly one: every Monday, the at-risk list from the newest scored cohort.

Only what has landed is asked for (see :mod:`churn_assets.automation.loads`): a month whose files
are late is skipped with a reason and loaded by ``landing_sensor`` when they arrive. Everything
after the loads is event-driven (see ``sensors``), so each step starts as soon as its inputs exist.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from churn_assets.automation.jobs import at_risk_job, load_job
from churn_assets.automation.loads import label_load, month_load, register_calendar
from churn_assets.partitions import LABEL_DELAY_MONTHS, add_months, month_start
from churn_assets.reports.at_risk import newest_scored_cohort, week_start
from churn_assets.resources import LandingResource


@dg.schedule(
    cron_schedule="0 3 1 * *",
    job=load_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Monthly: load last month's raw data and the labels that just became known.",
)
def monthly_schedule(context: dg.ScheduleEvaluationContext, landing: LandingResource):
    today = month_start(context.scheduled_execution_time.date())
    data_month = add_months(today, -1)
    labelled_cohort = add_months(today, -LABEL_DELAY_MONTHS)
    catalog = landing.catalog()
    register_calendar(context.instance, catalog, today)
    requests = [
        month_load(context.instance, catalog, data_month, f"monthly load of {data_month:%Y-%m}"),
        label_load(
            context.instance, catalog, labelled_cohort, f"labels of {labelled_cohort:%Y-%m} due"
        ),
    ]
    requests = [r for r in requests if r is not None]
    if not requests:
        return dg.SkipReason(
            f"nothing new to load for {data_month:%Y-%m} (files not landed, or already loaded) "
            f"nor labels of {labelled_cohort:%Y-%m}"
        )
    return requests


@dg.schedule(
    cron_schedule="0 6 * * 1",
    job=at_risk_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly, on Monday: the at-risk list (A to call, B to make an offer) of the "
    "newest scored cohort, with what changed since last week.",
)
def weekly_schedule(context: dg.ScheduleEvaluationContext, warehouse: DuckDBResource):
    week = week_start(context.scheduled_execution_time.date())
    with warehouse.get_connection() as conn:
        cohort = newest_scored_cohort(conn, week)
    if cohort is None:
        return dg.SkipReason(f"no cohort scored by the week of {week}: no list to write")
    return dg.RunRequest(
        run_key=f"at_risk_list_{week}",
        run_config={"ops": {"at_risk_list": {"config": {"week": week.isoformat()}}}},
        tags={"churn/week": week.isoformat(), "churn/cohort": f"{cohort:%Y-%m}"},
    )
