"""Replay: run the production loop month by month over a landing folder, as if the months passed.

On the first day of each simulated month the monthly schedule is evaluated as the daemon would at
that time, its runs are executed, then every running sensor is ticked until none asks for more.
Runs carry the same run-key, schedule and sensor tags the daemon writes, so a later ``dagster dev``
shows them and its own sensors do not repeat them, and replaying twice repeats nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    RUN_KEY_TAG,
    SCHEDULE_NAME_TAG,
    SENSOR_NAME_TAG,
)

from churn_assets.partitions import add_months, partition_key
from churn_assets.raw.landing import sql_literal, table_files

# A sensor keeps asking while new runs produce new events; this bounds one month's chain.
MAX_SENSOR_ROUNDS = 10
# Replay prints its own one line per run; Dagster's step logs stay in the event log (and the UI).
REPLAY_STEP_TAG = "churn/replay_step"
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class ReplayedRun:
    month: date
    origin: str  # schedule or sensor name
    job: str
    partition: str | None
    assets: list[str]
    success: bool
    run_id: str


@dataclass
class ReplaySummary:
    months: list[date] = field(default_factory=list)
    runs: list[ReplayedRun] = field(default_factory=list)

    @property
    def failed_runs(self) -> list[ReplayedRun]:
        return [r for r in self.runs if not r.success]


def landed_span(folder: Path, table: str, date_column: str) -> tuple[date, date]:
    """First and last month that one table's landing files cover.

    Only the date column is read, so a file whose other columns drifted (renamed, dropped) does
    not stop the replay here: the load of its month reports it, as it would in production.
    """
    files = table_files(folder, table)
    if not files:
        raise ValueError(f"no {table} files in {folder}")
    reads = [
        f"SELECT {date_column} FROM read_parquet({sql_literal(str(f))})"
        if f.name.endswith(".parquet")
        else f"SELECT {date_column} FROM read_csv({sql_literal(str(f))}, header=true, "
        f"all_varchar=true)"
        for f in files
    ]
    with duckdb.connect() as conn:
        low, high = conn.execute(
            f"SELECT min(CAST({date_column} AS INTEGER)), max(CAST({date_column} AS INTEGER)) "
            f"FROM ({' UNION ALL '.join(reads)})"
        ).fetchone()
    if low is None:
        raise ValueError(f"the {table} files in {folder} hold no rows")
    return _month_of(low), _month_of(high)


def _month_of(yyyymmdd: int) -> date:
    return date(yyyymmdd // 10000, yyyymmdd // 100 % 100, 1)


def _already_ran(instance: dg.DagsterInstance, origin_tag: str, origin: str, key: str) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: key}))
    return any(r.tags.get(origin_tag) == origin for r in runs)


class Replayer:
    """Drives one Definitions object through simulated months on a persistent instance."""

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        log: Callable[[str], None] = print,
    ) -> None:
        self.defs = defs
        self.instance = instance
        self.log = log
        self.repository = defs.get_repository_def()
        self.resources = self.repository.get_top_level_resources()
        self.cursors: dict[str, str | None] = {}
        self.summary = ReplaySummary()

    def _resources_for(self, keys: set[str]) -> dict[str, object]:
        return {k: v for k, v in self.resources.items() if k in keys}

    def _execute(
        self, month: date, origin: str, origin_tag: str, job_name: str, request: dg.RunRequest
    ) -> None:
        if request.run_key and _already_ran(self.instance, origin_tag, origin, request.run_key):
            self.log(f"  {origin}: {request.run_key} already ran, skipped")
            return
        job = self.defs.resolve_job_def(request.job_name or job_name)
        tags = {**request.tags, origin_tag: origin}
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        result = job.execute_in_process(
            instance=self.instance,
            partition_key=request.partition_key,
            run_config={**(request.run_config or {}), **QUIET_LOGS},
            tags=tags,
            asset_selection=list(request.asset_selection) if request.asset_selection else None,
            raise_on_error=False,
        )
        assets = sorted(
            {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        )
        self.summary.runs.append(
            ReplayedRun(
                month,
                origin,
                job.name,
                request.partition_key,
                assets,
                result.success,
                result.run_id,
            )
        )
        status = "ok" if result.success else "FAILED"
        partitions = request.partition_key or "..".join(
            request.tags.get(tag, "")
            for tag in (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG)
        )
        self.log(f"  {origin} -> {job.name}[{partitions}] {status}: {', '.join(assets) or '-'}")

    def tick_schedules(self, month: date) -> None:
        moment = datetime(month.year, month.month, month.day, 3, 0)
        for schedule in self.repository.schedule_defs:
            # Entered so the instance and resources the context opens are closed here, in
            # order, rather than whenever the garbage collector gets to them.
            with dg.build_schedule_context(
                instance=self.instance,
                scheduled_execution_time=moment,
                resources=self._resources_for(schedule.required_resource_keys),
                repository_def=self.repository,
            ) as context:
                data = schedule.evaluate_tick(context)
            for request in data.run_requests or []:
                self._execute(month, schedule.name, SCHEDULE_NAME_TAG, schedule.job_name, request)

    def tick_sensors(self, month: date) -> None:
        for _ in range(MAX_SENSOR_ROUNDS):
            ran = len(self.summary.runs)
            for sensor in self.repository.sensor_defs:
                if sensor.default_status != dg.DefaultSensorStatus.RUNNING:
                    continue
                with dg.build_sensor_context(
                    instance=self.instance,
                    cursor=self.cursors.get(sensor.name),
                    sensor_name=sensor.name,
                    resources=self._resources_for(sensor.required_resource_keys),
                    repository_def=self.repository,
                ) as context:
                    data = sensor.evaluate_tick(context)
                self.cursors[sensor.name] = data.cursor
                for request in data.run_requests or []:
                    self._execute(month, sensor.name, SENSOR_NAME_TAG, sensor.job_name, request)
            if len(self.summary.runs) == ran:
                return

    def backfill_history(self, first: date, last: date, today: date) -> None:
        """Load the subscription history (transactions of ``first``..``last``) in one ranged run,
        as a new deployment backfills history on its first day."""
        if first > last:
            return
        self.log(f"history {first:%Y-%m}..{last:%Y-%m}:")
        start, end = partition_key(first), partition_key(last)
        request = dg.RunRequest(
            run_key=f"history-{start}-{end}",
            asset_selection=[dg.AssetKey("transactions")],
            tags={
                ASSET_PARTITION_RANGE_START_TAG: start,
                ASSET_PARTITION_RANGE_END_TAG: end,
            },
        )
        self._execute(today, "history_backfill", REPLAY_STEP_TAG, "load_job", request)

    def run_month(self, month: date) -> None:
        self.log(f"{month:%Y-%m}:")
        self.summary.months.append(month)
        self.tick_schedules(month)
        self.tick_sensors(month)


def replay(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    landing_folder: Path,
    through: date | None = None,
    log: Callable[[str], None] = print,
) -> ReplaySummary:
    """Replay from the month after listening data starts through ``through`` (default: the month
    after the last landed data, when its raw data can be loaded).

    Transactions older than the listening data (subscription history) are loaded first, as a new
    deployment backfills history on its first day.
    """
    first_logs, _ = landed_span(landing_folder, "user_logs", "date")
    first_txn, last_txn = landed_span(landing_folder, "transactions", "transaction_date")
    start = add_months(first_logs, 1)
    end = through or add_months(last_txn, 1)
    replayer = Replayer(defs, instance, log)
    replayer.backfill_history(first_txn, add_months(start, -2), start)
    month = start
    while month <= end:
        replayer.run_month(month)
        month = add_months(month, 1)
    log(f"replayed {len(replayer.summary.months)} months, {len(replayer.summary.runs)} runs")
    return replayer.summary


__all__ = ["ReplaySummary", "ReplayedRun", "Replayer", "partition_key", "replay"]
