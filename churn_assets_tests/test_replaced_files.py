"""A replaced file rebuilds everything that read it, in one replay: every cohort whose windows
cover the changed month, re-scored and re-measured, not only the next one."""

from __future__ import annotations

import re

from churn_assets.simulator import simulate
from churn_assets_tests.helpers import replay_command


def test_a_replaced_file_rebuilds_every_cohort_that_read_it_in_one_replay(tmp_path):
    """Half of a month's listening replaced: the next replay reloads it and rebuilds each cohort
    whose 90 days read that month, not only the next one."""
    world = simulate(tmp_path / "world", users=300, start="2016-01", months=6, seed=5)
    home = tmp_path / "home"
    first = replay_command(home, world.landing_dir, tmp_path / "first")
    assert first.wait(timeout=1800) == 0, (tmp_path / "first.out").read_text()[-2000:]

    replaced = world.landing_dir / "user_logs_201603.csv"
    lines = replaced.read_text().splitlines(keepends=True)
    replaced.write_text("".join(lines[: 1 + len(lines) // 2]))
    second = replay_command(home, world.landing_dir, tmp_path / "second")
    assert second.wait(timeout=1800) == 0, (tmp_path / "second.out").read_text()[-2000:]
    out = (tmp_path / "second.out").read_text()
    assert "load_job[2016-03] ok" in out, out
    rebuilt = sorted(set(re.findall(r"cohort_job\[(\d{4}-\d{2})\] ok", out)))
    assert rebuilt == ["2016-04", "2016-05", "2016-06"], out
