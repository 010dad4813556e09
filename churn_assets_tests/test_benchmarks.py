"""Every benchmark script still runs, at its smallest size, and writes the figures it claims.

A benchmark is any ``benchmarks/*.py`` that runs as a script. Each declares ``SECTION`` (its
heading in BENCHMARKS.md) and ``SMOKE`` (the arguments of its smallest run, which ``--smoke``
applies, and the first cell of each row of the section's first table), so a new benchmark is
covered here as soon as it exists, and one a refactor breaks fails the suite instead of going
unnoticed until someone tries to reproduce its figures. The scripts run side by side, each as a
subprocess in its own folder and CHURN_HOME, writing a temporary BENCHMARKS.md. A smallest run is
a proof that the script works, not a measurement: nothing here depends on the machine's speed
(what the smoke runs cost is in BENCHMARKS.md, measured by the benchmarks themselves).
"""

from __future__ import annotations

import ast
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# A guard against a run that hangs, not a budget: on two idle cores the smoke runs take about
# a minute together, and a loaded machine may stretch that many times over.
TIMEOUT_S = 1800
PROVENANCE = re.compile(
    r"^Measured at commit `(?P<commit>unknown|[0-9a-f]{4,}(\+dirty)?)` on "
    r"(?P<date>\d{4}-\d{2}-\d{2}): `(?P<command>python [^`]+)`$"
)
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")
NO_FIGURE = {"-", "—"}  # a cell with nothing to report, said so


def _runs_as_script(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        for node in tree.body
    )


def _declared(tree: ast.Module) -> dict[str, object]:
    """The script's module-level ``SECTION`` and ``SMOKE`` literals."""
    found = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("SECTION", "SMOKE")
        ):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    return found


SCRIPTS = sorted(
    path for path in BENCHMARKS.glob("*.py") if _runs_as_script(ast.parse(path.read_text()))
)


@dataclass
class SmokeRun:
    script: Path
    declared: dict[str, object]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float  # wall time, which other work on the machine stretches
    output: Path

    def failure(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-25:])
        return f"{self.script.name} exited {self.returncode} after {self.seconds:.0f} s:\n{tail}"


@dataclass
class _Started:
    script: Path
    process: subprocess.Popen
    folder: Path
    began: float


def _start(script: Path, folder: Path) -> _Started:
    for sub in ("home/dagster", "tmp", "work"):
        (folder / sub).mkdir(parents=True)
    env = {
        **os.environ,
        "CHURN_HOME": str(folder / "home"),
        "DAGSTER_HOME": str(folder / "home" / "dagster"),
        "TMPDIR": str(folder / "tmp"),
    }
    for key in ("CHURN_LANDING_DIR", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    with open(folder / "stdout", "w") as stdout, open(folder / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script), "--smoke", "--output", str(folder / "BENCHMARKS.md")],
            cwd=folder / "work",
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group, so a timeout stops its children too
        )
    return _Started(script, process, folder, time.monotonic())


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SmokeRun]:
    """Start every benchmark's smoke run at once, then wait for all of them."""
    pending = {
        script.stem: _start(script, tmp_path_factory.mktemp(f"bench_{script.stem}"))
        for script in SCRIPTS
    }
    runs: dict[str, SmokeRun] = {}
    while pending:
        for stem, run in list(pending.items()):
            pid, status = os.waitpid(run.process.pid, os.WNOHANG)
            timed_out = pid == 0 and time.monotonic() - run.began > TIMEOUT_S
            if timed_out:
                os.killpg(run.process.pid, signal.SIGKILL)
                pid, status = os.waitpid(run.process.pid, 0)
            if pid == 0:
                continue
            run.process.returncode = os.waitstatus_to_exitcode(status)
            del pending[stem]
            stderr = (run.folder / "stderr").read_text(errors="replace")
            runs[stem] = SmokeRun(
                run.script,
                _declared(ast.parse(run.script.read_text())),
                run.process.returncode,
                (run.folder / "stdout").read_text(errors="replace"),
                stderr + (f"\n(killed after {TIMEOUT_S} s)" if timed_out else ""),
                time.monotonic() - run.began,
                run.folder / "BENCHMARKS.md",
            )
        time.sleep(0.2)
    return runs


def _section(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    assert lines.count(heading) == 1, f"expected one {heading!r} section, got:\n{text}"
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _tables(section: list[str]) -> list[list[list[str]]]:
    """Each markdown table's data rows, as stripped cells (header and rule left out)."""
    tables, current = [], None
    for line in [*section, ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = [cells]
            else:
                current.append(cells)
        elif current is not None:
            assert len(current) >= 2 and set("".join(current[1])) <= set("-: "), current
            tables.append(current[2:])
            current = None
    return tables


def test_every_benchmark_is_discovered() -> None:
    names = {script.name for script in SCRIPTS}
    assert {"features.py", "model_quality.py"} <= names
    assert "benchmarks_md.py" not in names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_declares_its_section_and_smallest_run(script: Path) -> None:
    declared = _declared(ast.parse(script.read_text()))
    assert isinstance(declared.get("SECTION"), str), f"{script.name} declares no SECTION"
    assert declared["SECTION"].startswith("## ")
    smoke = declared.get("SMOKE")
    assert isinstance(smoke, dict), f"{script.name} declares no SMOKE (its smallest run)"
    assert isinstance(smoke.get("args"), list) and all(isinstance(a, str) for a in smoke["args"])
    assert smoke.get("rows") and all(isinstance(r, str) for r in smoke["rows"])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_runs_at_smallest_size_and_writes_its_figures(
    script: Path, smoke_runs: dict[str, SmokeRun]
) -> None:
    run = smoke_runs[script.stem]
    assert run.returncode == 0, run.failure()
    heading, smoke = run.declared["SECTION"], run.declared["SMOKE"]
    assert run.output.exists(), f"{script.name} wrote no {run.output}"
    text = run.output.read_text()
    assert text.startswith("# Benchmarks\n")
    section = _section(text, heading)

    # Where the figures come from: commit, date and the exact command, under the heading.
    provenance = PROVENANCE.match(section[1]) if len(section) > 1 else None
    assert provenance, f"no provenance line under {heading!r}: {section[:3]}"
    measured = date.fromisoformat(provenance["date"])
    assert abs((measured - date.today()).days) <= 1
    command = provenance["command"]
    assert f"benchmarks/{script.name}" in command and "--smoke" in command, command
    assert str(run.output) in command

    # A row per size or seed, and every figure a finite number ("-" says there is none).
    tables = _tables(section)
    assert tables, f"{heading!r} holds no table"
    assert [row[0] for row in tables[0]] == smoke["rows"]
    for table in tables:
        assert table, f"an empty table in {heading!r}"
        for row in table:
            assert len(row) == len(table[0]), row
            assert any(NUMBER.search(cell) for cell in row[1:]), f"{script.name}: no figure {row}"
            for cell in row[1:]:
                assert not re.search(r"\b(nan|inf)\b", cell, re.I), f"{script.name}: {row}"
                figures = NUMBER.findall(cell)
                assert figures or cell in NO_FIGURE, f"{script.name}: {cell!r} in {row}"
                assert all(math.isfinite(float(f.replace(",", ""))) for f in figures), row
    prose = "\n".join(line for line in section if not line.startswith("|"))
    assert not re.search(r"\b(nan|inf)\b", prose, re.I), prose

