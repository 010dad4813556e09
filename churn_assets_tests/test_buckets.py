"""Which users land in buckets A, B and C: the riskiest in A, the safest in C, cut-offs included.

The retention playbook calls bucket A, offers bucket B a discount and thanks bucket C; a user in
the wrong bucket gets the wrong action. The last two tests score a cohort through Dagster and
read the ``predictions`` table back.
"""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn_assets.resources import ControlGroupResource, default_resources
from churn_assets.scoring.assets import predictions
from churn_assets.scoring.buckets import assign_buckets
from churn_assets.settings import BUCKET_A_MIN_PROBABILITY, BUCKET_B_MIN_PROBABILITY
from churn_assets.training import candidate as training_candidate
from churn_assets.training.assets import churn_model
from churn_assets.training.search import TunedModel
from churn_assets_tests.helpers import materialize

RANK = {"A": 0, "B": 1, "C": 2}


def _buckets(probability, a_min: float, b_min: float) -> list[str]:
    return list(assign_buckets(np.asarray(probability, dtype=float), a_min, b_min))


def test_the_riskiest_users_are_bucket_a_and_the_safest_bucket_c():
    probability = [0.9, 0.05, 0.2, 0.5, 0.0, 1.0, 0.12, 0.29]
    assert _buckets(probability, 0.3, 0.1) == ["A", "C", "B", "A", "C", "A", "B", "B"]


def test_default_cut_offs_send_the_playbook_bands_to_their_buckets():
    assert BUCKET_B_MIN_PROBABILITY < BUCKET_A_MIN_PROBABILITY
    probability = [0.95, BUCKET_A_MIN_PROBABILITY, 0.2, BUCKET_B_MIN_PROBABILITY, 0.01]
    assert _buckets(probability, BUCKET_A_MIN_PROBABILITY, BUCKET_B_MIN_PROBABILITY) == [
        "A",
        "A",
        "B",
        "B",
        "C",
    ]


@pytest.mark.parametrize("a_min, b_min", [(0.3, 0.1), (0.7, 0.25), (0.5, 0.05)])
def test_a_score_equal_to_a_cut_off_is_in_the_higher_bucket_just_below_it_is_not(a_min, b_min):
    probability = [
        a_min,
        np.nextafter(a_min, 0.0),
        np.nextafter(a_min, 1.0),
        b_min,
        np.nextafter(b_min, 0.0),
        np.nextafter(b_min, 1.0),
    ]
    assert _buckets(probability, a_min, b_min) == ["A", "B", "A", "B", "C", "B"]


def test_equal_cut_offs_leave_bucket_b_empty():
    probability = [0.4, np.nextafter(0.4, 0.0), 0.9, 0.1, 0.0, 1.0]
    assert _buckets(probability, 0.4, 0.4) == ["A", "C", "A", "C", "C", "A"]


def test_extreme_cut_offs():
    probability = [0.0, 0.3, 1.0]
    # From zero on, everyone is called.
    assert _buckets(probability, 0.0, 0.0) == ["A", "A", "A"]
    # Only certainty is called; everyone else is offered a discount.
    assert _buckets(probability, 1.0, 0.0) == ["B", "B", "A"]
    # Both cut-offs at one: only certainty is called, nobody is offered a discount.
    assert _buckets(probability, 1.0, 1.0) == ["C", "C", "A"]


def test_a_higher_score_never_lands_in_a_safer_bucket():
    rng = np.random.default_rng(3)
    probability = np.concatenate([rng.random(500), [0.1, 0.3, 0.0, 1.0]])
    buckets = assign_buckets(probability, 0.3, 0.1)
    ranks = np.array([RANK[b] for b in buckets])
    order = np.argsort(-probability, kind="mergesort")
    assert np.all(np.diff(ranks[order]) >= 0), "scores sorted down give buckets A, then B, then C"
    assert set(buckets[probability >= 0.3]) == {"A"}
    assert set(buckets[(probability >= 0.1) & (probability < 0.3)]) == {"B"}
    assert set(buckets[probability < 0.1]) == {"C"}


def test_no_scores_no_buckets():
    assert len(assign_buckets(np.array([], dtype=float), 0.3, 0.1)) == 0


@pytest.mark.parametrize(
    "a_min, b_min",
    [(0.1, 0.3), (0.3, -0.01), (1.01, 0.1), (-0.1, -0.2), (1.5, 1.2), (0.3, 0.300001)],
)
def test_cut_offs_out_of_order_or_range_are_refused(a_min, b_min):
    with pytest.raises(ValueError, match="bucket thresholds"):
        assign_buckets(np.array([0.5]), a_min, b_min)


# --- Through Dagster: the predictions table agrees with its own probabilities. ---

COHORTS = [date(2016, m, 1) for m in range(1, 6)]
USERS = 200


def _cohort(cohort: date, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "msno": [f"u{cohort:%Y%m}_{i:04d}" for i in range(USERS)],
            "cohort_month": cohort,
            "last_is_auto_renew": rng.integers(0, 2, USERS).astype(float),
            "last_is_cancel": (rng.random(USERS) < 0.15).astype(float),
            "days_since_last_listen": rng.integers(0, 60, USERS).astype(float),
            "plays_30d": rng.gamma(2.0, 50.0, USERS),
        }
    )
    logit = (
        -2.0
        + 2.0 * (1 - frame["last_is_auto_renew"])
        + 1.5 * frame["last_is_cancel"]
        + 0.04 * frame["days_since_last_listen"]
    )
    frame["is_churn"] = (rng.random(USERS) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture
def scored_home(churn_env, monkeypatch) -> Path:
    """A champion trained through ``churn_model`` on a small synthetic warehouse."""
    home = Path(churn_env["CHURN_HOME"])
    rng = np.random.default_rng(8)
    frame = pd.concat([_cohort(c, rng) for c in COHORTS], ignore_index=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE features AS SELECT * EXCLUDE (is_churn) FROM frame")
        conn.execute("CREATE TABLE labels AS SELECT msno, cohort_month, is_churn FROM frame")
    train = frame[frame["cohort_month"] < date(2016, 4, 1)]
    columns = ["last_is_auto_renew", "last_is_cancel", "days_since_last_listen", "plays_30d"]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 8, "seed": 1},
        lgb.Dataset(train[columns], train["is_churn"]),
        num_boost_round=40,
    )
    # A fixed booster instead of a search keeps the run short and its scores repeatable.
    monkeypatch.setattr(
        training_candidate,
        "fit_lightgbm_automl",
        lambda *a, **k: TunedModel(booster, {}, SimpleNamespace(best_loss=0.5), False),
    )
    trained = dg.materialize(
        [churn_model],
        resources=default_resources(),
        run_config={"ops": {"churn_model": {"config": {"as_of_month": "2016-06"}}}},
    )
    assert trained.success
    return home


def _stored() -> pd.DataFrame:
    with duckdb.connect(default_resources()["warehouse"].database, read_only=True) as conn:
        return conn.execute(
            "SELECT msno, churn_probability, bucket FROM predictions "
            "WHERE cohort_month = '2016-05-01' ORDER BY msno"
        ).df()


def _score(a_min: float | None = None, b_min: float | None = None) -> pd.DataFrame:
    config = {}
    if a_min is not None:
        config |= {"bucket_a_min_probability": a_min, "bucket_b_min_probability": b_min}
    result = materialize(
        [predictions],
        resources={**default_resources(), "control": ControlGroupResource(share=0.0)},
        partition_key="2016-05-01",
        run_config={"ops": {"predictions": {"config": config}}},
    )
    assert result.success
    stored = _stored()
    [event] = result.get_asset_materialization_events()
    counts = event.materialization.metadata["bucket_counts"].value
    in_table = stored["bucket"].value_counts().reindex(["A", "B", "C"], fill_value=0)
    assert counts == in_table.to_dict(), "the run's metadata counts the stored buckets"
    return stored


def test_stored_buckets_follow_the_stored_probabilities(scored_home):
    stored = _score()
    assert len(stored) == USERS
    p, bucket = stored["churn_probability"], stored["bucket"]
    expected = np.where(
        p >= BUCKET_A_MIN_PROBABILITY, "A", np.where(p >= BUCKET_B_MIN_PROBABILITY, "B", "C")
    )
    assert list(bucket) == list(expected)
    # The cohort spans the playbook: someone to call, someone to thank.
    assert {"A", "C"} <= set(bucket)
    # Every bucket-A user is scored riskier than anyone in B, and every B user than anyone in C.
    by_bucket = stored.groupby("bucket")["churn_probability"]
    lowest, highest = by_bucket.min(), by_bucket.max()
    present = [b for b in "ABC" if b in lowest.index]
    for riskier, safer in itertools.pairwise(present):
        assert lowest[riskier] > highest[safer]

    # Cut-offs set to two users' own scores: those users sit in the higher bucket.
    ranked = np.sort(p.unique())[::-1]
    a_min, b_min = float(ranked[len(ranked) // 5]), float(ranked[len(ranked) // 2])
    rescored = _score(a_min, b_min)
    assert list(rescored["churn_probability"]) == list(p), "the same champion, the same scores"
    on_a = rescored[rescored["churn_probability"] == a_min]
    on_b = rescored[rescored["churn_probability"] == b_min]
    assert len(on_a) and set(on_a["bucket"]) == {"A"}
    assert len(on_b) and set(on_b["bucket"]) == {"B"}
    expected = np.where(p >= a_min, "A", np.where(p >= b_min, "B", "C"))
    assert list(rescored["bucket"]) == list(expected)
    assert set(rescored["bucket"]) == {"A", "B", "C"}


def test_scoring_with_cut_offs_out_of_order_fails_and_keeps_the_stored_scores(scored_home):
    before = _score()
    failed = materialize(
        [predictions],
        resources=default_resources(),
        partition_key="2016-05-01",
        run_config={
            "ops": {
                "predictions": {
                    "config": {"bucket_a_min_probability": 0.1, "bucket_b_min_probability": 0.3}
                }
            }
        },
        raise_on_error=False,
    )
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "bucket thresholds" in failure.step_failure_data.error.to_string()
    pd.testing.assert_frame_equal(before, _stored())
