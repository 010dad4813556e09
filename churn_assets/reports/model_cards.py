"""Model cards: one HTML page per registered version, under ``$CHURN_HOME/reports/models/``.

What a version learnt from (its cohorts, validation cohort, features), how it scored on
validation and against the baselines, the hurdle it cleared, how it compared with the champion,
every champion change it took part in (``model_promotions``) and how it did on every labelled
cohort since (``model_performance``). All of it is read from what training and promotion
already record (version tags, the run's metrics, the two tables); nothing here decides anything.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from churn_assets.resources import ModelRegistryResource, ReportsResource
from churn_assets.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS
from churn_assets.warehouse import table_exists

# The tags a card shows, in order, with what each means to a reader.
STORY_TAGS = {
    "as_of_month": "trained as of",
    "validation_cohort": "validation cohort",
    "trained_on_incomplete_cohorts": "trained on incomplete cohorts",
    "cleared_hurdle": "cleared the hurdle",
    "hurdle": "hurdle",
    "compared_with_champion": "compared with champion",
    "beats_champion": "beats champion",
    "comparison": "comparison",
}
CARD_METRICS = ["val_auc", "val_log_loss", "val_brier", "val_ks", "val_lift_top_decile"]
PROMOTION_COLUMNS = ["changed_at", "action", "previous_version", "reason"]
PERFORMANCE_COLUMNS = ["cohort_month", "auc", "log_loss", "lift_top_decile", "is_champion", "users"]
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 60em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
th { background: #f4f4f4; }
"""


@dataclass(frozen=True)
class CardLinks:
    """Where a card points: the version and its run in the MLflow UI."""

    version_url: str
    run_url: str


def write_model_cards(
    registry: ModelRegistryResource, reports: ReportsResource, conn: duckdb.DuckDBPyConnection
) -> dict[str, Path]:
    """A card for every version registered whole, rewritten with what is known now."""
    promotions = _table(conn, "model_promotions", "changed_at")
    performance = _table(conn, "model_performance", "cohort_month")
    # Searched versions do not carry their aliases: ask for each alias.
    holders = {
        alias: registry.version_by_alias(alias) for alias in (CHAMPION_ALIAS, CHALLENGER_ALIAS)
    }
    cards = {}
    for version in registry.registered_versions():
        number = str(version.version)
        run = _run(registry, version)
        links = CardLinks(
            reports.version_url(number),
            reports.run_url(run.info.experiment_id, version.run_id) if run else "",
        )
        page = card_html(
            version,
            run.data.metrics if run else {},
            promotions[promotions["model_version"] == number] if len(promotions) else promotions,
            performance[performance["model_version"] == number]
            if len(performance)
            else performance,
            aliases=[a for a, held in holders.items() if held and str(held.version) == number],
            links=links,
        )
        path = reports.card_path(number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page)
        cards[number] = path
    return cards


def _run(registry: ModelRegistryResource, version: ModelVersion):
    try:
        return registry.client.get_run(version.run_id) if version.run_id else None
    except MlflowException:
        return None  # a run deleted from the store: the card tells what the tags say


def _table(conn: duckdb.DuckDBPyConnection, table: str, order: str) -> pd.DataFrame:
    if not table_exists(conn, table):
        return pd.DataFrame(columns=["model_version"])
    return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").df()


def card_html(
    version: ModelVersion,
    metrics: dict[str, float],
    promotions: pd.DataFrame,
    performance: pd.DataFrame,
    *,
    aliases: list[str],
    links: CardLinks,
) -> str:
    """The card of one version, as a self-contained HTML page."""
    tags = version.tags
    cohorts = ", ".join(c[:7] for c in json.loads(tags.get("training_cohorts", "[]"))) or "?"
    features = json.loads(tags.get("feature_columns", "[]"))
    rows = [("learnt from cohorts", cohorts), ("features", f"{len(features)}")]
    rows += [(label, tags[key]) for key, label in STORY_TAGS.items() if key in tags]
    is_champion = CHAMPION_ALIAS in aliases
    shown = {k: metrics[k] for k in CARD_METRICS if k in metrics} | {
        k: metrics[k] for k in sorted(metrics) if k.startswith("baseline_") and k.endswith("_auc")
    }
    mlflow = [f'<a href="{html.escape(links.version_url)}">model version in MLflow</a>']
    if links.run_url:
        mlflow.append(f'<a href="{html.escape(links.run_url)}">training run in MLflow</a>')
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>churn-model v{version.version}"
        f"</title><style>{STYLE}</style></head><body>"
        f"<h1>churn-model v{version.version}{' (champion)' if is_champion else ''}</h1>"
        f"<p>aliases: {html.escape(', '.join(aliases) or 'none')} · {' · '.join(mlflow)}</p>"
        f"<h2>What it learnt from, and its hurdle</h2>{_pairs(rows)}"
        f"<h2>Validation metrics</h2>{_pairs([(k, f'{v:.4f}') for k, v in shown.items()])}"
        f"<h2>Promotion story</h2>{_frame(promotions, PROMOTION_COLUMNS)}"
        f"<h2>Realised on labelled cohorts</h2>{_frame(performance, PERFORMANCE_COLUMNS)}"
        f"<details><summary>features ({len(features)})</summary>"
        f"<p>{html.escape(', '.join(features))}</p></details></body></html>"
    )


def _pairs(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{cells}</table>" if rows else "<p>none recorded</p>"


def _frame(frame: pd.DataFrame, columns: list[str]) -> str:
    present = [c for c in columns if c in frame.columns]
    if frame.empty or not present:
        return "<p>none yet</p>"
    return frame[present].to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0)
