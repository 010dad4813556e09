"""How training splits labelled cohorts: earlier cohorts train, the newest two-class cohort
validates, and a fixed share of its users is kept out of the search for a fair comparison."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from churn_assets.training.search import class_weights
from churn_assets.training.split import held_out_users, split_by_time

FEATURES = ["plays_30d"]


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    parts = []
    for month in (1, 2, 3, 4, 5):
        cohort = date(2016, month, 1)
        n = 400
        churn = (rng.random(n) < 0.3).astype(int)
        if month == 5:
            churn[:] = 0  # a newer cohort with no churner yet: nothing to validate on
        parts.append(
            pd.DataFrame(
                {
                    "msno": [f"m{month}_{i:04d}" for i in range(n)],
                    "cohort_month": cohort,
                    "plays_30d": rng.gamma(2.0, 50.0, n),
                    "is_churn": churn,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _months(frame: pd.DataFrame) -> set[date]:
    return set(pd.to_datetime(frame["cohort_month"]).dt.date)


def test_training_never_sees_the_validation_cohort_or_anything_after_it():
    frame = _frame()
    split = split_by_time(frame, FEATURES)
    april = date(2016, 4, 1)
    assert split.validation_cohort == april
    assert split.training_cohorts == [date(2016, 1, 1), date(2016, 2, 1), date(2016, 3, 1)]
    assert _months(split.train) == set(split.training_cohorts)
    assert _months(split.validation) == {april}
    assert len(split.train) == 3 * 400 and len(split.validation) == 400
    assert set(split.train["msno"]).isdisjoint(split.validation["msno"])


def test_held_out_users_are_a_share_of_the_validation_cohort_kept_from_both_sides():
    frame = _frame()
    split = split_by_time(frame, FEATURES, held_out_share=0.5)
    april = frame[frame["cohort_month"] == date(2016, 4, 1)]
    assert split.held_out_share == 0.5
    held, validated = set(split.held_out["msno"]), set(split.validation["msno"])
    assert held.isdisjoint(validated) and held | validated == set(april["msno"])
    assert held.isdisjoint(split.train["msno"])
    assert 150 < len(held) < 250
    expected = set(april["msno"][held_out_users(april["msno"], 0.5)])
    assert held == expected


def test_the_same_users_are_held_out_whatever_else_is_scored_with_them():
    users = pd.Series([f"user{i}" for i in range(5000)])
    half = held_out_users(users, 0.5)
    assert abs(half.mean() - 0.5) < 0.03
    assert np.array_equal(half, held_out_users(users, 0.5)), "a fixed hash, not a random draw"
    reordered = users.sample(frac=1.0, random_state=1)
    assert np.array_equal(held_out_users(reordered, 0.5), half[reordered.index.to_numpy()])
    # A fresh index (another cohort's frame) holds out the same users.
    again = pd.Series(list(users.iloc[1000:2000]))
    assert np.array_equal(held_out_users(again, 0.5), half[1000:2000])
    # A larger share holds out a superset of a smaller share's users.
    quarter = held_out_users(users, 0.25)
    assert abs(quarter.mean() - 0.25) < 0.03
    assert not (quarter & ~half).any()
    assert not held_out_users(users, 0.0).any()


def test_nothing_is_held_out_when_a_half_would_lack_churners():
    frame = _frame()
    april = frame["cohort_month"] == date(2016, 4, 1)
    # One churner in the validation cohort: one half would have none.
    frame.loc[april, "is_churn"] = 0
    frame.loc[frame.index[april][0], "is_churn"] = 1
    split = split_by_time(frame, FEATURES, held_out_share=0.5)
    assert split.validation_cohort == date(2016, 4, 1)
    assert split.held_out.empty and split.held_out_share == 0.0
    assert len(split.validation) == 400


def test_balanced_class_weights_give_each_class_half_the_total_weight():
    y = np.array([1] * 30 + [0] * 70)
    weights = class_weights(y, "balanced")
    assert weights[y == 1].sum() == pytest.approx(50.0)
    assert weights[y == 0].sum() == pytest.approx(50.0)
    # The rarer class weighs more per row.
    assert weights[y == 1][0] > weights[y == 0][0]
    assert class_weights(y, "none") is None
