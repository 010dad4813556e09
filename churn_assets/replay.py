"""Replay: run the production loop month by month over a landing folder, as if the months passed.

On the first day of each simulated month the monthly schedule is evaluated as the daemon would at
that time, its runs are executed, then every running sensor is ticked (with the clock set to that
day) until none asks for more. A schedule that ticks more often (the weekly at-risk list) is then
evaluated once per month, at its first tick in it, when the month's cohort has been scored: one
list a month keeps a replay's runs few, and each compares with the month before. Runs carry the
same run-key, schedule and sensor tags the daemon writes, so a later ``dagster dev`` shows them
and its own sensors do not repeat them. A run that failed is retried under its next attempt's key
(see :mod:`churn_assets.automation.requests`), on this replay or the next one; one that succeeded
is never repeated.

Before the first month, runs an earlier replay left unfinished (its process was killed) are
marked failed and their MLflow runs ended, so that they are retried. When the landing folder
comes with an arrival schedule (``truth/arrivals.json`` beside a simulated world), files are
revealed month by month into a staging folder, late ones late.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from churn_assets.automation.reaper import (
    LAUNCHED_BY_TAG,
    REPLAY,
    end_orphaned_mlflow_runs,
    reap_orphaned_runs,
)
from churn_assets.automation.requests import (
    REQUEST_TAG,
    forgive_environment_faults,
    given_up,
)
from churn_assets.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    RUN_KEY_TAG,
    SCHEDULE_NAME_TAG,
    SENSOR_NAME_TAG,
    cron_string_iterator,
)
from churn_assets.keys import TRIGGER_TAG
from churn_assets.landing.catalog import LandingCatalog
from churn_assets.partitions import add_months, month_start, months_between, partition_key
from churn_assets.progress import Progress
from churn_assets.resources import ClockResource
from churn_assets.run_failures import first_step_failure
from churn_assets.simulator.arrivals import stage_arrivals

# A sensor keeps asking while new runs produce new events; this bounds one month's chain.
MAX_SENSOR_ROUNDS = 10
# Replay prints its own one line per run; Dagster's step logs stay in the event log (and the UI).
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
ARRIVALS_FILE = "arrivals.json"


@dataclass
class ReplayedRun:
    month: date
    origin: str  # schedule or sensor name
    job: str
    partition: str | None
    assets: list[str]
    success: bool
    run_id: str
    reason: str = ""  # why it failed, in one line
    request: str = ""  # what was asked (attempts of one request share it)
    trigger: str = ""  # why a sensor asked for it (its churn/trigger tag)


@dataclass
class ReplaySummary:
    months: list[date] = field(default_factory=list)
    runs: list[ReplayedRun] = field(default_factory=list)
    reaped: list[str] = field(default_factory=list)
    # Requests whose attempts were used up and that nothing made good: (job, partition, run id).
    given_up: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def failed_runs(self) -> list[ReplayedRun]:
        return [r for r in self.runs if not r.success]

    @property
    def unhealed_failures(self) -> list[ReplayedRun]:
        """Failed runs that no later attempt of the same request made good."""
        healed = {r.request for r in self.runs if r.success}
        return [r for r in self.failed_runs if r.request not in healed]


def landed_months(folder: Path, cache: Path | None = None) -> tuple[date, date, date]:
    """First listening month, and first and last month of any data, as the landing files say."""
    catalog = LandingCatalog(folder, cache).refresh()
    broken = catalog.errors()
    listening = catalog.months("user_logs")
    every = sorted(set(listening) | set(catalog.months("transactions")))
    if not listening:
        detail = f" (unreadable: {'; '.join(broken.values())})" if broken else ""
        raise ValueError(f"no user_logs rows with valid dates in {folder}{detail}")
    return month_start(listening[0]), month_start(every[0]), month_start(every[-1])


def _failed_blocking_checks(result: dg.ExecuteInProcessResult, step_key: str) -> str:
    """What the blocking checks that stopped ``step_key`` said (Dagster names only the check)."""
    said = []
    for check in result.get_asset_check_evaluations():
        if check.passed or not check.blocking or check.asset_key.path[-1] != step_key:
            continue
        found = check.description or ", ".join(
            f"{name} {value.value}" for name, value in check.metadata.items()
        )
        said.append(f"{check.check_name} check failed: {found}")
    return "; ".join(said)


def failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step's own message, in one line (blocking checks say what they found)."""
    failure = first_step_failure(
        result.all_events, lambda step: _failed_blocking_checks(result, step)
    )
    return failure.line() if failure else "run failed"


def _was_interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Whether Dagster failed the run because a signal interrupted it (and then returned)."""
    interrupted = ("DagsterExecutionInterruptedError", "KeyboardInterrupt")
    return not result.success and any(
        e.event_type == dg.DagsterEventType.STEP_FAILURE
        and e.step_failure_data.error is not None
        and e.step_failure_data.error.cls_name in interrupted
        for e in result.all_events
    )


def _partitions(request: dg.RunRequest) -> str:
    """``[2016-05]``, ``[2015-01..2015-12]`` for a ranged run, or nothing (the weekly list)."""
    if request.partition_key:
        return f"[{request.partition_key[:7]}]"
    first, last = (
        request.tags.get(tag, "")[:7]
        for tag in (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG)
    )
    return f"[{first}..{last}]" if first else ""


def _outcome(run: ReplayedRun) -> str:
    """What a run made or why it failed, its id, and why it was asked for (its trigger)."""
    status = "ok" if run.success else f"FAILED ({run.reason})"
    why = f"; trigger: {run.trigger}" if run.trigger else ""
    return f"{status}: {', '.join(run.assets) or '-'} (run {run.run_id[:8]}{why})"


def schedule_ticks(schedule: dg.ScheduleDefinition, month: date) -> list[datetime]:
    """The moments ``schedule`` ticks in ``month`` (naive, in its own time zone)."""
    zone = schedule.execution_timezone or "UTC"
    start = datetime(month.year, month.month, 1) - timedelta(seconds=1)
    end = add_months(month, 1)
    crons = schedule.cron_schedule
    ticks = []
    for cron in [crons] if isinstance(crons, str) else crons:
        for tick in cron_string_iterator(start.replace(tzinfo=UTC).timestamp(), cron, zone):
            if tick.date() >= end:
                break
            ticks.append(tick.replace(tzinfo=None))
    return sorted(ticks)


class Replayer:
    """Drives one Definitions object through simulated months on a persistent instance."""

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        log: Callable[[str], None] = print,
        interrupted: Callable[[], bool] = lambda: False,
        doing: Callable[[str], None] = lambda what: None,
    ) -> None:
        self.defs = defs
        self.doing = doing  # told of each run as it starts (a progress bar names it)
        # Dagster fails a run that Ctrl-C cut short and returns; the replay stops there too.
        self.interrupted = interrupted
        self.instance = instance
        self.log = log
        self.repository = defs.get_repository_def()
        self.resources = self.repository.get_top_level_resources()
        self.cursors: dict[str, str | None] = {}
        self.summary = ReplaySummary()

    def _resources_for(self, keys: set[str], month: date) -> dict[str, object]:
        resources = {k: v for k, v in self.resources.items() if k in keys}
        if "clock" in keys:
            resources["clock"] = ClockResource(today=month.isoformat())
        return resources

    def _execute(
        self, month: date, origin: str, origin_tag: str, job_name: str, request: dg.RunRequest
    ) -> None:
        if request.run_key and self.instance.get_runs(
            filters=dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key}), limit=1
        ):
            return  # this attempt exists already; a retry comes with the next attempt's key
        job = self.defs.resolve_job_def(request.job_name or job_name)
        tags = {**request.tags, origin_tag: origin, LAUNCHED_BY_TAG: REPLAY}
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        self.doing(f"{month:%Y-%m} {job.name}[{(request.partition_key or '')[:7]}]")
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
        run = ReplayedRun(
            month,
            origin,
            job.name,
            request.partition_key,
            assets,
            result.success,
            result.run_id,
            "" if result.success else failure_reason(result),
            request.tags.get(REQUEST_TAG, result.run_id),
            request.tags.get(TRIGGER_TAG, ""),
        )
        self.summary.runs.append(run)
        self.log(f"  {origin} -> {job.name}{_partitions(request)} {_outcome(run)}")
        if self.interrupted() or _was_interrupted(result):
            raise KeyboardInterrupt

    def tick_schedules(self, month: date, more_than_monthly: bool = False) -> None:
        """The monthly schedules at the month's start, or those that tick more often (weekly) at
        their first tick in the month."""
        for schedule in self.repository.schedule_defs:
            ticks = schedule_ticks(schedule, month)
            if not ticks or (len(ticks) > 1) != more_than_monthly:
                continue
            moment = ticks[0] if more_than_monthly else datetime(month.year, month.month, 1, 3, 0)
            # Entered so the instance and resources the context opens are closed here, in
            # order, rather than whenever the garbage collector gets to them.
            with dg.build_schedule_context(
                instance=self.instance,
                scheduled_execution_time=moment,
                resources=self._resources_for(schedule.required_resource_keys, month),
                repository_def=self.repository,
            ) as context:
                data = schedule.evaluate_tick(context)
            for request in data.run_requests or []:
                self._execute(month, schedule.name, SCHEDULE_NAME_TAG, schedule.job_name, request)

    def tick_sensors(self, month: date) -> None:
        for _ in range(MAX_SENSOR_ROUNDS):
            ran = len(self.summary.runs)
            for sensor in self.repository.sensor_defs:
                if sensor.default_status != dg.DefaultSensorStatus.RUNNING or isinstance(
                    sensor, dg.RunStatusSensorDefinition
                ):
                    continue  # run-status sensors react to the daemon's runs; replay reaps its own
                with (
                    dg.build_sensor_context(
                        instance=self.instance,
                        cursor=self.cursors.get(sensor.name),
                        sensor_name=sensor.name,
                        resources=self._resources_for(sensor.required_resource_keys, month),
                        repository_def=self.repository,
                    ) as context,
                    # Run requests for month partitions are checked against the instance's keys,
                    # as the daemon does.
                    dg.partition_loading_context(dynamic_partitions_store=self.instance),
                ):
                    data = sensor.evaluate_tick(context)
                self.cursors[sensor.name] = data.cursor
                for request in data.run_requests or []:
                    self._execute(month, sensor.name, SENSOR_NAME_TAG, sensor.job_name, request)
            if len(self.summary.runs) == ran:
                return

    def run_month(self, month: date) -> None:
        self.log(f"{month:%Y-%m}:")
        self.summary.months.append(month)
        self.tick_schedules(month)
        self.tick_sensors(month)
        self.tick_schedules(month, more_than_monthly=True)


@dataclass(frozen=True)
class StagedArrivals:
    """A simulated world's landing files, revealed into ``staged`` on the months they arrive."""

    source: Path
    schedule: Path
    staged: Path

    def reveal(self, month: date) -> list[str]:
        return stage_arrivals(self.source, self.schedule, self.staged, month)


def staged_arrivals(landing: Path, home: Path) -> StagedArrivals | None:
    """An arrival schedule for ``landing`` (``truth/arrivals.json`` beside it), if it has one."""
    schedule = landing.parent / "truth" / ARRIVALS_FILE
    if not schedule.exists():
        return None
    return StagedArrivals(landing, schedule, home / "landing_staged")


def replay_span(landing: Path, through: date | None) -> tuple[date, date]:
    """Months to replay: from the month after listening starts through ``through`` (default
    and upper bound: the month after the last landed data, when its raw data can be loaded)."""
    first_listening, _, last_data = landed_months(landing)
    start, latest = add_months(first_listening, 1), add_months(last_data, 1)
    if through is not None:
        if through > latest:
            raise ValueError(
                f"--through {through:%Y-%m} is after the data: the files in {landing} end in "
                f"{last_data:%Y-%m}, so the last month to replay is {latest:%Y-%m}"
            )
        if through < start:
            raise ValueError(
                f"--through {through:%Y-%m} is before the first month to replay ({start:%Y-%m})"
            )
    return start, through or latest


def replay(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    landing_folder: Path,
    through: date | None = None,
    log: Callable[[str], None] = print,
    arrivals: StagedArrivals | None = None,
    tracking_uri: str | None = None,
    interrupted: Callable[[], bool] = lambda: False,
    progress: Callable[[int], Progress] | None = None,
) -> ReplaySummary:
    """Replay from the month after listening data starts through ``through``.

    Payment history older than the listening data is loaded on the first month by the landing
    sensor, in one ranged run, as a new deployment backfills history on its first day.
    ``arrivals`` (files revealed month by month) replaces ``landing_folder`` as what has landed.
    ``interrupted`` says when to stop (after the run under way): it raises KeyboardInterrupt.
    ``progress``, given the number of months, returns the
    :class:`~churn_assets.progress.Progress` that hears of each; while it draws a bar, the lines
    of ``log`` go to stdout above it.
    """
    start, end = replay_span(landing_folder, through)
    months = (
        progress(len(months_between(start, end))) if progress is not None else Progress.silent()
    )
    if months.bar is not None:
        log = months.write
    try:
        return _replay_months(
            defs, instance, (start, end), log, arrivals, tracking_uri, interrupted, months
        )
    finally:
        months.close()


def _replay_months(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    span: tuple[date, date],
    log: Callable[[str], None],
    arrivals: StagedArrivals | None,
    tracking_uri: str | None,
    interrupted: Callable[[], bool],
    months: Progress,
) -> ReplaySummary:
    start, end = span
    replayer = Replayer(defs, instance, log, interrupted, months.doing)
    replayer.summary.reaped = reap_orphaned_runs(instance)
    if replayer.summary.reaped:
        log(f"marked {len(replayer.summary.reaped)} run(s) of a dead replay failed, to retry")
    if tracking_uri:
        end_orphaned_mlflow_runs(instance, tracking_uri)
    forgiven = forgive_environment_faults(instance)
    if forgiven:
        log(f"retrying {len(forgiven)} run(s) that failed for the environment, not their input")
    month = start
    while month <= end:
        if arrivals is not None:
            arrivals.reveal(month)
        replayer.run_month(month)
        months.tick(f"{month:%Y-%m}")
        month = add_months(month, 1)
    replayer.summary.given_up = [
        (run.job_name, run.tags.get("dagster/partition", "-"), run.run_id)
        for run in given_up(instance)
    ]
    log(f"replayed {len(replayer.summary.months)} months, {len(replayer.summary.runs)} runs")
    return replayer.summary


__all__ = [
    "ReplaySummary",
    "ReplayedRun",
    "Replayer",
    "StagedArrivals",
    "partition_key",
    "replay",
    "staged_arrivals",
]
