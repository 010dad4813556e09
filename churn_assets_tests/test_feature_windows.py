"""Where each listening window of a cohort's features starts and ends, to the day.

"The last 7 days" before a cut-off are the 7 days before it: the day 7 days before counts, the day
8 days before does not, and the same for 14, 30, 60 and 90 days. One user listens on each side of
every edge, a different power of two of songs each day, so every window's sum says exactly which
days it read.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from churn_assets_tests.helpers import cohort_features

COHORT = "2016-03-01"
CUTOFF = date(2016, 3, 1)
# Days before the cut-off erin listens on: either side of each window's first day, and the days
# either side of the 14 days before the last 14 (the trend's comparison window).
DAYS_BEFORE = [7, 8, 14, 15, 28, 29, 30, 31, 60, 61, 90, 91]
SONGS = {days: 2**i for i, days in enumerate(DAYS_BEFORE)}

MEMBERS = """msno,city,bd,gender,registered_via,registration_init_time
erin,5,31,female,7,20150101
"""
TRANSACTIONS = """msno,payment_method_id,payment_plan_days,plan_list_price,actual_amount_paid,\
is_auto_renew,transaction_date,membership_expire_date,is_cancel
erin,41,30,149,149,1,20160210,20160311,0
"""


def _user_logs() -> str:
    lines = ["msno,date,num_25,num_50,num_75,num_985,num_100,num_unq,total_secs"]
    for days, songs in SONGS.items():
        day = CUTOFF - timedelta(days=days)
        lines.append(f"erin,{day:%Y%m%d},0,0,0,0,{songs},1,60.0")
    # On the cut-off day itself: no window may read it.
    lines.append(f"erin,{CUTOFF:%Y%m%d},0,0,0,0,100000,1,60.0")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def erin(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("windows")
    files = {
        "members.csv": MEMBERS,
        "transactions.csv": TRANSACTIONS,
        "user_logs.csv": _user_logs(),
    }
    [row] = cohort_features(root, files, COHORT, listening_from="2015-12-01")
    return row


def _within(days: int) -> list[int]:
    return [d for d in DAYS_BEFORE if d <= days]


@pytest.mark.parametrize("window", [7, 14, 30, 60, 90])
def test_a_window_reads_its_first_day_and_not_the_day_before(erin, window):
    inside = _within(window)
    assert erin[f"plays_{window}d"] == sum(SONGS[d] for d in inside)
    assert erin[f"active_days_{window}d"] == len(inside)
    assert erin[f"unique_songs_{window}d"] == len(inside)
    assert erin[f"secs_{window}d"] == 60.0 * len(inside)


def test_the_listening_trend_compares_the_last_14_days_with_the_14_before(erin):
    last = sum(SONGS[d] for d in (7, 8, 14))
    before = sum(SONGS[d] for d in (15, 28))
    assert erin["plays_trend_14d"] == pytest.approx((last - before) / (before + 1.0))
    assert erin["secs_trend_14d"] == pytest.approx((3 * 60.0 - 2 * 60.0) / (2 * 60.0 + 3600.0))


def test_recency_counts_days_up_to_the_cut_off(erin):
    assert erin["days_since_last_listen"] == 7
