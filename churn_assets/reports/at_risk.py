"""The ``at_risk_list`` asset: each week, who the retention team calls or makes an offer to.

The list is the newest scored cohort's users in buckets A and B outside the control group, with
their probability, bucket, three reasons and the action of their bucket, and what changed since
the list before (new, moved between buckets, left). It is written to the warehouse
(``at_risk_lists``), as CSV and HTML under ``$CHURN_HOME/reports/at_risk/``, and mailed to the
alert recipients when mail is configured.

Unpartitioned, with the week in its config (the weekly schedule sets it): a week adds no data of
its own, it is a view of the newest monthly cohort, and a weekly partition calendar would have to
start before any world the loop replays. The history lives in ``at_risk_lists``, a week per key,
and rebuilding a week replaces only that week.
"""

# No ``from __future__ import annotations``: Dagster reads the asset's config class from its
# annotation.
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from churn_assets import keys
from churn_assets.alerts.channels import AlertsResource
from churn_assets.readable import readable
from churn_assets.reports.at_risk_page import ListPage, write_pages
from churn_assets.resources import ReportsResource
from churn_assets.scoring.buckets import ACTIONS
from churn_assets.warehouse import run_sql_file, table_exists, transaction

SQL = Path(__file__).parent / "at_risk_list.sql"
FOLDER = "at_risk"


def week_start(day: date) -> date:
    """The Monday of ``day``'s week: a week's list is named by its Monday."""
    return day - timedelta(days=day.weekday())


def newest_scored_cohort(conn: duckdb.DuckDBPyConnection, week: date) -> date | None:
    """The newest cohort scored by ``week`` (a cohort is scored on the first day of its month)."""
    if not table_exists(conn, "predictions"):
        return None
    [(cohort,)] = conn.execute(
        "SELECT max(cohort_month) FROM predictions WHERE cohort_month <= ?", [week]
    ).fetchall()
    return cohort


class AtRiskListConfig(dg.Config):
    week: str = Field(
        default="", description="Monday of the list's week, YYYY-MM-DD; empty: this week."
    )

    def monday(self) -> date:
        return week_start(date.fromisoformat(self.week) if self.week else date.today())


@dg.asset(
    group_name="reports",
    kinds={"duckdb", "csv", "html"},
    deps=[keys.PREDICTIONS],
)
def at_risk_list(
    context: dg.AssetExecutionContext,
    config: AtRiskListConfig,
    warehouse: DuckDBResource,
    reports: ReportsResource,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    """This week's list of users to call (A) or make an offer to (B), and what changed."""
    week = config.monday()
    with warehouse.get_connection() as conn:
        cohort = newest_scored_cohort(conn, week)
        if cohort is None:
            raise dg.Failure(f"no cohort scored by the week of {week}: materialize predictions")
        listed, previous_week = _write_list(conn, week, cohort)
        [(model_version, policy)] = conn.execute(
            "SELECT any_value(model_version), any_value(bucket_policy) FROM predictions "
            "WHERE cohort_month = ?",
            [cohort],
        ).fetchall()
    policy = policy or "cut-offs (scored before policies were recorded)"
    page = ListPage(week, cohort, previous_week, model_version, policy, listed)
    csv_path, html_path = write_pages(page, reports.folder / FOLDER)
    mailed = alerts.mail_report(page.subject(), page.mail_body(), [csv_path, html_path])
    context.log.info(f"at-risk list of {week}: {page.summary()}; mail {mailed}")
    links = {"list_url": reports.url(html_path), "csv_url": reports.url(csv_path)}
    metadata = _metadata(page, csv_path, html_path, mailed, links)
    return dg.MaterializeResult(metadata=readable(metadata))


def _write_list(
    conn: duckdb.DuckDBPyConnection, week: date, cohort: date
) -> tuple[pd.DataFrame, date | None]:
    """The week's list stored (replacing that week's), and the week it was compared with."""
    # Registered first: DuckDB registers nothing while a result (table_exists') is unread.
    conn.register("actions", pd.DataFrame(ACTIONS.items(), columns=["bucket", "action"]))
    previous = None
    if table_exists(conn, "at_risk_lists"):
        [(previous,)] = conn.execute(
            "SELECT max(week) FROM at_risk_lists WHERE week < ?", [week]
        ).fetchall()
    params = {"week": week, "cohort": cohort, "listed_at": datetime.now()}
    with transaction(conn):
        listed = run_sql_file(conn, SQL, params).df()
    conn.unregister("actions")
    return listed, previous


def _metadata(
    page: ListPage, csv_path: Path, html_path: Path, mailed: str, links: dict[str, str]
) -> dict[str, object]:
    """What the materialization shows: the week, the policy, the counts, where the files are
    (on disk, and as http links through ``churn-assets serve``)."""
    on_list = page.on_list()
    return {
        "dagster/row_count": len(on_list),
        "week": page.week.isoformat(),
        "cohort_month": page.cohort.isoformat(),
        "compared_with_week": page.previous_week.isoformat() if page.previous_week else "none",
        "model_version": str(page.model_version),
        "bucket_policy": page.policy,
        "bucket_counts": dg.MetadataValue.json(page.bucket_counts()),
        "changes": dg.MetadataValue.json(page.change_counts()),
        "path": dg.MetadataValue.path(str(csv_path)),
        "html_path": dg.MetadataValue.path(str(html_path)),
        **{label: dg.MetadataValue.url(url) for label, url in links.items()},
        "mail": mailed,
        "riskiest": dg.MetadataValue.md(
            on_list.head(10)[
                ["msno", "churn_probability", "bucket", "action", "change"]
            ].to_markdown(index=False)
        ),
    }
