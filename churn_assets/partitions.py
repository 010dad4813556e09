"""Monthly partitions that follow the data, and the month arithmetic of DESIGN §3.

The months are a dynamic partition set (``month``), registered as landing files are found to
cover them (see :mod:`churn_assets.landing.catalog` and the landing sensor), plus the month after
the newest data, whose cohort is the one to score. There is no fixed calendar: history from 2004
is as welcome as history from 2015, and the UI lists the months the data covers, not every month
since a configured start.

Why dynamic rather than a time-window definition whose start is read from the data: a time-window
definition is fixed when the code loads, so each home (and each test) would need its own asset
objects, and a late-discovered older month would need a code reload. The partition keys of a
dynamic definition live in the Dagster instance next to the runs that use them. Keys are kept in
calendar order (an older month found later is re-inserted in place), so a key range is a calendar
range and a ranged backfill of history stays one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import dagster as dg

MONTHS = "month"
monthly_partitions = dg.DynamicPartitionsDefinition(name=MONTHS)

# Labels of cohort M become known on the first day of M + LABEL_DELAY_MONTHS.
LABEL_DELAY_MONTHS = 2


def month_start(value: str | date) -> date:
    """Parse ``YYYY-MM`` or ``YYYY-MM-DD`` (or take a date) into the first day of its month."""
    if isinstance(value, date):
        return value.replace(day=1)
    parts = value.strip().split("-")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"expected a month as YYYY-MM or YYYY-MM-DD, got {value!r}")
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12 or not 1900 <= year <= 2999:
        raise ValueError(f"expected a month as YYYY-MM or YYYY-MM-DD, got {value!r}")
    return date(year, month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """Every month from ``first`` through ``last`` (empty when ``last`` is earlier)."""
    months, month = [], month_start(first)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


def partition_key(month: date) -> str:
    return month.strftime("%Y-%m-01")


def latest_labelled_cohort(as_of: date) -> date:
    """The newest cohort whose labels may be used on the first day of ``as_of``."""
    return add_months(month_start(as_of), -LABEL_DELAY_MONTHS)


def registered_months(instance: dg.DagsterInstance) -> list[str]:
    return list(instance.get_dynamic_partitions(MONTHS))


def register_months(instance: dg.DagsterInstance, months: Iterable[date | str]) -> list[str]:
    """Add month keys to the partition set, keeping it in calendar order; the keys added.

    Dagster lists dynamic keys in insertion order, so a month older than some registered ones is
    inserted by re-adding those newer keys after it (their runs and materializations are keyed by
    the partition string and stay attached).
    """
    wanted = {partition_key(month_start(m)) for m in months}
    existing = registered_months(instance)
    new = sorted(wanted - set(existing))
    if not new:
        return []
    later = [k for k in existing if k > new[0]]
    for key in later:
        instance.delete_dynamic_partition(MONTHS, key)
    instance.add_dynamic_partitions(MONTHS, sorted(set(new) | set(later)))
    return new
