"""A replaced file rebuilds everything that read it, in one replay: every cohort whose windows
cover the changed month, re-scored, re-measured and backtested again, not only the next one.
Archived files change nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb

from churn_assets.simulator import simulate
from churn_assets_tests.helpers import replay_command


def _backtests(home: Path, cohort: str) -> int:
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    with instance:
        return len(
            instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey("model_performance"), asset_partitions=[cohort]
                ),
                limit=100,
            ).records
        )


def _stored_rows(home: Path) -> dict[str, int]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("members", "transactions", "user_logs", "labels", "features")
        }


def test_a_replaced_file_rebuilds_every_cohort_that_read_it_in_one_replay(tmp_path):
    """Half of a month's listening replaced: the next replay reloads it and rebuilds each cohort
    whose 90 days read that month, not only the next one, and backtests the labelled ones again.
    Then the files are archived: one more replay runs nothing and every stored row stays."""
    world = simulate(tmp_path / "world", users=300, start="2016-01", months=6, seed=5)
    home = tmp_path / "home"
    first = replay_command(home, world.landing_dir, tmp_path / "first")
    assert first.wait(timeout=1800) == 0, (tmp_path / "first.out").read_text()[-2000:]

    backtested = _backtests(home, "2016-04-01")
    assert backtested >= 1
    replaced = world.landing_dir / "user_logs_201603.csv"
    lines = replaced.read_text().splitlines(keepends=True)
    replaced.write_text("".join(lines[: 1 + len(lines) // 2]))
    second = replay_command(home, world.landing_dir, tmp_path / "second")
    assert second.wait(timeout=1800) == 0, (tmp_path / "second.out").read_text()[-2000:]
    out = (tmp_path / "second.out").read_text()
    assert "load_job[2016-03] ok" in out, out
    rebuilt = sorted(set(re.findall(r"cohort_job\[(\d{4}-\d{2})\] ok", out)))
    assert rebuilt == ["2016-04", "2016-05", "2016-06"], out
    assert _backtests(home, "2016-04-01") == backtested + 1

    stored = _stored_rows(home)
    archive = tmp_path / "archive"
    archive.mkdir()
    staged = home / "landing_staged"  # what the loads read as the simulated files arrive
    archived = [p.name for p in staged.glob("*201603*")] + ["members.csv"]
    assert len(archived) >= 3
    for name in archived:
        shutil.move(world.landing_dir / name, archive / name)
        (staged / name).unlink()
    third = replay_command(home, world.landing_dir, tmp_path / "third")
    assert third.wait(timeout=1800) == 0, (tmp_path / "third.out").read_text()[-2000:]
    assert "load_job" not in (tmp_path / "third.out").read_text()
    assert _stored_rows(home) == stored
