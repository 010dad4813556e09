"""What a failed run says: its first failed step's own message, in one line.

The CLI (refused or failed, for its exit code), replay (one line per run) and the run-failure
alert all read it from Dagster's step-failure events, so they say the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dagster as dg

CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"


@dataclass(frozen=True)
class StepFailure:
    step_key: str
    text: str  # the step's own message, whole
    refused: bool  # the step said no (``dg.Failure``): bad input or request, not a crash

    @property
    def message(self) -> str:
        """The message's first line: DuckDB's next lines point at the SQL with carets."""
        return (self.text.splitlines() or ["failed"])[0].strip()

    def line(self) -> str:
        return f"{self.step_key}: {self.message}"


def is_input_fault(failure: StepFailure | None, events: Iterable[dg.DagsterEvent]) -> bool:
    """Whether a failed run failed on its input: a step said no (``dg.Failure``: a landing file
    it refuses, a request it cannot carry out) or a blocking check stopped it. A crash, an
    unreachable service, an interruption or a run that never reached a step is the environment's
    fault, and the same input may well succeed once the environment is mended."""
    if failure is None:
        return False
    if failure.refused:
        return True
    return any(
        e.event_type == dg.DagsterEventType.STEP_FAILURE
        and e.step_failure_data.error is not None
        and e.step_failure_data.error.cls_name == CHECK_FAILED_ERROR
        for e in events
    )


def first_step_failure(
    events: Iterable[dg.DagsterEvent],
    blocking_checks: Callable[[str], str] | None = None,
) -> StepFailure | None:
    """The first STEP_FAILURE among ``events``, or None.

    A ``dg.Failure`` gives its description; a step stopped by a blocking check gives what
    ``blocking_checks(step_key)`` says the checks found (Dagster names only the check); anything
    else gives the error's cause, or the error, as raised.
    """
    for event in events:
        if event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        refused = data.user_failure_data is not None and bool(data.user_failure_data.description)
        if refused:
            text = data.user_failure_data.description
        elif data.error and data.error.cls_name == CHECK_FAILED_ERROR and blocking_checks:
            text = blocking_checks(event.step_key) or data.error.message
        else:
            text = (data.error.cause or data.error).message if data.error else "failed"
        return StepFailure(event.step_key, text.strip() or "failed", refused)
    return None
