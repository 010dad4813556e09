"""RELIABILITY.md: every bad input and injected fault the tests try, what the user sees, rows lost.

Runs the fault tests (``churn_assets_tests/test_faults.py``), the bad-input tests
(``churn_assets_tests/test_bad_input.py``), and those of landing names, attempts and
interruptions under pytest with this file as a plugin, then renders
what they recorded as a table. Nothing is written by hand: each row is a case that ran now.

For every case the plugin records:

* the outcome (the test passed, or failed and why);
* what the user sees: the line the test says the user sees (pytest's ``record_property``
  ``user_sees``), else the message of each raw load that failed (the reason a failed run prints),
  else each quality check that did not pass, else that the input loaded and every check passed;
* rows lost: every raw load is watched (``churn_assets.raw.assets.load_table``). The stored rows
  of each raw table are counted by month before and after it: a load that fails may change
  nothing, a load that succeeds may replace only its own months; every row that went away
  otherwise is lost. Cases that replay through the ``churn-assets`` command in another process
  count their own (``record_property`` ``rows_lost``: stored rows before and after each phase,
  and landing rows missing from the warehouse).

    python scripts/reliability.py [--output RELIABILITY.md] [-k EXPRESSION] [TEST_FILE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEST_FILES = (
    "churn_assets_tests/test_faults.py",
    "churn_assets_tests/test_bad_input.py",
    "churn_assets_tests/test_landing_names.py",
    "churn_assets_tests/test_attempts.py",
    "churn_assets_tests/test_interruptions.py",
    "churn_assets_tests/test_replaced_files.py",
    "churn_assets_tests/test_archived_files.py",
)
RECORD_ENV = "CHURN_RELIABILITY_RECORD"
PLUGIN = Path(__file__).stem
_PATH = re.compile(r"(?<![\w\"])(?:/[^\s/:,'\"()]+)+/([^\s/:,'\"()]+)")


# --- the plugin: loaded into the pytest process by ``-p reliability`` --------------------------


class Recorder:
    """What the current test's raw loads and checks did, and each finished test's record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cases: list[dict[str, Any]] = []
        self.loads: list[dict[str, Any]] = []
        self.checks: list[str] = []
        self.runs: list[str] = []

    def start(self) -> None:
        self.loads, self.checks, self.runs = [], [], []

    def finish(self, item: Any, report: Any) -> None:
        properties = dict(report.user_properties)
        function = getattr(item, "function", None)
        doc = ((function.__doc__ if function else None) or "").strip().splitlines()
        self.cases.append(
            {
                "nodeid": report.nodeid,
                "file": report.nodeid.split("::", 1)[0],
                "name": report.nodeid.split("::", 1)[-1],
                "doc": doc[0] if doc else "",
                "outcome": report.outcome,
                "failure": _failure_line(report) if report.failed else "",
                "seconds": report.duration,
                "user_sees": properties.get("user_sees"),
                "rows_lost": properties.get("rows_lost"),
                "loads": self.loads,
                "checks": self.checks,
                "failed_runs": self.runs,
            }
        )
        self.path.write_text(json.dumps(self.cases, indent=1, default=str))


def _failure_line(report: Any) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip().splitlines()[0] if text.strip() else "failed"


def _stored_rows(conn: Any) -> dict[str, int]:
    """Rows of each raw table by month (members by snapshot, labels by cohort)."""
    months = {
        "transactions": "transaction_date",
        "user_logs": "date",
        "members": "known_from",
        "labels": "cohort_month",
    }
    tables = {name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    counts = {}
    for table, column in months.items():
        if table not in tables:
            continue
        query = f"SELECT strftime({column}, '%Y-%m'), count(*) FROM {table} GROUP BY 1"
        for month, rows in conn.execute(query).fetchall():
            counts[f"{table} {month}"] = int(rows)
    return counts


def _watch(recorder: Recorder) -> None:
    """Wrap runs, raw loads and raw checks so that each test's are recorded."""
    import dagster as dg

    from churn_assets.raw import assets, quality
    from churn_assets.replay import failure_reason

    execute: Callable[..., Any] = dg.JobDefinition.execute_in_process

    def watched_execute(job, *args, **kwargs):
        result = execute(job, *args, **kwargs)
        if not result.success:
            recorder.runs.append(failure_reason(result))
        return result

    load_table: Callable[..., Any] = assets.load_table
    evaluate: Callable[..., Any] = quality.evaluate

    def counted(warehouse: Any) -> dict[str, int]:
        with warehouse.get_connection() as conn:
            return _stored_rows(conn)

    def watched_load(warehouse, table, files, params, ledger=None, **monthly):
        before = counted(warehouse)
        error = None
        try:
            return load_table(warehouse, table, files, params, ledger, **monthly)
        except Exception as exc:
            error = f"{table}: {str(exc).strip().splitlines()[0]}"
            raise
        finally:
            after = counted(warehouse)
            if error is not None:
                replaced: set[str] = set()  # a failed load may change nothing
            elif table in ("transactions", "user_logs"):
                replaced = {f"{table} {month:%Y-%m}" for month in ledger or {}}
            elif table == "labels":  # one cohort's labels
                replaced = {f"labels {params['window_start']:%Y-%m}"}
            else:  # every members snapshot is read again
                replaced = {key for key in before if key.startswith("members ")}
            lost = sum(
                max(0, rows - after.get(key, 0))
                for key, rows in before.items()
                if key not in replaced
            )
            recorder.loads.append({"table": table, "error": error, "rows_lost": lost})

    def watched_evaluate(table, quality_numbers, where, **kwargs):
        outcomes = evaluate(table, quality_numbers, where, **kwargs)
        for outcome in outcomes:
            if not outcome.passed:
                recorder.checks.append(
                    f"{table} {outcome.check} check fails ({where}): {outcome.description}"
                )
            elif outcome.metadata.get("exact_duplicates_dropped") or outcome.metadata.get(
                "rows_without_valid_date"
            ):
                recorder.checks.append(
                    f"{table} {outcome.check} check passes ({where}): {outcome.description}"
                    + (
                        f"; {outcome.metadata['rows_without_valid_date']} rows without a valid "
                        "date left out and counted"
                        if outcome.metadata.get("rows_without_valid_date")
                        else ""
                    )
                )
        return outcomes

    dg.JobDefinition.execute_in_process = watched_execute
    assets.load_table = watched_load
    quality.evaluate = watched_evaluate


_RECORDER: Recorder | None = None


def pytest_configure(config: Any) -> None:
    global _RECORDER
    path = os.environ.get(RECORD_ENV)
    if path and _RECORDER is None:
        _RECORDER = Recorder(Path(path))
        _watch(_RECORDER)


def pytest_runtest_setup(item: Any) -> None:
    if _RECORDER is not None:
        _RECORDER.start()


def pytest_runtest_logreport(report: Any) -> None:
    if _RECORDER is None:
        return
    # One record per test: its call, or the setup that failed (or skipped) before it.
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        item = _ITEMS.get(report.nodeid)
        _RECORDER.finish(item, report)


_ITEMS: dict[str, Any] = {}


def pytest_collection_modifyitems(items: list[Any]) -> None:
    _ITEMS.update({item.nodeid: item for item in items})


# --- the report ---------------------------------------------------------------------------------


def _short(text: str) -> str:
    """A message with its paths cut to the file name, fit for a table cell."""
    text = _PATH.sub(lambda m: m.group(1), text.replace("\n", " "))
    return text.replace("|", "\\|").strip()


def _case(record: dict[str, Any]) -> str:
    name = record["name"]
    base, _, param = name.partition("[")
    words = base.removeprefix("test_").replace("_", " ")
    return f"{words} [{param}" if param else words


def _user_sees(record: dict[str, Any]) -> str:
    if record["user_sees"]:
        return f"`{_short(str(record['user_sees']))}`"
    errors = list(dict.fromkeys(record.get("failed_runs", [])))
    errors = errors or list(
        dict.fromkeys(load["error"] for load in record["loads"] if load["error"])
    )
    if errors:
        return "; ".join(f"`{_short(e)}`" for e in errors[:2])
    checks = list(dict.fromkeys(record["checks"]))
    if checks:
        shown = "; ".join(_short(c) for c in checks[:2])
        return shown + (f" (+{len(checks) - 2} more)" if len(checks) > 2 else "")
    if record["loads"]:
        return "loaded, every check passed"
    return "—"


def _rows_lost(record: dict[str, Any]) -> int:
    watched = sum(load["rows_lost"] for load in record["loads"])
    declared = int(record["rows_lost"] or 0)
    return watched + declared


def render(records: list[dict[str, Any]], command: str, seconds: float) -> str:
    passed = sum(r["outcome"] == "passed" for r in records)
    lost = sum(_rows_lost(r) for r in records)
    loads = sum(len(r["loads"]) for r in records)
    failed_loads = sum(1 for r in records for load in r["loads"] if load["error"])
    lines = [
        "# Reliability",
        "",
        f"Measured at commit `{_commit()}` on {date.today().isoformat()}: `{command}` "
        f"({seconds / 60:.0f} min).",
        "",
        "Every bad input and injected fault the tests try, through the product's own entry points "
        "(the `churn-assets` command, `dg.materialize`, the sensors as replay ticks them), with "
        "what the user sees and how many stored rows it cost. *What the user sees* is the line "
        "the command prints, or the reason of the failed load (the line a failed run prints), or "
        "the quality checks that did not pass. *Rows lost* counts, around every raw load, stored "
        "rows of each raw table and month that went away (a failed load may change nothing, a "
        "good one only its own months), plus, for cases replayed in another process, stored rows "
        "that went away between phases and landing rows of loaded months missing from the "
        "warehouse.",
        "",
        f"**{passed} of {len(records)} cases pass; {loads} raw loads watched, {failed_loads} of "
        f"them failed as intended; rows lost: {lost}.**",
    ]
    for file in dict.fromkeys(r["file"] for r in records):
        lines += [
            "",
            f"## `{file}`",
            "",
            "| case | outcome | what the user sees | rows lost |",
            "|---|---|---|---|",
        ]
        for record in (r for r in records if r["file"] == file):
            outcome = record["outcome"]
            if record["failure"]:
                outcome += f": {_short(record['failure'])[:300]}"
            lines.append(
                f"| {_case(record)} | {outcome} | {_user_sees(record)} | {_rows_lost(record)} |"
            )
    return "\n".join(lines) + "\n"


def _commit() -> str:
    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!RELIABILITY.md")
    return head + ("+dirty" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests", nargs="*", default=list(TEST_FILES), help="test files to run")
    parser.add_argument("--output", type=Path, default=ROOT / "RELIABILITY.md")
    parser.add_argument("-k", dest="keyword", help="only the cases matching (pytest -k)")
    args = parser.parse_args(argv)
    command = "python scripts/reliability.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "cases.json"
        env = {
            **os.environ,
            RECORD_ENV: str(record),
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).parent), str(ROOT), os.environ.get("PYTHONPATH", "")]
            ),
        }
        # In one process (-n 0): the plugin records what this process's tests store.
        pytest_args = [
            *(sys.executable, "-m", "pytest", "-p", PLUGIN, "-q", "-p", "no:cacheprovider"),
            *("-n", "0"),
        ]
        if args.keyword:
            pytest_args += ["-k", args.keyword]
        done = subprocess.run([*pytest_args, *args.tests], cwd=ROOT, env=env)
        if not record.exists():
            print("no case ran", file=sys.stderr)
            return 2
        records = json.loads(record.read_text())
    text = render(records, command, time.monotonic() - started)
    args.output.write_text(text)
    print(text)
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
