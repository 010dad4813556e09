"""Sensors that raise alerts (see :mod:`churn_assets.alerts.channels` for where they go).

* ``check_failure_alerts``: an asset check whose latest execution (per partition) failed with
  severity ERROR. Once per failure: the check and partition stay alerted, in the cursor, until
  a later execution passes (or only warns).
* ``run_failure_alerts``: a failed run, with its failed step's own message.
* ``slow_run_alerts``: a run that took longer than ``slow_run_s``, or is still going past it.

Run alerts are sent once per run: the run is tagged ``churn/alerted/<event>`` when alerted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg

from churn_assets.alerts.channels import AlertsResource
from churn_assets.alerts.events import CHECK_FAILED, ERROR, RUN_FAILED, RUN_SLOW, WARNING, Alert
from churn_assets.alerts.events import one_line as _one_line
from churn_assets.dagster_internals import AssetCheckExecutionRecordStatus
from churn_assets.keys import ALERTED_TAG_PREFIX, PARTITION_TAG
from churn_assets.run_failures import first_step_failure

MAX_DETAIL = 500
# Failed checks remembered as alerted; older ones beyond this may alert again.
MAX_OPEN_FAILURES = 1000
HISTORY_PAGE = 100
HISTORY_PAGES = 10
# On its first tick, the slow-run sensor looks this far back for finished runs.
FIRST_LOOKBACK_S = 24 * 3600
RUN_PAGE = 500
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def _short(text: str) -> str:
    text = _one_line(text)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def check_subject(key: dg.AssetCheckKey, partition: str | None) -> str:
    """``asset:check[partition]``: the check and the partition its execution judged."""
    name = key.to_user_string()
    return f"{name}[{partition}]" if partition else name


def run_subject(run: dg.DagsterRun) -> str:
    partition = run.tags.get(PARTITION_TAG)
    job = f"{run.job_name}[{partition}]" if partition else run.job_name
    return f"{job} run {run.run_id[:8]}"


def _failed_evaluation(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey, run_id: str, partition: str | None
) -> dg.AssetCheckEvaluation | None:
    """The evaluation that ``run_id`` recorded for ``key`` and ``partition``, if found."""
    cursor = None
    for _ in range(HISTORY_PAGES):
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=HISTORY_PAGE, cursor=cursor
        )
        for record in records:
            if record.run_id == run_id and record.partition == partition:
                return record.evaluation
        if len(records) < HISTORY_PAGE:
            return None
        cursor = records[-1].id
    return None


def _check_detail(evaluation: dg.AssetCheckEvaluation, run_id: str) -> str:
    text = evaluation.description or ", ".join(
        f"{name}={getattr(value, 'value', value)}" for name, value in evaluation.metadata.items()
    )
    return _short(f"{text or 'failed'} (run {run_id[:8]})")


def _check_alert(
    alerts: AlertsResource,
    subject: str,
    evaluation: dg.AssetCheckEvaluation,
    partition: str | None,
    run_id: str,
) -> Alert:
    """The alert for a failed ERROR check, kept out of the sensor so its loop reads as the
    decision of whether to send one."""
    return Alert(
        CHECK_FAILED,
        ERROR,
        subject,
        _check_detail(evaluation, run_id),
        cohort=partition,
        run_id=run_id,
        link=alerts.run_link(run_id),
    )


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alert on asset checks whose latest execution failed with severity ERROR, "
    "once per check and partition until it passes again.",
)
def check_failure_alerts(
    context: dg.SensorEvaluationContext, alerts: AlertsResource
) -> dg.SkipReason | None:
    if context.repository_def is None:
        return dg.SkipReason("no repository to list asset checks from")
    keys = sorted(context.repository_def.asset_graph.asset_check_keys, key=str)
    state = json.loads(context.cursor) if context.cursor else {}
    after: int | None = state.get("after")
    alerted = dict.fromkeys(state.get("open", []))  # an ordered set, oldest first
    storage = context.instance.event_log_storage
    # Latest execution per check and partition, for those with news since the last tick.
    newest = after or 0
    sent = []
    infos = storage.get_asset_check_partition_info(keys, after_storage_id=after) if keys else []
    for info in sorted(infos, key=lambda i: i.latest_check_event_storage_id or 0):
        newest = max(
            newest,
            info.latest_check_event_storage_id or 0,
            info.latest_materialization_storage_id or 0,
        )
        subject = check_subject(info.check_key, info.partition_key)
        status = info.latest_execution_status
        if status == AssetCheckExecutionRecordStatus.PLANNED:
            continue  # still running: judged on a later tick
        if status == AssetCheckExecutionRecordStatus.SUCCEEDED:
            alerted.pop(subject, None)
            continue
        evaluation = _failed_evaluation(
            context.instance, info.check_key, info.latest_planned_run_id, info.partition_key
        )
        if evaluation is None:
            continue
        if evaluation.severity != dg.AssetCheckSeverity.ERROR:
            alerted.pop(subject, None)  # only a warning now: a later error alerts again
            continue
        run_id = info.latest_planned_run_id
        # A sensor started afresh (a new replay, a reset cursor) does not repeat an alert the
        # log holds for this very execution.
        if subject in alerted or alerts.sent_before(CHECK_FAILED, subject, alerts.run_link(run_id)):
            alerted[subject] = None
            continue
        alerts.send(_check_alert(alerts, subject, evaluation, info.partition_key, run_id))
        alerted[subject] = None
        sent.append(subject)
    context.update_cursor(json.dumps({"after": newest, "open": list(alerted)[-MAX_OPEN_FAILURES:]}))
    if sent:
        context.log.info(f"alerted failed checks: {', '.join(sent)}")
        return None
    return dg.SkipReason("no newly failed ERROR check")


def step_failure_line(events: Sequence[dg.DagsterEvent]) -> str | None:
    """The first failed step's own message, folded into one line (``step: message``)."""
    failure = first_step_failure(events)
    return _short(f"{failure.step_key}: {failure.text}") if failure else None


def _already_alerted(instance: dg.DagsterInstance, run_id: str, event: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or bool(run.tags.get(ALERTED_TAG_PREFIX + event))


def _mark_alerted(instance: dg.DagsterInstance, run_id: str, event: str) -> None:
    instance.add_run_tags(
        run_id, {ALERTED_TAG_PREFIX + event: datetime.now(UTC).isoformat(timespec="seconds")}
    )


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alert on every failed run, naming the failed step and its message.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
    run = context.dagster_run
    if _already_alerted(context.instance, run.run_id, RUN_FAILED):
        return
    detail = step_failure_line(context.get_step_failure_events()) or _short(
        context.failure_event.message or "run failed"
    )
    alerts.send(
        Alert(
            RUN_FAILED,
            ERROR,
            run_subject(run),
            detail,
            cohort=run.tags.get(PARTITION_TAG),
            run_id=run.run_id,
            link=alerts.run_link(run.run_id),
        )
    )
    _mark_alerted(context.instance, run.run_id, RUN_FAILED)


def duration_text(seconds: float) -> str:
    """``1 h 05 min``, ``3 min 07 s``, ``4.2 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _slow_alert(alerts: AlertsResource, run: dg.DagsterRun, detail: str) -> Alert:
    return Alert(
        RUN_SLOW,
        WARNING,
        run_subject(run),
        detail,
        cohort=run.tags.get(PARTITION_TAG),
        run_id=run.run_id,
        link=alerts.run_link(run.run_id),
    )


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alert on runs that took longer than the slow-run limit, or are still running "
    "past it (once per run).",
)
def slow_run_alerts(
    context: dg.SensorEvaluationContext, alerts: AlertsResource
) -> dg.SkipReason | None:
    instance = context.instance
    now = time.time()
    limit = alerts.slow_run_s
    state = json.loads(context.cursor) if context.cursor else {}
    since = float(state.get("updated_after", now - FIRST_LOOKBACK_S))
    slow: list[tuple[dg.DagsterRun, str]] = []
    finished = instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED, updated_after=datetime.fromtimestamp(since, UTC)),
        limit=RUN_PAGE,
        order_by="update_timestamp",
        ascending=True,
    )
    for record in finished:
        since = max(since, record.update_timestamp.timestamp())
        if record.start_time is None or record.end_time is None:
            continue
        took = record.end_time - record.start_time
        if took > limit:
            status = record.dagster_run.status.value.lower()
            slow.append(
                (
                    record.dagster_run,
                    f"took {duration_text(took)} (limit {duration_text(limit)}), {status}",
                )
            )
    running = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=RUN_PAGE
    )
    for record in running:
        if record.start_time is not None and now - record.start_time > limit:
            took = now - record.start_time
            slow.append(
                (
                    record.dagster_run,
                    f"still running after {duration_text(took)} (limit {duration_text(limit)})",
                )
            )
    sent = []
    for run, detail in slow:
        if _already_alerted(instance, run.run_id, RUN_SLOW):
            continue
        alerts.send(_slow_alert(alerts, run, detail))
        _mark_alerted(instance, run.run_id, RUN_SLOW)
        sent.append(run.run_id[:8])
    context.update_cursor(json.dumps({"updated_after": since}))
    if sent:
        context.log.info(f"alerted slow runs: {', '.join(sent)}")
        return None
    return dg.SkipReason(f"no run beyond {duration_text(limit)}")


ALERT_SENSORS = [check_failure_alerts, run_failure_alerts, slow_run_alerts]
