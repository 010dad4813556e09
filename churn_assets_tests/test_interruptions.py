"""The loop through the command, across two replays: an interruption ends cleanly (Ctrl-C or
SIGTERM stops a replay after marking the run under way failed, in one line with exit 130, and the
next replay retries it and scores every cohort), and a replaced file rebuilds what read it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from churn_assets.simulator import simulate

BUDGET_S = "2"


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CHURN_LANDING_DIR", "MLFLOW_TRACKING_URI", "DAGSTER_HOME")
    }
    return {**env, "CHURN_HOME": str(home), "CHURN_TRAINING_BUDGET_S": BUDGET_S}


def _replay(home: Path, landing: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "churn_assets.cli", "replay", "--landing", str(landing)],
        env=_env(home),
        stdout=out.with_suffix(".out").open("w"),
        stderr=out.with_suffix(".err").open("w"),
        stdin=subprocess.DEVNULL,
    )


def _wait_for_line(path: Path, text: str, process: subprocess.Popen, limit_s: float) -> bool:
    """Until ``text`` is printed (True) or the process ends (False); the limit guards a hang."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and process.poll() is None:
        if text in path.read_text():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_an_interrupted_replay_stops_in_one_line_and_the_next_one_heals(tmp_path, signum):
    world = simulate(tmp_path / "world", users=300, start="2016-01", months=5, seed=3)
    home = tmp_path / "home"
    first = _replay(home, world.landing_dir, tmp_path / "first")
    # Interrupted once the loop is under way: a cohort has been built and scored.
    assert _wait_for_line(tmp_path / "first.out", "cohort_sensor -> ", first, 900)
    first.send_signal(signum)
    assert first.wait(timeout=300) == 130
    said = (tmp_path / "first.err").read_text().strip().splitlines()
    assert said and said[-1].startswith("churn-assets replay: interrupted;"), said[-5:]
    assert "Traceback" not in (tmp_path / "first.err").read_text()

    second = _replay(home, world.landing_dir, tmp_path / "second")
    assert second.wait(timeout=1800) == 0, (tmp_path / "second.out").read_text()[-2000:]
    out = (tmp_path / "second.out").read_text()
    assert "GAVE UP" not in out and " runs, 0 failed" in out, out[-2000:]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        built = {
            r[0] for r in conn.execute("SELECT DISTINCT cohort_month FROM features").fetchall()
        }
        scored = {
            r[0] for r in conn.execute("SELECT DISTINCT cohort_month FROM predictions").fetchall()
        }
        first_model = conn.execute("SELECT min(changed_at) FROM model_promotions").fetchone()[0]
    assert first_model is not None
    assert scored, "cohorts were scored"
    # Every cohort built from the first scored one on has its scores: no hole left behind.
    assert {c for c in built if c >= min(scored)} == scored


def test_a_replaced_file_rebuilds_every_cohort_that_read_it_in_one_replay(tmp_path):
    """Half of a month's listening replaced: the next replay reloads it and rebuilds each cohort
    whose 90 days read that month, not only the next one."""
    world = simulate(tmp_path / "world", users=300, start="2016-01", months=6, seed=5)
    home = tmp_path / "home"
    first = _replay(home, world.landing_dir, tmp_path / "first")
    assert first.wait(timeout=1800) == 0, (tmp_path / "first.out").read_text()[-2000:]

    replaced = world.landing_dir / "user_logs_201603.csv"
    lines = replaced.read_text().splitlines(keepends=True)
    replaced.write_text("".join(lines[: 1 + len(lines) // 2]))
    second = _replay(home, world.landing_dir, tmp_path / "second")
    assert second.wait(timeout=1800) == 0, (tmp_path / "second.out").read_text()[-2000:]
    out = (tmp_path / "second.out").read_text()
    assert "load_job[2016-03] ok" in out, out
    rebuilt = sorted(set(re.findall(r"cohort_job\[(\d{4}-\d{2})\] ok", out)))
    assert rebuilt == ["2016-04", "2016-05", "2016-06"], out
