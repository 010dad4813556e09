"""What happened, read from where it is recorded: the Dagster instance (runs), the warehouse
(verdicts, retraining decisions, scores, weekly lists) and the alert log.

Nothing here is counted or remembered by the replay itself, so the summary says what the
instance and the warehouse say, whoever made the runs (this replay, an earlier one, the daemon).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb

from churn_assets.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    SCHEDULE_NAME_TAG,
    SENSOR_NAME_TAG,
)
from churn_assets.keys import PARTITION_TAG, REQUEST_TAG, TRIGGER_TAG
from churn_assets.run_failures import first_step_failure
from churn_assets.warehouse import table_exists

RUN_PAGE = 1000


@dataclass(frozen=True)
class RunFact:
    """One Dagster run: who launched it, why, on what, and how it ended."""

    run_id: str
    job: str
    partition: str  # a month, a range of months, or '' (the weekly list)
    launched_by: str  # schedule or sensor name, or 'by hand'
    trigger: str  # the churn/trigger tag: why the sensor asked for it ('' for schedules)
    status: str  # ok, FAILED, running, ...
    reason: str  # a failed run's first failed step, in one line
    created: datetime
    request: str  # attempts of one request share it


@dataclass(frozen=True)
class VerdictFact:
    cohort: date
    monitor: str
    severity: str  # pass, warn, error, n/a
    detail: str
    evaluated_at: datetime


@dataclass(frozen=True)
class DecisionFact:
    decided_at: datetime
    cohort: date | None
    trigger: str
    evidence: str
    action: str  # retrain, hold, escalate
    reason: str
    run_id: str

    @property
    def escalation(self) -> bool:
        return self.action == "escalate"


@dataclass(frozen=True)
class AlertFact:
    at: str
    severity: str
    event: str
    subject: str
    detail: str


def _partition(run: dg.DagsterRun) -> str:
    """``2016-05``, ``2015-01..2015-12`` for a ranged run, or ''."""
    if PARTITION_TAG in run.tags:
        return run.tags[PARTITION_TAG][:7]
    first = run.tags.get(ASSET_PARTITION_RANGE_START_TAG, "")
    last = run.tags.get(ASSET_PARTITION_RANGE_END_TAG, "")
    return f"{first[:7]}..{last[:7]}" if first else ""


def _status(run: dg.DagsterRun) -> str:
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return "ok"
    if run.status == dg.DagsterRunStatus.FAILURE:
        return "FAILED"
    return run.status.value.lower()


def _failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    if run.status != dg.DagsterRunStatus.FAILURE:
        return ""
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    failure = first_step_failure(e.dagster_event for e in events if e.dagster_event)
    return failure.line() if failure else "run failed before any step"


def run_facts(instance: dg.DagsterInstance) -> list[RunFact]:
    """Every run on the instance, oldest first, each once."""
    records = instance.get_run_records(limit=RUN_PAGE, ascending=True)
    facts = []
    for record in sorted(records, key=lambda r: (r.create_timestamp, r.storage_id)):
        run = record.dagster_run
        facts.append(
            RunFact(
                run.run_id,
                run.job_name,
                _partition(run),
                run.tags.get(SCHEDULE_NAME_TAG) or run.tags.get(SENSOR_NAME_TAG) or "by hand",
                run.tags.get(TRIGGER_TAG, ""),
                _status(run),
                _failure(instance, run),
                record.create_timestamp,
                run.tags.get(REQUEST_TAG, run.run_id),
            )
        )
    return facts


def verdict_facts(conn: duckdb.DuckDBPyConnection) -> list[VerdictFact]:
    """Every monitor verdict, in the order evaluated (a cohort is judged again after a retrain)."""
    if not table_exists(conn, "monitor_verdicts"):
        return []
    rows = conn.execute(
        "SELECT cohort_month, monitor, severity, coalesce(detail, ''), evaluated_at "
        "FROM monitor_verdicts ORDER BY evaluated_at, cohort_month, monitor"
    ).fetchall()
    return [VerdictFact(*row) for row in rows]


def decision_facts(conn: duckdb.DuckDBPyConnection) -> list[DecisionFact]:
    """Every retraining decision, in the order taken."""
    if not table_exists(conn, "retraining_decisions"):
        return []
    rows = conn.execute(
        "SELECT decided_at, cohort_month, trigger, coalesce(evidence, ''), action, "
        "coalesce(reason, ''), coalesce(run_id, '') FROM retraining_decisions "
        "ORDER BY decided_at"
    ).fetchall()
    return [DecisionFact(*row) for row in rows]


def alert_facts(log_path: Path) -> list[AlertFact]:
    """Every line of the alert log (tab-separated: time, severity, event, subject, detail)."""
    if not log_path.exists():
        return []
    facts = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) >= 5:
            facts.append(AlertFact(*fields[:5]))
    return facts
