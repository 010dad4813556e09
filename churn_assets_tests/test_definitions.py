"""The definitions load whole, as `dagster dev` loads them from workspace.yaml."""

from __future__ import annotations

import importlib

import dagster as dg
import yaml

EXPECTED_ASSETS = {
    "members",
    "transactions",
    "user_logs",
    "labels",
    "features",
    "churn_model",
    "predictions",
    "drift_report",
    "model_performance",
    "retention_outcome",
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
    assert {"load_job", "cohort_job", "training_job", "promotion_job", "retention_job"} <= set(
        repo.job_names
    )
    assert {s.name for s in repo.schedule_defs} == {"monthly_schedule"}
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
    blocking = {
        spec.asset_key.to_user_string()
        for assets_def in repo.assets_defs_by_key.values()
        for spec in assets_def.check_specs
        if spec.blocking
    }
    assert {"members", "transactions", "user_logs", "labels", "features"} <= blocking
