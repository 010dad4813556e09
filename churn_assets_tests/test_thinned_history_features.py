"""A world whose payment history thins toward the start loads and builds features as any other.

Through Dagster's own materialize, as the loop runs the assets: its yearly payment counts are
those of a log that began a few months before the first cohorts, growing cohort by cohort, where
the same world with its whole history landed shows a year's worth from the first cohort on.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from churn_assets.features.assets import features
from churn_assets.raw.assets import members, transactions, user_logs
from churn_assets.simulator import simulate
from churn_assets_tests.helpers import RANGE_END, RANGE_START, materialize, resources_for

WORLD = {"users": 300, "months": 4, "seed": 21}  # 2016-01 .. 2016-04
COHORTS = ("2016-02-01", "2016-03-01")


def _yearly_payments(root: Path, thin_history: float) -> list[float]:
    """Mean ``txn_count_365d`` of each of COHORTS, every table loaded as the loop would."""
    world = simulate(root / "world", thin_history=thin_history, **WORLD)
    home = root / "home"
    resources = resources_for(home, world.landing_dir)
    assert materialize([members], resources=resources).success
    for asset, months in (
        (transactions, world.history_months + world.months),
        (user_logs, world.months),
    ):
        tags = {RANGE_START: f"{months[0]:%Y-%m-01}", RANGE_END: f"{months[-1]:%Y-%m-01}"}
        assert materialize([asset], tags=tags, resources=resources).success
    for cohort in COHORTS:
        assert materialize([features], partition_key=cohort, resources=resources).success
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            "SELECT cohort_month, avg(txn_count_365d), count(*) FROM features GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert len(rows) == len(COHORTS) and all(count > 50 for _, _, count in rows)
    return [mean for _, mean, _ in rows]


def test_a_thinned_world_builds_features_whose_yearly_counts_grow_cohort_by_cohort(
    tmp_path: Path,
) -> None:
    thin_first, thin_second = _yearly_payments(tmp_path / "thin", 3.0)
    whole_first, _ = _yearly_payments(tmp_path / "whole", 0.0)
    assert thin_first < thin_second
    assert thin_first < 0.6 * whole_first
