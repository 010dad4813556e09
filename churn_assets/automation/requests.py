"""Run keys that retry what failed and never repeat what succeeded.

A request is identified by what it would do and on which inputs (``raw-2016-03-01-<files
fingerprint>``). Its run key adds the attempt number: Dagster's daemon skips a run key it has
seen, whatever that run's fate, so a failed (or killed, then reaped) run is retried under the next
attempt's key, up to ``MAX_ATTEMPTS`` per request. Changed input files make a new request, so a
fixed file is loaded however often the old one failed.

Attempts count input faults only, in the end: a run that failed for the environment's sake (a
crash, an unreachable MLflow, a full disk, a lock, an interruption, a killed process) is
*forgiven* by :func:`forgive_environment_faults` (at the start of every replay, and by the
landing sensor an hour after it failed), so the next replay or tick in a mended environment
retries it with no file touched. Within one replay every failure counts, so nothing storms.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from churn_assets.keys import ATTEMPT_TAG, FAULT_TAG, REQUEST_TAG
from churn_assets.run_failures import first_step_failure, is_input_fault

INPUT, ENVIRONMENT = "input", "environment"
# Attempts per request: a run killed mid-way gets two more chances, a file that keeps failing
# stops being retried until it changes.
MAX_ATTEMPTS = 3


def _counted(runs: list[dg.DagsterRun]) -> list[dg.DagsterRun]:
    """The runs that use up an attempt: all but those forgiven as the environment's fault."""
    return [r for r in runs if r.tags.get(FAULT_TAG) != ENVIRONMENT]


def next_attempt(instance: dg.DagsterInstance, request_id: str) -> int | None:
    """The attempt number to launch, or None when it succeeded, is under way or gave up."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={REQUEST_TAG: request_id}))
    if any(r.status == dg.DagsterRunStatus.SUCCESS or not r.is_finished for r in runs):
        return None
    # Numbered on every run, forgiven ones too, so that each attempt has a run key of its own.
    return len(runs) + 1 if len(_counted(runs)) < MAX_ATTEMPTS else None


def forgive_environment_faults(
    instance: dg.DagsterInstance, failed_before: datetime | None = None
) -> list[str]:
    """Judge each failed, not yet judged run of a request (input or environment fault, tagged
    ``FAULT_TAG``); the ids of those forgiven as the environment's. ``failed_before`` leaves
    younger failures for later (the daemon's ticks come every minute)."""
    forgiven = []
    for record in instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])
    ):
        run = record.dagster_run
        if REQUEST_TAG not in run.tags or FAULT_TAG in run.tags:
            continue
        ended = record.end_time
        if failed_before is not None and ended and ended > failed_before.timestamp():
            continue
        events = [
            e.dagster_event
            for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            if e.dagster_event is not None
        ]
        fault = INPUT if is_input_fault(first_step_failure(events), events) else ENVIRONMENT
        instance.add_run_tags(run.run_id, {FAULT_TAG: fault})
        if fault == ENVIRONMENT:
            forgiven.append(run.run_id)
    return forgiven


def given_up(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The last run of each request that used up its attempts and that nothing made good since.

    A request is made good by a later success of the same job on the same partition and assets
    (e.g. the load of a month whose file was fixed, under its new request). What remains is work
    the loop stopped retrying: a month still not loaded, a cohort still not built.
    """
    runs = [r for r in instance.get_runs() if REQUEST_TAG in r.tags]

    def target(run: dg.DagsterRun) -> tuple:
        return (run.job_name, run.tags.get("dagster/partition"), run.asset_selection)

    made_good = {target(r) for r in runs if r.status == dg.DagsterRunStatus.SUCCESS}
    by_request: dict[str, list[dg.DagsterRun]] = {}
    for run in runs:
        by_request.setdefault(run.tags[REQUEST_TAG], []).append(run)
    stuck = []
    for every in by_request.values():
        attempts = _counted(every)
        if len(attempts) >= MAX_ATTEMPTS and all(
            r.is_finished and r.status != dg.DagsterRunStatus.SUCCESS for r in attempts
        ):
            last = attempts[0]  # runs come newest first
            if target(last) not in made_good:
                stuck.append(last)
    return stuck


def keyed_request(
    instance: dg.DagsterInstance, request_id: str, tags: dict[str, str] | None = None, **kwargs: Any
) -> dg.RunRequest | None:
    """A RunRequest for the next attempt of ``request_id``, or None when none is due."""
    attempt = next_attempt(instance, request_id)
    if attempt is None:
        return None
    return dg.RunRequest(
        run_key=f"{request_id}#{attempt}",
        tags={**(tags or {}), REQUEST_TAG: request_id, ATTEMPT_TAG: str(attempt)},
        **kwargs,
    )
