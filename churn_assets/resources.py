"""Resources and their wiring, chosen per environment from one mapping.

Assets ask for ``warehouse`` (DuckDB), ``landing`` (the raw-file folder), ``registry`` (the MLflow
model registry), ``mlflow`` (dagster-mlflow's tracking resource, one MLflow run per Dagster run),
``reports`` (where HTML goes), ``control`` (the control group), ``online_store`` (what
``churn-assets serve`` looks users up in) and ``buckets`` (who is called); sensors ask
for ``clock``, ``retraining`` (the retraining policy) and ``alerts`` (log file, mail,
webhook).

Every deployment knob is a typed field here with its one default;
:func:`default_resources` reads the environment once (:mod:`churn_assets.settings`), when the
definitions load, and sets only the fields whose variables are set.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import dagster as dg
import duckdb
import mlflow
from dagster_duckdb import DuckDBResource
from dagster_mlflow.resources import CONFIG_SCHEMA as MLFLOW_CONFIG_SCHEMA
from dagster_mlflow.resources import MlFlow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pydantic import Field, field_validator

from churn_assets.alerts.channels import alerts_resource
from churn_assets.dagster_internals import backoff
from churn_assets.keys import PROMOTED_TAG
from churn_assets.landing.catalog import LandingCatalog
from churn_assets.online.embedded import EmbeddedOnlineStore
from churn_assets.online.store import OnlineStore
from churn_assets.settings import (
    BUCKET_VARIABLES,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    CONTROL_VARIABLES,
    DEFAULT_MLFLOW_UI_URL,
    DEFAULT_REPORTS_URL,
    EXPERIMENT_NAME,
    ONLINE_STORE_VARIABLES,
    REGISTERED_MODEL_NAME,
    REPORTS_VARIABLES,
    RETRAINING_VARIABLES,
    capacity,
    check_environment,
    churn_paths,
    read_variables,
)

# MLflow 3 opens an experiment without a kind on its GenAI view; this one is classic ML.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# Beside a registered version's run: every fact of the version, tags only keep what a person reads.
VERSION_DETAILS_FILE = "version_details.json"


def ensure_experiment(
    tracking_uri: str, artifact_root: Path | None, name: str = EXPERIMENT_NAME
) -> str:
    """Create the experiment with its artifacts under CHURN_HOME (MLflow would pick ./mlruns);
    with no ``artifact_root``, where the tracking server keeps them."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before the kind was set
            client.set_experiment_tag(
                experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
            )
        return experiment.experiment_id
    location = None
    if artifact_root is not None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        location = artifact_root.as_uri()
    try:
        return client.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id


@dg.resource(
    config_schema={
        **MLFLOW_CONFIG_SCHEMA,
        "artifact_root": dg.Field(str, description="Folder of the experiment's artifacts."),
    },
    description="dagster-mlflow tracking, with the experiment's artifacts kept under CHURN_HOME.",
)
def mlflow_tracking(context: dg.InitResourceContext) -> MlFlow:
    config = context.resource_config
    ensure_experiment(
        config["mlflow_tracking_uri"], Path(config["artifact_root"]), config["experiment_name"]
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
    artifact_root: str = Field(
        default="", description="Folder of new experiments' artifacts (empty: MLflow's choice)."
    )

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri)

    @property
    def artifact_folder(self) -> Path | None:
        return Path(self.artifact_root) if self.artifact_root else None

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
        """Load a version as the LightGBM booster it was logged as.

        A version whose artifacts cannot be read (deleted, moved, a store that does not answer)
        raises :class:`ModelUnavailableError` naming the version and where it was looked for.
        """
        mlflow.set_tracking_uri(self.tracking_uri)
        uri = f"models:/{self.model_name}/{version}"
        try:
            return mlflow.lightgbm.load_model(uri)
        except (MlflowException, OSError) as exc:
            source = self._source(version)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelUnavailableError(
                f"{self.model_name} v{version} cannot be loaded from {source}: {reason}"
            ) from exc

    def _source(self, version: str) -> str:
        try:
            return self.client.get_model_version(self.model_name, version).source
        except MlflowException:
            return f"models:/{self.model_name}/{version}"

    def registered_versions(self) -> list[ModelVersion]:
        """The versions registered whole, oldest first.

        Registration writes a version's tags in one order, ``promoted`` last
        (:func:`churn_assets.training.registration.version_details`): a version without it was cut
        off mid-registration (a killed process) and is never backtested or made champion.
        """
        versions = self.client.search_model_versions(f"name = '{self.model_name}'")
        whole = [v for v in versions if PROMOTED_TAG in v.tags]
        return sorted(whole, key=lambda v: int(v.version))


def version_facts(client: MlflowClient, version: ModelVersion) -> dict[str, str]:
    """Everything a version says of itself: the details its run keeps as a JSON artifact, and its
    tags (which win: a lifecycle step tags after registration). A version registered before the
    details existed, or by hand, has its tags alone."""
    details: dict[str, str] = {}
    if version.run_id:
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = client.download_artifacts(version.run_id, VERSION_DETAILS_FILE, folder)
                details = json.loads(Path(path).read_text())
            except (MlflowException, OSError):
                details = {}
    return {**details, **version.tags}


class ModelUnavailableError(RuntimeError):
    """A registered version whose model cannot be loaded; the message names version and path."""


class ReportsResource(dg.ConfigurableResource):
    """Where HTML reports (drift, at-risk lists, health pages, model cards) are written, under
    CHURN_HOME by default, and the http links the Dagster UI shows to them and to MLflow."""

    path: str
    drift_html: bool = Field(
        default=True,
        description="Whether drift_report builds Evidently's HTML (CHURN_DRIFT_HTML): about 10 s "
        "a cohort whatever its size.",
    )
    public_url: str = Field(
        default=DEFAULT_REPORTS_URL,
        description="Base URL the reports folder is served at (CHURN_REPORTS_URL): links in the "
        "Dagster UI point there; `churn-assets serve` serves it at /reports.",
    )
    mlflow_ui_url: str = Field(
        default=DEFAULT_MLFLOW_UI_URL,
        description="Base URL of the MLflow UI (CHURN_MLFLOW_UI_URL), for links to runs and "
        "model versions.",
    )

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def card_path(self, version: str) -> Path:
        """A registered version's model card (written by the monthly health report)."""
        return self.folder / "models" / f"model_v{version}.html"

    def url(self, path: Path) -> str:
        """The http link to a file under the reports folder (``serve``'s /reports route)."""
        relative = path.resolve().relative_to(self.folder.resolve())
        return f"{self.public_url.rstrip('/')}/{quote(relative.as_posix())}"

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The MLflow UI's page of a run."""
        return f"{self.mlflow_ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def version_url(self, version: str) -> str:
        """The MLflow UI's page of a registered version of ``churn-model``."""
        base = self.mlflow_ui_url.rstrip("/")
        return f"{base}/#/models/{REGISTERED_MODEL_NAME}/versions/{version}"


class ControlGroupResource(dg.ConfigurableResource):
    """The control group: users held out of retention actions, stable per user, to measure
    what acting on a score achieves (:mod:`churn_assets.outcomes`)."""

    share: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Share of users held out of actions (CHURN_CONTROL_SHARE).",
    )


class OnlineStoreResource(dg.ConfigurableResource):
    """The online store, chosen here and only here: Redis when a URL is set, else the embedded
    SQLite files under CHURN_HOME (readable while the pipeline writes its warehouse)."""

    folder: str = Field(description="Folder of the embedded store's versions and pointer.")
    redis_url: str = Field(
        default="", description="Redis URL (CHURN_REDIS_URL); empty: the embedded store."
    )
    redis_prefix: str = Field(
        default="churn:online", description="Prefix of every Redis key the store writes."
    )

    def open(self) -> OnlineStore:
        if self.redis_url:
            from churn_assets.online.redis_store import RedisOnlineStore

            return RedisOnlineStore(self.redis_url, self.redis_prefix)
        return EmbeddedOnlineStore(Path(self.folder))


class BucketPolicy(dg.ConfigurableResource):
    """Who lands in bucket A: everyone above the A cut-off, or as many as the call centre can
    call (the riskiest first), since a call needs an agent and agents are counted."""

    a_capacity: str = Field(
        default="",
        description="Bucket A by capacity (CHURN_BUCKET_A_CAPACITY): '500' puts the 500 riskiest "
        "users outside the control group in A, '5%' that share of them; empty: the A cut-off.",
    )

    @field_validator("a_capacity")
    @classmethod
    def _readable(cls, value: str) -> str:
        return capacity(value) if value.strip() else ""

    def calls(self, callable_users: int) -> int | None:
        """How many of ``callable_users`` (outside the control group) go to A; None: cut-off."""
        if not self.a_capacity:
            return None
        if self.a_capacity.endswith("%"):
            share = float(self.a_capacity.removesuffix("%")) / 100
            return min(callable_users, round(share * callable_users))
        return min(callable_users, int(self.a_capacity))


class RetrainingPolicy(dg.ConfigurableResource):
    """How eagerly the training sensor retrains, and what it asks of the runs it launches
    (:mod:`churn_assets.automation.retraining` says why each default is what it is)."""

    drift_tier: Literal["WARN", "ERROR"] = Field(
        default="WARN",
        description="The feature_drift check severity that retrains (CHURN_RETRAIN_DRIFT_TIER).",
    )
    stale_after_cohorts: int = Field(
        default=3,
        description="Labelled cohorts the champion's newest labels may lag the newest ones by "
        "before it is retrained (CHURN_RETRAIN_STALE_COHORTS).",
    )
    cooldown_months: int = Field(
        default=1, description="Months between two trainings (CHURN_RETRAIN_COOLDOWN_MONTHS)."
    )
    training_budget_s: float | None = Field(
        default=None,
        description="FLAML budget of the trainings it launches (CHURN_TRAINING_BUDGET_S); unset: "
        "churn_model's own time_budget_s.",
    )
    auto_promote: bool | None = Field(
        default=None,
        description="Whether those trainings may promote (CHURN_AUTO_PROMOTE); unset: "
        "churn_model's own auto_promote.",
    )

    @property
    def drift_severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity[self.drift_tier]

    def training_overrides(self) -> dict[str, Any]:
        """The churn_model config fields this policy sets for the runs it launches."""
        overrides = {"time_budget_s": self.training_budget_s, "auto_promote": self.auto_promote}
        return {k: v for k, v in overrides.items() if v is not None}


def default_resources(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The embedded configuration: DuckDB file, SQLite MLflow, local folders; no service needed.

    The environment is read here, once; a variable with a value that cannot be used raises
    :class:`churn_assets.settings.SettingsError` naming it.
    """
    check_environment(environ)
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
        "reports": ReportsResource(
            path=str(paths.reports), **read_variables(REPORTS_VARIABLES, environ)
        ),
        "control": ControlGroupResource(**read_variables(CONTROL_VARIABLES, environ)),
        "online_store": OnlineStoreResource(
            folder=str(paths.home / "online"), **read_variables(ONLINE_STORE_VARIABLES, environ)
        ),
        "buckets": BucketPolicy(**read_variables(BUCKET_VARIABLES, environ)),
        "clock": ClockResource(),
        "retraining": RetrainingPolicy(**read_variables(RETRAINING_VARIABLES, environ)),
        "registry": ModelRegistryResource(
            tracking_uri=paths.mlflow_tracking_uri, artifact_root=str(paths.mlflow_artifacts)
        ),
        "mlflow": mlflow_tracking.configured(
            {
                "experiment_name": EXPERIMENT_NAME,
                "mlflow_tracking_uri": paths.mlflow_tracking_uri,
                "artifact_root": str(paths.mlflow_artifacts),
            }
        ),
        "alerts": alerts_resource(environ),
    }
