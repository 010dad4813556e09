"""Day arithmetic shared by the simulator: integer day numbers in, KKBox ``YYYYMMDD`` out.

The world runs on integer days since 1970-01-01 so that whole months of events stay numpy arrays;
conversion to the landing format happens once, at the edge.
"""

from __future__ import annotations

from datetime import date

import numpy as np

EPOCH = date(1970, 1, 1)


def to_day(value: date) -> int:
    """Day number of a calendar date."""
    return (value - EPOCH).days


def add_months(month: date, count: int) -> date:
    """First day of the month ``count`` months after ``month`` (negative counts go back)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(earlier: date, later: date) -> int:
    """Whole months from ``earlier``'s month to ``later``'s month."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def parse_month(text: str) -> date:
    """``YYYY-MM`` (or ``YYYY-MM-01``) to the first day of that month, with a readable error."""
    parts = text.strip().split("-")
    valid = (
        len(parts) in (2, 3)
        and all(p.isdigit() for p in parts)
        and len(parts[0]) == 4
        and len(parts[1]) == 2
        and (len(parts) == 2 or parts[2] == "01")
    )
    if valid and int(parts[0]) >= 1 and 1 <= int(parts[1]) <= 12:
        return date(int(parts[0]), int(parts[1]), 1)
    raise ValueError(f"expected a month as YYYY-MM (e.g. 2016-06), got {text!r}")


def month_tag(month: date) -> str:
    """``YYYYMM`` as used in landing file names."""
    return f"{month.year:04d}{month.month:02d}"


def yyyymmdd(days: np.ndarray) -> np.ndarray:
    """Vectorised day numbers to ``YYYYMMDD`` integers."""
    stamps = np.asarray(days, dtype="int64").astype("datetime64[D]")
    months = stamps.astype("datetime64[M]")
    years = months.astype("datetime64[Y]")
    year = years.astype("int64") + 1970
    month = (months - years).astype("int64") + 1
    day = (stamps - months.astype("datetime64[D]")).astype("int64") + 1
    return year * 10000 + month * 100 + day
