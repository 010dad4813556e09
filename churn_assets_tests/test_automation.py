"""The schedule and sensors evaluated through Dagster's own contexts."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from churn_assets.automation.schedules import monthly_schedule
from churn_assets.automation.sensors import cohort_sensor, landing_sensor, training_sensor
from churn_assets.keys import REQUEST_TAG
from churn_assets.partitions import register_months
from churn_assets.raw.assets import transactions, user_logs
from churn_assets.resources import (
    ClockResource,
    LandingResource,
    ModelRegistryResource,
    RetrainingPolicy,
)
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
    assert [r.partition_key for r in requests] == ["2016-03-01", "2016-02-01"]
    # Keys name the request and its files, then the attempt: a failed run is retried as #2.
    assert requests[0].run_key.startswith("raw-2016-03-01-") and requests[0].run_key.endswith("#1")
    assert requests[1].run_key.startswith("labels-2016-02-01-")  # labelled from 2016-04 on
    assert {k.to_user_string() for k in requests[0].asset_selection} == {
        "members",
        "transactions",
        "user_logs",
    }
    assert [k.to_user_string() for k in requests[1].asset_selection] == [
        "labels",
        "model_performance",
        "retention_outcome",
    ]


def test_schedule_waits_for_label_files(world, tmp_path):
    requests = _schedule_requests(world, tmp_path, datetime(2016, 2, 1, 3))
    assert [r.partition_key for r in requests] == ["2016-01-01"]


def test_schedule_skips_a_month_whose_files_have_not_landed(world, tmp_path):
    """A late month is no failed run: the schedule says why, the landing sensor loads it later."""
    landing = tmp_path / "landing"
    landing.mkdir()
    for f in world.landing_dir.iterdir():
        if f.name != "user_logs_201603.csv" and f.name != "transactions_201603.csv":
            (landing / f.name).symlink_to(f)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2016, 4, 1, 3),
            resources={"landing": LandingResource(path=str(landing))},
            repository_def=_repository(tmp_path, landing),
        ) as context,
    ):
        data = monthly_schedule.evaluate_tick(context)
    assert [r.partition_key for r in data.run_requests] == ["2016-02-01"]  # labels only


def _sensor_tick(sensor, instance, repository, resources, cursor=None):
    with (
        dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=resources, repository_def=repository
        ) as context,
        dg.partition_loading_context(dynamic_partitions_store=instance),
    ):
        data = sensor.evaluate_tick(context)
    return _requests(data), data.cursor


def test_landing_sensor_loads_ended_months_history_in_one_run_and_retries_failures(
    world, tmp_path: Path
):
    repository = _repository(tmp_path, world.landing_dir)
    resources = {
        "landing": LandingResource(path=str(world.landing_dir)),
        "clock": ClockResource(today="2016-03-01"),
    }
    with dg.instance_for_test() as instance:
        requests, _ = _sensor_tick(landing_sensor, instance, repository, resources)
        history, *months = requests
        # The year of payment history before listening starts: one ranged run of transactions.
        assert history.run_key.startswith("history-2015-01-01-2015-12-01-")
        assert [k.to_user_string() for k in history.asset_selection] == [
            "members",
            "transactions",
        ]
        # Months that have ended by 2016-03-01; 2016-03 itself is still running.
        assert [r.partition_key for r in months] == ["2016-01-01", "2016-02-01"]
        # The calendar is what the data covers, through the current month.
        keys = instance.get_dynamic_partitions("month")
        assert keys[0] == "2015-01-01" and keys[-1] == "2016-03-01" and keys == sorted(keys)

        # A failed attempt is retried under the next key; a succeeded one is not repeated.
        failed = months[0]
        instance.add_run(
            dg.DagsterRun(
                job_name="load_job",
                run_id="a" * 36,
                status=dg.DagsterRunStatus.FAILURE,
                tags={**failed.tags, "dagster/run_key": failed.run_key},
            )
        )
        again, _ = _sensor_tick(landing_sensor, instance, repository, resources)
        retried = [r for r in again if r.tags[REQUEST_TAG] == failed.tags[REQUEST_TAG]]
        assert [r.run_key for r in retried] == [failed.run_key.replace("#1", "#2")]


def test_cohort_sensor_waits_for_both_tables_then_asks_once(world, tmp_path: Path):
    resources = resources_for(tmp_path / "home", world.landing_dir)
    sensor_resources = {
        "registry": ModelRegistryResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"),
        "landing": resources["landing"],
        "clock": ClockResource(today="2016-02-01"),
    }
    repository = _repository(tmp_path, world.landing_dir)
    with dg.instance_for_test() as instance:
        register_months(instance, ["2015-01-01", "2016-01-01", "2016-02-01"])
        history = {
            "dagster/asset_partition_range_start": "2015-01-01",
            "dagster/asset_partition_range_end": "2015-12-01",
        }
        register_months(instance, [f"2015-{m:02d}-01" for m in range(1, 13)])
        dg.materialize([transactions], resources=resources, instance=instance, tags=history)
        dg.materialize(
            [transactions], partition_key="2016-01-01", resources=resources, instance=instance
        )
        requests, cursor = _sensor_tick(cohort_sensor, instance, repository, sensor_resources)
        assert requests == []  # user_logs of 2016-01 have landed but are not loaded yet

        dg.materialize(
            [user_logs], partition_key="2016-01-01", resources=resources, instance=instance
        )
        requests, cursor = _sensor_tick(
            cohort_sensor, instance, repository, sensor_resources, cursor
        )
        assert len(requests) == 1
        request = requests[0]
        assert request.partition_key == "2016-02-01"
        # No champion yet: only the features of the cohort can be built.
        assert [k.to_user_string() for k in request.asset_selection] == ["features"]
        assert request.run_key.startswith("cohort-2016-02-01-")

        requests, _ = _sensor_tick(cohort_sensor, instance, repository, sensor_resources, cursor)
        assert requests == []


def test_a_column_the_contract_does_not_name_warns_but_does_not_stop_the_cohort(
    world, tmp_path: Path
):
    """Dagster blocks on a blocking check's ERROR only; the cohort sensor reads it the same way."""
    landing = tmp_path / "landing"
    shutil.copytree(world.landing_dir, landing)
    source = next(landing.glob("user_logs_201601*"))
    lines = source.read_text().splitlines()
    source.write_text("\n".join([lines[0] + ",num_skip", *(f"{r},3" for r in lines[1:])]) + "\n")
    resources = resources_for(tmp_path / "home", landing)
    sensor_resources = {
        "registry": ModelRegistryResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"),
        "landing": resources["landing"],
        "clock": ClockResource(today="2016-02-01"),
    }
    repository = _repository(tmp_path, landing)
    with dg.instance_for_test() as instance:
        register_months(instance, [f"2015-{m:02d}-01" for m in range(1, 13)])
        register_months(instance, ["2016-01-01", "2016-02-01"])
        history = {
            "dagster/asset_partition_range_start": "2015-01-01",
            "dagster/asset_partition_range_end": "2015-12-01",
        }
        dg.materialize([transactions], resources=resources, instance=instance, tags=history)
        dg.materialize(
            [transactions], partition_key="2016-01-01", resources=resources, instance=instance
        )
        loaded = dg.materialize(
            [user_logs], partition_key="2016-01-01", resources=resources, instance=instance
        )
        [schema] = [c for c in loaded.get_asset_check_evaluations() if c.check_name == "schema"]
        assert loaded.success and not schema.passed
        assert schema.severity == dg.AssetCheckSeverity.WARN and "num_skip" in schema.description
        requests, _ = _sensor_tick(cohort_sensor, instance, repository, sensor_resources)
        assert [r.partition_key for r in requests] == ["2016-02-01"]


def test_training_sensor_needs_two_labelled_cohorts_for_the_first_model(world, tmp_path: Path):
    resources = {
        "registry": ModelRegistryResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"),
        "warehouse": resources_for(tmp_path / "home")["warehouse"],
        "clock": ClockResource(today="2016-05-01"),
        "alerts": resources_for(tmp_path / "home")["alerts"],
        "retraining": RetrainingPolicy(),
    }
    with dg.instance_for_test() as instance:
        repository = _repository(tmp_path, world.landing_dir)
        register_months(instance, ["2016-02-01", "2016-05-01"])
        instance.report_runless_asset_event(
            dg.AssetMaterialization("features", partition="2016-04-01")
        )
        instance.report_runless_asset_event(
            dg.AssetMaterialization("labels", partition="2016-02-01")
        )
        requests, cursor = _sensor_tick(training_sensor, instance, repository, resources)
        assert requests == []

        instance.report_runless_asset_event(
            dg.AssetMaterialization("labels", partition="2016-03-01")
        )
        instance.report_runless_asset_event(
            dg.AssetMaterialization("features", partition="2016-05-01")
        )
        requests, _ = _sensor_tick(training_sensor, instance, repository, resources, cursor)
        assert [(r.partition_key, r.run_key) for r in requests] == [
            ("2016-05-01", "first-model-2016-05-01#1")
        ]
        config = requests[0].run_config["ops"]["churn_model"]["config"]
        assert config["as_of_month"] == "2016-05"


def test_a_request_that_used_up_its_attempts_stays_reported_until_made_good():
    """After three failed attempts nothing retries it, so a later replay must still say so."""
    from churn_assets.automation.requests import MAX_ATTEMPTS, given_up

    month = {"churn/request": "raw-2016-05-01-aaaa", "dagster/partition": "2016-05-01"}
    with dg.instance_for_test() as instance:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            instance.add_run(
                dg.DagsterRun(
                    job_name="load_job",
                    run_id=f"{attempt}" * 36,
                    status=dg.DagsterRunStatus.FAILURE,
                    tags={**month, "churn/attempt": str(attempt)},
                )
            )
        assert [r.run_id for r in given_up(instance)] == [f"{MAX_ATTEMPTS}" * 36]
        # The file is fixed: a new request for the same month succeeds, and nothing is stuck.
        instance.add_run(
            dg.DagsterRun(
                job_name="load_job",
                run_id="9" * 36,
                status=dg.DagsterRunStatus.SUCCESS,
                tags={**month, "churn/request": "raw-2016-05-01-bbbb"},
            )
        )
        assert given_up(instance) == []
