"""The shape of a world beyond its size: degenerate columns, late and missing files.

Real landing folders are not always complete or informative: a source may never fill a column,
a month's file may arrive a month or two late, or never. These knobs let a simulated world be
like that, and give each a command-line spelling (``TABLE@YYYY-MM+K``, ``TABLE@YYYY-MM``).

A degenerate column is one the source does not fill. The world behaves as it always would; its
landed files carry a single value in that column (without cancels, the cancel rows are not
shipped at all, so ``is_cancel`` is always 0). Labels and the churn truth are therefore those of
the same world with every column filled, and they stay consistent with the landed transactions:
a cancel row never moves a label, it repeats its purchase's expiry. The truth's probabilities
then draw on information the landed files no longer hold (whether a member cancelled or turned
auto-renewal off), so a model falls further short of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd

from .dates import parse_month

NO_CANCELS = "no_cancels"  # is_cancel always 0: cancel rows are not shipped
NO_GENDER = "no_gender"  # gender always empty
NO_AGE = "no_age"  # bd always 0
SINGLE_CITY = "single_city"  # city always 1
SINGLE_PAYMENT_METHOD = "single_payment_method"  # payment_method_id always SINGLE_METHOD
NO_AUTO_RENEW = "no_auto_renew"  # is_auto_renew always 0
DEGENERATE_KINDS = (
    NO_CANCELS, NO_GENDER, NO_AGE, SINGLE_CITY, SINGLE_PAYMENT_METHOD, NO_AUTO_RENEW,
)  # fmt: skip
SINGLE_METHOD = 41  # the method most KKBox transactions carry
SINGLE_CITY_CODE = 1


def degrade(frame: pd.DataFrame, table: str, kinds: Sequence[str]) -> pd.DataFrame:
    """``frame`` (members or transactions rows) as a source lacking ``kinds`` ships it."""
    if table == "members":
        constant = {SINGLE_CITY: ("city", SINGLE_CITY_CODE), NO_GENDER: ("gender", ""),
                    NO_AGE: ("bd", 0)}  # fmt: skip
    elif table == "transactions":
        constant = {SINGLE_PAYMENT_METHOD: ("payment_method_id", SINGLE_METHOD),
                    NO_AUTO_RENEW: ("is_auto_renew", 0)}  # fmt: skip
        if NO_CANCELS in kinds:
            frame = frame[frame["is_cancel"].to_numpy() == 0]
    else:
        raise ValueError(f"no degenerate columns in {table}")
    changed = {column: value for kind, (column, value) in constant.items() if kind in kinds}
    return frame.assign(**changed) if changed else frame


# Monthly files that can arrive late or never: the table and its file-name prefix.
LATE_TABLES = {"transactions": "transactions", "user_logs": "user_logs", "members": "members"}


def file_name(table: str, month: date) -> str:
    """The landing file holding ``table``'s rows of ``month``."""
    return f"{LATE_TABLES[table]}_{month:%Y%m}.csv"


def degenerate_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """Validate degenerate column kinds; return each once, in :data:`DEGENERATE_KINDS` order."""
    if isinstance(kinds, str):
        raise ValueError(f"degenerate must be a list of kinds, got the string {kinds!r}")
    unknown = [k for k in kinds if k not in DEGENERATE_KINDS]
    if unknown:
        raise ValueError(
            f"unknown degenerate kind(s) {', '.join(map(repr, unknown))}; "
            f"expected some of {', '.join(DEGENERATE_KINDS)}"
        )
    return tuple(k for k in DEGENERATE_KINDS if k in kinds)


def _month(value: object, what: str) -> date:
    if isinstance(value, str):
        return parse_month(value)
    if not isinstance(value, date) or value.day != 1:
        raise ValueError(f"{what}: the data month must be the first day of a month, got {value!r}")
    return date(value.year, value.month, 1)


def _table(value: object, what: str) -> str:
    if not isinstance(value, str) or value not in LATE_TABLES:
        tables = ", ".join(LATE_TABLES)
        raise ValueError(f"{what}: unknown table {value!r}; expected one of {tables}")
    return value


def _delay(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: the delay must be a whole number of months >= 1, got {value!r}")
    return value


def late_files(
    late: Sequence[tuple[str, date, int]],
    missing: Sequence[tuple[str, date]],
    months: Sequence[date],
) -> tuple[list[tuple[str, date, int]], list[tuple[str, date]]]:
    """Validate late and missing files against the simulated ``months``; return them normalised.

    Each file may be late or missing, not both, and only once; only the monthly files of the
    simulated months (those with listening rows) can be late or missing.
    """
    window = set(months)
    span = f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}"
    seen: set[tuple[str, date]] = set()

    def check(table: str, month: date, what: str) -> None:
        if month not in window:
            raise ValueError(f"{what}: {month:%Y-%m} is not a simulated month ({span})")
        if (table, month) in seen:
            raise ValueError(f"{what}: {file_name(table, month)} is named more than once")
        seen.add((table, month))

    out_late = []
    for entry in late:
        what = f"late file {entry!r}"
        if len(entry) != 3:
            raise ValueError(f"{what}: expected (table, month, delay in months)")
        table, month, delay = _table(entry[0], what), _month(entry[1], what), _delay(entry[2], what)
        check(table, month, f"late file {format_late((table, month, delay))}")
        out_late.append((table, month, delay))
    out_missing = []
    for entry in missing:
        what = f"missing file {entry!r}"
        if len(entry) != 2:
            raise ValueError(f"{what}: expected (table, month)")
        table, month = _table(entry[0], what), _month(entry[1], what)
        check(table, month, f"missing file {format_missing((table, month))}")
        out_missing.append((table, month))
    return out_late, out_missing


def parse_late(text: str) -> tuple[str, date, int]:
    """Parse ``TABLE@YYYY-MM+K`` (e.g. ``user_logs@2016-03+2``): that file lands K months late."""
    table, sep, rest = text.strip().partition("@")
    month, plus, delay = rest.partition("+")
    if not sep or not plus or not table or not delay.strip().isdigit():
        raise ValueError(
            f"expected a late file as TABLE@YYYY-MM+K with TABLE one of {', '.join(LATE_TABLES)} "
            f"(e.g. user_logs@2016-03+2), got {text!r}"
        )
    what = f"late file {text!r}"
    return _table(table.strip(), what), _month(month.strip(), what), _delay(int(delay), what)


def parse_missing(text: str) -> tuple[str, date]:
    """Parse ``TABLE@YYYY-MM`` (e.g. ``transactions@2016-04``): that file never lands."""
    table, sep, month = text.strip().partition("@")
    if not sep or not table or not month:
        raise ValueError(
            f"expected a missing file as TABLE@YYYY-MM with TABLE one of "
            f"{', '.join(LATE_TABLES)} (e.g. transactions@2016-04), got {text!r}"
        )
    what = f"missing file {text!r}"
    return _table(table.strip(), what), _month(month.strip(), what)


def format_late(entry: tuple[str, date, int]) -> str:
    table, month, delay = entry
    return f"{table}@{month:%Y-%m}+{delay}"


def format_missing(entry: tuple[str, date]) -> str:
    table, month = entry
    return f"{table}@{month:%Y-%m}"
