"""The champion per customer segment once labels land: a city where it ranks churners worse is
named beyond doubt, a segment without ten churners and ten stayers is not judged.

A fabricated warehouse and a LightGBM booster fitted directly and registered as the champion;
``model_performance`` runs through ``dg.materialize``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn_assets.modeling.bootstrap import bootstrap_intervals
from churn_assets.partitions import register_months
from churn_assets.performance.assets import model_performance
from churn_assets.performance.segments import delong_auc
from churn_assets.resources import default_resources
from churn_assets_tests.helpers import register_booster

COHORTS = [date(2016, m, 1) for m in range(1, 5)]
JUDGED = COHORTS[-1]
USERS = 1500
FEATURES = ["last_is_auto_renew", "signal", "other", "city"]
# City 13 holds 15 % of the users; city 99, about 15 a cohort, has too few churners to judge.
CITIES, CITY_SHARES = [1, 4, 13, 99], [0.5, 0.34, 0.15, 0.01]
FAILING_CITY, TINY_CITY = 13, 99


def _cohort(cohort: date, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "msno": [f"u{cohort:%Y%m}_{i:04d}" for i in range(USERS)],
            "cohort_month": cohort,
            "last_is_auto_renew": rng.integers(0, 2, USERS).astype(float),
            "signal": rng.normal(size=USERS),
            "other": rng.normal(size=USERS),
            "city": rng.choice(CITIES, USERS, p=CITY_SHARES),
        }
    )
    # In the judged cohort, churn in one city follows a signal the model learnt to ignore.
    moved = (frame["city"] == FAILING_CITY) & (cohort == JUDGED)
    signal = np.where(moved, 1.8 * frame["other"], 1.8 * frame["signal"])
    logit = -1.2 + 1.2 * (1 - frame["last_is_auto_renew"]) + signal
    frame["is_churn"] = (rng.random(USERS) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def _champion(home: Path, train: pd.DataFrame) -> str:
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 0, "n_jobs": 1},
        lgb.Dataset(train[FEATURES].astype(float), train["is_churn"].to_numpy()),
        num_boost_round=40,
    )
    return register_booster(
        f"sqlite:///{home / 'mlflow.db'}",
        home / "mlartifacts",
        booster,
        {"validation_cohort": "2016-03-01"},
        champion=True,
    )


def test_delong_matches_the_auc_and_the_bootstrap_spread():
    rng = np.random.default_rng(1)
    y = (rng.random(800) < 0.3).astype(int)
    score = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded: ties count one half
    auc, error = delong_auc(y, score)
    assert auc == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    low, high = bootstrap_intervals(y, score, ("auc",), resamples=400, confidence=0.95)["auc"]
    assert error == pytest.approx((high - low) / (2 * 1.96), rel=0.2)


def test_a_city_the_champion_ranks_worse_is_named_and_a_tiny_one_is_not_judged(churn_env):
    home = Path(churn_env["CHURN_HOME"])
    rng = np.random.default_rng(4)
    frame = pd.concat([_cohort(c, rng) for c in COHORTS], ignore_index=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE features AS SELECT * EXCLUDE (is_churn) FROM frame")
        conn.execute("CREATE TABLE labels AS SELECT msno, cohort_month, is_churn FROM frame")
    version = _champion(home, frame[frame["cohort_month"].isin(COHORTS[:2])])

    with dg.DagsterInstance.ephemeral() as instance:
        register_months(instance, COHORTS)
        result = dg.materialize(
            [model_performance],
            resources=default_resources(),
            partition_key=f"{JUDGED:%Y-%m-01}",
            instance=instance,
        )
    assert result.success
    [event] = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    # Named as information, against the whole cohort's AUC (no out-of-time level yet).
    assert meta["segments_below"].startswith(f"city={FAILING_CITY} (AUC ")
    assert "city=1 " not in meta["segments_below"] and "city=4 " not in meta["segments_below"]
    assert "| city" in meta["segments"]

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            "SELECT * FROM segment_performance WHERE cohort_month = ? ORDER BY segment_value",
            [JUDGED],
        ).df()
    assert set(rows["segment_value"]) == {1, 4, FAILING_CITY}  # city 99 is too small
    assert (rows["model_version"] == version).all() and (rows["segment_column"] == "city").all()
    assert ((rows["low"] <= rows["auc"]) & (rows["auc"] <= rows["high"])).all()
    assert (rows[["churners"]].to_numpy() >= 10).all()
    below = rows.set_index("segment_value")["below"]
    assert below[FAILING_CITY] and not below[1] and not below[4]
    # Metadata is rounded for reading (three significant digits); the table keeps full precision.
    assert rows["expected_auc"].round(3).eq(round(meta["champion_auc"], 3)).all()
