"""The as-is rule a model must beat: a member who switched auto-renew off or cancelled is
expected to leave, and each group is scored with the churn rate it had in training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn_assets.modeling.rule import RuleBaseline, rule_flags


def _members() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "msno": ["renews", "auto_off", "cancelled", "off_and_cancelled"],
            "last_is_auto_renew": [1.0, 0.0, 1.0, 0.0],
            "last_is_cancel": [0.0, 0.0, 1.0, 1.0],
        }
    )


def test_auto_renew_off_or_a_cancelled_plan_is_flagged_as_leaving():
    assert list(rule_flags(_members())) == [False, True, True, True]


def test_either_signal_alone_flags_a_member():
    members = _members()
    only_auto_renew = members.drop(columns="last_is_cancel")
    assert list(rule_flags(only_auto_renew)) == [False, True, False, True]
    only_cancel = members.drop(columns="last_is_auto_renew")
    assert list(rule_flags(only_cancel)) == [False, False, True, True]
    assert not rule_flags(members[["msno"]]).any()


def test_each_group_is_scored_with_its_training_churn_rate():
    rng = np.random.default_rng(1)
    n = 4000
    train = pd.DataFrame(
        {
            "last_is_auto_renew": rng.integers(0, 2, n).astype(float),
            "last_is_cancel": (rng.random(n) < 0.1).astype(float),
        }
    )
    flagged = rule_flags(train)
    train["is_churn"] = (rng.random(n) < np.where(flagged, 0.4, 0.05)).astype(int)
    rule = RuleBaseline.fit(train)
    assert rule.flagged_rate == pytest.approx(train["is_churn"][flagged].mean())
    assert rule.unflagged_rate == pytest.approx(train["is_churn"][~flagged].mean())
    assert rule.flagged_rate > rule.unflagged_rate
    scores = rule.predict(_members())
    assert list(scores) == [rule.unflagged_rate] + [rule.flagged_rate] * 3
