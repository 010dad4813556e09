"""Reasons read off LightGBM's SHAP contributions: three per score, risk factors first."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn_assets.scoring.reasons import reason_text, top_reasons


def _booster() -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame(
        {
            "last_is_auto_renew": rng.integers(0, 2, n).astype(float),
            "days_since_last_listen": rng.integers(0, 60, n).astype(float),
            "plays_30d": rng.gamma(2.0, 50.0, n),
            "gender_code": rng.integers(0, 3, n).astype(float),
        }
    )
    logit = -1 + 2.5 * (1 - frame["last_is_auto_renew"]) + 0.05 * frame["days_since_last_listen"]
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = lgb.LGBMClassifier(n_estimators=60, random_state=0, verbose=-1).fit(frame, label)
    return model.booster_, frame


def test_three_reasons_per_row_risk_factors_first_strongest_first():
    booster, frame = _booster()
    contributions = booster.predict(frame, pred_contrib=True)[:, :-1]
    reasons = top_reasons(booster, frame)
    assert all(len(r) == 3 for r in reasons)
    for row, row_reasons in enumerate(reasons):
        signs = [c > 0 for _, _, c in row_reasons]
        assert signs == sorted(signs, reverse=True), "risk factors before what holds the user"
        raising = [abs(c) for _, _, c in row_reasons if c > 0]
        assert raising == sorted(raising, reverse=True)
        # The strongest risk factor of the row is the first reason, when there is one.
        if contributions[row].max() > 0:
            assert row_reasons[0][0] == frame.columns[contributions[row].argmax()]
        assert [v for _, v, _ in row_reasons] == [frame.iloc[row][f] for f, _, _ in row_reasons]

    # Off auto-renew and long silent: auto-renew off is what raises this user's risk most.
    risky = pd.DataFrame(
        [
            {
                "last_is_auto_renew": 0.0,
                "days_since_last_listen": 59.0,
                "plays_30d": 5.0,
                "gender_code": 1.0,
            }
        ]
    )
    [first, *_] = top_reasons(booster, risky)[0]
    assert first[0] == "last_is_auto_renew" and first[2] > 0


def test_reason_text_reads_as_words():
    assert reason_text("last_is_auto_renew", 0.0, 0.8) == (
        "auto-renew on the current plan: no (raises risk)"
    )
    assert reason_text("days_since_last_listen", 12.0, -0.2) == (
        "days since the last listen: 12 (lowers risk)"
    )
    assert reason_text("gender_code", 2.0, 0.1) == "gender: female (raises risk)"
    assert reason_text("plays_trend_14d", 0.256, 0.0).endswith(": 0.26 (no effect)")
    assert reason_text("age", float("nan"), 0.3) == "age: unknown (raises risk)"
    # A feature without words (a new column) still reads, by its column name.
    assert reason_text("new_feature", 3.0, 0.1) == "new_feature: 3 (raises risk)"
