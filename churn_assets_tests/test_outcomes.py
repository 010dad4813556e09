"""The control group and the business outcome, through the real retention_outcome asset."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from churn_assets.outcomes.assets import reduction_interval, retention_outcome
from churn_assets.outcomes.control import in_control_group
from churn_assets_tests.helpers import materialize, resources_for

COHORT = date(2016, 5, 1)


def test_control_group_is_stable_per_user_and_about_its_share():
    users = pd.Series([f"user{i}" for i in range(20_000)])
    held = in_control_group(users, 0.1)
    assert abs(held.mean() - 0.1) < 0.01
    # The same user is held out whatever else is scored with them, and in every cohort.
    assert (in_control_group(users.iloc[::-1], 0.1) == held[::-1]).all()
    assert (in_control_group(users.iloc[:500], 0.1) == held[:500]).all()
    assert not in_control_group(users, 0.0).any()
    with pytest.raises(ValueError, match="control share"):
        in_control_group(users, 1.0)


def test_interval_covers_no_effect_and_finds_a_real_one():
    reduction, low, high = reduction_interval(900, 90, 100, 10, 0.95)
    assert reduction == pytest.approx(0.0) and low < 0 < high
    reduction, low, high = reduction_interval(9000, 900, 1000, 300, 0.95)
    assert reduction == pytest.approx(0.2) and low > 0.1
    assert np.isnan(reduction_interval(900, 90, 5, 1, 0.95)[0])  # control too small


def _fabricate(home, rng: np.random.Generator) -> None:
    users = [f"u{i}" for i in range(3000)]
    control = in_control_group(pd.Series(users), 0.2)
    bucket = rng.choice(["A", "B", "C"], size=len(users), p=[0.2, 0.3, 0.5])
    # Actions work in bucket A only: its actioned users churn half as often as its control.
    base = np.select([bucket == "A", bucket == "B"], [0.4, 0.15], 0.03)
    churn = rng.random(len(users)) < np.where((bucket == "A") & ~control, base / 2, base)
    home.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(
            "CREATE TABLE predictions AS SELECT * FROM (SELECT unnest(?) AS msno, ?::DATE AS "
            "cohort_month, unnest(?) AS bucket, unnest(?) AS control_group, 0.5 AS "
            "churn_probability, '1' AS model_version, '' AS top_reasons, ?::TIMESTAMP AS "
            "scored_at)",
            [users, COHORT, list(bucket), list(map(bool, control)), datetime.now()],
        )
        conn.execute(
            "CREATE TABLE labels AS SELECT unnest(?) AS msno, ?::DATE AS cohort_month, "
            "unnest(?) AS is_churn",
            [users, COHORT, [int(c) for c in churn]],
        )


def test_outcome_compares_actioned_and_control_churn_per_bucket(tmp_path):
    home = tmp_path / "home"
    _fabricate(home, np.random.default_rng(3))
    result = materialize(
        [retention_outcome], partition_key="2016-05-01", resources=resources_for(home)
    )
    assert result.success
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT bucket, churn_reduction, ci_low, ci_high FROM retention_outcomes "
                "WHERE cohort_month = ?",
                [COHORT],
            ).fetchall()
        }
    reduction, low, _ = rows["A"]
    assert reduction == pytest.approx(0.2, abs=0.08) and low > 0  # the action worked in A
    for bucket in ("B", "C"):
        _, low, high = rows[bucket]
        assert low < 0 < high  # no effect where nothing was done differently


def test_outcome_is_not_applicable_before_scores_exist(tmp_path):
    result = materialize(
        [retention_outcome], partition_key="2016-05-01", resources=resources_for(tmp_path / "h")
    )
    assert result.success
    metadata = result.asset_materializations_for_node("retention_outcome")[0].metadata
    assert metadata["status"].value.startswith("n/a")
