"""Reasons at scale: batch explains buckets A and B only, with exactly the reasons a score had
when every user was explained row by row; and bucket A by the call centre's capacity."""

from __future__ import annotations

import duckdb
import lightgbm as lgb
import numpy as np
import pytest

from churn_assets.modeling.frame import as_matrix
from churn_assets.resources import BucketPolicy, default_resources
from churn_assets.scoring.assets import predictions
from churn_assets.scoring.reasons import (
    reason_text,
    reason_texts,
    top_reason_columns,
    top_reasons,
)
from churn_assets.settings import SettingsError
from churn_assets_tests.helpers import materialize
from churn_assets_tests.test_buckets import scored_home  # noqa: F401  (a fixture)

COHORT = "2016-05-01"


def _row_by_row(contributions: np.ndarray, values: np.ndarray, names: list[str]) -> list[str]:
    """The reasons as they were written before: one row, one Python loop."""
    order = np.lexsort((-np.abs(contributions), contributions <= 0), axis=1)[:, :3]
    return [
        "; ".join(reason_text(names[c], values[r, c], contributions[r, c]) for c in columns)
        for r, columns in enumerate(order)
    ]


def test_top_three_selection_matches_a_stable_sort_ties_and_zeros_included() -> None:
    rng = np.random.default_rng(5)
    contributions = np.round(rng.normal(size=(3000, 12)), 1) * (rng.random((3000, 12)) < 0.5)
    contributions[:50] = 0.0  # nothing moves these scores: the leftmost features are named
    contributions[50:60, :] = -0.0
    contributions[60:70, 3] = 0.7
    expected = np.lexsort((-np.abs(contributions), contributions <= 0), axis=1)[:, :3]
    np.testing.assert_array_equal(top_reason_columns(contributions), expected)


def test_vectorised_wording_reads_as_reason_text() -> None:
    names = ["last_is_auto_renew", "gender_code", "plays_30d", "age", "brand_new_feature"]
    values = np.array(
        [
            [0.0, 2.0, 12.0, np.nan, 3.5],
            [1.0, 7.0, 0.256, 40.0, -2.0],
            [np.nan, np.nan, np.inf, 1e20, -0.0],
            [0.6, 1.5, -np.inf, 2.0**70, 0.005],
        ]
    )
    contributions = np.array(
        [
            [0.8, -0.1, 0.0, 0.3, 0.2],
            [-0.5, 0.4, 0.1, 0.0, -0.2],
            [0.1, 0.2, -0.3, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    assert list(reason_texts(names, values, contributions)) == _row_by_row(
        contributions, values, names
    )


@pytest.mark.usefixtures("scored_home")
@pytest.mark.parametrize("tabulate_from, method", [(5_000, "pred_contrib"), (0, "tables")])
def test_batch_reasons_are_the_exact_reasons_for_buckets_a_and_b(
    tabulate_from: int, method: str
) -> None:
    resources = default_resources()
    result = materialize(
        [predictions],
        resources=resources,
        partition_key=COHORT,
        run_config={
            "ops": {"predictions": {"config": {"tabulate_contributions_from": tabulate_from}}}
        },
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["contributions_from"].value.startswith(method)
    with duckdb.connect(resources["warehouse"].database, read_only=True) as conn:
        stored = conn.execute(
            "SELECT p.msno, bucket, top_reasons, f.* EXCLUDE (msno, cohort_month) "
            "FROM predictions p JOIN features f USING (msno, cohort_month) "
            "WHERE cohort_month = ? ORDER BY msno",
            [COHORT],
        ).df()
    acted_on = stored["bucket"].isin(["A", "B"])
    assert acted_on.any() and (~acted_on).any()
    assert stored.loc[~acted_on, "top_reasons"].isna().all(), "C is explained on demand"
    assert metadata["explained_users"].value == int(acted_on.sum())

    registry = resources["registry"]
    booster: lgb.Booster = registry.load_model(registry.champion().version)
    matrix = as_matrix(stored[acted_on], list(booster.feature_name()))
    # The reasons every score got before batch explained only A and B, for the same users.
    before = ["; ".join(reason_text(*r) for r in row) for row in top_reasons(booster, matrix)]
    assert list(stored.loc[acted_on, "top_reasons"]) == before


@pytest.mark.usefixtures("scored_home")
@pytest.mark.parametrize("capacity, calls", [("7", 7), ("10%", None)])
def test_capacity_puts_exactly_as_many_as_can_be_called_in_bucket_a(
    capacity: str, calls: int | None
) -> None:
    resources = {**default_resources(), "buckets": BucketPolicy(a_capacity=capacity)}
    result = materialize([predictions], resources=resources, partition_key=COHORT)
    assert result.success
    with duckdb.connect(resources["warehouse"].database, read_only=True) as conn:
        stored = conn.execute(
            "SELECT * FROM predictions WHERE cohort_month = ? ORDER BY msno", [COHORT]
        ).df()
    callable_users = stored[~stored["control_group"]]
    calls = calls if calls is not None else round(0.1 * len(callable_users))
    called = callable_users[callable_users["bucket"] == "A"]
    assert len(called) == calls
    # The riskiest: nobody left out of A outside the control group scores above anyone in it.
    lowest = called["churn_probability"].min()
    assert (
        callable_users.loc[callable_users["bucket"] != "A", "churn_probability"] <= lowest
    ).all()
    # The control group is bucketed by the same line, so it still measures what calls achieve.
    control = stored[stored["control_group"]]
    assert ((control["churn_probability"] >= lowest) == (control["bucket"] == "A")).all()
    assert called["top_reasons"].notna().all()
    assert stored["bucket_policy"].str.startswith(f"capacity: A the {calls} riskiest").all()
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["bucket_policy"].value.startswith("capacity")


def test_capacity_is_read_from_the_environment(tmp_path) -> None:
    env = {"CHURN_HOME": str(tmp_path), "CHURN_BUCKET_A_CAPACITY": "250"}
    assert default_resources(env)["buckets"].calls(1000) == 250
    assert default_resources({**env, "CHURN_BUCKET_A_CAPACITY": "5%"})["buckets"].calls(1000) == 50
    assert default_resources({"CHURN_HOME": str(tmp_path)})["buckets"].calls(1000) is None
    with pytest.raises(SettingsError, match="CHURN_BUCKET_A_CAPACITY"):
        default_resources({**env, "CHURN_BUCKET_A_CAPACITY": "many"})
