"""How far back each feature reads, and which of a cohort's features reach before the bulk of
the history: those are *truncated* for that cohort.

Real landing folders begin at a fixed date while members registered long before (KKBox's
payment log starts in 2015-01 for members from 2004 on), and a source's first months often hold
only part of its users. A 365-day count of a cohort whose year reaches into those months counts
what was loaded, not what happened, and it grows month by month as the window fills: that is the
data's start, not drift. ``cohort_coverage`` records, per table, the month from which the bulk of
the history is loaded (``payment_bulk_start``, ``listening_bulk_start``, see
``cohort_coverage.sql``); a feature whose window starts before it is truncated.

A feature read from all of a user's history (``lapse_count``) has no window to fill: it grows
with the history loaded for as long as the data lasts, so it is truncated for every cohort.
Features of the current transaction and of the member's profile read no window and are never
truncated. A feature missing here is treated as reading no window; a new windowed feature
belongs in ``PAYMENT_WINDOWS`` or follows the listening naming (``<name>_<days>d``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

PAYMENTS = "transactions"
LISTENING = "user_logs"
ALL_HISTORY = None  # a window that reaches back to the first row of the table

# Payment features and the days before the cut-off they read (cohort_features.sql).
PAYMENT_WINDOWS: dict[str, int | None] = {
    "txn_count_365d": 365,
    "renewal_count_365d": 365,
    "cancel_count_90d": 90,
    "cancel_count_180d": 180,
    "cancel_count_365d": 365,
    "auto_renew_share_365d": 365,
    "payment_methods_365d": 365,
    "lapse_count_365d": 365,
    "subscription_tenure_days": 365,  # capped at 365 days
    "mean_discount_share": ALL_HISTORY,
    "lapse_count": ALL_HISTORY,
}
# Listening features whose name does not end in their window.
LISTENING_WINDOWS: dict[str, int] = {
    "plays_trend_14d": 28,  # the last 14 days against the 14 before
    "secs_trend_14d": 28,
    "days_since_last_listen": 90,
}
LISTENING_PREFIXES = ("plays_", "active_days_", "secs_", "unique_songs_", "completion_ratio_")
_DAYS = re.compile(r"_(\d+)d$")


@dataclass(frozen=True)
class Window:
    table: str
    days: int | None  # None: all history

    def starts_before(self, cutoff: date, bulk_start: date | None) -> bool:
        """Does this window, for a cohort cut off at ``cutoff``, reach before ``bulk_start``?"""
        if bulk_start is None:
            return False
        if self.days is None:
            return True
        return cutoff - timedelta(days=self.days) < bulk_start


def window_of(feature: str) -> Window | None:
    """The table and days a feature reads, or None for a feature that reads no window."""
    if feature in PAYMENT_WINDOWS:
        return Window(PAYMENTS, PAYMENT_WINDOWS[feature])
    if feature in LISTENING_WINDOWS:
        return Window(LISTENING, LISTENING_WINDOWS[feature])
    days = _DAYS.search(feature)
    if days and feature.startswith(LISTENING_PREFIXES):
        return Window(LISTENING, int(days.group(1)))
    return None


def bulk_starts(coverage: Mapping[str, object]) -> dict[str, date | None]:
    """Per table, where the bulk of its history begins, from a ``cohort_coverage`` row."""
    return {
        PAYMENTS: _as_date(coverage.get("payment_bulk_start")),
        LISTENING: _as_date(coverage.get("listening_bulk_start")),
    }


def _as_date(value: object) -> date | None:
    if value is None or value != value:  # None or NaT/NaN from a frame
        return None
    return value.date() if hasattr(value, "date") and callable(value.date) else value  # type: ignore[return-value]


def truncated_features(
    cutoff: date, bulk_starts: Mapping[str, date | None], features: Iterable[str]
) -> list[str]:
    """The features of the cohort cut off at ``cutoff`` whose window reaches before the bulk of
    their table's history (``bulk_starts``: table -> month, None when unknown)."""
    truncated = []
    for feature in features:
        window = window_of(feature)
        if window is not None and window.starts_before(cutoff, bulk_starts.get(window.table)):
            truncated.append(feature)
    return truncated
