"""Payment history that thins toward the start of the data, as a log that begins on a fixed day.

KKBox's members registered years before its payment log begins, so in the first cohorts most
users' first landed payment is only a few months old, and yearly counts (transactions, renewals,
tenure) grow month by month by construction. With ``thin_history`` on, each user's landed
transactions begin on the first day of a month drawn per user: ``m`` months before the first
simulated month, ``m`` geometric on 1, 2, ... with mean ``thin_history``, capped by the history's
length (a capped user lands the whole history). Rows dated before that day are not landed.

Only what lands changes, as with the degenerate columns (:mod:`.knobs`): the world, its labels and
its truth are those of the same seed without thinning. Labels are KKBox's own, from its full
records, so a user whose current subscription was bought before the drawn start still carries a
label the landed rows alone cannot derive. Members and listening are untouched: history months
land no user_logs anyway, and every simulated month lands in full. The draw has its own random
stream, so a world without thinning is byte-identical to one drawn before the knob existed;
truth/history_starts.csv records each user's drawn start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .dates import yyyymmdd
from .population import Population

THIN_HISTORY_MEAN = 3.0  # months back, on average, of a user's first landed month when asked
START_COLUMNS = ("msno", "months_back", "landed_from")
_THIN_STREAM = 107


def check_thin_history(value: object) -> float:
    """0 (off) or a mean of at least one month; returned as a float."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not (value == 0 or 1 <= value < float("inf")):
        raise ValueError(
            f"thin_history must be 0 (off) or a mean of at least 1 month, got {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class HistoryStarts:
    """Per user (population index), how many months before the window its landed rows begin."""

    back: np.ndarray  # months back from the first simulated month, 0..history months
    day: np.ndarray  # day number of the first day landed

    def landed(self, users: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """Which transaction rows (by user and day number) are dated on or after their start."""
        return dates >= self.day[users]

    def record(self, pop: Population) -> pd.DataFrame:
        """``msno, months_back, landed_from`` of the users who exist before the window."""
        users = np.flatnonzero(pop.reg_month < 0)
        frame = pd.DataFrame(
            {
                "msno": pop.msno[users],
                "months_back": self.back[users],
                "landed_from": yyyymmdd(self.day[users]),
            },
            columns=list(START_COLUMNS),
        )
        return frame.sort_values("msno", kind="mergesort").reset_index(drop=True)


def draw_history_starts(
    pop: Population, month_days: np.ndarray, mean: float, seed: int
) -> HistoryStarts:
    """Draw every user's first landed month, ``mean`` months back on average.

    ``month_days`` are the day numbers of the history months' first days followed by the first
    simulated month's; a user ``m`` months back lands from ``month_days[-1 - m]``.
    """
    rng = np.random.default_rng([seed, _THIN_STREAM])
    history = month_days.size - 1
    back = np.minimum(rng.geometric(1.0 / mean, size=len(pop)), history).astype("int64")
    return HistoryStarts(back=back, day=month_days[history - back])
