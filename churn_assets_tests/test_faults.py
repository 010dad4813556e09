"""Real faults through the real entry points: the command a person types, Dagster's materialize,
and the sensors as replay ticks them.

Each test names the fault, what the user sees, and how many stored rows it cost (none may be lost);
``scripts/reliability.py`` collects those into RELIABILITY.md. The worlds are tiny and shared:

* the *corrupt world* (300 users, 2016-01..06) has a garbage row in ``user_logs_201605.csv``. Two
  replays start on one fresh home: one is refused (exit 3), the other is killed with SIGKILL while
  it trains the first model. A replay then reaps the killed run and finishes, failing on the
  corrupt month with one line naming the file; the file is fixed and a last replay loads it and
  rebuilds the cohorts that read it.
* the *gaps world* (300 users, 2016-01..07, no cancels, no gender, one city) has its 2016-03
  listening file one month late and its 2016-05 listening file never delivered, replayed with its
  arrivals by ``churn-assets replay``.
* the *point-in-time world* (250 users, 2016-01..05) is loaded by ``dg.materialize``: one member
  moves city in March, one payment has an impossible expiry, one listening row an impossible day,
  and the newest labelled cohort has no churner.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churn_assets.automation.reaper import REPLAY
from churn_assets.cli import main
from churn_assets.dagster_internals import RUN_KEY_TAG
from churn_assets.definitions import build_definitions
from churn_assets.features.assets import features
from churn_assets.home_lock import home_lock
from churn_assets.keys import LAUNCHED_BY_TAG
from churn_assets.landing.contract import LANDING_COLUMNS
from churn_assets.partitions import months_between, register_months
from churn_assets.raw.assets import labels, members, transactions, user_logs
from churn_assets.replay import replay
from churn_assets.resources import ensure_experiment, version_facts
from churn_assets.settings import EXPERIMENT_NAME
from churn_assets.simulator import simulate
from churn_assets.training.assets import churn_model
from churn_assets_tests.helpers import resources_for

BUDGET_S = "2"
CORRUPT_WORLD = {"users": 300, "start": "2016-01", "months": 6, "seed": 5}
BAD_FILE = "user_logs_201605.csv"
GARBAGE = "garbage row,with,far,too,many,fields,for,user_logs,a,b,c,d\n"
GAPS_WORLD = {
    "users": 300,
    "start": "2016-01",
    "months": 7,
    "seed": 8,
    "late": [("user_logs", date(2016, 3, 1), 1)],
    "missing": [("user_logs", date(2016, 5, 1))],
    "degenerate": ["no_cancels", "no_gender", "single_city"],
}
CONSTANT_COLUMNS = {
    "city",
    "gender_code",
    "cancel_count_90d",
    "cancel_count_180d",
    "cancel_count_365d",
    "last_is_cancel",
}
PIT_WORLD = {"users": 250, "start": "2016-01", "months": 5, "seed": 3, "history_months": 0}
MONTHLY = {"transactions": "transaction_date", "user_logs": "date"}


# --- helpers ------------------------------------------------------------------------------------


@dataclass
class Command:
    """One ``churn-assets`` process as a person would have run it."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    def shown(self) -> str:
        return f"exit {self.returncode} after {self.seconds:.0f} s\n{self.stdout}\n{self.stderr}"


def _cli_argv() -> list[str]:
    script = Path(sys.executable).with_name("churn-assets")
    return [str(script)] if script.exists() else [sys.executable, "-m", "churn_assets.cli"]


def _env(home: Path) -> dict[str, str]:
    """The environment of a person running the command on ``home`` (DAGSTER_HOME under it)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CHURN_LANDING_DIR", "MLFLOW_TRACKING_URI", "DAGSTER_HOME")
    }
    env.update(CHURN_HOME=str(home), CHURN_TRAINING_BUDGET_S=BUDGET_S)
    return env


def _start(home: Path, out: Path, *args: str) -> tuple[subprocess.Popen, Path, Path, float]:
    stdout, stderr = out.with_suffix(".out"), out.with_suffix(".err")
    process = subprocess.Popen(
        [*_cli_argv(), *args],
        env=_env(home),
        stdout=stdout.open("w"),
        stderr=stderr.open("w"),
        cwd=home.parent,
    )
    return process, stdout, stderr, time.monotonic()


def _finish(started: tuple[subprocess.Popen, Path, Path, float], timeout: float) -> Command:
    process, stdout, stderr, began = started
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return Command(
        process.returncode, stdout.read_text(), stderr.read_text(), time.monotonic() - began
    )


def _run(home: Path, out: Path, *args: str, timeout: float = 420) -> Command:
    return _finish(_start(home, out, *args), timeout)


@contextmanager
def _instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        yield instance


@contextmanager
def _churn_env(home: Path) -> Iterator[None]:
    """CHURN_HOME (and what hangs off it) pointed at ``home`` for in-process work."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURN_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.setenv("CHURN_TRAINING_BUDGET_S", BUDGET_S)
        patch.delenv("CHURN_LANDING_DIR", raising=False)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        (home / "dagster").mkdir(parents=True, exist_ok=True)
        yield


def _sql(home: Path, query: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query, params or []).fetchall()


def stored_rows(home: Path) -> dict[tuple[str, str], int]:
    """Rows each raw table holds, by month (members and labels by snapshot and cohort)."""
    if not (home / "warehouse.duckdb").exists():
        return {}
    queries = {
        **{
            t: f"SELECT strftime({c}, '%Y-%m'), count(*) FROM {t} GROUP BY 1"
            for t, c in MONTHLY.items()
        },
        "members": "SELECT strftime(known_from, '%Y-%m'), count(*) FROM members GROUP BY 1",
        "labels": "SELECT strftime(cohort_month, '%Y-%m'), count(*) FROM labels GROUP BY 1",
    }
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        tables = {
            name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        return {
            (table, month): int(rows)
            for table, query in queries.items()
            if table in tables
            for month, rows in conn.execute(query).fetchall()
        }


def rows_lost(before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]) -> int:
    """Stored rows that went away between two moments (a month may only keep or gain rows)."""
    return sum(max(0, rows - after.get(key, 0)) for key, rows in before.items())


def landing_rows_not_stored(home: Path, landing: Path) -> dict[str, int]:
    """Per loaded ``table month``: distinct landing rows with a real date that are not stored."""
    loaded = {
        (table, month.strftime("%Y-%m"))
        for table, month in _sql(home, "SELECT table_name, month FROM raw_loads")
    }
    stored = stored_rows(home)
    gaps = {}
    with duckdb.connect() as conn:
        for table, date_column in MONTHLY.items():
            files = sorted(str(p) for p in landing.glob(f"{table}_*.csv"))
            columns = ", ".join(LANDING_COLUMNS[table])
            landed = conn.execute(
                f"""SELECT strftime(day, '%Y-%m'), count(*) FROM (
                    SELECT try_strptime(CAST({date_column} AS VARCHAR), '%Y%m%d') AS day
                    FROM (SELECT DISTINCT {columns} FROM read_csv(?, header=true,
                          union_by_name=true, all_varchar=true))
                ) WHERE day IS NOT NULL GROUP BY 1""",
                [files],
            ).fetchall()
            for month, rows in landed:
                if (table, month) in loaded and rows > stored.get((table, month), 0):
                    gaps[f"{table} {month}"] = rows - stored.get((table, month), 0)
    return gaps


def _materializations(
    instance: dg.DagsterInstance, asset: str, partition: str
) -> list[dict[str, object]]:
    """Metadata of every materialization of ``asset``'s partition, oldest first."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]),
        limit=100,
        ascending=True,
    )
    return [
        {k: v.value for k, v in r.asset_materialization.metadata.items()}
        for r in result.records
        if r.asset_materialization is not None
    ]


def _coverage(home: Path) -> dict[str, tuple[bool, str]]:
    return {
        month.strftime("%Y-%m"): (complete, missing)
        for month, complete, missing in _sql(
            home, "SELECT cohort_month, complete, missing_months FROM cohort_coverage"
        )
    }


def _scored(home: Path) -> dict[str, int]:
    return {
        month.strftime("%Y-%m"): rows
        for month, rows in _sql(
            home, "SELECT cohort_month, count(*) FROM predictions GROUP BY 1 ORDER BY 1"
        )
    }


def _sections(stdout: str) -> dict[str, list[str]]:
    """What replay printed under each simulated month."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        if re.fullmatch(r"\d{4}-\d{2}:", line):
            current = line[:-1]
            sections[current] = []
        elif current is not None and line.startswith("  "):
            sections[current].append(line.strip())
    return sections


def _sqlite(path: Path, query: str) -> list[tuple]:
    """Read another process's SQLite store without locking it; nothing when it is not there yet."""
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(query).fetchall()
    except sqlite3.Error:
        return []


def _report(record_property, user_sees: str, lost: int) -> None:
    """What RELIABILITY.md says of this case (see scripts/reliability.py); said before the
    assertions, so a case that fails still shows what the user saw."""
    record_property("user_sees", user_sees)
    record_property("rows_lost", lost)


def _lines(text: str, pick) -> list[str]:
    return [line.strip() for line in text.splitlines() if pick(line)]


# --- the corrupt world: one writer, a killed run, a corrupt month -------------------------------


@pytest.fixture(scope="module")
def corrupt_world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("corrupt")
    world = simulate(root / "world", **CORRUPT_WORLD)
    target = world.landing_dir / BAD_FILE
    good = root / f"good_{BAD_FILE}"
    shutil.copyfile(target, good)
    lines = target.read_text().splitlines(keepends=True)
    lines.insert(len(lines) // 2, GARBAGE)
    target.write_text("".join(lines))
    home = root / "home"
    home.mkdir()
    return {
        "root": root,
        "landing": world.landing_dir,
        "target": target,
        "good": good,
        "home": home,
    }


@pytest.fixture(scope="module")
def contended(corrupt_world: dict) -> dict:
    """Two replays started together on a fresh home; the one that runs is killed (SIGKILL) once
    it is training the first model, its Dagster run STARTED and its MLflow run RUNNING."""
    home, root, landing = corrupt_world["home"], corrupt_world["root"], corrupt_world["landing"]
    started = [
        _start(home, root / f"first_{i}", "replay", "--landing", str(landing)) for i in (0, 1)
    ]
    runs_db, mlflow_db = home / "dagster" / "history" / "runs.db", home / "mlflow.db"
    finished: dict[int, Command] = {}
    killed_at = None
    deadline = time.monotonic() + 900  # a guard against a hang, not a budget
    while time.monotonic() < deadline and killed_at is None:
        for i, (process, _, _, _) in enumerate(started):
            if i not in finished and process.poll() is not None:
                finished[i] = _finish(started[i], 1)
        if len(finished) == 2:
            break
        training = _sqlite(
            runs_db,
            "SELECT run_id FROM runs WHERE pipeline_name = 'training_job' AND status = 'STARTED'",
        )
        running = _sqlite(mlflow_db, "SELECT run_uuid FROM runs WHERE status = 'RUNNING'")
        if training and running and len(finished) == 1:
            [survivor] = [i for i in (0, 1) if i not in finished]
            time.sleep(0.5)
            started[survivor][0].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            finished[survivor] = _finish(started[survivor], 30)
        time.sleep(0.2)
    for i, entry in enumerate(started):
        if i not in finished:
            finished[i] = _finish(entry, 1)
    unfinished = _sqlite(runs_db, "SELECT run_id, pipeline_name FROM runs WHERE status = 'STARTED'")
    return {
        "commands": [finished[0], finished[1]],
        "killed": killed_at is not None,
        "unfinished": unfinished,
        "stored": stored_rows(home),
    }


@pytest.fixture(scope="module")
def resumed(corrupt_world: dict, contended: dict) -> dict:
    """The next replay on that home: it reaps the killed run and goes to the end."""
    home = corrupt_world["home"]
    command = _run(home, corrupt_world["root"] / "resumed", "replay", "--landing",
                   str(corrupt_world["landing"]))  # fmt: skip
    return {"command": command, "stored": stored_rows(home), "coverage": _coverage(home)}


@pytest.fixture(scope="module")
def healed(corrupt_world: dict, resumed: dict) -> dict:
    """The corrupt file rewritten from a good copy (new size and time), then replayed again."""
    home, target = corrupt_world["home"], corrupt_world["target"]
    # Rewritten in place: the staged copy replay reveals files through is a link to this file.
    shutil.copyfile(corrupt_world["good"], target)
    command = _run(home, corrupt_world["root"] / "healed", "replay", "--landing",
                   str(corrupt_world["landing"]))  # fmt: skip
    return {"command": command, "stored": stored_rows(home), "coverage": _coverage(home)}


def test_two_replays_on_one_home_one_runs_and_the_other_exits_3(
    corrupt_world, contended, healed, record_property
):
    refused = [c for c in contended["commands"] if c.returncode == 3]
    ran = [c for c in contended["commands"] if c.returncode != 3]
    said = [line for c in refused for line in _lines(c.stderr, lambda t: "churn-assets" in t)]
    lost = rows_lost(contended["stored"], healed["stored"])
    _report(record_property, said[0] if said else "no command was refused", lost)
    assert len(refused) == 1 and len(ran) == 1, [c.shown() for c in contended["commands"]]
    [message] = said
    assert "in use by 'replay'" in message and "pid" in message
    # Refused at once, not after a wait: the other one was still running, training, when the
    # refused one had ended.
    assert contended["killed"], ran[0].shown()

    # However the loop was interrupted and resumed, each run key ran once, one first champion.
    with _instance(corrupt_world["home"]) as instance:
        keys = [r.tags.get(RUN_KEY_TAG) for r in instance.get_runs() if RUN_KEY_TAG in r.tags]
    assert keys and len(keys) == len(set(keys)), sorted(keys)
    initial = _sql(
        corrupt_world["home"], "SELECT model_version FROM model_promotions WHERE action='initial'"
    )
    assert len(initial) == 1, initial
    assert lost == 0


def test_a_killed_replay_is_reaped_and_the_next_one_finishes(
    corrupt_world, contended, resumed, healed, record_property
):
    out = resumed["command"].stdout
    lost = rows_lost(contended["stored"], resumed["stored"])
    _report(record_property, next(iter(_lines(out, lambda t: t.startswith("marked"))), ""), lost)
    assert contended["killed"]
    killed = [run_id for run_id, job in contended["unfinished"] if job == "training_job"]
    assert killed, contended["unfinished"]  # the kill left a STARTED run behind
    assert f"marked {len(contended['unfinished'])} run(s) of a dead replay failed" in out, out
    # The next replay starts over from the first month: it retries the killed training there
    # and repeats nothing that had succeeded.
    first = _sections(out)["2016-02"]
    assert first and all("training_job[2016-05]" in line for line in first), first

    home = corrupt_world["home"]
    with _instance(home) as instance:
        assert instance.get_run_by_id(killed[0]).status == dg.DagsterRunStatus.FAILURE
        assert [r.run_id for r in instance.get_runs() if not r.is_finished] == []
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    mlflow_runs = client.search_runs([experiment.experiment_id])
    of_killed = [r for r in mlflow_runs if r.data.tags.get("dagster_run_id") == killed[0]]
    assert [r.info.status for r in of_killed] == ["FAILED"]
    assert [r.info.run_id for r in mlflow_runs if r.info.status == "RUNNING"] == []
    # The loop then finishes: with the corrupt file fixed, the last replay exits 0.
    assert healed["command"].returncode == 0, healed["command"].shown()
    assert lost == 0


def test_a_corrupt_month_fails_with_one_line_naming_its_file(
    corrupt_world, resumed, record_property
):
    command = resumed["command"]
    failed = _lines(command.stdout, lambda t: t.startswith("  FAILED "))
    _report(record_property, failed[0] if failed else "no failed run", 0)
    assert command.returncode == 1, command.shown()
    assert failed, command.shown()
    for line in failed:
        assert "load_job[2016-05-01]" in line and BAD_FILE in line and "line " in line, line
    # The month is not loaded, nothing stored before was touched, and the cohort that reads it
    # was built incomplete (the next one waits for the month).
    assert ("user_logs", "2016-05") not in resumed["stored"]
    assert resumed["coverage"]["2016-07"] == (False, "user_logs 2016-05")
    assert "2016-06" not in resumed["coverage"]


def test_cli_output_is_one_line_per_failure_and_dagster_log_goes_to_a_file(
    corrupt_world, resumed, record_property
):
    command = resumed["command"]
    closing = _lines(command.stdout, lambda t: re.match(r"\d+ runs, ", t))
    _report(record_property, closing[0] if closing else "no closing line", 0)
    assert "Traceback" not in command.stdout and "Traceback" not in command.stderr
    assert [line for line in command.stdout.splitlines() if "DEBUG" in line] == []
    # Each failed run: one progress line with its reason, one line in the closing list.
    progress = [line for line in command.stdout.splitlines() if " FAILED (" in line]
    listed = [line for line in command.stdout.splitlines() if line.startswith("  FAILED ")]
    [summary] = closing
    assert summary.startswith(f"{summary.split()[0]} runs, {len(progress)} failed"), summary
    assert len(listed) == len(progress) > 0
    for line in listed:
        run_id = line.split(" run ", 1)[1].split(":", 1)[0]
        assert sum(run_id in other for other in listed) == 1
    log = corrupt_world["home"] / "logs" / "churn-assets.log"
    assert log.exists()
    assert "Dagster's log: " + str(log) in command.stdout
    assert "STEP_FAILURE" in log.read_text()  # the detail is in the log, not on the terminal


def test_a_fixed_file_is_loaded_and_the_cohorts_reading_it_rebuilt_complete(
    corrupt_world, resumed, healed, record_property
):
    command = healed["command"]
    home = corrupt_world["home"]
    gaps = landing_rows_not_stored(home, corrupt_world["landing"])
    lost = rows_lost(resumed["stored"], healed["stored"]) + sum(gaps.values())
    loaded = _lines(command.stdout, lambda t: "load_job[2016-05]" in t)
    _report(record_property, loaded[0] if loaded else "the month was not loaded again", lost)
    assert command.returncode == 0, command.shown()
    assert "0 failed" in command.stdout, command.stdout
    assert ("user_logs", "2016-05") in healed["stored"]
    coverage = healed["coverage"]
    for cohort in ("2016-05", "2016-06", "2016-07"):
        assert coverage[cohort] == (True, ""), (cohort, coverage)
    scored = _scored(home)
    assert {"2016-06", "2016-07"} <= set(scored), scored
    # Only what the fixed file changes runs: nothing that succeeded is repeated before it lands,
    # and the cohorts rebuilt are the two that read its month.
    sections = _sections(command.stdout)
    assert all(sections[m] == [] for m in ("2016-02", "2016-03", "2016-04", "2016-05")), sections
    rebuilt = sorted(re.findall(r"cohort_job\[(\d{4}-\d{2})\]", "\n".join(sections["2016-06"])))
    assert rebuilt == ["2016-06", "2016-07"], sections["2016-06"]
    assert gaps == {}
    assert lost == 0


# --- one writer, replay's bounds, and a dead replay's leftovers ---------------------------------


@pytest.fixture(scope="module")
def pit_world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The point-in-time world, with its faults written into the landing files."""
    root = tmp_path_factory.mktemp("pit")
    world = simulate(root / "world", **PIT_WORLD)
    landing = world.landing_dir

    def read(pattern: str) -> pd.DataFrame:
        return pd.concat(
            [pd.read_csv(p, dtype={"msno": str}) for p in sorted(landing.glob(pattern))],
            ignore_index=True,
        )

    payments = read("transactions_*.csv")
    before_march = payments[payments.transaction_date < 20160301]
    before_april = payments[payments.transaction_date < 20160401]

    def expiring(rows: pd.DataFrame, month: int) -> set[str]:
        latest = rows.sort_values(["transaction_date", "membership_expire_date"]).groupby("msno")
        last = latest.tail(1)
        return set(last[last.membership_expire_date // 100 == month].msno)

    march, april = expiring(before_march, 201603), expiring(before_april, 201604)
    last_day = before_march.groupby("msno").transaction_date.max()
    members_all = pd.read_csv(landing / "members.csv", dtype={"msno": str})
    # A March-cohort user whose latest payment is before 29 February gets a later one whose
    # expiry is no date: the user must stay in the cohort (the valid expiry still says March).
    payer = sorted(u for u in march if last_day[u] < 20160229)[0]
    header = (landing / "transactions_201602.csv").read_text().splitlines()[0]
    assert header.split(",")[-3:] == ["transaction_date", "membership_expire_date", "is_cancel"]
    with (landing / "transactions_201602.csv").open("a") as handle:
        handle.write(f"{payer},41,30,149,149,1,20160229,20161399,0\n")
    # A listening row on 31 February: left out of every month, and counted.
    with (landing / "user_logs_201602.csv").open("a") as handle:
        handle.write(f"{payer},20160231,1,0,0,0,2,3,100.5\n")
    # A member of both the March and the April cohort moves city in March: known from April.
    registered = set(members_all[members_all.registration_init_time < 20160101].msno)
    mover = sorted((march & april & registered) - {payer})[0]
    [line] = [
        text
        for text in (landing / "members.csv").read_text().splitlines()
        if text.startswith(f"{mover},")
    ]
    fields = line.split(",")
    old_city = int(fields[1])
    fields[1] = str(old_city % 21 + 1)
    with (landing / "members_201603.csv").open("a") as handle:
        handle.write(",".join(fields) + "\n")
    # The newest labelled cohort (2016-04) has no churner.
    zero = pd.read_csv(landing / "train_201604.csv", dtype={"msno": str}).assign(is_churn=0)
    zero.to_csv(landing / "train_201604.csv", index=False)
    return {
        "root": root,
        "landing": landing,
        "payer": payer,
        "mover": mover,
        "old_city": old_city,
        "new_city": old_city % 21 + 1,
    }


def test_one_writer_per_home_refuses_at_once_and_touches_nothing(
    pit_world, tmp_path, record_property
):
    home = tmp_path / "home"
    with home_lock(home, "replay"):
        command = _run(home, tmp_path / "refused", "replay", "--landing",
                       str(pit_world["landing"]), timeout=120)  # fmt: skip
    assert command.returncode == 3, command.shown()
    [message] = [line for line in command.stderr.splitlines() if line.startswith("churn-assets")]
    # No waiting for the lock: it was held all along, so a command that waited would never have
    # exited 3 before its timeout.
    assert f"'replay' (pid {os.getpid()}" in message
    # Only the instance's configuration, written before the lock is asked for: no run storage.
    made = sorted(p.relative_to(home).as_posix() for p in home.rglob("*"))
    assert set(made) <= {".churn.lock", "dagster", "dagster/dagster.yaml"}, made
    _report(record_property, message, 0)


def test_replay_through_a_month_after_the_data_is_refused_with_exit_2(
    pit_world, churn_env, capsys, record_property
):
    code = main(["replay", "--landing", str(pit_world["landing"]), "--through", "2099-12"])
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("churn-assets")]
    assert code == 2
    assert len(said) == 1 and "2099-12" in said[0] and "2016-05" in said[0], err
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs() == []
    _report(record_property, said[0], 0)


def test_replay_reaps_a_dead_replays_run_and_ends_its_mlflow_run(
    pit_world, tmp_path, record_property
):
    home, landing = tmp_path / "home", pit_world["landing"]
    with _churn_env(home), dg.instance_for_test() as instance:
        orphan = instance.add_run(
            dg.DagsterRun(
                job_name="load_job",
                status=dg.DagsterRunStatus.STARTED,
                tags={LAUNCHED_BY_TAG: REPLAY},
            )
        )
        foreign = instance.add_run(
            dg.DagsterRun(job_name="load_job", status=dg.DagsterRunStatus.STARTED)
        )
        uri = f"sqlite:///{home / 'mlflow.db'}"
        client = MlflowClient(uri)
        experiment = ensure_experiment(uri, home / "mlartifacts")
        mlflow_run = client.create_run(experiment, tags={"dagster_run_id": orphan.run_id})
        said: list[str] = []
        summary = replay(
            build_definitions(resources_for(home, landing)),
            instance,
            landing,
            through=date(2016, 2, 1),
            log=said.append,
            tracking_uri=uri,
        )
        assert summary.reaped == [orphan.run_id]
        assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
        # A run another launcher owns (the daemon's run monitoring) is left alone.
        assert instance.get_run_by_id(foreign.run_id).status == dg.DagsterRunStatus.STARTED
        assert summary.unhealed_failures == []
    assert client.get_run(mlflow_run.info.run_id).info.status == "FAILED"
    assert said[0] == "marked 1 run(s) of a dead replay failed, to retry"
    _report(record_property, said[0], 0)


# --- the gaps world: a late file, a missing file, degenerate columns ----------------------------


@pytest.fixture(scope="module")
def gaps(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("gaps")
    world = simulate(root / "world", **GAPS_WORLD)
    home = root / "home"
    home.mkdir()
    command = _run(home, root / "replay", "replay", "--landing", str(world.landing_dir))
    return {"home": home, "landing": world.landing_dir, "command": command}


def test_late_and_missing_files_fail_no_run(gaps, record_property):
    command = gaps["command"]
    failed = _lines(command.stdout, lambda t: t.startswith("  FAILED "))
    closing = _lines(command.stdout, lambda t: re.match(r"\d+ runs, ", t))
    not_stored = landing_rows_not_stored(gaps["home"], gaps["landing"])
    _report(record_property, "; ".join(closing + failed[:1]), sum(not_stored.values()))
    assert command.returncode == 0 and failed == [], command.shown()
    assert not_stored == {}


def test_a_late_file_is_loaded_when_it_lands_and_its_cohort_rebuilt_complete(gaps, record_property):
    sections = _sections(gaps["command"].stdout)
    late = [
        line
        for line in sections.get("2016-05", [])
        if "load_job[2016-03]" in line and "user_logs" in line
    ]
    _report(record_property, late[0] if late else "March's listening never loaded", 0)
    # March's listening is due on 1 April but lands on 1 May: April loads March's payments only.
    april = [line for line in sections["2016-04"] if "load_job[2016-03]" in line]
    assert april and all("user_logs" not in line for line in april), sections["2016-04"]
    may = [line for line in sections["2016-05"] if "load_job[2016-03]" in line]
    assert any(" ok: " in line and "user_logs" in line for line in may), sections["2016-05"]
    with _instance(gaps["home"]) as instance:
        builds = _materializations(instance, "features", "2016-04-01")
    assert builds[0]["window_complete"] is False
    assert "user_logs 2016-03" in builds[0]["missing_months"]
    assert builds[-1]["window_complete"] is True
    assert _coverage(gaps["home"])["2016-04"] == (True, "")


def test_a_missing_file_leaves_its_cohorts_incomplete_scored_with_a_warning_not_trained_on(
    gaps, record_property
):
    home = gaps["home"]
    coverage, scored = _coverage(home), _scored(home)
    readers = ("2016-06", "2016-07", "2016-08")  # the cohorts whose 90 days include May
    for cohort in readers:
        assert coverage[cohort] == (False, "user_logs 2016-05"), (cohort, coverage)
        assert scored.get(cohort, 0) > 0, scored
    with _instance(home) as instance:
        for cohort in readers:
            [*_, latest] = _materializations(instance, "predictions", f"{cohort}-01")
            assert latest["window_complete"] is False
            assert "user_logs 2016-05" in latest["warning"]
    # Trained as the sensor would on 2016-08 (labels through 2016-06): 2016-06 is left out.
    with _churn_env(home):
        result = dg.materialize(
            [churn_model],
            resources=resources_for(home, home / "landing_staged"),
            run_config={
                "ops": {"churn_model": {"config": {"as_of_month": "2016-08", "time_budget_s": 2.0}}}
            },
        )
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert "2016-06" in metadata["incomplete_cohorts"]
    assert "2016-06" not in metadata["training_cohorts"]
    assert metadata["validation_cohort"] != "2016-06"
    assert metadata["trained_on_incomplete_cohorts"] is False
    if metadata["registered"]:
        version = MlflowClient(f"sqlite:///{home / 'mlflow.db'}").get_model_version(
            "churn-model", metadata["model_version"]
        )
        assert "2016-06-01" not in json.loads(version.tags["training_cohorts"])
    _report(record_property, f"predictions of 2016-06 warn: {latest['warning']}", 0)


def test_degenerate_columns_are_dropped_and_the_model_scores(gaps, record_property):
    home = gaps["home"]
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("churn-model", "champion")
    used = set(json.loads(version_facts(client, champion)["feature_columns"]))
    assert used and not (used & CONSTANT_COLUMNS), sorted(used & CONSTANT_COLUMNS)
    versions = _sql(home, "SELECT DISTINCT model_version FROM predictions")
    assert versions and all(v for (v,) in versions)
    _report(
        record_property,
        f"champion v{champion.version} learns {len(used)} features; the constant ones "
        f"({', '.join(sorted(CONSTANT_COLUMNS))}) are left out",
        0,
    )


# --- the point-in-time world, loaded by dg.materialize ------------------------------------------


@pytest.fixture(scope="module")
def pit_loaded(pit_world: dict) -> dict:
    home, landing = pit_world["root"] / "home", pit_world["landing"]
    results: dict[str, dg.ExecuteInProcessResult] = {}
    with _churn_env(home), dg.instance_for_test() as instance:
        resources = resources_for(home, landing)
        register_months(instance, months_between(date(2016, 1, 1), date(2016, 5, 1)))

        def run(key: str, assets: list, partition: str | None = None) -> None:
            results[key] = dg.materialize(
                assets, partition_key=partition, resources=resources, instance=instance
            )

        run("members", [members])
        for month in ("2016-01-01", "2016-02-01", "2016-03-01", "2016-04-01"):
            run(f"raw {month}", [transactions, user_logs], month)
        for cohort in ("2016-02-01", "2016-03-01", "2016-04-01"):
            run(f"labels {cohort}", [labels], cohort)
            run(f"features {cohort}", [features], cohort)
    return {"home": home, "results": results, **pit_world}


def _checks(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dict]:
    return {
        e.check_name: {k: v.value for k, v in e.metadata.items()}
        for e in result.get_asset_check_evaluations()
        if e.asset_key == dg.AssetKey(asset)
    }


def test_members_are_read_as_known_before_each_cutoff(pit_loaded, record_property):
    cities = dict(
        _sql(
            pit_loaded["home"],
            "SELECT strftime(cohort_month, '%Y-%m'), city FROM features WHERE msno = ? "
            "AND cohort_month IN ('2016-03-01', '2016-04-01')",
            [pit_loaded["mover"]],
        )
    )
    # members_201603.csv describes March: known from 1 April, so the March cohort (cut-off
    # 1 March) still sees the old city and the April cohort the new one.
    assert cities == {"2016-03": pit_loaded["old_city"], "2016-04": pit_loaded["new_city"]}
    _report(record_property, f"city {cities['2016-03']} in 2016-03, {cities['2016-04']} after", 0)


def test_unparseable_dates_keep_their_user_and_are_counted(pit_loaded, record_property):
    home, payer = pit_loaded["home"], pit_loaded["payer"]
    in_march = _sql(
        home,
        "SELECT count(*) FROM features WHERE cohort_month = '2016-03-01' AND msno = ?",
        [payer],
    )
    assert in_march == [(1,)]  # the valid expiry in March still places the user
    february = pit_loaded["results"]["raw 2016-02-01"]
    assert february.success
    nulls = _checks(february, "transactions")["nulls"]
    assert nulls["null_share_membership_expire_date"] > 0
    schema = _checks(february, "user_logs")["schema"]
    assert schema["rows_without_valid_date"] == 1
    # The payment row is stored (its expiry NULL); the 31 February row is left out and counted.
    stored = _sql(
        home,
        "SELECT count(*) FROM transactions WHERE msno = ? AND transaction_date = '2016-02-29' "
        "AND membership_expire_date IS NULL",
        [payer],
    )
    assert stored == [(1,)]
    gaps = landing_rows_not_stored(home, pit_loaded["landing"])
    assert gaps == {}
    _report(
        record_property,
        "nulls: null_share_membership_expire_date "
        f"{nulls['null_share_membership_expire_date']:.4f}; schema: rows_without_valid_date "
        f"{schema['rows_without_valid_date']}",
        0,
    )


def test_a_labelled_cohort_without_churners_does_not_crash_training(pit_loaded, record_property):
    home = pit_loaded["home"]
    churners = dict(_sql(home, "SELECT strftime(cohort_month, '%Y-%m'), sum(is_churn) FROM labels "
                               "GROUP BY 1"))  # fmt: skip
    assert churners["2016-04"] == 0 and churners["2016-03"] > 0
    with _churn_env(home):
        result = dg.materialize(
            [churn_model],
            resources=resources_for(home, pit_loaded["landing"]),
            run_config={
                "ops": {"churn_model": {"config": {"as_of_month": "2016-06", "time_budget_s": 2.0}}}
            },
            raise_on_error=False,
        )
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    if "not_trained_because" in metadata:
        outcome = f"not trained: {metadata['not_trained_because']}"
    else:
        assert metadata["validation_cohort"] == "2016-03"  # the newest cohort with both classes
        assert "2016-04" not in metadata["training_cohorts"]
        outcome = f"trained on {metadata['training_cohorts']}, validated on 2016-03"
    _report(record_property, outcome, 0)


def test_a_blocking_check_failure_is_told_by_what_the_check_found(
    pit_world, tmp_path, record_property
):
    """A run stopped by a blocking check prints what the check found, not just its name."""
    from churn_assets.replay import failure_reason

    with dg.instance_for_test() as instance:
        register_months(instance, ["2016-05-01"])
        result = dg.materialize(
            [labels],
            partition_key="2016-05-01",  # no train_201605.csv: that cohort's labels never land
            resources=resources_for(tmp_path / "home", pit_world["landing"]),
            instance=instance,
            raise_on_error=False,
        )
    reason = failure_reason(result)
    _report(record_property, reason, 0)
    assert not result.success
    assert (
        reason == "labels: schema check failed: no labels rows for cohort 2016-05 in the "
        "landing folder; nothing of it was stored (the stored rows are as they were)"
    ), reason
