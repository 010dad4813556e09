"""A user is in the control group or not by who they are, never by where they sit in a cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn_assets.outcomes.control import in_control_group


def test_a_user_keeps_their_group_from_one_cohort_to_the_next():
    users = [f"user{i}" for i in range(4000)]
    march = pd.Series(users)
    held = dict(zip(users, in_control_group(march, 0.2), strict=True))
    # April: a quarter of March's users left, newcomers joined, and the frame is read in another
    # order with an index of its own, as scoring reads each cohort.
    stayers = users[1000:]
    april = pd.Series(sorted(stayers + [f"new{i}" for i in range(500)], reverse=True))
    april_held = dict(zip(april, in_control_group(april, 0.2), strict=True))
    assert all(april_held[u] == held[u] for u in stayers)
    # Another frame holding the same users under other row labels.
    relabelled = pd.Series(users[:300], index=np.arange(300) + 10_000)
    assert list(in_control_group(relabelled, 0.2)) == [held[u] for u in users[:300]]


def test_a_larger_share_holds_out_everyone_a_smaller_one_does():
    users = pd.Series([f"user{i}" for i in range(4000)])
    small, large = in_control_group(users, 0.05), in_control_group(users, 0.2)
    assert abs(small.mean() - 0.05) < 0.015 and abs(large.mean() - 0.2) < 0.02
    assert not (small & ~large).any()
