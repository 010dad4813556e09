"""The retraining policy through Dagster's own sensor evaluation, on an instance holding real
check results and real training runs: it retrains once per newest labelled cohort, never storms,
escalates once per episode when retraining did not mend a failing monitor, and leaves promotion
to a person when asked to."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

from churn_assets.alerts.channels import alerts_resource
from churn_assets.automation.sensors import training_sensor
from churn_assets.partitions import monthly_partitions, register_months
from churn_assets.resources import (
    ClockResource,
    ModelRegistryResource,
    RetrainingPolicy,
    WarehouseResource,
)

MONTHS = [f"2016-{m:02d}-01" for m in range(1, 10)]


class FixedChampion(ModelRegistryResource):
    """A registry whose champion learnt from labels up to ``validation_cohort``."""

    validation_cohort: str = "2016-03-01"
    provisional: bool = False

    def champion(self) -> ModelVersion:
        return ModelVersion(
            "churn-model",
            "1",
            0,
            tags=[
                ModelVersionTag("validation_cohort", self.validation_cohort),
                ModelVersionTag("trained_on_incomplete_cohorts", str(self.provisional).lower()),
            ],
        )


def _drift_asset(severity: dg.AssetCheckSeverity, passed: bool) -> dg.AssetsDefinition:
    @dg.asset(
        name="drift_report",
        partitions_def=monthly_partitions,
        check_specs=[dg.AssetCheckSpec("feature_drift", asset="drift_report")],
    )
    def drift_report() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name="feature_drift",
                    passed=passed,
                    severity=severity,
                    description=f"weighted PSI tier {severity.value}",
                )
            ]
        )

    return drift_report


def _calibration_asset(passed: bool) -> dg.AssetsDefinition:
    @dg.asset(
        name="model_performance",
        partitions_def=monthly_partitions,
        check_specs=[dg.AssetCheckSpec("champion_calibration", asset="model_performance")],
    )
    def model_performance() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name="champion_calibration",
                    passed=passed,
                    severity=dg.AssetCheckSeverity.WARN,
                    description="champion v1 miscalibrated beyond sampling noise, beyond doubt",
                )
            ]
        )

    return model_performance


def _training_job(promoted: bool, recalibrated: bool = False) -> dg.JobDefinition:
    """Stands in for the real training_job: same name, its churn_model reports the outcome."""

    @dg.asset(name="churn_model")
    def churn_model() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata={
                "registered": promoted,
                "promoted_to_champion": promoted,
                "model_version": "2" if promoted else "",
                "hurdle": "val AUC 0.70 vs rule 0.72",
                **({"champion_recalibrated": True} if recalibrated else {}),
            }
        )

    return dg.Definitions(
        assets=[churn_model], jobs=[dg.define_asset_job("training_job", selection="*")]
    ).resolve_job_def("training_job")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with dg.instance_for_test() as instance:
        register_months(instance, MONTHS)
        for cohort in MONTHS[:6]:  # labels of 2016-01..2016-06 have landed
            instance.report_runless_asset_event(dg.AssetMaterialization("labels", partition=cohort))
        yield {
            "instance": instance,
            "resources": {
                "registry": FixedChampion(tracking_uri="sqlite:///unused"),
                "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
                "clock": ClockResource(today="2016-08-01"),
                "alerts": alerts_resource({"CHURN_HOME": str(tmp_path)}),
                "retraining": RetrainingPolicy(drift_tier="ERROR"),
            },
            "warehouse": tmp_path / "w.duckdb",
        }


def _tick(world, cursor=None):
    with (
        dg.build_sensor_context(
            instance=world["instance"], cursor=cursor, resources=world["resources"]
        ) as context,
        dg.partition_loading_context(dynamic_partitions_store=world["instance"]),
    ):
        result = training_sensor(context)
        items = list(result) if result is not None else []
        return [i for i in items if isinstance(i, dg.RunRequest)], context.cursor


def _drift(world, severity=dg.AssetCheckSeverity.ERROR, passed=False, cohort="2016-08-01"):
    dg.materialize(
        [_drift_asset(severity, passed)], partition_key=cohort, instance=world["instance"]
    )


def _run(world, request, promoted, recalibrated=False):
    return _training_job(promoted, recalibrated).execute_in_process(
        instance=world["instance"], tags={**request.tags, "dagster/run_key": request.run_key}
    )


def _decisions(world) -> list[tuple]:
    if not world["warehouse"].exists():  # nothing decided yet
        return []
    with duckdb.connect(str(world["warehouse"]), read_only=True) as conn:
        return conn.execute(
            "SELECT trigger, action, newest_labelled_cohort::VARCHAR FROM retraining_decisions "
            "ORDER BY decided_at"
        ).fetchall()


def test_a_candidate_that_keeps_failing_the_hurdle_trains_once_then_escalates(world):
    _drift(world)
    requests, cursor = _tick(world)
    assert len(requests) == 1
    assert requests[0].tags["churn/labels"] == "2016-06-01"
    _run(world, requests[0], promoted=False)
    # The check fails again on the re-measured cohort; the daemon ticks every 60 s.
    _drift(world)
    for _ in range(5):
        again, cursor = _tick(world, cursor)
        assert again == []
    actions = [a for _, a, _ in _decisions(world)]
    assert actions == ["retrain", "escalate"]  # the escalation recorded once, not per tick
    alerts = (world["warehouse"].parent / "logs" / "alerts.log").read_text().splitlines()
    assert [line for line in alerts if "retraining_did_not_help" in line] != []

    # New labels land: one more training is allowed.
    world["instance"].report_runless_asset_event(
        dg.AssetMaterialization("labels", partition="2016-07-01")
    )
    world["resources"]["clock"] = ClockResource(today="2016-09-01")
    requests, cursor = _tick(world, cursor)
    assert [r.tags["churn/labels"] for r in requests] == ["2016-07-01"]


def test_a_warning_tier_does_not_retrain_and_a_passing_check_triggers_nothing(world):
    _drift(world, severity=dg.AssetCheckSeverity.WARN)
    assert _tick(world)[0] == []
    _drift(world, passed=True)
    assert _tick(world)[0] == []


def test_a_stale_champion_is_retrained(world):
    world["resources"]["registry"] = FixedChampion(
        tracking_uri="sqlite:///unused", validation_cohort="2016-01-01"
    )
    requests, _ = _tick(world)  # newest labels 2016-06: five cohorts newer than the champion's
    assert len(requests) == 1
    assert _decisions(world)[0][:2] == ("staleness", "retrain")
    # The run is told the champion is in question: a candidate need not prove itself better.
    config = requests[0].run_config["ops"]["churn_model"]["config"]
    assert config["champion_in_question"] == ["staleness"]


def test_manual_promotion_mode_leaves_the_challenger_to_a_person(world):
    world["resources"]["retraining"] = RetrainingPolicy(drift_tier="ERROR", auto_promote=False)
    _drift(world)
    requests, cursor = _tick(world)
    config = requests[0].run_config["ops"]["churn_model"]["config"]
    assert config["auto_promote"] is False
    _run(world, requests[0], promoted=False)
    assert _tick(world, cursor)[0] == []
    assert [a for _, a, _ in _decisions(world)] == ["retrain", "escalate"]


def test_nothing_starts_while_a_training_runs(world):
    _drift(world)
    requests, cursor = _tick(world)
    world["instance"].add_run(
        dg.DagsterRun(
            job_name="training_job",
            run_id="b" * 36,
            status=dg.DagsterRunStatus.STARTED,
            tags=requests[0].tags,
        )
    )
    assert _tick(world, cursor)[0] == []
    assert _decisions(world)[-1][1] == "hold"


def test_a_provisional_champion_is_retrained_once_newer_labels_exist(world):
    world["resources"]["registry"] = FixedChampion(
        tracking_uri="sqlite:///unused", validation_cohort="2016-05-01", provisional=True
    )
    requests, cursor = _tick(world)  # labels up to 2016-06: one newer than the champion's
    assert [r.tags["churn/labels"] for r in requests] == ["2016-06-01"]
    assert _decisions(world)[0][:2] == ("provisional", "retrain")
    _run(world, requests[0], promoted=True)
    assert _tick(world, cursor)[0] == []  # once per newest labelled cohort, as any trigger


def _features_built(world, cohorts: list[str], complete: bool) -> None:
    for cohort in cohorts:
        world["instance"].report_runless_asset_event(
            dg.AssetMaterialization(
                "features", partition=cohort, metadata={"window_complete": complete}
            )
        )


def test_a_provisional_champion_waits_until_a_candidate_could_learn_from_complete_cohorts(world):
    world["resources"]["registry"] = FixedChampion(
        tracking_uri="sqlite:///unused", validation_cohort="2016-05-01", provisional=True
    )
    # Only the newest labelled cohort was built complete: a candidate would learn from cohorts
    # with holes again, provisional like the champion it is meant to replace.
    _features_built(world, MONTHS[:5], complete=False)
    _features_built(world, MONTHS[5:6], complete=True)
    requests, cursor = _tick(world)
    assert requests == [] and _decisions(world) == []

    # One more complete cohort labelled: one to learn from, one to validate on.
    _features_built(world, MONTHS[6:7], complete=True)
    _new_labels(world, "2016-07-01", "2016-09-01")
    requests, cursor = _tick(world, cursor)
    assert [r.tags["churn/labels"] for r in requests] == ["2016-07-01"]
    assert _decisions(world)[0][:2] == ("provisional", "retrain")


def _new_labels(world, cohort: str, today: str) -> None:
    world["instance"].report_runless_asset_event(
        dg.AssetMaterialization("labels", partition=cohort)
    )
    world["resources"]["clock"] = ClockResource(today=today)


def _alerts_did_not_help(world) -> list[str]:
    log = world["warehouse"].parent / "logs" / "alerts.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if "retraining_did_not_help" in line]


def test_a_person_is_called_once_per_episode_and_again_only_after_the_check_passed(world):
    _drift(world)
    requests, cursor = _tick(world)
    _run(world, requests[0], promoted=False)
    _drift(world)
    _tick(world, cursor)
    assert [a for _, a, _ in _decisions(world)] == ["retrain", "escalate"]

    # Still the same episode (the check never passed): new labels retrain, the candidate loses
    # again, and nobody is called a second time.
    _new_labels(world, "2016-07-01", "2016-09-01")
    requests, cursor = _tick(world, cursor)
    _run(world, requests[0], promoted=False)
    _drift(world, cohort="2016-09-01")
    assert _tick(world, cursor)[0] == []
    decisions = _decisions(world)
    assert [a for _, a, _ in decisions] == ["retrain", "escalate", "retrain", "hold"]
    assert len(_alerts_did_not_help(world)) == 1

    # The check passes once: the episode is over. The next failure that retraining does not
    # mend is a new episode, and a person is called again.
    _drift(world, passed=True, cohort="2016-09-01")
    _drift(world, cohort="2016-09-01")
    _new_labels(world, "2016-08-01", "2016-10-01")
    requests, cursor = _tick(world, cursor)
    _run(world, requests[0], promoted=False)
    _drift(world, cohort="2016-09-01")
    _tick(world, cursor)
    assert [a for _, a, _ in _decisions(world)][-2:] == ["retrain", "escalate"]
    assert len(_alerts_did_not_help(world)) == 2


def test_a_retraining_for_staleness_that_keeps_the_champion_calls_nobody(world):
    world["resources"]["registry"] = FixedChampion(
        tracking_uri="sqlite:///unused", validation_cohort="2016-01-01"
    )
    requests, cursor = _tick(world)
    _run(world, requests[0], promoted=False)
    assert _tick(world, cursor)[0] == []
    assert [a for _, a, _ in _decisions(world)] == ["retrain"]
    assert _alerts_did_not_help(world) == []

    # The champion held its place against a candidate on labels up to 2016-06: the staleness
    # clock starts there, so the next labelled cohort does not retrain it again.
    _new_labels(world, "2016-07-01", "2016-09-01")
    assert _tick(world, cursor)[0] == []
    assert [a for _, a, _ in _decisions(world)] == ["retrain"]


def test_a_provisional_champion_whose_candidate_lost_holds_and_calls_nobody(world):
    world["resources"]["registry"] = FixedChampion(
        tracking_uri="sqlite:///unused", validation_cohort="2016-05-01", provisional=True
    )
    requests, cursor = _tick(world)
    _run(world, requests[0], promoted=False)
    assert _tick(world, cursor)[0] == []
    assert [a for _, a, _ in _decisions(world)] == ["retrain", "hold"]
    assert "nothing needs a person" in _reason(world)
    assert _alerts_did_not_help(world) == []


def _reason(world) -> str:
    with duckdb.connect(str(world["warehouse"]), read_only=True) as conn:
        return conn.execute(
            "SELECT reason FROM retraining_decisions ORDER BY decided_at DESC LIMIT 1"
        ).fetchone()[0]


def _miscalibrated(world, passed=False, cohort="2016-06-01"):
    dg.materialize([_calibration_asset(passed)], partition_key=cohort, instance=world["instance"])


def test_a_miscalibrated_champion_is_retrained_with_its_map_in_question(world):
    _miscalibrated(world)
    requests, cursor = _tick(world)
    assert len(requests) == 1
    assert requests[0].tags["churn/cause"] == "calibration"
    ops = requests[0].run_config["ops"]
    assert ops["churn_model"]["config"]["champion_in_question"] == ["calibration"]
    # The training recalibrated the champion: that mends it, nobody is called.
    _run(world, requests[0], promoted=False, recalibrated=True)
    _miscalibrated(world)
    for _ in range(3):
        assert _tick(world, cursor)[0] == []
    assert [a for _, a, _ in _decisions(world)] == ["retrain", "hold"]


def test_a_miscalibrated_champion_that_neither_retraining_nor_recalibration_mends_escalates(
    world,
):
    _miscalibrated(world)
    requests, cursor = _tick(world)
    _run(world, requests[0], promoted=False)
    _miscalibrated(world)
    assert _tick(world, cursor)[0] == []
    assert [(t, a) for t, a, _ in _decisions(world)] == [
        ("calibration", "retrain"),
        ("calibration", "escalate"),
    ]
