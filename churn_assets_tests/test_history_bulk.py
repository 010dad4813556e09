"""Where the bulk of a table's history begins, and which features of a cohort reach before it.

A payment log whose first months hold one payer, then eleven: the bulk begins with the month the
eleven arrive. A cohort whose year of payments reaches before that month has its 365-day and
all-history features truncated (named in the ``window_complete`` check and the metadata), while
its 90-day ones and its listening are whole. Built through ``dg.materialize`` as the loop does.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from churn_assets.features.assets import features
from churn_assets.features.windows import LISTENING, PAYMENTS, truncated_features, window_of
from churn_assets.keys import COVERAGE_CHECK
from churn_assets.raw.assets import members, transactions, user_logs
from churn_assets_tests.helpers import RANGE_END, RANGE_START, materialize, resources_for

COHORT = "2016-03-01"
EARLY_PAYER = "old"
PAYERS = [f"u{i}" for i in range(10)]


def _next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def _monthly_payments(user: str, first: date, last: date) -> list[str]:
    """A 30-day plan paid on the 5th of each month, expiring on the 6th of the next."""
    rows, month = [], first
    while month <= last:
        paid, expiry = month.replace(day=5), _next_month(month).replace(day=6)
        rows.append(f"{user},41,30,149,149,1,{paid:%Y%m%d},{expiry:%Y%m%d},0")
        month = _next_month(month)
    return rows


def _landing(root: Path) -> Path:
    landing = root / "landing"
    landing.mkdir()
    users = [EARLY_PAYER, *PAYERS]
    (landing / "members.csv").write_text(
        "msno,city,bd,gender,registered_via,registration_init_time\n"
        + "".join(f"{u},1,30,male,7,20140101\n" for u in users)
    )
    payments = _monthly_payments(EARLY_PAYER, date(2015, 1, 1), date(2016, 2, 1))
    for user in PAYERS:
        payments += _monthly_payments(user, date(2015, 7, 1), date(2016, 2, 1))
    (landing / "transactions.csv").write_text(
        "msno,payment_method_id,payment_plan_days,plan_list_price,actual_amount_paid,"
        "is_auto_renew,transaction_date,membership_expire_date,is_cancel\n"
        + "\n".join(payments)
        + "\n"
    )
    logs = ["msno,date,num_25,num_50,num_75,num_985,num_100,num_unq,total_secs"]
    for day in range(1, 29):
        for month in ("201512", "201601", "201602"):
            logs += [f"{u},{month}{day:02d},1,0,0,0,3,4,900.0" for u in users]
    (landing / "user_logs.csv").write_text("\n".join(logs) + "\n")
    return landing


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("bulk")
    resources = resources_for(root / "home", _landing(root))
    assert materialize([members], resources=resources).success
    for asset, first in ((transactions, "2015-01-01"), (user_logs, "2015-12-01")):
        tags = {RANGE_START: first, RANGE_END: COHORT}
        assert materialize([asset], tags=tags, resources=resources).success
    result = materialize([features], partition_key=COHORT, resources=resources)
    assert result.success
    with duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True) as conn:
        coverage = conn.execute(
            "SELECT payment_bulk_start, listening_bulk_start, complete FROM cohort_coverage "
            "WHERE cohort_month = ?",
            [COHORT],
        ).fetchone()
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == COVERAGE_CHECK]
    [materialization] = result.asset_materializations_for_node("features")
    return {"coverage": coverage, "check": check, "metadata": materialization.metadata}


def test_the_bulk_of_the_payments_begins_when_most_payers_do(built):
    payment_start, listening_start, complete = built["coverage"]
    assert payment_start == date(2015, 7, 1)  # one payer before, eleven from July
    assert listening_start == date(2015, 12, 1)  # the listening log is whole from its start
    assert complete  # a thin start is no hole: every month is loaded


def test_features_reaching_before_it_are_named_truncated_the_others_are_not(built):
    check, metadata = built["check"], built["metadata"]
    truncated = set(metadata["truncated_features"].value)
    assert {"txn_count_365d", "renewal_count_365d", "subscription_tenure_days"} <= truncated
    assert {"lapse_count", "mean_discount_share"} <= truncated  # all history: never whole
    assert "cancel_count_180d" not in truncated  # 180 days from 2016-03: September 2015
    assert not {"cancel_count_90d", "plays_90d", "days_since_last_listen"} & truncated
    assert check.passed  # truncation is not a hole
    assert "truncated" in check.description and "txn_count_365d" in check.description
    assert metadata["payment_history_bulk_from"].value == "2015-07"


def test_every_windowed_feature_knows_its_table_and_days():
    assert window_of("txn_count_365d").table == PAYMENTS
    assert window_of("lapse_count").days is None
    assert window_of("plays_7d").table == LISTENING and window_of("plays_7d").days == 7
    assert window_of("plays_trend_14d").days == 28
    assert window_of("city") is None and window_of("last_plan_days") is None
    # The first day a window reads is cut-off minus its days: a bulk start that day is whole.
    starts = {PAYMENTS: date(2015, 12, 2), LISTENING: None}
    assert truncated_features(date(2016, 3, 1), starts, ["cancel_count_90d"]) == []
    starts = {PAYMENTS: date(2015, 12, 3), LISTENING: None}
    assert truncated_features(date(2016, 3, 1), starts, ["cancel_count_90d"]) == [
        "cancel_count_90d"
    ]
