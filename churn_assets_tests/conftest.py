"""Shared fixtures: a tiny simulated world replayed once through the real definitions."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from xdist.scheduler import LoadFileScheduling

from churn_assets.simulator import parse_drift, simulate

TINY_WORLD = {"users": 500, "start": "2016-01", "months": 6, "seed": 11}

# Evidently's HTML costs about 10 s a cohort whatever its size, and every replayed cohort would
# build one: tests leave it out (CHURN_DRIFT_HTML), except test_drift.py's, which ask for it.
# Set at import, so that the commands and benchmarks the tests start inherit it.
os.environ.setdefault("CHURN_DRIFT_HTML", "false")
TINY_DRIFT = "covariate@2016-05"

# The files that replay whole worlds (through `churn-assets replay`, or drawn at random) or run
# every benchmark, longest first: marked ``slow`` (``pytest -m "not slow"`` is the quick subset)
# and collected first. xdist hands files to its workers in collection order
# (``--no-loadscope-reorder``), so the long ones start at once, side by side, instead of one worker
# finishing the suite alone on the last of them.
SLOW_FILES = (
    "test_world_fuzz.py",
    "test_benchmarks.py",
    "test_faults.py",
    "test_replaced_files.py",
    "test_interruptions.py",
)
# The files that read the session's replayed world (``replayed_world``): one work unit, so one
# worker replays it once instead of each worker that draws one of them replaying it again.
REPLAYED_WORLD_FILES = ("test_end_to_end.py", "test_health_report.py", "test_summary.py")
# Collected right after them: the replayed world every end-to-end and UI test reads.
EARLY_FILES = (*SLOW_FILES, *REPLAYED_WORLD_FILES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow files marked, and the longest files first (the sort keeps the rest in order)."""
    rank = {name: place for place, name in enumerate(EARLY_FILES)}
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


class _ReplayedWorldScheduling(LoadFileScheduling):
    """``--dist loadfile``, except that the files reading the replayed world are one unit."""

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        if Path(scope).name in REPLAYED_WORLD_FILES:
            return str(Path(scope).with_name(REPLAYED_WORLD_FILES[0]))
        return scope


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    """The loadfile scheduler with the replayed world's readers grouped; other modes unchanged."""
    if config.getoption("dist") != "loadfile":
        return None
    return _ReplayedWorldScheduling(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What importing the tests left behind is frozen out of the garbage collector's scans.

    ``definitions_still_load`` collects garbage after every test; scanning the half a million
    objects of the imported libraries cost about 0.4 s of CPU each time, minutes over the suite.
    Frozen, they are skipped; whatever a test creates is still scanned, and collected, after it.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def definitions_still_load() -> Iterator[None]:
    """After every test, with its garbage collected, Dagster can still load definitions.

    An evaluation context or instance left open registers its instance as the process's current
    definitions-state storage until the garbage collector closes it, at an arbitrary moment,
    restoring whatever storage was current before: possibly one of an instance long gone. Every
    later Definitions load then fails. This guard names the test that left one open.
    """
    yield
    gc.collect()
    dg.Definitions(assets=[dg.AssetSpec("probe")]).get_repository_def()


@pytest.fixture
def churn_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private CHURN_HOME (and DAGSTER_HOME under it) for one test."""
    home = tmp_path / "churn_home"
    env = {
        "CHURN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "CHURN_TRAINING_BUDGET_S": "3",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CHURN_LANDING_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (home / "dagster").mkdir(parents=True)
    return env


@pytest.fixture(scope="session")
def replayed_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Simulate a tiny world with a covariate drift and replay it once, for several tests."""
    root = tmp_path_factory.mktemp("replayed")
    home = root / "churn_home"
    saved = {
        k: os.environ.get(k)
        for k in (
            "CHURN_HOME",
            "DAGSTER_HOME",
            "CHURN_LANDING_DIR",
            "CHURN_TRAINING_BUDGET_S",
            "MLFLOW_TRACKING_URI",
        )
    }
    os.environ.update(
        CHURN_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        CHURN_TRAINING_BUDGET_S="3",
    )
    os.environ.pop("CHURN_LANDING_DIR", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    (home / "dagster").mkdir(parents=True)
    try:
        from churn_assets.definitions import build_definitions
        from churn_assets.replay import replay

        world = simulate(home, drifts=[parse_drift(TINY_DRIFT)], **TINY_WORLD)
        defs = build_definitions()
        with dg.DagsterInstance.get() as instance:
            summary = replay(defs, instance, world.landing_dir, log=lambda _: None)
            yield {
                "home": home,
                "world": world,
                "summary": summary,
                "defs": defs,
                "instance": instance,
            }
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
