"""The KKBox "WSDM churn" label rule, applied to landing-format transactions.

A user belongs to cohort M when the expiry known before M (that of the latest transaction dated
before the first of M) falls inside M; they churned unless a non-cancel transaction dated from
the first of M up to 30 days after that expiry extends the membership past it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from .dates import add_months

RENEWAL_WINDOW_DAYS = 30
_NEEDED = ("msno", "transaction_date", "membership_expire_date", "is_cancel")


def _as_int(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def _ints(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype="int64")


def _check_columns(transactions: pd.DataFrame) -> None:
    missing = [c for c in _NEEDED if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions lack column(s) {', '.join(missing)}")


def cohort_expiries(transactions: pd.DataFrame, cohort_month: date) -> pd.DataFrame:
    """Cohort ``cohort_month``'s users with the expiry known before it (``msno``, ``expiry``).

    The current transaction is the latest by ``transaction_date``; among same-day rows the larger
    ``membership_expire_date`` wins, so the expiry, and hence the cohort, is deterministic.
    """
    _check_columns(transactions)
    first = cohort_month.replace(day=1)
    start, end = _as_int(first), _as_int(add_months(first, 1))
    dates = _ints(transactions, "transaction_date")
    mask = dates < start
    prior = pd.DataFrame(
        {
            "msno": transactions["msno"].to_numpy()[mask],
            "transaction_date": dates[mask],
            "expiry": _ints(transactions, "membership_expire_date")[mask],
        }
    )
    prior = prior.sort_values(["msno", "transaction_date", "expiry"], kind="mergesort")
    current = prior.drop_duplicates("msno", keep="last")
    in_cohort = current[(current["expiry"] >= start) & (current["expiry"] < end)]
    return in_cohort[["msno", "expiry"]].reset_index(drop=True)


def kkbox_churn_labels(transactions: pd.DataFrame, cohort_month: date) -> pd.DataFrame:
    """``msno, is_churn`` for every user of cohort ``cohort_month`` (any day of it), by msno.

    ``transactions`` carries the landing columns with dates as ``YYYYMMDD`` integers; rows dated
    later than needed are ignored, so a whole history can be passed.
    """
    cohort = cohort_expiries(transactions, cohort_month)
    start = _as_int(cohort_month.replace(day=1))
    expiry_dates = pd.to_datetime(cohort["expiry"].astype(str), format="%Y%m%d")
    deadline = expiry_dates + pd.Timedelta(days=RENEWAL_WINDOW_DAYS)
    cohort["deadline"] = deadline.dt.strftime("%Y%m%d").astype("int64").to_numpy()

    dates = _ints(transactions, "transaction_date")
    keep = (_ints(transactions, "is_cancel") == 0) & (dates >= start)
    later = pd.DataFrame(
        {
            "msno": transactions["msno"].to_numpy()[keep],
            "transaction_date": dates[keep],
            "membership_expire_date": _ints(transactions, "membership_expire_date")[keep],
        }
    )
    joined = later.merge(cohort, on="msno", how="inner")
    renews = (joined["transaction_date"] <= joined["deadline"]) & (
        joined["membership_expire_date"] > joined["expiry"]
    )
    renewed = set(joined.loc[renews, "msno"])
    labels = pd.DataFrame(
        {
            "msno": cohort["msno"].to_numpy(),
            "is_churn": (~cohort["msno"].isin(renewed)).astype("int64").to_numpy(),
        }
    )
    return labels.sort_values("msno", kind="mergesort").reset_index(drop=True)
