"""Interruptions end cleanly: Ctrl-C or SIGTERM stops a replay after marking the run under way
failed, in one line with exit 130, and the next replay retries it and scores every cohort."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from churn_assets.simulator import simulate
from churn_assets_tests.helpers import replay_command


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
    first = replay_command(home, world.landing_dir, tmp_path / "first")
    # Interrupted once the loop is under way: a cohort has been built and scored.
    assert _wait_for_line(tmp_path / "first.out", "cohort_sensor -> ", first, 900)
    first.send_signal(signum)
    assert first.wait(timeout=300) == 130
    said = (tmp_path / "first.err").read_text().strip().splitlines()
    assert said and said[-1].startswith("churn-assets replay: interrupted;"), said[-5:]
    assert "Traceback" not in (tmp_path / "first.err").read_text()

    second = replay_command(home, world.landing_dir, tmp_path / "second")
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
