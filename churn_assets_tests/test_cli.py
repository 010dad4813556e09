"""`churn-assets` as a user types it: simulate writes the landing contract, bad input exits 2."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from churn_assets.cli import main


def test_simulate_writes_landing_and_truth(tmp_path: Path, capsys):
    code = main(
        ["simulate", "--out", str(tmp_path), "--users", "150", "--months", "3",
         "--seed", "4", "--drift", "covariate@2016-02"]
    )  # fmt: skip
    assert code == 0
    landing = tmp_path / "landing"
    names = {p.name for p in landing.iterdir()}
    assert {"members.csv", "transactions_201601.csv", "user_logs_201603.csv"} <= names
    assert "train_201602.csv" in names
    schedule = json.loads((tmp_path / "truth" / "drift_schedule.json").read_text())
    assert schedule["drifts"][0]["kind"] == "covariate"
    said = capsys.readouterr()
    assert str(landing) in said.out
    # No terminal (as in CI): one line per landing table written, no bar's redraws.
    steps = [line for line in said.err.splitlines() if line.startswith("simulate: ")]
    assert [s.split()[1] for s in steps] == [
        "members",
        "transactions",
        "user_logs",
        "labels",
        "truth",
    ]
    assert "\r" not in said.err


def test_on_a_terminal_progress_is_a_bar_with_the_output_above_it():
    from churn_assets.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, out = Terminal(), io.StringIO()
    months = Progress(2, "replay", "month", stream=terminal, lines=False)
    months.doing("2016-01 load_job[2016-01]")
    months.write("2016-01:", stream=out)
    months.tick("2016-01")
    months.step("2016-02")
    assert months.bar is not None and months.bar.n == 2
    months.close()
    assert out.getvalue() == "2016-01:\n"  # the command's own line, never inside the bar
    drawn = terminal.getvalue()
    assert "replay" in drawn and "load_job[2016-01]" in drawn and "\r" in drawn
    assert "replay: 2016-02" not in drawn  # a bar, not lines


def test_bad_drift_and_missing_landing_exit_with_a_clear_message(tmp_path: Path, capsys, churn_env):
    assert main(["simulate", "--out", str(tmp_path), "--drift", "sideways@2016-02"]) == 2
    assert "sideways" in capsys.readouterr().err
    missing = tmp_path / "nowhere"
    assert main(["replay", "--landing", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_simulating_over_an_existing_world_is_refused(tmp_path: Path, capsys):
    args = ["simulate", "--out", str(tmp_path), "--users", "100", "--months", "2"]
    assert main(args) == 0
    assert main(args) == 2
    assert "landing" in capsys.readouterr().err


def test_a_lifecycle_job_that_says_no_exits_2_with_its_own_words(capsys, churn_env):
    # A fresh home: no version 7 to promote, nothing to roll back to. The job refuses (a
    # dg.Failure, read from its step-failure event), which is not a crash: exit 2, not 1.
    assert main(["promote", "7", "--reason", "try"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("churn-assets: ") and "7" in said and "(run " not in said
    assert main(["rollback"]) == 2
    assert "roll back" in capsys.readouterr().err


def test_a_bad_setting_is_refused_first_in_one_line_and_touches_nothing(tmp_path: Path):
    """Before any run, any Dagster word or any file in CHURN_HOME: the variable, its value, why."""
    home = tmp_path / "home"
    cases = {
        "CHURN_TRAINING_BUDGET_S": ("-5", "must be above 0"),
        "CHURN_DUCKDB_MEMORY_LIMIT": ("3 gb;", "DuckDB cannot use it as a memory limit"),
        "CHURN_RETRAIN_DRIFT_TIER": ("loud", "must be ERROR or WARN"),
    }
    for variable, (value, says) in cases.items():
        env = {**os.environ, "CHURN_HOME": str(home), variable: value}
        done = subprocess.run(
            [sys.executable, "-m", "churn_assets.cli", "replay", "--landing", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"churn-assets replay: {variable}={value!r}: ") and says in line
    assert not home.exists()


def test_a_home_that_cannot_be_written_and_a_dead_tracking_server_are_refused_first(tmp_path):
    """One line naming the cause, exit 2, before any run: not a traceback, not minutes of wait."""
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    cases = [
        ({"CHURN_HOME": str(blocked / "home")}, "CHURN_HOME=", "cannot write there"),
        (
            {"CHURN_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"},
            "MLFLOW_TRACKING_URI='http://127.0.0.1:9': the tracking server does not answer",
            "within 10 s",
        ),
    ]
    for env, starts, says in cases:
        done = subprocess.run(
            [sys.executable, "-m", "churn_assets.cli", "replay", "--landing", str(tmp_path)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"churn-assets replay: {starts}") and says in line, line


def test_a_refused_promotion_is_the_only_thing_said(tmp_path):
    """No Dagster note on its own beta APIs comes before (or after) the refusal."""
    done = subprocess.run(
        [sys.executable, "-m", "churn_assets.cli", "promote", "7", "--reason", "try"],
        env={**os.environ, "CHURN_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["churn-assets: churn-model has no version '7'"]


def test_the_cli_refuses_a_home_a_running_dagster_daemon_works_on(tmp_path, capsys, monkeypatch):
    """dagster dev's daemon takes no home lock; its heartbeat says it runs, and the CLI, which
    would write beside it, refuses with exit 3 rather than both writing."""
    import dagster as dg

    from churn_assets.dagster_internals import DaemonHeartbeat

    home = tmp_path / "home"
    monkeypatch.setenv("CHURN_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    (home / "dagster").mkdir(parents=True)
    with dg.DagsterInstance.get() as instance:
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time(), "SENSOR", "d1", []))
    assert main(["promote", "7"]) == 3
    said = capsys.readouterr().err
    assert "in use by a running Dagster daemon (dagster dev)" in said
