"""Run keys that retry what failed and never repeat what succeeded.

A request is identified by what it would do and on which inputs (``raw-2016-03-01-<files
fingerprint>``). Its run key adds the attempt number: Dagster's daemon skips a run key it has
seen, whatever that run's fate, so a failed (or killed, then reaped) run is retried under the next
attempt's key, up to ``MAX_ATTEMPTS`` per request. Changed input files make a new request, so a
fixed file is loaded however often the old one failed.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from churn_assets.keys import ATTEMPT_TAG, REQUEST_TAG

# Attempts per request: a run killed mid-way gets two more chances, a file that keeps failing
# stops being retried until it changes.
MAX_ATTEMPTS = 3


def next_attempt(instance: dg.DagsterInstance, request_id: str) -> int | None:
    """The attempt number to launch, or None when it succeeded, is under way or gave up."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={REQUEST_TAG: request_id}))
    if any(r.status == dg.DagsterRunStatus.SUCCESS or not r.is_finished for r in runs):
        return None
    return len(runs) + 1 if len(runs) < MAX_ATTEMPTS else None


def attempts_exhausted(instance: dg.DagsterInstance, request_id: str) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={REQUEST_TAG: request_id}))
    return len(runs) >= MAX_ATTEMPTS and all(
        r.status != dg.DagsterRunStatus.SUCCESS and r.is_finished for r in runs
    )


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
    for attempts in by_request.values():
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
