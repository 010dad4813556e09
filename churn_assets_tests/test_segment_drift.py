"""Drift within customer segments: a shift confined to one city warns though the whole cohort
passes; an undrifted cohort raises no segment warning; a segment too small is not judged.

A fabricated warehouse of its own (features written straight into DuckDB) and a small LightGBM
champion that relies on listening; the asset runs through ``dg.materialize``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn_assets.keys import DRIFT_CHECK
from churn_assets.monitoring import psi, segments
from churn_assets.monitoring.assets import drift_report
from churn_assets.resources import default_resources
from churn_assets_tests.helpers import fit_and_register_champion, materialize

TRAINING = [date(2016, 1, 1), date(2016, 2, 1)]
VALIDATION = date(2016, 3, 1)
USERS = 2000
# City 4 holds a quarter of the users (over an even share of the five judged cities); city 99,
# about 20 users a cohort, is under the 50 rows a side the deciles need.
CITIES, CITY_SHARES = [1, 4, 5, 13, 22, 99], [0.35, 0.25, 0.2, 0.1, 0.09, 0.01]
SHIFTED_CITY, TINY_CITY = 4, 99
LISTENING = ["plays_30d", "secs_30d", "days_since_last_listen"]
UNDRIFTED, CITY_SHIFT, SMALL_CITY_SHIFT = "2016-04-01", "2016-05-01", "2016-06-01"
# City 13 holds a tenth of the users: under an even share of the judged cities, yet a tenth of
# the cohort scored far out of what the model learnt.
SMALL_CITY = 13


def _cohort(cohort: date, n: int, rng: np.random.Generator) -> pd.DataFrame:
    plays = rng.gamma(2.0, 50.0, n)
    frame = pd.DataFrame(
        {
            "msno": [f"u{cohort:%Y%m}_{i:05d}" for i in range(n)],
            "cohort_month": cohort,
            "city": rng.choice(CITIES, n, p=CITY_SHARES),
            "registered_via": rng.choice([3, 4, 7, 9], n, p=[0.4, 0.3, 0.2, 0.1]),
            "last_payment_method_id": rng.choice([38, 39, 41], n, p=[0.5, 0.3, 0.2]),
            "last_plan_days": rng.choice([30, 7, 90], n, p=[0.8, 0.1, 0.1]).astype(float),
            "last_is_auto_renew": rng.integers(0, 2, n),
            "plays_30d": plays,
            "secs_30d": plays * rng.gamma(20.0, 12.0, n),
            "days_since_last_listen": rng.exponential(6.0, n).round(),
            "noise": rng.normal(size=n),
        }
    )
    logit = (
        -1.0
        + 1.5 * (1 - frame["last_is_auto_renew"])
        - 0.02 * frame["plays_30d"]
        + 0.15 * frame["days_since_last_listen"]
    )
    frame["is_churn"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def _city_listens_less(frame: pd.DataFrame, shifted_city: int = SHIFTED_CITY) -> pd.DataFrame:
    """In one city, listening falls by 40 % and the last listen lies further back."""
    city = frame["city"] == shifted_city
    shifted = frame.copy()
    shifted.loc[city, ["plays_30d", "secs_30d"]] *= 0.6
    shifted.loc[city, "days_since_last_listen"] = (
        shifted.loc[city, "days_since_last_listen"] * 1.6 + 2
    ).round()
    return shifted


def _city_stops_auto_renewing(frame: pd.DataFrame) -> pd.DataFrame:
    """In one small city no member renews automatically any more, and they listen less."""
    shifted = _city_listens_less(frame, SMALL_CITY)
    shifted.loc[shifted["city"] == SMALL_CITY, "last_is_auto_renew"] = 0
    return shifted


def _register_champion(train: pd.DataFrame, tracking_uri: str, artifacts: Path) -> lgb.Booster:
    return fit_and_register_champion(
        train, tracking_uri, artifacts, TRAINING, VALIDATION, min_data_in_leaf=100
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Three reference cohorts, a champion trained on them, an undrifted cohort resampled from
    them and a cohort in which one city listens less."""
    home = tmp_path_factory.mktemp("segments") / "churn_home"
    (home / "dagster").mkdir(parents=True)
    rng = np.random.default_rng(11)
    reference = pd.concat(
        [_cohort(c, USERS, rng) for c in [*TRAINING, VALIDATION]], ignore_index=True
    )
    undrifted = reference.sample(USERS, replace=True, random_state=2).reset_index(drop=True)
    undrifted = undrifted.assign(
        msno=[f"u201604_{i:05d}" for i in range(USERS)], cohort_month=date(2016, 4, 1)
    )
    shifted = _city_listens_less(_cohort(date(2016, 5, 1), USERS, rng))
    small = _city_stops_auto_renewing(_cohort(date(2016, 6, 1), USERS, rng))
    frame = pd.concat([reference, undrifted, shifted, small], ignore_index=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE features AS SELECT * EXCLUDE (is_churn) FROM frame")
        conn.execute("CREATE TABLE labels AS SELECT msno, cohort_month, is_churn FROM frame")
        conn.execute(
            "CREATE TABLE cohort_coverage AS SELECT DISTINCT cohort_month, true AS complete "
            "FROM frame"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURN_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        resources = default_resources()
        booster = _register_champion(
            reference[reference["cohort_month"].isin(TRAINING)],
            resources["registry"].tracking_uri,
            home / "mlartifacts",
        )
        yield {"home": home, "resources": resources, "booster": booster}


def _drift(world: dict, cohort: str) -> dg.AssetCheckEvaluation:
    result = materialize(
        [drift_report],
        partition_key=cohort,
        resources=world["resources"],
        run_config={
            "ops": {"drift_report": {"config": {"log_to_mlflow": False, "html_report": False}}}
        },
    )
    assert result.success
    return {c.check_name: c for c in result.get_asset_check_evaluations()}[DRIFT_CHECK]


def _segment_rows(world: dict, cohort: str) -> pd.DataFrame:
    with duckdb.connect(str(world["home"] / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT * FROM drift_metrics WHERE cohort_month = ? AND method = 'psi_segment'",
            [cohort],
        ).df()


def test_a_city_that_listens_less_warns_though_the_whole_cohort_passes(world):
    check = _drift(world, CITY_SHIFT)
    meta = {k: v.value for k, v in check.metadata.items()}
    # Diluted in the whole cohort the shift is no drift, and no column stands out on its own...
    assert meta["weighted_psi"] < psi.MODERATE_PSI
    assert meta["standing_out"] == "none"
    # ...within the city it is major, beyond noise over every segment tested: a warning.
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert meta["tier"] == "warn"
    assert meta["segments_warning"].startswith(f"city={SHIFTED_CITY} (")
    assert f"segments warning: city={SHIFTED_CITY}" in check.description
    assert "| city" in meta["segments"]
    rows = _segment_rows(world, CITY_SHIFT).set_index("column_name")
    city = rows.loc[f"city={SHIFTED_CITY}"]
    assert city["stands_out"] and city["tier"] == "error"
    assert city["adjusted_score"] >= psi.MAJOR_PSI and city["score"] > city["noise_limit"]
    assert city["segment_column"] == "city" and city["segment_value"] == SHIFTED_CITY
    assert city["segment_share"] >= 1 / 5  # five cities judged
    assert rows["stands_out"].sum() == 1, rows[rows["stands_out"]]
    # Every segment column of the features is judged.
    assert set(rows["segment_column"]) == set(segments.SEGMENT_COLUMNS)


def test_a_tenth_of_the_users_far_out_of_what_the_model_learnt_warns(world):
    check = _drift(world, SMALL_CITY_SHIFT)
    assert check.metadata["weighted_psi"].value < psi.MODERATE_PSI  # diluted: no drift
    rows = _segment_rows(world, SMALL_CITY_SHIFT).set_index("column_name")
    city = rows.loc[f"city={SMALL_CITY}"]
    share = city["segment_share"]
    assert share < 1 / 5  # under an even share of the five cities judged
    # Its part of the cohort's within-segment shift reaches the moderate tier: it warns.
    assert city["moves"] and share * city["adjusted_score"] >= psi.MODERATE_PSI
    assert city["stands_out"], city
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["segments_warning"].value.startswith(f"city={SMALL_CITY} (")


def test_an_undrifted_cohort_raises_no_segment_warning_and_a_tiny_segment_is_not_judged(world):
    check = _drift(world, UNDRIFTED)
    assert check.passed, check.description
    assert check.metadata["segments_warning"].value == "none"
    assert check.metadata["segments_too_small"].value >= 1
    rows = _segment_rows(world, UNDRIFTED)
    assert len(rows) == check.metadata["segments_judged"].value >= 12
    assert not rows["stands_out"].any() and not rows["moves"].any()
    # City 99 (about 20 users a cohort) is under 50 rows a side: counted, never judged.
    assert f"city={TINY_CITY}" not in set(rows["column_name"])
    assert (rows[["reference_rows", "current_rows"]] >= segments.MIN_SEGMENT_ROWS).all().all()


def test_segment_statistics_are_the_whole_cohort_statistics_of_the_segment_rows():
    """One grouped pass gives, per segment, what feature_psi gives over that segment alone."""
    rng = np.random.default_rng(5)
    reference = pd.concat([_cohort(c, 1500, rng) for c in TRAINING], ignore_index=True)
    current = _city_listens_less(_cohort(VALIDATION, 1000, rng))
    frame = pd.concat([reference, current], ignore_index=True).drop(columns="is_churn")
    conn = duckdb.connect()
    conn.register("frame", frame)
    conn.execute("CREATE TABLE features AS SELECT * FROM frame")
    columns = psi.numeric_feature_columns(conn, list(frame.columns))
    sizes, stats = segments.segment_stats(
        conn, VALIDATION, TRAINING, columns, ["city"], 20, 1_000_000
    )
    assert set(sizes.loc[sizes["judged"], "segment_value"]) == {1, 4, 5, 13, 22}
    for city in (SHIFTED_CITY, 13):
        alone = duckdb.connect()
        alone.register("frame", frame[frame["city"] == city])
        alone.execute("CREATE TABLE features AS SELECT * FROM frame")
        expected = psi.feature_psi(alone, VALIDATION, TRAINING, columns, ["city"])
        got = stats[stats["segment_value"] == city].set_index("column_name")
        for row in expected.itertuples():
            assert got.loc[row.column_name, "psi"] == pytest.approx(row.psi, rel=1e-9)
            assert got.loc[row.column_name, "current_rows"] == row.current_rows
    # A large side is read through a hash sample of users; its full size is still counted.
    sampled, _ = segments.segment_stats(conn, VALIDATION, TRAINING, columns, ["city"], 20, 500)
    assert sampled["current_users"].sum() == 1000 and sampled["reference_users"].sum() == 3000
    assert 350 < sampled["current_rows"].sum() < 650 and 350 < sampled["reference_rows"].sum() < 650
    # The shifted city's listening moved beyond its noise.
    shifted = stats[stats["segment_value"] == SHIFTED_CITY].set_index("column_name")
    assert (shifted.loc[LISTENING, "psi"] > shifted.loc[LISTENING, "noise_limit"]).all()
