"""The order of a score's three reasons when it has fewer than three risk factors.

What raises the risk comes first; the places left are filled with what holds the user back,
strongest first, and a feature with no effect on this score is named only when nothing else is
left to say.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn_assets.scoring.reasons import reason_text, top_reasons


def _booster_with_an_unused_feature() -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n = 2000
    frame = pd.DataFrame(
        {
            "last_is_auto_renew": rng.integers(0, 2, n).astype(float),
            "days_since_last_listen": rng.integers(0, 60, n).astype(float),
            "plays_30d": rng.gamma(2.0, 50.0, n),
            # The same for everyone: the model cannot use it, so it moves no score.
            "last_is_free": np.zeros(n),
        }
    )
    logit = (
        -1.0
        + 2.0 * (1 - frame["last_is_auto_renew"])
        + 0.04 * frame["days_since_last_listen"]
        - 0.01 * frame["plays_30d"]
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = lgb.LGBMClassifier(n_estimators=60, random_state=0, verbose=-1).fit(frame, label)
    return model.booster_, frame


def test_what_holds_a_user_back_comes_before_a_feature_with_no_effect():
    booster, frame = _booster_with_an_unused_feature()
    contributions = booster.predict(frame, pred_contrib=True)[:, :-1]
    unused = list(frame.columns).index("last_is_free")
    assert np.all(contributions[:, unused] == 0.0)
    reasons = top_reasons(booster, frame)
    fewer_than_three_risks = 0
    for row, row_reasons in enumerate(reasons):
        raising = int((contributions[row] > 0).sum())
        lowering = int((contributions[row] < 0).sum())
        signs = [np.sign(c) for _, _, c in row_reasons]
        # Risk factors, then what lowers the risk, then what has no effect.
        assert signs == sorted(signs, reverse=True), row_reasons
        assert signs.count(1) == min(raising, 3)
        assert signs.count(-1) == min(lowering, 3 - signs.count(1))
        if raising < 3 and lowering >= 3 - raising:
            fewer_than_three_risks += 1
            assert "last_is_free" not in [name for name, _, _ in row_reasons]
        lowered = [abs(c) for _, _, c in row_reasons if c < 0]
        assert lowered == sorted(lowered, reverse=True), "what holds them back, strongest first"
    assert fewer_than_three_risks > 100, "the rule above was exercised on many users"


def test_a_score_explained_by_one_risk_factor_reads_risk_then_what_lowers_it():
    booster, _ = _booster_with_an_unused_feature()
    # Auto-renew off (a risk), yet listening yesterday and a lot (both hold the user back).
    user = pd.DataFrame(
        [
            {
                "last_is_auto_renew": 0.0,
                "days_since_last_listen": 0.0,
                "plays_30d": 400.0,
                "last_is_free": 0.0,
            }
        ]
    )
    [reasons] = top_reasons(booster, user)
    texts = [reason_text(*reason) for reason in reasons]
    assert texts[0] == "auto-renew on the current plan: no (raises risk)"
    assert all(t.endswith("(lowers risk)") for t in texts[1:]), texts
    assert not any("free" in t for t in texts)
