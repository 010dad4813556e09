"""Features of cohort M read nothing dated on or after the first day of M (DESIGN §3)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from churn_assets.features.assets import features
from churn_assets.raw.assets import members, transactions, user_logs
from churn_assets.simulator import simulate
from churn_assets_tests.helpers import materialize, resources_for

COHORT = "2016-03-01"
LATER_COHORT = "2016-04-01"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw tables of a four-month world, every month loaded (the future included)."""
    root = tmp_path_factory.mktemp("pit")
    world = simulate(root / "world", users=400, months=4, seed=21)
    home = root / "home"
    resources = resources_for(home, world.landing_dir)
    assert materialize([members], resources=resources).success
    for asset, months in (
        (transactions, world.history_months + world.months),
        (user_logs, world.months),
    ):
        tags = {
            "dagster/asset_partition_range_start": f"{months[0]:%Y-%m-01}",
            "dagster/asset_partition_range_end": f"{months[-1]:%Y-%m-01}",
        }
        assert materialize([asset], tags=tags, resources=resources).success
    return home


def _features(home: Path, cohort: str, may_be_empty: bool = False) -> pd.DataFrame:
    result = materialize(
        [features], partition_key=cohort, resources=resources_for(home), raise_on_error=False
    )
    assert result.success or may_be_empty
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT * FROM features WHERE cohort_month = ? ORDER BY msno", [cohort]
        ).df()


def _rewrite_everything_from(home: Path, cutoff: str) -> None:
    """Change every row dated on or after ``cutoff`` and add new ones for cohort users."""
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(
            """
            UPDATE transactions SET
                actual_amount_paid = actual_amount_paid + 7,
                is_auto_renew = 1 - is_auto_renew,
                is_cancel = 1 - is_cancel,
                payment_plan_days = payment_plan_days + 3,
                membership_expire_date = membership_expire_date + INTERVAL 40 DAY
            WHERE transaction_date >= ?::DATE
            """,
            [cutoff],
        )
        conn.execute(
            """
            UPDATE user_logs SET num_100 = num_100 * 3 + 1, num_unq = num_unq + 5,
                                 total_secs = total_secs * 2 + 11
            WHERE date >= ?::DATE
            """,
            [cutoff],
        )
        # A renewal dated on the cut-off day for every user: were it read, cohorts would change.
        conn.execute(
            """
            INSERT INTO transactions
            SELECT msno, 41, 30, 149, 149, 1, ?::DATE, ?::DATE + INTERVAL 400 DAY, 0, 'renewals.csv'
            FROM (SELECT DISTINCT msno FROM transactions)
            """,
            [cutoff, cutoff],
        )
        conn.execute(
            "INSERT INTO user_logs SELECT msno, ?::DATE, 1, 1, 1, 1, 99, 50, 30000, 'extra.csv' "
            "FROM (SELECT DISTINCT msno FROM user_logs)",
            [cutoff],
        )
        conn.execute(
            "UPDATE members SET city = 22, bd = 99, registered_via = 13 "
            "WHERE registration_init_time >= ?::DATE",
            [cutoff],
        )


def test_rewriting_rows_from_the_cutoff_on_leaves_the_cohort_unchanged(loaded: Path):
    before = _features(loaded, COHORT)
    later_before = _features(loaded, LATER_COHORT)
    assert len(before) > 50

    _rewrite_everything_from(loaded, COHORT)

    after = _features(loaded, COHORT)
    pd.testing.assert_frame_equal(before, after)
    # Control: the same rewrite does move the next cohort, which may read those rows (the renewal
    # on the cut-off day may even empty it).
    later_after = _features(loaded, LATER_COHORT, may_be_empty=True)
    assert not later_before.equals(later_after)


def test_cohort_is_the_users_expiring_in_the_month(loaded: Path):
    frame = _features(loaded, COHORT)
    assert frame["days_to_expiry"].between(0, 30).all()
    assert frame["msno"].is_unique
    assert (frame["cohort_month"].astype(str) == COHORT).all()


def test_every_feature_reads_as_words_in_reasons(loaded: Path):
    from churn_assets.features.feature_sets import feature_columns_of
    from churn_assets.scoring.reasons import FEATURE_WORDS

    frame = _features(loaded, COHORT)
    assert [c for c in feature_columns_of(list(frame.columns)) if c not in FEATURE_WORDS] == []
