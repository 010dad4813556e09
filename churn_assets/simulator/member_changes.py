"""Members whose profile changes after registration: they move, correct their age, re-register.

A changed user appears again, with the new values and the same msno and registration date, in
the monthly members file of the month of the change, as a source that ships changed rows with
the new ones would deliver it. The world's behaviour is unaffected (it was drawn from the
registration profile); the changes are drawn from their own random stream, so every other file
is byte-identical to the same world without them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import marginals as mg
from .dates import yyyymmdd
from .knobs import NO_AGE, SINGLE_CITY
from .population import Population
from .writer import MEMBER_COLUMNS

CHANGE_COLUMNS = ("msno", "month", "column", "old", "new")
BD_CHANGE_SHARE = 0.3  # of changed users: the birth year is corrected too (or instead)
VIA_CHANGE_SHARE = 0.2  # of changed users: registered_via changes (a re-registration)
_CHANGE_STREAM = 103


@dataclass(frozen=True)
class MemberChanges:
    """One change per changed user: the month index it lands in and the new profile columns."""

    users: np.ndarray  # population indices, ordered
    months: np.ndarray  # index of the simulated month whose members file carries the change
    city: np.ndarray
    bd: np.ndarray
    registered_via: np.ndarray

    def rows(self, pop: Population, month: int) -> pd.DataFrame:
        """Members rows, with the new values, of the users whose change lands in ``month``."""
        here = self.months == month
        users = self.users[here]
        return pd.DataFrame(
            {
                "msno": pop.msno[users],
                "city": self.city[here],
                "bd": self.bd[here],
                "gender": pop.gender[users],
                "registered_via": self.registered_via[here],
                "registration_init_time": yyyymmdd(pop.reg_day[users]),
            },
            columns=list(MEMBER_COLUMNS),
        )

    def record(self, pop: Population, month_days: list[str]) -> pd.DataFrame:
        """``msno, month, column, old, new``: one row per changed column, by month and msno."""
        parts = []
        for column in ("city", "bd", "registered_via"):
            old = getattr(pop, column)[self.users]
            new = getattr(self, column)
            moved = old != new
            parts.append(
                pd.DataFrame(
                    {
                        "msno": pop.msno[self.users[moved]],
                        "month": np.array(month_days, dtype=object)[self.months[moved]],
                        "column": column,
                        "old": old[moved],
                        "new": new[moved],
                    },
                    columns=list(CHANGE_COLUMNS),
                )
            )
        frame = pd.concat(parts, ignore_index=True)
        return frame.sort_values(["month", "msno", "column"], kind="mergesort").reset_index(
            drop=True
        )


def _other(rng: np.random.Generator, table: dict[int, float], old: np.ndarray) -> np.ndarray:
    """A code from ``table``'s marginal other than ``old``, per user."""
    codes, weights = mg.probabilities(table)
    out = old.copy()
    for i, value in enumerate(old):
        allowed = codes != value
        out[i] = rng.choice(codes[allowed], p=weights[allowed] / weights[allowed].sum())
    return out


def draw_member_changes(
    pop: Population, months: int, share: float, seed: int, degenerate: frozenset[str]
) -> MemberChanges:
    """Change ``share`` of the users that have a members row and a simulated month after it.

    Every changed user gets a new city (unless the world has a single city), some a corrected
    birth year (unless ages are blank) or another registration channel; at least one column
    changes. The change lands in a simulated month after the user's registration month.
    """
    rng = np.random.default_rng([seed, _CHANGE_STREAM])
    eligible = np.flatnonzero(pop.has_member_row & (pop.reg_month < months - 1))
    count = round(share * eligible.size)
    users = np.sort(rng.choice(eligible, size=count, replace=False))
    first = pop.reg_month[users] + 1
    month = first + (rng.random(count) * (months - first)).astype("int64")

    city, bd, via = pop.city[users].copy(), pop.bd[users].copy(), pop.registered_via[users].copy()
    new_city = SINGLE_CITY not in degenerate
    new_bd = (rng.random(count) < BD_CHANGE_SHARE) & (NO_AGE not in degenerate)
    new_via = (rng.random(count) < VIA_CHANGE_SHARE) | ~(new_city | new_bd)
    if new_city:
        city = _other(rng, mg.CITY, city)
    offset, shape, scale = mg.AGE_GAMMA
    ages = np.clip(np.round(offset + rng.gamma(shape, scale, count)), 10, 90).astype("int64")
    ages = np.where(ages == bd, ages + 1, ages)
    bd = np.where(new_bd, ages, bd)
    via = np.where(new_via, _other(rng, mg.REGISTERED_VIA, via), via)
    return MemberChanges(users, month, city, bd, via)
