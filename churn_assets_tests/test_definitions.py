"""The definitions load whole, as `dagster dev` loads them from workspace.yaml."""

from __future__ import annotations

import importlib

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
