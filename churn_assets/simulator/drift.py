"""Scheduled changes of the simulated world, so that drift monitors have something to find."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .dates import parse_month

COVARIATE = "covariate"
CONCEPT = "concept"
SCHEMA = "schema"
OUTAGE = "outage"
SEGMENT = "segment"
PRICE = "price"
CITY_DECLINE = "city_decline"
DRIFT_KINDS = (COVARIATE, CONCEPT, SCHEMA, OUTAGE, SEGMENT, PRICE, CITY_DECLINE)


@dataclass(frozen=True)
class Drift:
    """A drift of ``kind`` that is in force from ``month`` (first day of a month) on.

    ``covariate`` changes who registers and how much (and how often) everyone listens, leaving the
    churn function alone; ``concept`` changes the churn function, leaving its inputs alone.
    ``schema`` and ``outage`` leave the world alone and break its delivery instead: from the
    month on, the user_logs files carry a renamed, added or dropped column (one variant per seed),
    or in that month a share of the listening rows never arrives. They exist so that the raw checks
    have something to catch. ``segment``, ``price`` and ``city_decline`` move few columns (one
    channel's auto-renewal, one plan's price, one city's listening; see :mod:`.targeted`),
    leaving the churn function alone.
    """

    kind: str
    month: date

    def __post_init__(self) -> None:
        if self.kind not in DRIFT_KINDS:
            raise ValueError(
                f"unknown drift kind {self.kind!r}; expected one of {', '.join(DRIFT_KINDS)}"
            )
        if not isinstance(self.month, date) or self.month.day != 1:
            raise ValueError(f"drift month must be the first day of a month, got {self.month!r}")

    def __str__(self) -> str:
        return f"{self.kind}@{self.month:%Y-%m}"


def parse_drift(text: str) -> Drift:
    """Parse ``KIND@YYYY-MM`` (e.g. ``covariate@2016-06``) as given on a command line."""
    kind, sep, month = text.strip().partition("@")
    if not sep or not kind or not month:
        raise ValueError(
            f"expected a drift as KIND@YYYY-MM with KIND one of {', '.join(DRIFT_KINDS)} "
            f"(e.g. covariate@2016-06), got {text!r}"
        )
    kind = kind.strip().lower()
    if kind not in DRIFT_KINDS:
        raise ValueError(
            f"unknown drift kind {kind!r} in {text!r}; expected one of {', '.join(DRIFT_KINDS)}"
        )
    try:
        first = parse_month(month)
    except ValueError as exc:
        raise ValueError(f"bad drift month in {text!r}: {exc}") from None
    return Drift(kind, first)
