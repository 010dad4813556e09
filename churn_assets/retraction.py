"""Retracting what departed files stored: ``churn-assets retract TABLE [MONTH]``.

Rows of a landing file stay stored when the file leaves the landing folder (archiving is not
deleting). To take them back on purpose (a file delivered by mistake, withdrawn by its sender), the
file is removed from the landing folder and the month retracted: the table's load runs for that
month, from the files present now only. It is a run of ``load_job`` like any other, on the
project's instance, so the UI shows it and the sensors (or the next replay) rebuild every cohort
that read the month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from churn_assets.keys import LOAD_JOB, TRIGGER_TAG
from churn_assets.partitions import monthly_partitions, partition_key
from churn_assets.replay import failure_reason

RETRACTABLE = ("transactions", "user_logs", "members")


@dataclass(frozen=True)
class Retraction:
    """What a retraction did: the files whose rows went, the rows the month holds now."""

    table: str
    month: date | None
    retracted_files: list[str]
    rows_now: int
    run_id: str

    def describe(self) -> str:
        where = f"{self.table} {self.month:%Y-%m}" if self.month else self.table
        if not self.retracted_files:
            return (
                f"{where}: no departed file's rows were stored; nothing retracted "
                f"(run {self.run_id})"
            )
        return (
            f"{where}: retracted the rows of {', '.join(self.retracted_files)}; "
            f"{self.rows_now} rows remain, from the files in the landing folder "
            f"(run {self.run_id}). The next replay rebuilds the cohorts that read it."
        )


def retract(
    defs: dg.Definitions, instance: dg.DagsterInstance, table: str, month: date | None
) -> Retraction:
    """Load ``table`` (``month``'s partition of a monthly table) from the present files only."""
    if table not in RETRACTABLE:
        raise ValueError(f"cannot retract {table!r}: choose one of {', '.join(RETRACTABLE)}")
    monthly = table != "members"
    if monthly and month is None:
        raise ValueError(f"retracting {table} needs the month (YYYY-MM) to retract")
    key = partition_key(month) if monthly and month else None
    if key is not None and key not in instance.get_dynamic_partitions(monthly_partitions.name):
        raise ValueError(f"{table} {month:%Y-%m} was never loaded: nothing to retract")
    result = defs.resolve_job_def(LOAD_JOB).execute_in_process(
        run_config={
            "ops": {table: {"config": {"retract_departed_files": True}}},
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
        },
        instance=instance,
        partition_key=key,
        asset_selection=[dg.AssetKey(table)],
        tags={TRIGGER_TAG: f"retract {table}" + (f" {month:%Y-%m}" if month else "")},
        raise_on_error=False,
    )
    if not result.success:
        raise RetractionFailed(result.run_id, failure_reason(result))
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    return Retraction(
        table=table,
        month=month if monthly else None,
        retracted_files=list(metadata["retracted_files"].value),
        rows_now=int(metadata["dagster/row_count"].value),
        run_id=result.run_id,
    )


class RetractionFailed(Exception):
    """The retracting load's run failed; nothing stored changed (the load is one transaction)."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(f"the retracting load failed: {reason} (run {run_id})")
        self.run_id = run_id
