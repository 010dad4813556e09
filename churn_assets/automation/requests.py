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

REQUEST_TAG = "churn/request"
ATTEMPT_TAG = "churn/attempt"
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
