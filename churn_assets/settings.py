"""Every knob of the project in one place: paths from the environment, names other tools rely on.

The defaults need no running service: a DuckDB file, a SQLite MLflow store and a local Dagster
home, all under ``CHURN_HOME``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

EXPERIMENT_NAME = "churn"
REGISTERED_MODEL_NAME = "churn-model"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"

# Bucket cut-offs on the churn probability: scoring assigns buckets with them, and the backtests
# judge bucket A (and F2) at the same serving threshold.
BUCKET_A_MIN_PROBABILITY = 0.3
BUCKET_B_MIN_PROBABILITY = 0.1


@dataclass(frozen=True)
class ChurnPaths:
    """Where local state lives, resolved from the environment at call time."""

    home: Path
    landing: Path
    warehouse: Path
    reports: Path
    mlflow_tracking_uri: str
    mlflow_artifacts: Path
    dagster_home: Path
    duckdb_memory_limit: str
    duckdb_spill_dir: Path


def churn_paths(environ: dict[str, str] | None = None) -> ChurnPaths:
    """Resolve the DESIGN §1 variables (``CHURN_HOME`` and friends) into absolute paths."""
    env = os.environ if environ is None else environ
    home = Path(env.get("CHURN_HOME", ".churn")).expanduser().resolve()
    landing = Path(env.get("CHURN_LANDING_DIR", home / "landing")).expanduser().resolve()
    tracking_uri = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
    dagster_home = Path(env.get("DAGSTER_HOME", home / "dagster")).expanduser().resolve()
    return ChurnPaths(
        home=home,
        landing=landing,
        warehouse=home / "warehouse.duckdb",
        reports=home / "reports",
        mlflow_tracking_uri=tracking_uri,
        mlflow_artifacts=home / "mlartifacts",
        dagster_home=dagster_home,
        # DuckDB streams what fits and spills the rest, so full-size loads run in bounded memory.
        duckdb_memory_limit=env.get("CHURN_DUCKDB_MEMORY_LIMIT", "3GB"),
        duckdb_spill_dir=Path(env.get("CHURN_DUCKDB_SPILL_DIR", home / "duckdb_spill")),
    )


def training_budget_s(environ: dict[str, str] | None = None) -> float:
    """FLAML's search budget for automated retraining (``CHURN_TRAINING_BUDGET_S``, default 30)."""
    env = os.environ if environ is None else environ
    return float(env.get("CHURN_TRAINING_BUDGET_S", "30"))


def auto_promote(environ: dict[str, str] | None = None) -> bool:
    """Whether automated training may promote a better challenger (``CHURN_AUTO_PROMOTE``).

    ``false`` leaves every champion change after the first to ``promotion_job`` (or the CLI).
    """
    env = os.environ if environ is None else environ
    return env.get("CHURN_AUTO_PROMOTE", "true").strip().lower() not in {"0", "false", "no"}


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go: always a log file; mail and a webhook when configured."""

    log_path: Path
    smtp_host: str
    smtp_port: int
    smtp_from: str
    email_to: tuple[str, ...]
    smtp_user: str
    smtp_password: str
    smtp_starttls: bool
    webhook_url: str
    slow_run_s: float
    dagster_url: str


def alert_settings(environ: dict[str, str] | None = None) -> AlertSettings:
    """Resolve the ``CHURN_ALERT_*`` variables (README, Alerts)."""
    env = os.environ if environ is None else environ
    recipients = env.get("CHURN_ALERT_EMAIL_TO", "").split(",")
    starttls = env.get("CHURN_ALERT_SMTP_STARTTLS", "").strip().lower()
    return AlertSettings(
        log_path=churn_paths(env).home / "logs" / "alerts.log",
        smtp_host=env.get("CHURN_ALERT_SMTP_HOST", ""),
        smtp_port=int(env.get("CHURN_ALERT_SMTP_PORT") or 25),
        smtp_from=env.get("CHURN_ALERT_SMTP_FROM", ""),
        email_to=tuple(a.strip() for a in recipients if a.strip()),
        smtp_user=env.get("CHURN_ALERT_SMTP_USER", ""),
        smtp_password=env.get("CHURN_ALERT_SMTP_PASSWORD", ""),
        smtp_starttls=starttls in {"1", "true", "yes"},
        webhook_url=env.get("CHURN_ALERT_WEBHOOK_URL", ""),
        slow_run_s=float(env.get("CHURN_ALERT_SLOW_RUN_S") or 3600),
        dagster_url=env.get("CHURN_ALERT_DAGSTER_URL", "http://127.0.0.1:3000").rstrip("/"),
    )


def retraining_settings(environ: dict[str, str] | None = None) -> dict:
    """The retraining policy's knobs (see :mod:`churn_assets.automation.retraining`).

    ``CHURN_RETRAIN_DRIFT_TIER`` (WARN or ERROR, default WARN): the drift tier that retrains. A
    warning already retrains because the other guards bound the cost (one training per newest
    labelled cohort) and a candidate replaces the champion only when it beats it on users neither
    was tuned on, while waiting for an error let a moderate, lasting shift go unanswered;
    ``CHURN_RETRAIN_STALE_COHORTS`` (default 3): labels the champion learnt from may be this many
    cohorts older than the newest before it is retrained; ``CHURN_RETRAIN_COOLDOWN_MONTHS``
    (default 1): months between two trainings.
    """
    env = os.environ if environ is None else environ
    tier = env.get("CHURN_RETRAIN_DRIFT_TIER", "WARN").strip().upper()
    if tier not in ("ERROR", "WARN"):
        raise ValueError(f"CHURN_RETRAIN_DRIFT_TIER must be ERROR or WARN, not {tier!r}")
    return {
        "drift_tier": tier,
        "stale_after_cohorts": int(env.get("CHURN_RETRAIN_STALE_COHORTS", "3")),
        "cooldown_months": int(env.get("CHURN_RETRAIN_COOLDOWN_MONTHS", "1")),
    }


def control_share(environ: dict[str, str] | None = None) -> float:
    """Share of users held out of retention actions (``CHURN_CONTROL_SHARE``, default 0.1)."""
    env = os.environ if environ is None else environ
    return float(env.get("CHURN_CONTROL_SHARE", "0.1"))


def drift_html_enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether drift_report builds Evidently's HTML (``CHURN_DRIFT_HTML``, default true)."""
    env = os.environ if environ is None else environ
    return env.get("CHURN_DRIFT_HTML", "true").strip().lower() not in {"0", "false", "no"}
