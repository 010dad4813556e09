"""Drifts that move few columns, for benchmarking monitors against a known, narrow change.

A ``covariate`` drift moves most feature columns at once; these move one corner of the data:

* ``segment``: from the month on, members who registered through one channel
  (``registered_via``) can no longer renew automatically (the partner that billed them ends
  automatic billing): every purchase they make from then on is made by hand. Within that channel
  the column the churn function and a model lean on most, the current transaction's
  ``is_auto_renew``, collapses, and churn rises with it; diluted in the whole cohort it moves by
  a tenth of that. (A shift of who registers through a channel, taking that channel's habits
  along, is one no model needs to see: it moves only columns a model gives no weight.)
* ``price``: from the month on one payment plan (the 30-day plan at one list price) costs 30 %
  more: ``plan_list_price`` and ``actual_amount_paid`` of its purchases rise, discounts and free
  months stay what they were. The churn function reads no price, so churn stays the same.
* ``city_decline``: from the month on members of one city listen 40 % less (play counts and
  seconds, not the days they listen). Churn moves only through the listening trend it causes.

Which channel, plan and city is drawn from the seed on a stream of its own, and nothing is drawn
from the world's stream that it would not draw anyway, so every file before the drift month is
byte-identical to the same world without the drift. A price drift changes nothing else at all;
after a segment or city drift the world's draws part ways with the undrifted world's, so other
columns differ row by row but not in distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from . import marginals as mg
from .dates import months_between
from .drift import CITY_DECLINE, PRICE, SEGMENT, Drift

# The minor channels with enough members to judge in a world of a few thousand users (12 % and
# 6 % of them): a segment the whole cohort dilutes, not the majority channel.
SEGMENT_CHANNELS = (3, 4)
PRICE_PLAN_DAYS = 30
PRICE_FACTOR = 1.3
CITY_DECLINE_CITIES = (13, 5, 4)  # the largest cities after city 1
CITY_DECLINE_VOLUME = 0.6
LOG_COUNT_COLUMNS = ("num_25", "num_50", "num_75", "num_985", "num_100", "num_unq", "total_secs")
_CHOICE_STREAM = 105


@dataclass(frozen=True)
class TargetedDrifts:
    """The few-column drifts of one seeded world: from which window month, and on what."""

    segment_from: int | None
    price_from: int | None
    city_from: int | None
    channel: int
    price_tier: int
    city: int
    seed: int

    @classmethod
    def plan(cls, seed: int, drifts: list[Drift], start: date) -> TargetedDrifts:
        def first(kind: str) -> int | None:
            months = [d.month for d in drifts if d.kind == kind]
            return max(0, months_between(start, min(months))) if months else None

        rng = np.random.default_rng([seed, _CHOICE_STREAM])
        tiers = sorted(mg.PRICE_TIER)
        return cls(
            segment_from=first(SEGMENT),
            price_from=first(PRICE),
            city_from=first(CITY_DECLINE),
            channel=SEGMENT_CHANNELS[int(rng.integers(len(SEGMENT_CHANNELS)))],
            price_tier=tiers[int(rng.integers(len(tiers)))],
            city=CITY_DECLINE_CITIES[int(rng.integers(len(CITY_DECLINE_CITIES)))],
            seed=seed,
        )

    @property
    def new_price(self) -> int:
        return round(self.price_tier * PRICE_FACTOR)

    def billing_ended(self, month: int) -> bool:
        """Whether the segment drift's channel has lost automatic renewal in window ``month``."""
        return self.segment_from is not None and month >= self.segment_from

    def prices(
        self,
        day: np.ndarray,
        plan: np.ndarray,
        list_price: np.ndarray,
        paid: np.ndarray,
        drift_day: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """List price and amount paid of purchases made on ``day``, the price drift applied."""
        if drift_day is None:
            return list_price, paid
        raised = (day >= drift_day) & (plan == PRICE_PLAN_DAYS) & (list_price == self.price_tier)
        new_paid = np.round(paid * PRICE_FACTOR).astype("int64")
        return (
            np.where(raised, self.new_price, list_price),
            np.where(raised, new_paid, paid),
        )

    def describe(self, drift: Drift) -> dict[str, Any]:
        """What truth/drift_schedule.json records of a few-column drift beyond kind and month."""
        if drift.kind == SEGMENT:
            return {
                "registered_via": self.channel,
                "columns": ["transactions.is_auto_renew"],
            }
        if drift.kind == PRICE:
            return {
                "payment_plan_days": PRICE_PLAN_DAYS,
                "plan_list_price": self.price_tier,
                "new_plan_list_price": self.new_price,
                "factor": PRICE_FACTOR,
                "columns": ["transactions.plan_list_price", "transactions.actual_amount_paid"],
            }
        if drift.kind == CITY_DECLINE:
            return {
                "city": self.city,
                "volume_factor": CITY_DECLINE_VOLUME,
                "columns": [f"user_logs.{c}" for c in LOG_COUNT_COLUMNS],
            }
        return {}
