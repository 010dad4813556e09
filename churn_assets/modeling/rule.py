"""The as-is rule: a member who switched auto-renew off or cancelled is expected to leave.

Training holds every candidate against it (a baseline) and the monthly backtests hold every
champion against it; the score is the churn rate each group had in the training cohorts, so it is
a calibrated probability too (log loss comparable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn_assets.modeling.frame import LABEL

RULE_COLUMNS = ("last_is_auto_renew", "last_is_cancel")


def rule_flags(frame: pd.DataFrame) -> np.ndarray:
    """True for members the as-is rule calls leavers: auto-renew off, or the plan cancelled.

    A feature table without either column flags nobody (the rule then ranks no better than chance).
    """
    flags = np.zeros(len(frame), dtype=bool)
    if "last_is_auto_renew" in frame.columns:
        flags |= frame["last_is_auto_renew"].astype("float64").fillna(0).to_numpy() < 0.5
    if "last_is_cancel" in frame.columns:
        flags |= frame["last_is_cancel"].astype("float64").fillna(0).to_numpy() >= 0.5
    return flags


@dataclass(frozen=True)
class RuleBaseline:
    """The as-is rule, scoring each group with the churn rate it had in the training cohorts."""

    flagged_rate: float
    unflagged_rate: float

    @classmethod
    def fit(cls, train: pd.DataFrame) -> RuleBaseline:
        y = train[LABEL].to_numpy()
        flags = rule_flags(train)
        overall = float(y.mean())
        return cls(
            flagged_rate=float(y[flags].mean()) if flags.any() else overall,
            unflagged_rate=float(y[~flags].mean()) if (~flags).any() else overall,
        )

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.where(rule_flags(frame), self.flagged_rate, self.unflagged_rate)
