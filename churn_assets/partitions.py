"""Monthly partitions and the month arithmetic of DESIGN §3 (cohorts, cut-offs, label delay)."""

from __future__ import annotations

from datetime import date

import dagster as dg

from churn_assets.settings import PARTITIONS_START

# Months keyed YYYY-MM-01. end_offset=1 lets the current month's cohort be scored on its first day.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)

# Labels of cohort M become known on the first day of M + LABEL_DELAY_MONTHS.
LABEL_DELAY_MONTHS = 2


def month_start(value: str | date) -> date:
    """Parse ``YYYY-MM`` or ``YYYY-MM-DD`` (or take a date) into the first day of its month."""
    if isinstance(value, date):
        return value.replace(day=1)
    parts = value.strip().split("-")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"expected a month as YYYY-MM or YYYY-MM-DD, got {value!r}")
    return date(int(parts[0]), int(parts[1]), 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_key(month: date) -> str:
    return month.strftime("%Y-%m-01")


def latest_labeled_cohort(as_of: date) -> date:
    """The newest cohort whose labels may be used on the first day of ``as_of``."""
    return add_months(month_start(as_of), -LABEL_DELAY_MONTHS)
