"""The definitions load whole, as `dagster dev` loads them from workspace.yaml."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import dagster as dg
import pytest
import yaml

EXPECTED_ASSETS = {
    "members",
    "transactions",
    "user_logs",
    "labels",
    "features",
    "churn_model",
    "predictions",
    "online_features",
    "performance_estimate",
    "drift_report",
    "model_performance",
    "retention_outcome",
    "at_risk_list",
    "model_health_report",
}


def test_workspace_points_at_loadable_definitions(churn_env, request):
    workspace = yaml.safe_load((request.config.rootpath / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_module"]
    module = importlib.import_module(target["module_name"])
    defs = getattr(module, target["attribute"])
    assert isinstance(defs, dg.Definitions)
    repo = defs.get_repository_def()
    repo.load_all_definitions()
    assert {k.to_user_string() for k in repo.assets_defs_by_key} == EXPECTED_ASSETS
    assert {
        "load_job",
        "cohort_job",
        "training_job",
        "promotion_job",
        "retention_job",
        "at_risk_job",
    } <= set(repo.job_names)
    assert {s.name for s in repo.schedule_defs} == {"monthly_schedule", "weekly_schedule"}
    # The README says the schedules run: under `dagster dev` they start running, as the sensors do.
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in repo.schedule_defs)
    sensors = {s.name: s for s in repo.sensor_defs}
    assert set(sensors) == {
        "landing_sensor",
        "cohort_sensor",
        "training_sensor",
        "mlflow_run_closer",
        "check_failure_alerts",
        "run_failure_alerts",
        "slow_run_alerts",
    }
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


def test_checks_guard_raw_data_features_and_drift(churn_env):
    from churn_assets.definitions import build_definitions

    repo = build_definitions().get_repository_def()
    check_keys = {
        (key.asset_key.to_user_string(), key.name)
        for assets_def in repo.asset_checks_defs_by_key.values()
        for key in [assets_def.key]
        if hasattr(assets_def, "key")
    } | {
        (spec.asset_key.to_user_string(), spec.name)
        for assets_def in repo.assets_defs_by_key.values()
        for spec in assets_def.check_specs
    }
    for table in ("members", "transactions", "user_logs", "labels"):
        assert (table, "schema") in check_keys and (table, "nulls") in check_keys
    assert ("features", "cohort_not_empty") in check_keys
    assert ("drift_report", "feature_drift") in check_keys
    assert ("performance_estimate", "estimated_performance") in check_keys
    blocking = {
        spec.asset_key.to_user_string()
        for assets_def in repo.assets_defs_by_key.values()
        for spec in assets_def.check_specs
        if spec.blocking
    }
    assert {"members", "transactions", "user_logs", "labels", "features"} <= blocking


def test_the_environment_is_read_once_into_typed_resources(tmp_path):
    from churn_assets.resources import default_resources
    from churn_assets.training.config import TrainingConfig

    resources = default_resources(
        {
            "CHURN_HOME": str(tmp_path),
            "CHURN_RETRAIN_DRIFT_TIER": "error",
            "CHURN_RETRAIN_COOLDOWN_MONTHS": "2",
            "CHURN_TRAINING_BUDGET_S": "7.5",
            "CHURN_AUTO_PROMOTE": "No",
            "CHURN_CONTROL_SHARE": "0.2",
            "CHURN_DRIFT_HTML": "false",
            "CHURN_ALERT_SMTP_PORT": "2525",
            "CHURN_REPORTS_URL": "https://reports.example.org/churn/",
            "CHURN_MLFLOW_UI_URL": "http://mlflow.internal:5000",
        }
    )
    retraining = resources["retraining"]
    assert retraining.drift_severity == dg.AssetCheckSeverity.ERROR
    assert (retraining.cooldown_months, retraining.stale_after_cohorts) == (2, 3)
    assert retraining.training_overrides() == {"time_budget_s": 7.5, "auto_promote": False}
    assert resources["control"].share == 0.2
    assert resources["reports"].drift_html is False
    reports = resources["reports"]
    page = reports.folder / "health" / "2016-05" / "health_2016-05.html"
    assert (
        reports.url(page) == "https://reports.example.org/churn/health/2016-05/health_2016-05.html"
    )
    assert reports.version_url("3") == "http://mlflow.internal:5000/#/models/churn-model/versions/3"
    assert resources["alerts"].smtp_port == 2525

    # Unset, each knob keeps its one default: the training run's own, the resource's.
    unset = default_resources({"CHURN_HOME": str(tmp_path)})
    assert unset["retraining"].training_overrides() == {}
    assert unset["retraining"].drift_tier == "WARN"
    assert TrainingConfig().time_budget_s == 30.0 and TrainingConfig().auto_promote is True
    assert unset["control"].share == 0.1 and unset["reports"].drift_html is True
    # Links point at `churn-assets serve` and `mlflow ui` on their default ports.
    assert unset["reports"].public_url == "http://127.0.0.1:8000/reports"
    assert unset["reports"].mlflow_ui_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CHURN_TRAINING_BUDGET_S", "abc", "not a number"),
        ("CHURN_RETRAIN_STALE_COHORTS", "2.5", "not a whole number"),
        ("CHURN_RETRAIN_DRIFT_TIER", "loud", "must be ERROR or WARN"),
        ("CHURN_ALERT_SLOW_RUN_S", "an hour", "not a number"),
        ("CHURN_REPORTS_URL", "file:///tmp/reports", "expected an http:// or https:// URL"),
        ("CHURN_MLFLOW_UI_URL", "http://", "expected an http:// or https:// URL"),
    ],
)
def test_a_setting_that_cannot_be_used_is_named(tmp_path, variable, value, says):
    from churn_assets.resources import default_resources
    from churn_assets.settings import SettingsError

    with pytest.raises(SettingsError) as refused:
        default_resources({"CHURN_HOME": str(tmp_path), variable: value})
    assert str(refused.value).startswith(f"{variable}={value!r}: ")
    assert says in str(refused.value)


def test_loading_the_definitions_says_no_dagster_notes_but_keeps_real_warnings(churn_env):
    """What `dagster dev`'s code server does: import the definitions in a fresh process, every
    warning shown (``-W default``). Dagster's beta and preview notes are gone; others remain."""
    code = (
        "import warnings\n"
        "import churn_assets.definitions\n"
        "warnings.warn('a warning of our own', RuntimeWarning)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **churn_env},
        check=True,
    )
    assert "BetaWarning" not in done.stderr and "PreviewWarning" not in done.stderr
    assert "RuntimeWarning: a warning of our own" in done.stderr


# Assets that write no warehouse table: a registered model, and a key-value store for lookups.
NOT_TABLES = {"churn_model", "online_features", "model_health_report"}


def test_every_asset_has_owners_a_description_and_the_columns_of_its_table(churn_env):
    """What the asset catalog shows: who answers for each asset, what it is, and the columns of
    the table it writes, taken from the SQL that creates that table."""
    from churn_assets.definitions import build_definitions
    from churn_assets.keys import TEAM_OWNER

    repo = build_definitions().get_repository_def()
    specs = {
        key.to_user_string(): assets_def.specs_by_key[key]
        for key, assets_def in repo.assets_defs_by_key.items()
    }
    assert set(specs) == EXPECTED_ASSETS
    for name, spec in specs.items():
        assert spec.owners == [TEAM_OWNER], name
        assert spec.description and spec.description.strip(), name
        schema = spec.metadata.get("dagster/column_schema")
        if name in NOT_TABLES:
            assert schema is None, name
            continue
        assert isinstance(schema, dg.TableSchema), name
        columns = {c.name: c for c in schema.columns}
        # Every table the assets write is keyed by a user or a cohort.
        assert {"msno", "cohort_month"} & set(columns), (name, sorted(columns))
    features = {c.name: c.type for c in specs["features"].metadata["dagster/column_schema"].columns}
    assert features["msno"] == "varchar" and "days_to_expiry" in features
    members = specs["members"].metadata["dagster/column_schema"].columns
    assert not next(c for c in members if c.name == "msno").constraints.nullable
