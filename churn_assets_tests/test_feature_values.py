"""Feature values worked out by hand for a few users, through the raw and features assets."""

from __future__ import annotations

import pandas as pd
import pytest

from churn_assets_tests.helpers import cohort_features

COHORT = "2016-03-01"

MEMBERS = """msno,city,bd,gender,registered_via,registration_init_time
alice,5,0,,7,20150901
bob,1,30,male,9,20150101
carol,4,25,female,3,20150101
dave,1,40,male,7,20150101
"""
TRANSACTIONS = """msno,payment_method_id,payment_plan_days,plan_list_price,actual_amount_paid,\
is_auto_renew,transaction_date,membership_expire_date,is_cancel
alice,41,30,149,149,1,20151001,20151031,0
alice,39,30,149,99,1,20160115,20160214,0
alice,41,30,149,149,1,20160214,20160315,0
bob,41,30,149,149,1,20160210,20160310,0
bob,41,30,149,149,0,20160220,20160310,1
carol,41,30,149,149,1,20160305,20160404,0
carol,41,30,149,149,1,20160205,20160306,0
carol,41,30,149,149,1,20150105,20150204,0
dave,41,30,149,149,1,20151105,20151205,0
dave,41,30,149,149,1,20151205,20160104,0
"""
# alice listens 1, 10 and 51 days before the cut-off (the last with negative seconds) and on the
# cut-off day itself, which no feature may read; bob never listens.
USER_LOGS = """msno,date,num_25,num_50,num_75,num_985,num_100,num_unq,total_secs
alice,20160229,1,0,0,0,9,8,2000.0
alice,20160220,0,0,0,0,10,10,3000.0
alice,20160110,0,0,0,0,5,5,-5.0
alice,20160301,0,0,0,0,50,50,9000.0
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("values")
    files = {"members.csv": MEMBERS, "transactions.csv": TRANSACTIONS, "user_logs.csv": USER_LOGS}
    rows = cohort_features(root, files, COHORT, listening_from="2016-01-01")
    return {row["msno"]: row for row in rows}


def test_cohort_holds_only_users_expiring_in_the_month(cohort):
    # carol's expiry known before March is 2016-03-06, but she renewed on 2016-03-05, which the
    # cut-off hides: she is in the cohort on what was known. dave's plan ran out in January.
    assert sorted(cohort) == ["alice", "bob", "carol"]


def test_listening_windows_trend_and_recency(cohort):
    alice = cohort["alice"]
    assert (alice["plays_7d"], alice["active_days_7d"], alice["secs_7d"]) == (10, 1, 2000.0)
    assert alice["completion_ratio_7d"] == pytest.approx(0.9)
    assert (alice["plays_14d"], alice["active_days_14d"], alice["secs_14d"]) == (20, 2, 5000.0)
    assert alice["unique_songs_14d"] == 18
    # The 51-day-old day counts as activity; its negative seconds do not count as listening.
    assert (alice["plays_60d"], alice["active_days_60d"], alice["secs_60d"]) == (25, 3, 5000.0)
    assert alice["plays_90d"] == 25
    assert alice["days_since_last_listen"] == 1
    assert alice["plays_trend_14d"] == pytest.approx(20.0)  # nothing in the 14 days before
    bob = cohort["bob"]
    assert (bob["plays_90d"], bob["active_days_90d"]) == (0, 0)
    assert pd.isna(bob["days_since_last_listen"])


def test_subscription_history(cohort):
    alice = cohort["alice"]
    assert alice["days_to_expiry"] == 14
    assert (alice["last_plan_days"], alice["last_amount_paid"], alice["last_discount"]) == (
        30,
        149,
        0,
    )
    assert alice["txn_count_365d"] == 3 and alice["renewal_count_365d"] == 3
    assert alice["payment_methods_365d"] == 2
    # 2016-01-15 starts 76 days after the October plan expired: one lapse.
    assert (alice["lapse_count"], alice["lapse_count_365d"]) == (1, 1)
    assert alice["mean_discount_share"] == pytest.approx((50 / 149) / 3)
    assert alice["subscription_tenure_days"] == 152
    # carol first paid on 2015-01-05, 421 days before the cut-off: tenure stops at the
    # 365-day payment window, so it does not grow with the history loaded.
    assert cohort["carol"]["subscription_tenure_days"] == 365
    bob = cohort["bob"]
    # The cancel on 2016-02-20 is his latest transaction.
    assert (bob["last_is_cancel"], bob["last_is_auto_renew"]) == (1, 0)
    assert (bob["cancel_count_90d"], bob["lapse_count"]) == (1, 0)


def test_member_attributes_are_cleaned(cohort):
    alice, bob = cohort["alice"], cohort["bob"]
    assert pd.isna(alice["age"])  # bd 0 is not an age
    assert (alice["gender_code"], alice["city"], alice["registered_via"]) == (0, 5, 7)
    assert (bob["age"], bob["gender_code"]) == (30, 1)
    assert alice["registration_age_days"] == 182
