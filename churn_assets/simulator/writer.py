"""Turn a simulated history into landing-format frames and write them as CSV.

The column order and the ``YYYYMMDD`` integer dates are a contract with the loaders, so all of
the formatting lives here.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from .dates import yyyymmdd
from .listening import LOG_COUNTS
from .population import Population
from .world import WorldHistory

MEMBER_COLUMNS = ("msno", "city", "bd", "gender", "registered_via", "registration_init_time")
TRANSACTION_COLUMNS = (
    "msno", "payment_method_id", "payment_plan_days", "plan_list_price", "actual_amount_paid",
    "is_auto_renew", "transaction_date", "membership_expire_date", "is_cancel",
)  # fmt: skip
LOG_COLUMNS = ("msno", "date", *LOG_COUNTS, "num_unq", "total_secs")
LABEL_COLUMNS = ("msno", "is_churn")
TRUTH_COLUMNS = (
    "msno",
    "cohort_month",
    "churn_probability",
    "churn_probability_without_latent",
    "is_churn",
)


def write_csv(frame: pd.DataFrame, path: Path, decimals: int | None = None) -> int:
    """Write ``frame`` as CSV with "\\n" line ends and floats at fixed ``decimals``; return rows.

    Formatting is explicit so reruns are byte-identical; the csv module is used rather than
    ``DataFrame.to_csv`` because it is about twice as fast on the daily-log files.
    """
    columns = []
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype.kind == "f" and decimals is not None:
            columns.append([f"{v:.{decimals}f}" for v in values.tolist()])
        else:
            columns.append(values.tolist())
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(frame.columns)
        writer.writerows(zip(*columns, strict=True))
    return len(frame)


def members_frame(pop: Population, users: np.ndarray) -> pd.DataFrame:
    """Members rows of ``users`` that have one (a few users never get a members row)."""
    users = users[pop.has_member_row[users]]
    return pd.DataFrame(
        {
            "msno": pop.msno[users],
            "city": pop.city[users],
            "bd": pop.bd[users],
            "gender": pop.gender[users],
            "registered_via": pop.registered_via[users],
            "registration_init_time": yyyymmdd(pop.reg_day[users]),
        },
        columns=list(MEMBER_COLUMNS),
    )


def transactions_frame(history: WorldHistory) -> pd.DataFrame:
    """All landed transactions in landing format, ordered by date."""
    rows = history.transactions
    frame = {"msno": history.population.msno[rows["user"]]}
    for name in TRANSACTION_COLUMNS[1:]:
        values = rows[name]
        frame[name] = yyyymmdd(values) if name.endswith("_date") else values
    return pd.DataFrame(frame, columns=list(TRANSACTION_COLUMNS))


def logs_frame(pop: Population, rows: dict[str, np.ndarray]) -> pd.DataFrame:
    """One month of daily listening rows in landing format."""
    frame = {"msno": pop.msno[rows["user"]], "date": yyyymmdd(rows["date"])}
    for name in LOG_COLUMNS[2:]:
        frame[name] = rows[name]
    return pd.DataFrame(frame, columns=list(LOG_COLUMNS))
