"""The ``model_health_report`` asset: each month, the model's health in pictures.

Model health over cohorts (AUC, log loss and lift of every version, estimated beside realised),
calibration, importance, drift over time with its tiers, bucket sizes and the retraining
decisions on the timeline, drawn from the warehouse as it stood for the month
(:mod:`churn_assets.reports.health_data`). Three places show them:

* PNGs and one HTML page per month under ``$CHURN_HOME/reports/health/YYYY-MM/``;
* the materialization: the two main pictures inline (Markdown with a ``data:`` image, which the
  Dagster UI renders without any server), all of them through ``churn-assets serve``'s
  /reports route, and http links to the page, the drift report, the model card and MLflow;
* plain numbers in the metadata, one value per monthly partition, which the asset's Plots tab
  draws across months.

A model card per registered version is rewritten too (:mod:`churn_assets.reports.model_cards`):
a promotion or a new backtest changes a card's story, and this runs after both each month.
"""

# No ``from __future__ import annotations``: Dagster reads the context's annotation.
import base64
import math
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.exceptions import MlflowException

from churn_assets import keys
from churn_assets.monitoring.drift import html_report_path
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.readable import readable
from churn_assets.reports.health_charts import CHARTS, render_all
from churn_assets.reports.health_data import HealthData, load_health
from churn_assets.reports.health_page import HealthPage, page_folder
from churn_assets.reports.model_cards import write_model_cards
from churn_assets.resources import ModelRegistryResource, ReportsResource

# Shown inline in the materialization (each a few tens of kB in the event log); the others are
# linked through the reports route.
INLINE = ("performance", "drift")
METRICS = ("auc", "log_loss", "lift_top_decile")


@dg.asset(
    group_name="reports",
    kinds={"duckdb", "html"},
    partitions_def=monthly_partitions,
    deps=[keys.PREDICTIONS, keys.PERFORMANCE_ESTIMATE, keys.DRIFT_REPORT],
)
def model_health_report(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBResource,
    reports: ReportsResource,
    registry: ModelRegistryResource,
) -> dg.MaterializeResult:
    """The month's health page: pictures, figures and links, and every version's model card."""
    month = month_start(context.partition_key)
    with warehouse.get_connection() as conn:
        data = load_health(conn, month)
        cards = write_model_cards(registry, reports, conn)
    pictures = render_all(data, page_folder(reports.folder, month))
    champion = data.scoring_versions().get(month_key(data), "")
    links = page_links(data, reports, registry, champion)
    figures = health_figures(data, len(cards))
    page = HealthPage(month, champion or "none", figures, pictures, links).write(reports.folder)
    context.log.info(f"health page of {month:%Y-%m}: {page} ({len(pictures)} pictures)")
    return dg.MaterializeResult(
        metadata=readable(
            {
                **figures,
                "champion_version": champion or "none",
                "health_page": dg.MetadataValue.url(reports.url(page)),
                **{label: dg.MetadataValue.url(url) for label, url in links.items()},
                "page_path": dg.MetadataValue.path(str(page)),
                **{f"{name}_picture": _inline(pictures[name]) for name in INLINE},
                "pictures": dg.MetadataValue.md(
                    "\n\n".join(
                        f"![{CHARTS[name][0]}]({reports.url(path)})"
                        for name, path in pictures.items()
                    )
                ),
            }
        )
    )


def month_key(data: HealthData) -> pd.Timestamp:
    """The month as the frames' cohort_month index holds it."""
    return pd.Timestamp(data.month)


def page_links(
    data: HealthData, reports: ReportsResource, registry: ModelRegistryResource, champion: str
) -> dict[str, str]:
    """http links from the page and the materialization: reports, cards and MLflow."""
    links = {"all_reports": f"{reports.public_url.rstrip('/')}/"}
    drift = html_report_path(reports.folder, data.month, champion) if champion else None
    if drift is not None and drift.exists():
        links["drift_report"] = reports.url(drift)
    if champion:
        card = reports.card_path(champion)
        if card.exists():
            links["model_card"] = reports.url(card)
        links["mlflow_model_version"] = reports.version_url(champion)
        run = _training_run(registry, champion)
        if run is not None:
            links["mlflow_training_run"] = reports.run_url(*run)
    return links


def _training_run(registry: ModelRegistryResource, version: str) -> tuple[str, str] | None:
    """The experiment and run that trained ``version``; None once retention deleted it."""
    try:
        run_id = registry.client.get_model_version(registry.model_name, version).run_id
        return (registry.client.get_run(run_id).info.experiment_id, run_id) if run_id else None
    except MlflowException:
        return None


def health_figures(data: HealthData, versions: int) -> dict[str, float | int]:
    """The month's numbers, flat, so the Plots tab draws each across the monthly partitions."""
    figures: dict[str, float | int] = {}
    for metric in METRICS:
        estimate = data.this_month(data.champion_estimates(metric))
        figures[f"estimated_{metric}"] = _first(estimate, "estimate")
    newest = data.newest_realised()
    for metric in METRICS:
        figures[f"realised_{metric}"] = _first(newest, metric)
    drift = data.this_month(data.drift)
    figures["weighted_psi"] = _first(drift, "weighted_psi")
    figures["prediction_psi"] = _first(drift, "prediction_psi")
    figures["drifted_columns"] = int(_first(drift, "drifted_columns", 0))
    figures["judged_columns"] = int(_first(drift, "judged_columns", 0))
    figures["calibration_error"] = data.calibration_error()
    table = data.bucket_table()
    this = table.loc[month_key(data)] if month_key(data) in table.index else None
    for bucket in ("A", "B", "C"):
        figures[f"bucket_{bucket.lower()}_users"] = int(this[bucket]) if this is not None else 0
    figures["retraining_decisions"] = len(data.this_month(data.decisions))
    figures["registered_versions"] = versions
    return figures


def _first(frame: pd.DataFrame, column: str, default: float = math.nan) -> float:
    if frame.empty or column not in frame or frame[column].isna().all():
        return default
    return float(frame[column].dropna().iloc[0])


def _inline(path: Path) -> dg.MetadataValue:
    """A picture the Dagster UI renders inline: Markdown with the PNG as a ``data:`` URI."""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return dg.MetadataValue.md(f"![{path.stem}](data:image/png;base64,{encoded})")
