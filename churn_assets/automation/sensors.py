"""Sensors that close the loop, each keyed so that a repeated evaluation never repeats a run.

* ``cohort_sensor``: a month of raw data is in (both tables, blocking checks passed) -> build,
  score and drift-check the next cohort.
* ``training_sensor``: the drift check failed and newer labels exist than the champion learnt
  from -> retrain and re-score; or there is no champion yet and two labelled cohorts exist ->
  train the first one.
"""

import json
from collections.abc import Iterator

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from churn_assets.automation.jobs import cohort_job, training_job
from churn_assets.monitoring.assets import DRIFT_CHECK
from churn_assets.partitions import (
    add_months,
    latest_labeled_cohort,
    month_start,
    partition_key,
)
from churn_assets.resources import ModelRegistryResource
from churn_assets.settings import auto_promote, training_budget_s

RAW_TABLES = (dg.AssetKey("transactions"), dg.AssetKey("user_logs"))
DRIFT_CHECK_KEY = dg.AssetCheckKey(dg.AssetKey("drift_report"), DRIFT_CHECK)
FEATURES = dg.AssetKey("features")
LABELS = dg.AssetKey("labels")
MIN_LABELED_COHORTS = 2  # one to train on, the newest to validate on


def _cursor(context: dg.SensorEvaluationContext) -> dict[str, int]:
    return json.loads(context.cursor) if context.cursor else {}


def _new_materializations(
    instance: dg.DagsterInstance, key: dg.AssetKey, after: int | None
) -> list[dg.EventLogRecord]:
    records: list[dg.EventLogRecord] = []
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after),
            limit=500,
            cursor=cursor,
            ascending=True,
        )
        records.extend(result.records)
        if not result.has_more:
            return records
        cursor = result.cursor


def _latest_materialization(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str
) -> dg.EventLogRecord | None:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    )
    return result.records[0] if result.records else None


def _blocking_checks_passed(instance: dg.DagsterInstance, record: dg.EventLogRecord) -> bool:
    """Did the materialization's own blocking ``schema`` check pass in its run?"""
    check_key = dg.AssetCheckKey(record.asset_key, "schema")
    for execution in instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=50
    ):
        # A ranged run records one result per month: match the month too.
        if execution.run_id == record.run_id and execution.partition == record.partition_key:
            return execution.status == AssetCheckExecutionRecordStatus.SUCCEEDED
    return False


def _champion_exists(registry: ModelRegistryResource) -> bool:
    return registry.champion() is not None


@dg.sensor(
    job=cohort_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a month of raw data is loaded and valid, process the next month's cohort.",
)
def cohort_sensor(
    context: dg.SensorEvaluationContext, registry: ModelRegistryResource
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    cursor = _cursor(context)
    touched: set[str] = set()
    for key in RAW_TABLES:
        for record in _new_materializations(context.instance, key, cursor.get(key.path[-1])):
            touched.add(record.partition_key)
            cursor[key.path[-1]] = max(cursor.get(key.path[-1], 0), record.storage_id)
    scoring = _champion_exists(registry)
    selection = [FEATURES] + (
        [dg.AssetKey("predictions"), dg.AssetKey("drift_report")] if scoring else []
    )
    requested = False
    for data_month in sorted(p for p in touched if p):
        latest = [_latest_materialization(context.instance, k, data_month) for k in RAW_TABLES]
        if any(r is None for r in latest):
            continue  # the other table of this month is not loaded yet
        if not all(_blocking_checks_passed(context.instance, r) for r in latest):
            context.log.info(f"raw data of {data_month} failed its schema check; not scoring")
            continue
        cohort = partition_key(add_months(month_start(data_month), 1))
        requested = True
        yield dg.RunRequest(
            run_key=f"cohort-{cohort}-" + "-".join(str(r.storage_id) for r in latest),
            partition_key=cohort,
            asset_selection=selection,
            tags={"churn/trigger": f"raw data of {data_month[:7]} loaded"},
        )
    context.update_cursor(json.dumps(cursor))
    if not requested:
        yield dg.SkipReason("no newly loaded month with both transactions and user_logs")


def _training_request(cohort: str, run_key: str, reason: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        partition_key=cohort,
        run_config={
            "ops": {
                "churn_model": {
                    "config": {
                        "as_of_month": cohort[:7],
                        "time_budget_s": training_budget_s(),
                        "auto_promote": auto_promote(),
                    }
                }
            }
        },
        tags={"churn/trigger": reason},
    )


def _labeled_cohorts_known_at(instance: dg.DagsterInstance, cohort: str) -> list[str]:
    newest = partition_key(latest_labeled_cohort(month_start(cohort)))
    return sorted(p for p in instance.get_materialized_partitions(LABELS) if p <= newest)


@dg.sensor(
    job=training_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrain on failed drift checks (given newer labels); train the first model.",
)
def training_sensor(
    context: dg.SensorEvaluationContext, registry: ModelRegistryResource
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    cursor = _cursor(context)
    champion = registry.champion()
    requested = False

    failures = [
        e
        for e in context.instance.event_log_storage.get_asset_check_execution_history(
            DRIFT_CHECK_KEY, limit=100, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        if e.id > cursor.get("drift_check", 0)
    ]
    for failure in sorted(failures, key=lambda e: e.id):
        cursor["drift_check"] = failure.id
        cohort = failure.partition
        if cohort is None:
            continue
        labeled = _labeled_cohorts_known_at(context.instance, cohort)
        learnt_until = champion.tags.get("validation_cohort", "") if champion else ""
        if not labeled or labeled[-1] <= learnt_until:
            context.log.info(
                f"drift on {cohort[:7]}, but no labels newer than {learnt_until[:7]} to learn from"
            )
            continue
        requested = True
        yield _training_request(
            cohort, f"retrain-{cohort}-{failure.id}", f"feature drift on cohort {cohort[:7]}"
        )

    new_features = _new_materializations(context.instance, FEATURES, cursor.get("features"))
    if new_features:
        cursor["features"] = new_features[-1].storage_id
    if champion is None and new_features and not requested:
        cohort = max(r.partition_key for r in new_features)
        if len(_labeled_cohorts_known_at(context.instance, cohort)) >= MIN_LABELED_COHORTS:
            requested = True
            yield _training_request(
                cohort, f"first-model-{cohort}", "no champion yet and two labelled cohorts exist"
            )
    context.update_cursor(json.dumps(cursor))
    if not requested:
        yield dg.SkipReason("no failed drift check with newer labels, and a champion exists")
