"""The schedule and sensors evaluated through Dagster's own contexts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from churn_assets.automation.schedules import monthly_schedule
from churn_assets.automation.sensors import cohort_sensor, training_sensor
from churn_assets.raw.assets import transactions, user_logs
from churn_assets.resources import LandingResource, ModelRegistryResource
from churn_assets.simulator import simulate
from churn_assets_tests.helpers import resources_for


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return simulate(tmp_path_factory.mktemp("auto_world"), users=300, months=4, seed=9)


def _repository(home: Path, landing: Path) -> dg.RepositoryDefinition:
    from churn_assets.definitions import build_definitions

    return build_definitions(resources_for(home, landing)).get_repository_def()


def _requests(data) -> list[dg.RunRequest]:
    return list(data.run_requests or [])


def _schedule_requests(world, tmp_path: Path, moment: datetime) -> list[dg.RunRequest]:
    """What the monthly schedule asks for when it ticks at ``moment``."""
    landing = LandingResource(path=str(world.landing_dir))
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=moment,
            resources={"landing": landing},
            repository_def=_repository(tmp_path, world.landing_dir),
        ) as context,
    ):
        return _requests(monthly_schedule.evaluate_tick(context))


def test_schedule_loads_last_month_and_labels_that_became_known(world, tmp_path):
    requests = _schedule_requests(world, tmp_path, datetime(2016, 4, 1, 3))
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("2016-03-01", "raw-2016-03-01"),
        ("2016-02-01", "labels-2016-02-01"),  # cohort 2016-02 is labelled from 2016-04 on
    ]
    assert {k.to_user_string() for k in requests[0].asset_selection} == {
        "members",
        "transactions",
        "user_logs",
    }
    assert [k.to_user_string() for k in requests[1].asset_selection] == [
        "labels",
        "model_performance",
    ]


def test_schedule_waits_for_label_files(world, tmp_path):
    requests = _schedule_requests(world, tmp_path, datetime(2016, 2, 1, 3))
    assert [r.run_key for r in requests] == ["raw-2016-01-01"]


def test_cohort_sensor_waits_for_both_tables_then_asks_once(world, tmp_path: Path):
    resources = resources_for(tmp_path / "home", world.landing_dir)
    registry = ModelRegistryResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with dg.instance_for_test() as instance:

        def tick(cursor):
            with dg.build_sensor_context(
                instance=instance,
                cursor=cursor,
                resources={"registry": registry},
                repository_def=_repository(tmp_path, world.landing_dir),
            ) as context:
                data = cohort_sensor.evaluate_tick(context)
            return _requests(data), data.cursor

        dg.materialize(
            [transactions], partition_key="2016-01-01", resources=resources, instance=instance
        )
        requests, cursor = tick(None)
        assert requests == []  # user_logs of 2016-01 are not loaded yet

        dg.materialize(
            [user_logs], partition_key="2016-01-01", resources=resources, instance=instance
        )
        requests, cursor = tick(cursor)
        assert len(requests) == 1
        request = requests[0]
        assert request.partition_key == "2016-02-01"
        # No champion yet: only the features of the cohort can be built.
        assert [k.to_user_string() for k in request.asset_selection] == ["features"]
        assert request.run_key.startswith("cohort-2016-02-01-")

        requests, _ = tick(cursor)
        assert requests == []


def test_training_sensor_needs_two_labelled_cohorts_for_the_first_model(world, tmp_path: Path):
    registry = ModelRegistryResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with dg.instance_for_test() as instance:
        repository = _repository(tmp_path, world.landing_dir)
        instance.report_runless_asset_event(
            dg.AssetMaterialization("features", partition="2016-04-01")
        )
        instance.report_runless_asset_event(
            dg.AssetMaterialization("labels", partition="2016-02-01")
        )
        with dg.build_sensor_context(
            instance=instance, resources={"registry": registry}, repository_def=repository
        ) as context:
            data = training_sensor.evaluate_tick(context)
        assert _requests(data) == []

        instance.report_runless_asset_event(
            dg.AssetMaterialization("labels", partition="2016-03-01")
        )
        instance.report_runless_asset_event(
            dg.AssetMaterialization("features", partition="2016-05-01")
        )
        with dg.build_sensor_context(
            instance=instance,
            cursor=data.cursor,
            resources={"registry": registry},
            repository_def=repository,
        ) as context:
            requests = _requests(training_sensor.evaluate_tick(context))
        assert [(r.partition_key, r.run_key) for r in requests] == [
            ("2016-05-01", "first-model-2016-05-01")
        ]
        config = requests[0].run_config["ops"]["churn_model"]["config"]
        assert config["as_of_month"] == "2016-05"
