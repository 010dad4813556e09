"""Sensors that close the loop, each keyed so that a repeated evaluation never repeats a run
that succeeded, and a failed one is retried (see :mod:`churn_assets.automation.requests`).

* ``landing_sensor``: files landed (new, late, fixed) for months that have ended -> load them.
* ``cohort_sensor``: a month of raw data is in (every table that has files for it, blocking
  checks passed) -> build, score and drift-check the next cohort; an incomplete cohort whose
  missing month has now loaded is rebuilt.
* ``training_sensor``: the retraining policy (:mod:`churn_assets.automation.retraining`): train
  the first model once two labelled cohorts exist; retrain on a drift tier, a persistent
  performance failure or staleness, at most once per newest labelled cohort; escalate.
"""

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import dagster as dg
from dagster_duckdb import DuckDBResource

from churn_assets.alerts.channels import AlertsResource
from churn_assets.alerts.events import whole_clauses
from churn_assets.alerts.retraining import alert_retraining_did_not_help
from churn_assets.automation.jobs import cohort_job, load_job, training_job
from churn_assets.automation.loads import due_loads
from churn_assets.automation.reaper import end_orphaned_mlflow_runs
from churn_assets.automation.requests import forgive_environment_faults, keyed_request
from churn_assets.automation.retraining import (
    Decision,
    already_recorded,
    decide,
    escalated_since,
    observation,
    record_decisions,
)
from churn_assets.dagster_internals import AssetCheckExecutionRecordStatus
from churn_assets.keys import (
    CHURN_MODEL,
    DRIFT_REPORT,
    FEATURES,
    LABELS,
    LABELS_TAG,
    MODEL_HEALTH_REPORT,
    MODEL_PERFORMANCE,
    ONLINE_FEATURES,
    PERFORMANCE_ESTIMATE,
    PREDICTIONS,
    RETENTION_OUTCOME,
    TRAINING_CAUSE_TAG,
    TRANSACTIONS,
    TRIGGER_TAG,
    USER_LOGS,
)
from churn_assets.landing.catalog import LandingCatalog
from churn_assets.partitions import (
    add_months,
    latest_labelled_cohort,
    month_start,
    monthly_partitions,
    partition_key,
)
from churn_assets.resources import (
    ClockResource,
    LandingResource,
    ModelRegistryResource,
    RetrainingPolicy,
)
from churn_assets.training.config import TrainingConfig

# A rebuilt cohort whose labels have loaded is backtested again, and its retention outcome made
# again from its new scores.
LABELLED_COHORT_ASSETS = [MODEL_PERFORMANCE, RETENTION_OUTCOME]

RAW_TABLES = (TRANSACTIONS, USER_LOGS)
# How long the daemon's sensors wait before retrying a run that failed for the environment.
ENVIRONMENT_RETRY_AFTER = timedelta(hours=1)
MAX_TRIGGER_TAG = 500  # a run's trigger tag: its evidence's leading clauses, whole
MIN_LABELLED_COHORTS = 2  # one to train on, the newest to validate on
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# A raw month feeds the listening window of the next 3 cohorts and the payments of the next 13.
COHORTS_FED_BY_A_MONTH = 13
# Days of listening a cohort's features read (features/cohort_features.sql).
LISTENING_DAYS = 90


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
    """Did the materialization's own blocking ``schema`` check pass in its run (or only warn, as
    Dagster's blocking does: a warning never blocks)?"""
    check_key = dg.AssetCheckKey(record.asset_key, "schema")
    for execution in instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=50
    ):
        # A ranged run records one result per month: match the month too.
        if execution.run_id == record.run_id and execution.partition == record.partition_key:
            if execution.status == AssetCheckExecutionRecordStatus.SUCCEEDED:
                return True
            evaluation = execution.event.asset_check_evaluation if execution.event else None
            return (
                execution.status == AssetCheckExecutionRecordStatus.FAILED
                and evaluation is not None
                and evaluation.severity == dg.AssetCheckSeverity.WARN
            )
    return False


def _inputs_version(instance: dg.DagsterInstance, cohort: str) -> int:
    """The newest load of any raw month ``cohort`` reads (its storage id; 0 when none).

    A cohort's request is keyed by it: the cohort is built once per state of its inputs and
    rebuilt when a month it reads loads again, and a sensor that starts over from an empty cursor
    (the next replay) asks with the same keys, so nothing that succeeded runs twice.
    """
    month = month_start(cohort)
    read = [partition_key(add_months(month, -k)) for k in range(1, COHORTS_FED_BY_A_MONTH + 1)]
    newest = 0
    for key in RAW_TABLES:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=read), limit=1
        )
        if result.records:
            newest = max(newest, result.records[0].storage_id)
    return newest


def _champion_exists(registry: ModelRegistryResource) -> bool:
    return registry.champion() is not None


@dg.sensor(
    job=load_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Load landing files as they arrive: new, late or replaced months that have "
    "ended, payment history in one ranged run, and label files.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext, landing: LandingResource, clock: ClockResource
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    # Under the daemon, a run that failed for the environment an hour ago is tried again.
    forgive_environment_faults(context.instance, datetime.now() - ENVIRONMENT_RETRY_AFTER)
    requested = False
    for request in due_loads(context.instance, landing.catalog(), clock.current_month()):
        requested = True
        yield request
    if not requested:
        yield dg.SkipReason("every landed month that has ended is loaded from its current files")


def _loads_pending(
    instance: dg.DagsterInstance, catalog: LandingCatalog, clock: ClockResource
) -> bool:
    running = instance.get_runs(
        filters=dg.RunsFilter(job_name=load_job.name, statuses=IN_PROGRESS), limit=1
    )
    return (
        bool(running) or next(due_loads(instance, catalog, clock.current_month()), None) is not None
    )


def _missing_months(instance: dg.DagsterInstance, cohort: str) -> set[tuple[str, str]]:
    """(table, YYYY-MM) pairs the cohort's latest build found missing from its windows."""
    record = _latest_materialization(instance, FEATURES, cohort)
    if record is None or record.asset_materialization is None:
        return set()
    missing = record.asset_materialization.metadata.get("missing_months")
    text = str(missing.value) if missing is not None else ""
    return {
        tuple(part.strip().split(" ", 1))  # type: ignore[misc]
        for part in text.split(",")
        if " " in part.strip()
    }


@dg.sensor(
    job=cohort_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a month of raw data is loaded and valid, process the next month's cohort; "
    "rebuild a cohort that was built while one of its months was missing, once it loads.",
)
def cohort_sensor(
    context: dg.SensorEvaluationContext,
    registry: ModelRegistryResource,
    landing: LandingResource,
    clock: ClockResource,
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    cursor = _cursor(context)
    touched = _newly_loaded(context.instance, cursor)
    scoring = _champion_exists(registry)
    scored = [PREDICTIONS, ONLINE_FEATURES, PERFORMANCE_ESTIMATE, DRIFT_REPORT, MODEL_HEALTH_REPORT]
    selection = [FEATURES] + (scored if scoring else [])
    catalog = landing.catalog() if touched else None
    if catalog is not None and _loads_pending(context.instance, catalog, clock):
        # Built now, a cohort would read a history that is still arriving: wait a tick.
        yield dg.SkipReason("raw loads are due or running; cohorts wait for them")
        return
    cohorts = _cohorts_to_build(context, catalog, touched) if catalog is not None else {}
    _cohorts_to_rebuild(context.instance, touched, cohorts)
    requested = False
    for cohort, why in sorted(cohorts.items()):
        # Labelled already: the cohort is being rebuilt, and its backtest is made again.
        backtest = scoring and _labelled(context.instance, cohort)
        request = keyed_request(
            context.instance,
            f"cohort-{cohort}-{_inputs_version(context.instance, cohort)}",
            tags={TRIGGER_TAG: why},
            partition_key=cohort,
            asset_selection=selection + (LABELLED_COHORT_ASSETS if backtest else []),
        )
        if request is not None:
            requested = True
            yield request
    context.update_cursor(json.dumps(cursor))
    if not requested:
        yield dg.SkipReason("no newly loaded month with its landed tables all loaded")


def _newly_loaded(instance: dg.DagsterInstance, cursor: dict) -> dict[str, set[str]]:
    """Data month -> the raw tables materialized for it since the cursor (which moves on)."""
    touched: dict[str, set[str]] = {}
    for key in RAW_TABLES:
        for record in _new_materializations(instance, key, cursor.get(key.path[-1])):
            if record.partition_key:
                touched.setdefault(record.partition_key, set()).add(key.path[-1])
            cursor[key.path[-1]] = max(cursor.get(key.path[-1], 0), record.storage_id)
    return touched


def _cohorts_to_build(
    context: dg.SensorEvaluationContext, catalog: LandingCatalog, touched: dict[str, set[str]]
) -> dict[str, str]:
    """Cohort -> why: the month after each newly loaded month whose landed tables all loaded
    and passed their blocking checks."""
    listening = catalog.months("user_logs")
    cohorts: dict[str, str] = {}
    for data_month in sorted(touched):
        month = month_start(data_month)
        if not listening or data_month < listening[0]:
            continue  # payment history only: no cohort has listening to be built from yet
        # Tables with no file for the month are not waited for: the cohort is built and its
        # coverage check says what is missing.
        landed = [k for k in RAW_TABLES if catalog.files_for(k.path[-1], [month])]
        latest = [_latest_materialization(context.instance, k, data_month) for k in landed]
        if not landed or any(r is None for r in latest):
            continue  # a table with files for this month has not loaded yet
        if not all(_blocking_checks_passed(context.instance, r) for r in latest):
            context.log.info(f"raw data of {data_month} failed its schema check; not scoring")
            continue
        cohorts.setdefault(
            partition_key(add_months(month, 1)), f"raw data of {data_month[:7]} loaded"
        )
    return cohorts


def _cohorts_to_rebuild(
    instance: dg.DagsterInstance, touched: dict[str, set[str]], cohorts: dict[str, str]
) -> None:
    """Add the built cohorts that read a month which has loaded since they were built.

    A month that was missing when they were built, or a file that replaced a month's rows: every
    cohort whose windows cover it is rebuilt (then re-scored, re-measured and, once labelled,
    backtested again), in this tick, not only the next one. Even one later than the clock: a
    replay run again on a home that went further reaches the month that loaded (late, fixed or
    replaced) before the cohorts after it.
    """
    registered = set(instance.get_dynamic_partitions(monthly_partitions.name))
    loaded = {(table, month[:7]) for month, tables in touched.items() for table in tables}
    for data_month, tables in sorted(touched.items()):
        for later in range(2, _cohorts_read_by(data_month, tables) + 1):
            cohort = partition_key(add_months(month_start(data_month), later))
            if cohort not in registered or cohort in cohorts:
                continue
            if _missing_months(instance, cohort) & loaded:
                cohorts[cohort] = f"rebuild: a month cohort {cohort[:7]} missed has loaded"
            elif _built_before_its_inputs(instance, cohort):
                cohorts[cohort] = f"rebuild: {data_month[:7]}, which it reads, loaded again"


def _labelled(instance: dg.DagsterInstance, cohort: str) -> bool:
    """The cohort's labels have loaded: its backtest and retention outcome can be made again."""
    return _latest_materialization(instance, LABELS, cohort) is not None


def _cohorts_read_by(data_month: str, tables: set[str]) -> int:
    """How many cohorts after it read a month: payments feed a year of cohorts; listening only
    those whose 90 days reach back into the month."""
    if "transactions" in tables:
        return COHORTS_FED_BY_A_MONTH
    last_day = add_months(month_start(data_month), 1) - timedelta(days=1)
    reach = last_day + timedelta(days=LISTENING_DAYS)
    later = 1
    while add_months(month_start(data_month), later + 1) <= reach:
        later += 1
    return later


def _built_before_its_inputs(instance: dg.DagsterInstance, cohort: str) -> bool:
    """A cohort's features are older than the newest load of a month they read."""
    record = _latest_materialization(instance, FEATURES, cohort)
    return record is not None and _inputs_version(instance, cohort) > record.storage_id


def _training_request(
    instance: dg.DagsterInstance,
    policy: RetrainingPolicy,
    cohort: str,
    request_id: str,
    reason: str,
    labels: str,
    cause: str,
    in_question: tuple[str, ...] = (),
) -> dg.RunRequest | None:
    """A keyed training run as on the first day of ``cohort``, configured through the typed
    ``TrainingConfig`` with what the policy sets (budget, auto-promotion)."""
    training = TrainingConfig(
        as_of_month=cohort[:7],
        champion_in_question=list(in_question),
        **policy.training_overrides(),
    )
    return keyed_request(
        instance,
        request_id,
        partition_key=cohort,
        run_config=dg.RunConfig(ops={CHURN_MODEL.to_python_identifier(): training}),
        tags={TRIGGER_TAG: reason, LABELS_TAG: labels, TRAINING_CAUSE_TAG: cause},
    )


def _labelled_cohorts_known_at(instance: dg.DagsterInstance, cohort: str) -> list[str]:
    newest = partition_key(latest_labelled_cohort(month_start(cohort)))
    return sorted(p for p in instance.get_materialized_partitions(LABELS) if p <= newest)


def _first_model(
    context: dg.SensorEvaluationContext, policy: RetrainingPolicy, cursor: dict
) -> dg.RunRequest | None:
    """No champion yet: train one as soon as two labelled cohorts and a built cohort exist."""
    new_features = _new_materializations(context.instance, FEATURES, cursor.get("features"))
    if not new_features:
        return None
    cursor["features"] = new_features[-1].storage_id
    cohort = max(r.partition_key for r in new_features)
    labelled = _labelled_cohorts_known_at(context.instance, cohort)
    if len(labelled) < MIN_LABELLED_COHORTS:
        return None
    return _training_request(
        context.instance,
        policy,
        cohort,
        f"first-model-{cohort}",
        "no champion yet and two labelled cohorts exist",
        labelled[-1],
        "first model",
    )


def _newest_scored_cohort(instance: dg.DagsterInstance, today: date) -> str:
    """The newest built cohort that has users: the one a retrain re-scores."""
    built = [p for p in instance.get_materialized_partitions(FEATURES) if p <= partition_key(today)]
    for cohort in sorted(built, reverse=True):
        record = _latest_materialization(instance, FEATURES, cohort)
        rows = record.asset_materialization.metadata.get("dagster/row_count") if record else None
        if rows is None or rows.value:
            return cohort
    return partition_key(today)


@dg.sensor(
    job=training_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="The retraining policy: train the first model; retrain on a drift tier, a "
    "persistent performance failure or a stale champion, at most once per newest labelled "
    "cohort; escalate once per episode when retraining did not fix a failing monitor. "
    "Decisions go to retraining_decisions.",
)
def training_sensor(
    context: dg.SensorEvaluationContext,
    registry: ModelRegistryResource,
    warehouse: DuckDBResource,
    clock: ClockResource,
    alerts: AlertsResource,
    retraining: RetrainingPolicy,
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    cursor = _cursor(context)
    champion = registry.champion()
    if champion is None:
        request = _first_model(context, retraining, cursor)
        context.update_cursor(json.dumps(cursor))
        if request is not None:
            yield request
        else:
            yield dg.SkipReason("no champion yet, and fewer than two labelled cohorts")
        return

    today = clock.current_month()
    decision = decide(
        context.instance,
        retraining,
        champion,
        today,
        lambda kind, since, run_id: escalated_since(warehouse, kind, since, run_id),
    )
    if decision is None:
        context.update_cursor(json.dumps(cursor))
        yield dg.SkipReason("no trigger: drift, performance and freshness within the policy")
        return
    request = (
        _retrain(context.instance, retraining, decision, today)
        if decision.action == "retrain"
        else None
    )
    _record_once(context, warehouse, alerts, decision, cursor)
    context.update_cursor(json.dumps(cursor))
    if request is not None:
        yield request
    else:
        yield dg.SkipReason(f"{decision.action}: {decision.reason}")


def _retrain(
    instance: dg.DagsterInstance, policy: RetrainingPolicy, decision: Decision, today: date
) -> dg.RunRequest | None:
    """The training run the decision asks for; when every attempt failed already, the decision
    becomes an escalation instead (retrying further will not help)."""
    request = _training_request(
        instance,
        policy,
        _newest_scored_cohort(instance, today),
        f"retrain-labels-{decision.newest_labels}",
        # The evidence names each trigger's kind already ("drift: weighted PSI ...").
        whole_clauses(decision.trigger.evidence, MAX_TRIGGER_TAG),
        decision.newest_labels,
        decision.trigger.kind,
        decision.trigger.kinds,
    )
    if request is None:
        decision.action = "escalate"
        decision.reason = (
            f"training on labels {decision.newest_labels[:7]} failed every attempt: needs a person"
        )
    else:
        decision.run_key = request.run_key or ""
    return request


def _record_once(
    context: dg.SensorEvaluationContext,
    warehouse: DuckDBResource,
    alerts: AlertsResource,
    decision: Decision,
    cursor: dict,
) -> None:
    """Record (and, for an escalation, alert) a decision unless it is recorded already, by this
    cursor or in the history (a replay walking months decided before): a repeated tick or a
    no-op replay adds nothing to the decision history and calls nobody twice."""
    recorded = cursor.get("recorded", [])
    if decision.key in recorded or already_recorded(warehouse, decision):
        return
    record_decisions(warehouse, [decision])
    context.instance.report_runless_asset_event(observation(decision))
    if decision.action == "escalate":
        context.log.warning(f"retraining needs a person: {decision.reason}")
        alert_retraining_did_not_help(
            alerts,
            decision.trigger.cohort or decision.newest_labels,
            f"{decision.reason}; evidence: {decision.trigger.evidence}",
        )
    cursor["recorded"] = [*recorded, decision.key][-50:]


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="End the MLflow run of a failed Dagster run (a killed step cannot end its own).",
)
def mlflow_run_closer(context: dg.RunFailureSensorContext, registry: ModelRegistryResource) -> None:
    ended = end_orphaned_mlflow_runs(context.instance, registry.tracking_uri)
    if ended:
        context.log.info(f"ended MLflow run(s) {', '.join(ended)} of failed Dagster runs")
