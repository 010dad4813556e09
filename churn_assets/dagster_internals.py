"""The few Dagster names this project needs that Dagster does not export publicly.

Each is used for a reason the public API does not cover; keeping them here means one place to
follow when Dagster moves them.

* Run-tag names (run key, schedule and sensor names, partition range): replay writes the tags the
  daemon would write, so ``dagster dev`` later recognises replayed runs as its own, and a ranged
  single-run backfill is requested the way Dagster's backfills request it.
* ``AssetCheckExecutionRecordStatus``: the status of a recorded check execution, which the
  sensors read to react to failed checks (the public ``AssetCheckResult`` only describes a result
  being emitted).
* ``backoff``: Dagster's own retry helper, used to wait out DuckDB's single-writer lock.
* ``cron_string_iterator``: a schedule's ticks, so that replay evaluates a weekly schedule at the
  moment its cron names, as the daemon would.
* ``DaemonHeartbeat``: what a running daemon writes to the instance (the public
  ``get_daemon_heartbeats`` returns them); the tests write one to stand for ``dagster dev``.
"""

from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    RUN_KEY_TAG,
    SCHEDULE_NAME_TAG,
    SENSOR_NAME_TAG,
)
from dagster._daemon.types import DaemonHeartbeat
from dagster._utils.backoff import backoff
from dagster._utils.schedules import cron_string_iterator

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "RUN_KEY_TAG",
    "SCHEDULE_NAME_TAG",
    "SENSOR_NAME_TAG",
    "AssetCheckExecutionRecordStatus",
    "DaemonHeartbeat",
    "backoff",
    "cron_string_iterator",
]
