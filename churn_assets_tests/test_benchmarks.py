"""Every benchmark script still runs, at its smallest size, and writes the figures it claims.

A benchmark is any ``benchmarks/*.py`` that runs as a script. Each declares ``SECTION`` (its
heading in BENCHMARKS.md) and ``SMOKE`` (the arguments of its smallest run, which ``--smoke``
applies, and the first cell of each row of the section's first table), so a new benchmark is
covered here as soon as it exists, and one a refactor breaks fails the suite instead of going
unnoticed until someone tries to reproduce its figures. The scripts run side by side, each as a
subprocess in its own folder and CHURN_HOME, writing a temporary BENCHMARKS.md.
"""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TIMEOUT_S = 240
PROVENANCE = re.compile(
    r"^Measured at commit `(?P<commit>unknown|[0-9a-f]{4,}(\+dirty)?)` on "
    r"(?P<date>\d{4}-\d{2}-\d{2}): `(?P<command>python [^`]+)`$"
)
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


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
    seconds: float
    output: Path

    def failure(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-25:])
        return f"{self.script.name} exited {self.returncode} after {self.seconds:.0f} s:\n{tail}"


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SmokeRun]:
    """Start every benchmark's smoke run at once, then wait for all of them."""
    started = {}
    for script in SCRIPTS:
        folder = tmp_path_factory.mktemp(f"bench_{script.stem}")
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
        output = folder / "BENCHMARKS.md"
        process = subprocess.Popen(
            [sys.executable, str(script), "--smoke", "--output", str(output)],
            cwd=folder / "work",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[script.stem] = (script, process, output, time.monotonic())
    runs = {}
    for stem, (script, process, output, began) in started.items():
        try:
            stdout, stderr = process.communicate(
                timeout=max(1.0, TIMEOUT_S - (time.monotonic() - began))
            )
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            stderr += f"\n(killed after {TIMEOUT_S} s)"
        runs[stem] = SmokeRun(
            script,
            _declared(ast.parse(script.read_text())),
            process.returncode,
            stdout,
            stderr,
            time.monotonic() - began,
            output,
        )
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

    # A row per size or seed, and every figure a finite number.
    tables = _tables(section)
    assert tables, f"{heading!r} holds no table"
    assert [row[0] for row in tables[0]] == smoke["rows"]
    for table in tables:
        assert table, f"an empty table in {heading!r}"
        for row in table:
            assert len(row) == len(table[0]), row
            for cell in row[1:]:
                figures = NUMBER.findall(cell)
                assert figures, f"{script.name}: no figure in cell {cell!r} of {row}"
                assert "nan" not in cell.lower() and "inf" not in cell.lower(), row
                assert all(math.isfinite(float(f.replace(",", ""))) for f in figures), row
    prose = "\n".join(line for line in section if not line.startswith("|"))
    assert not re.search(r"\b(nan|inf)\b", prose, re.I), prose


def test_smoke_runs_stay_short(smoke_runs: dict[str, SmokeRun]) -> None:
    """The runs go side by side, so the slowest bounds this file's time (about 30 s on 2 cores);
    a smallest size that grows into a benchmark of its own is caught here, well before the
    timeout."""
    slowest = max(smoke_runs.values(), key=lambda run: run.seconds)
    assert slowest.seconds < 120, f"{slowest.script.name} took {slowest.seconds:.0f} s"
