"""Resources and their wiring, chosen per environment from one mapping.

Assets ask for ``warehouse`` (DuckDB), ``landing`` (the raw-file folder), ``registry`` (the MLflow
model registry) and ``mlflow`` (dagster-mlflow's tracking resource, one MLflow run per Dagster run);
sensors ask for ``alerts`` (log file, mail, webhook).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import mlflow
from dagster_duckdb import DuckDBResource
from dagster_mlflow.resources import CONFIG_SCHEMA as MLFLOW_CONFIG_SCHEMA
from dagster_mlflow.resources import MlFlow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import Field

from churn_assets.alerts.channels import alerts_resource
from churn_assets.dagster_internals import backoff
from churn_assets.landing.catalog import LandingCatalog
from churn_assets.settings import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    EXPERIMENT_NAME,
    REGISTERED_MODEL_NAME,
    churn_paths,
)


def ensure_experiment(tracking_uri: str, artifact_root: Path, name: str = EXPERIMENT_NAME) -> str:
    """Create the experiment with its artifacts under CHURN_HOME (MLflow would pick ./mlruns)."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_root.mkdir(parents=True, exist_ok=True)
    try:
        return client.create_experiment(name, artifact_location=artifact_root.as_uri())
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id


@dg.resource(
    config_schema=MLFLOW_CONFIG_SCHEMA,
    description="dagster-mlflow tracking, with the experiment's artifacts kept under CHURN_HOME.",
)
def mlflow_tracking(context: dg.InitResourceContext) -> MlFlow:
    uri = context.resource_config.get("mlflow_tracking_uri") or churn_paths().mlflow_tracking_uri
    ensure_experiment(
        uri, churn_paths().mlflow_artifacts, context.resource_config["experiment_name"]
    )
    return MlFlow(context)


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse file.

    Its folder is created on first use, not at import; a busy file (one writer at a time) is
    retried with backoff; the connection is closed even when the work inside fails, so a failed
    step never keeps the file locked.
    """

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = backoff(
            fn=duckdb.connect,
            retry_on=(RuntimeError, duckdb.IOException),
            kwargs={"database": self.database, "config": dict(self.connection_config)},
            max_retries=10,
        )
        try:
            yield conn
        finally:
            conn.close()


class LandingResource(dg.ConfigurableResource):
    """The folder where raw KKBox-format files land every month, and what it holds."""

    path: str = Field(description="Landing folder (DESIGN §2 file layout).")
    catalog_cache: str = Field(
        default="",
        description="JSON file caching which months each landing file covers (empty: rescan).",
    )

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def catalog(self) -> LandingCatalog:
        """The landing files by table and month, rescanning only new or changed files."""
        cache = Path(self.catalog_cache) if self.catalog_cache else None
        return LandingCatalog(self.folder, cache).refresh()


class ClockResource(dg.ConfigurableResource):
    """What day it is for the monthly loop: the real date, or the simulated one of a replay.

    Sensors load only months that have ended by ``today``, so a landing folder holding months
    to come (a replayed world) is consumed month by month, as it would have landed.
    """

    today: str = Field(default="", description="YYYY-MM-DD; empty means the real date.")

    def current_month(self) -> date:
        day = date.fromisoformat(self.today) if self.today else date.today()
        return day.replace(day=1)


class ModelRegistryResource(dg.ConfigurableResource):
    """The MLflow model registry: which version is champion, which is challenger."""

    tracking_uri: str
    model_name: str = REGISTERED_MODEL_NAME

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri)

    def version_by_alias(self, alias: str) -> ModelVersion | None:
        try:
            return self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            return None

    def champion(self) -> ModelVersion | None:
        return self.version_by_alias(CHAMPION_ALIAS)

    def challenger(self) -> ModelVersion | None:
        return self.version_by_alias(CHALLENGER_ALIAS)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def load_model(self, version: str) -> Any:
        """Load a version as the LightGBM booster it was logged as."""
        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.lightgbm.load_model(f"models:/{self.model_name}/{version}")


def default_resources(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The embedded configuration: DuckDB file, SQLite MLflow, local folders; no service needed."""
    paths = churn_paths(environ)
    return {
        "warehouse": WarehouseResource(
            database=str(paths.warehouse),
            connection_config={
                "memory_limit": paths.duckdb_memory_limit,
                "temp_directory": str(paths.duckdb_spill_dir),
            },
        ),
        "landing": LandingResource(
            path=str(paths.landing), catalog_cache=str(paths.home / "landing_catalog.json")
        ),
        "reports": ReportsResource(path=str(paths.reports)),
        "clock": ClockResource(),
        "registry": ModelRegistryResource(tracking_uri=paths.mlflow_tracking_uri),
        "mlflow": mlflow_tracking.configured(
            {"experiment_name": EXPERIMENT_NAME, "mlflow_tracking_uri": paths.mlflow_tracking_uri}
        ),
        "alerts": alerts_resource(environ),
    }


class ReportsResource(dg.ConfigurableResource):
    """Where HTML reports (drift, at-risk lists) are written, under CHURN_HOME by default."""

    path: str

    @property
    def folder(self) -> Path:
        return Path(self.path)
