"""World fuzz: worlds whose shape nobody chose, replayed as ``churn-assets replay`` replays them.

Each world is drawn by :func:`~churn_assets.simulator.draw_world` (start month, history length,
degenerate columns, late and missing files, changing members, a drift) and its files are revealed
month by month as its ``truth/arrivals.json`` says. Whatever the draw, the loop must finish with
no failed run, a champion, and every cohort scored from the first one that had a model.

The seeds are the first three whose drawn world spans eight months (the shortest draw, to fit the
suite's time), users capped at 350; ``benchmarks/world_fuzz.py`` runs more seeds at full size.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from mlflow.tracking import MlflowClient

from churn_assets.definitions import build_definitions
from churn_assets.replay import replay, staged_arrivals
from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets.simulator import describe_world, draw_world, simulate

SEEDS = (5, 6, 7)
MAX_USERS = 350
BUDGET_S = "2"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_drawn_world_replays_to_a_champion_scoring_every_cohort(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = draw_world(seed)
    spec["users"] = min(spec["users"], MAX_USERS)
    assert spec["months"] <= 10
    world = simulate(tmp_path / "world", **spec)
    home = tmp_path / "home"
    arrivals = staged_arrivals(world.landing_dir, home)
    assert arrivals is not None
    for key, value in {
        "CHURN_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "CHURN_LANDING_DIR": str(arrivals.staged),
        "CHURN_TRAINING_BUDGET_S": BUDGET_S,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    said: list[str] = []
    with dg.instance_for_test() as instance:
        summary = replay(
            build_definitions(),
            instance,
            world.landing_dir,
            log=said.append,
            arrivals=arrivals,
            tracking_uri=tracking_uri,
        )
    shown = f"world {seed}: {describe_world(spec)}\n" + "\n".join(said)

    assert summary.failed_runs == [], shown
    champion = MlflowClient(tracking_uri).get_model_version_by_alias(
        REGISTERED_MODEL_NAME, CHAMPION_ALIAS
    )
    assert champion is not None, shown
    first_model = min(
        (
            r.partition
            for r in summary.runs
            if r.job == "training_job" and "churn_model" in r.assets
        ),
        default=None,
    )
    assert first_model is not None, shown
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        built = {
            f"{c:%Y-%m-01}"
            for (c,) in conn.execute("SELECT DISTINCT cohort_month FROM features").fetchall()
        }
        scored = {
            f"{c:%Y-%m-01}"
            for (c,) in conn.execute("SELECT DISTINCT cohort_month FROM predictions").fetchall()
        }
    unscored = sorted(c for c in built if c >= first_model and c not in scored)
    assert unscored == [], f"cohorts not scored {unscored}\n{shown}"
