"""Interruptions end cleanly: Ctrl-C or SIGTERM stops a replay after marking the run under way
failed, in one line with exit 130, and the next replay retries it and scores every cohort."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import duckdb

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


def _interrupt(tmp_path: Path, home: Path, landing: Path, name: str, signum: int) -> None:
    """A replay stopped by ``signum`` once a cohort run has been told: exit 130, one line."""
    process = replay_command(home, landing, tmp_path / name)
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    assert _wait_for_line(out, "cohort_sensor -> ", process, 900), out.read_text()[-2000:]
    process.send_signal(signum)
    assert process.wait(timeout=300) == 130
    said = err.read_text().strip().splitlines()
    assert said and said[-1].startswith("churn-assets replay: interrupted;"), said[-5:]
    assert "Traceback" not in err.read_text()


def test_interrupted_replays_stop_in_one_line_and_the_next_one_heals(tmp_path):
    """Ctrl-C stops the first replay, SIGTERM the one resuming it; a third finishes the world.

    One world for both signals: the second replay starts by retrying the run the first one left
    failed, so the SIGTERM also lands on a replay that is healing.
    """
    world = simulate(tmp_path / "world", users=300, start="2016-01", months=5, seed=3)
    home = tmp_path / "home"
    _interrupt(tmp_path, home, world.landing_dir, "first", signal.SIGINT)
    _interrupt(tmp_path, home, world.landing_dir, "second", signal.SIGTERM)

    third = replay_command(home, world.landing_dir, tmp_path / "third")
    assert third.wait(timeout=1800) == 0, (tmp_path / "third.out").read_text()[-2000:]
    out = (tmp_path / "third.out").read_text()
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
