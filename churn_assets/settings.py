"""The environment, read once: where local state lives, and the deployment's knobs.

DESIGN §1 names every variable. Paths resolve here; every other knob is a field of a typed
resource (:mod:`churn_assets.resources`) or a ``dg.Config`` and keeps its one default there: this
module only reads the variables that are set, parses them, and names the variable when a value
cannot be used. :func:`churn_assets.resources.default_resources` calls it once, when the
definitions load, so a sensor tick or a run never reads the environment itself.

The defaults need no running service: a DuckDB file, a SQLite MLflow store and a local Dagster
home, all under ``CHURN_HOME``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPERIMENT_NAME = "churn"
REGISTERED_MODEL_NAME = "churn-model"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"

# Bucket cut-offs on the churn probability: scoring assigns buckets with them, and the backtests
# judge bucket A (and F2) at the same serving threshold.
BUCKET_A_MIN_PROBABILITY = 0.3
BUCKET_B_MIN_PROBABILITY = 0.1

# ``churn-assets serve``'s address by default; its ``/reports`` route serves $CHURN_HOME/reports.
SERVE_HOST, SERVE_PORT = "127.0.0.1", 8000
# Where links in the Dagster UI point: the reports through ``serve``, runs and versions in the
# MLflow UI (``mlflow ui`` or ``mlflow server`` on its default port).
DEFAULT_REPORTS_URL = f"http://{SERVE_HOST}:{SERVE_PORT}/reports"
DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"


class SettingsError(ValueError):
    """An environment variable whose value cannot be used; the message names the variable."""


@dataclass(frozen=True)
class ChurnPaths:
    """Where local state lives, resolved from the environment."""

    home: Path
    landing: Path
    warehouse: Path
    reports: Path
    mlflow_tracking_uri: str
    mlflow_artifacts: Path
    dagster_home: Path
    duckdb_memory_limit: str
    duckdb_spill_dir: Path


def churn_paths(environ: Mapping[str, str] | None = None) -> ChurnPaths:
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


def yes_no(value: str) -> bool:
    """A switch: ``0``, ``false`` and ``no`` (any case) are off, anything else on."""
    return value.strip().lower() not in {"0", "false", "no"}


def opt_in(value: str) -> bool:
    """A switch that is off unless set to ``1``, ``true`` or ``yes`` (any case)."""
    return value.strip().lower() in {"1", "true", "yes"}


def drift_tier(value: str) -> str:
    """WARN or ERROR, in any case."""
    tier = value.strip().upper()
    if tier not in ("ERROR", "WARN"):
        raise ValueError(f"must be ERROR or WARN, not {value!r}")
    return tier


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("not a number") from None


def positive(value: str) -> float:
    """A number above zero (seconds, say)."""
    number = _number(value)
    if not number > 0:
        raise ValueError(f"must be above 0, not {value!r}")
    return number


def share(value: str) -> float:
    """A share of users: at least 0, below 1."""
    number = _number(value)
    if not 0 <= number < 1:
        raise ValueError(f"must be at least 0 and below 1, not {value!r}")
    return number


def memory_limit(value: str) -> str:
    """A memory size DuckDB accepts (``3GB``, ``512MB``, ``80%``), tried on an empty database."""
    import duckdb

    try:
        with duckdb.connect(config={"memory_limit": value}) as conn:
            conn.execute("SELECT 1").fetchall()
    except duckdb.Error as error:
        reason = str(error).splitlines()[0]
        raise ValueError(f"DuckDB cannot use it as a memory limit ({reason})") from None
    return value


def redis_url(value: str) -> str:
    """A URL redis-py opens: ``redis://``, ``rediss://`` or ``unix://``."""
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"expected a redis://, rediss:// or unix:// URL, not {value!r}")
    return value


def api_token(value: str) -> str:
    """A bearer token, sent as one header word: no spaces inside."""
    token = value.strip()
    if any(c.isspace() for c in token):
        raise ValueError("must not contain spaces")
    return token


def capacity(value: str) -> str:
    """Bucket A's size: a whole number of users (``500``) or a share of them (``5%``)."""
    text = value.strip()
    number = text.removesuffix("%").strip()
    refused = ValueError(f"must be a number of users (500) or a percentage (5%), not {value!r}")
    try:
        amount = float(number) if text.endswith("%") else int(number)
    except ValueError:
        raise refused from None
    if amount < 0 or (text.endswith("%") and amount > 100):
        raise refused
    return text


def http_url(value: str) -> str:
    """An ``http(s)://`` base URL, without its trailing slash: links are joined onto it."""
    url = value.strip().rstrip("/")
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise ValueError(f"expected an http:// or https:// URL, not {value!r}")
    return url


def recipients(value: str) -> list[str]:
    """A comma-separated list of e-mail addresses."""
    return [a.strip() for a in value.split(",") if a.strip()]


# A resource field, the variable that sets it, and how its value is read.
Variable = tuple[str, str, Callable[[str], Any]]

RETRAINING_VARIABLES: tuple[Variable, ...] = (
    ("drift_tier", "CHURN_RETRAIN_DRIFT_TIER", drift_tier),
    ("stale_after_cohorts", "CHURN_RETRAIN_STALE_COHORTS", int),
    ("cooldown_months", "CHURN_RETRAIN_COOLDOWN_MONTHS", int),
    ("training_budget_s", "CHURN_TRAINING_BUDGET_S", positive),
    ("auto_promote", "CHURN_AUTO_PROMOTE", yes_no),
)
CONTROL_VARIABLES: tuple[Variable, ...] = (("share", "CHURN_CONTROL_SHARE", share),)
REPORTS_VARIABLES: tuple[Variable, ...] = (
    ("drift_html", "CHURN_DRIFT_HTML", yes_no),
    ("public_url", "CHURN_REPORTS_URL", http_url),
    ("mlflow_ui_url", "CHURN_MLFLOW_UI_URL", http_url),
)
ONLINE_STORE_VARIABLES: tuple[Variable, ...] = (("redis_url", "CHURN_REDIS_URL", redis_url),)
SERVING_VARIABLES: tuple[Variable, ...] = (("api_token", "CHURN_API_TOKEN", api_token),)
BUCKET_VARIABLES: tuple[Variable, ...] = (("a_capacity", "CHURN_BUCKET_A_CAPACITY", capacity),)
ALERT_VARIABLES: tuple[Variable, ...] = (
    ("smtp_host", "CHURN_ALERT_SMTP_HOST", str),
    ("smtp_port", "CHURN_ALERT_SMTP_PORT", int),
    ("smtp_from", "CHURN_ALERT_SMTP_FROM", str),
    ("email_to", "CHURN_ALERT_EMAIL_TO", recipients),
    ("smtp_user", "CHURN_ALERT_SMTP_USER", str),
    ("smtp_password", "CHURN_ALERT_SMTP_PASSWORD", str),
    ("smtp_starttls", "CHURN_ALERT_SMTP_STARTTLS", opt_in),
    ("webhook_url", "CHURN_ALERT_WEBHOOK_URL", str),
    ("slow_run_s", "CHURN_ALERT_SLOW_RUN_S", positive),
    ("dagster_url", "CHURN_ALERT_DAGSTER_URL", lambda url: url.rstrip("/")),
)


_EXPECTED = {int: "a whole number", float: "a number"}


def read_variables(
    variables: tuple[Variable, ...], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The fields whose variables are set (and not empty), each value parsed.

    A field whose variable is unset is left out, so the resource's own default applies: every
    knob has one default, in one place.
    """
    env = os.environ if environ is None else environ
    fields: dict[str, Any] = {}
    for field, variable, parse in variables:
        raw = env.get(variable, "")
        if raw == "":
            continue
        try:
            fields[field] = parse(raw)
        except ValueError as error:
            reason = f"not {_EXPECTED[parse]}" if parse in _EXPECTED else str(error)
            raise SettingsError(f"{variable}={raw!r}: {reason}") from None
    return fields


# Read by churn_paths, checked here: a path-like setting that only DuckDB can judge.
PATH_VARIABLES: tuple[Variable, ...] = (
    ("duckdb_memory_limit", "CHURN_DUCKDB_MEMORY_LIMIT", memory_limit),
)


def check_home(home: Path) -> None:
    """``CHURN_HOME`` exists or can be made, and takes a file: refused in one line otherwise."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise SettingsError(
            f"CHURN_HOME={str(home)!r}: cannot write there ({error.strerror or error})"
        ) from None


# How long a tracking server may take to answer before a command refuses to start.
TRACKING_SERVER_TIMEOUT_S = 10.0


def check_tracking_server(tracking_uri: str, timeout_s: float = TRACKING_SERVER_TIMEOUT_S) -> None:
    """An ``http(s)://`` MLflow server answers its health check within ``timeout_s``; refused
    in one line naming the URL otherwise (MLflow's own retries would wait minutes in silence)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SettingsError(
            f"MLFLOW_TRACKING_URI={tracking_uri!r}: the tracking server does not answer "
            f"({reason}) within {timeout_s:g} s"
        ) from None


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Every variable of DESIGN §1 that is set, parsed as it will be used: a command refuses a
    bad value before it starts anything, naming the variable (:class:`SettingsError`)."""
    for variables in (
        PATH_VARIABLES,
        RETRAINING_VARIABLES,
        CONTROL_VARIABLES,
        REPORTS_VARIABLES,
        BUCKET_VARIABLES,
        ALERT_VARIABLES,
        ONLINE_STORE_VARIABLES,
        SERVING_VARIABLES,
    ):
        read_variables(variables, environ)
