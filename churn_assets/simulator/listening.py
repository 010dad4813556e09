"""Daily listening: who plays how much on which day, and the engagement that drives it.

Each user's log daily plays follow a level with a persistent trend, pulled back towards the
user's own home level. A paid membership makes listening likely; without one it mostly stops.
The last 30 days are kept for the churn inputs.
"""

from __future__ import annotations

import numpy as np

from . import marginals as mg
from .population import Population
from .subscriptions import TransactionStore
from .targeted import CITY_DECLINE_VOLUME, TargetedDrifts

HISTORY_DAYS = 30  # daily listening kept for the churn inputs
LOG_COUNTS = ("num_25", "num_50", "num_75", "num_985", "num_100")


class Listening:
    """Steps of :class:`~.world.World` that make its users listen."""

    rng: np.random.Generator
    pop: Population
    txns: TransactionStore
    months: int
    month_starts: np.ndarray
    covariate_from: int | None
    targeted: TargetedDrifts
    city_day: int | None
    level: np.ndarray
    trend: np.ndarray
    history: np.ndarray
    last_listen: np.ndarray

    def _coverage(self, first: int, end: int) -> np.ndarray:
        """users x days: whether a paid (non-cancel) membership covers the day."""
        txns = self.txns.arrays()
        live = (
            (txns["is_cancel"] == 0)
            & (txns["transaction_date"] < end)
            & (txns["membership_expire_date"] > first)
        )
        users = txns["user"][live]
        low = np.maximum(txns["transaction_date"][live], first) - first
        high = np.minimum(txns["membership_expire_date"][live], end) - first
        steps = np.zeros((len(self.pop), end - first + 1), dtype="int32")
        np.add.at(steps, (users, low), 1)
        np.add.at(steps, (users, high), -1)
        return np.cumsum(steps, axis=1)[:, :-1] > 0

    def _evolve_levels(self) -> None:
        """One month of engagement: level follows a persistent per-user trend, pulled home."""
        size = len(self.pop)
        self.level = (
            self.level
            + self.trend
            + self.rng.normal(0.0, mg.LEVEL_NOISE_SD, size)
            - mg.LEVEL_REVERSION * (self.level - self.pop.level0)
        )
        keep = mg.TREND_PERSISTENCE
        self.trend = keep * self.trend + np.sqrt(1 - keep**2) * self.rng.normal(
            0.0, mg.TREND_SD, size
        )

    def _volume(self, days: np.ndarray, factor: float = mg.COVARIATE_VOLUME) -> np.ndarray:
        """1 before a covariate drift, ``factor`` from its first day on (listening drops)."""
        if self.covariate_from is None or self.covariate_from >= self.months:
            return np.ones(days.size)
        drift_day = self.month_starts[self.covariate_from]
        return np.where(days >= drift_day, factor, 1.0)

    def _listen(self, first: int, end: int, *, landed: bool) -> dict[str, np.ndarray]:
        """Daily play counts for days [first, end); also moves the churn inputs and levels on."""
        rng = self.rng
        size, span = len(self.pop), end - first
        days = first + np.arange(span)
        covered = self._coverage(first, end)
        registered = days[None, :] >= self.pop.reg_day[:, None]
        level = self.level[:, None] + self.trend[:, None] * (np.arange(span) / span)[None, :]
        chance = mg.sigmoid(
            mg.ACTIVITY_INTERCEPT
            + mg.ACTIVITY_SLOPE * (level - mg.LEVEL_REF)
            + self.pop.activity_bias[:, None]
        )
        chance = chance * self._volume(days, mg.COVARIATE_ACTIVITY)[None, :]
        chance = np.where(covered, chance, np.where(registered, chance * mg.LAPSED_LISTENING, 0.0))
        day_index, users = np.nonzero(rng.random((span, size)) < chance.T)
        rows = users.size

        plays = np.exp(level[users, day_index] + rng.normal(0.0, mg.DAY_NOISE_SD, rows))
        plays = np.minimum(plays, mg.MAX_DAILY_PLAYS) * self._volume(days)[day_index]
        if self.city_day is not None:
            declined = (self.pop.city[users] == self.targeted.city) & (
                days[day_index] >= self.city_day
            )
            plays = np.where(declined, plays * CITY_DECLINE_VOLUME, plays)
        counts = {name: rng.poisson(plays * share) for name, share in mg.PARTIAL_PLAYS.items()}
        counts["num_100"] = rng.poisson(plays)
        total = sum(counts[name] for name in LOG_COUNTS)
        silent = total == 0
        counts["num_25"][silent] = 1
        total[silent] = 1
        unique = np.maximum(rng.binomial(total, mg.UNIQUE_SHARE), 1)
        song = mg.SONG_SECS * np.exp(rng.normal(0.0, mg.SONG_SD, rows))
        secs = np.round(song * sum(counts[name] * mg.PLAYED_SHARE[name] for name in LOG_COUNTS), 3)

        daily = np.zeros((size, span))
        daily[users, day_index] = secs
        self.history = np.concatenate([self.history, daily], axis=1)[:, -HISTORY_DAYS:]
        np.maximum.at(self.last_listen, users, days[day_index])
        self._evolve_levels()
        if not landed or rows == 0:
            shown = secs
        else:
            shown = secs.copy()
            negative = max(1, round(mg.NEGATIVE_SECS_SHARE * rows))
            absurd = max(1, round(mg.ABSURD_SECS_SHARE * rows))
            picked = rng.choice(rows, size=min(rows, negative + absurd), replace=False)
            shown[picked[:negative]] = -np.round(rng.uniform(1.0, 5e4, picked[:negative].size), 3)
            shown[picked[negative:]] = np.round(
                rng.uniform(86_400.5, 864_000.0, picked[negative:].size), 3
            )
        return {
            "user": users,
            "date": days[day_index],
            **{name: counts[name] for name in LOG_COUNTS},
            "num_unq": unique,
            "total_secs": shown,
        }
