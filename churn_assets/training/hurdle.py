"""The hurdle a candidate must clear to be registered: beat the best baseline.

The baselines (the as-is rule, a logistic regression) are fitted on the training cohorts and
scored with the candidate on the validation cohort. Three outcomes:

* **cleared**: the candidate's AUC is above the best baseline's plus ``hurdle_margin``;
* **tied**: it is not, but not beyond doubt either: the paired bootstrap interval of the AUC
  difference (candidate minus baseline, the same users resampled for both) reaches above the
  margin. On a validation cohort of a few thousand users, a gap of a few thousandths is noise;
* **failed**: below the margin beyond doubt.

A tie is enough to replace a champion that is provisional or in question (the retraining was
triggered by drift, a persistent performance failure or staleness): a model that has lost its
footing is worse than a fresh one that does as well as a logistic regression. It never challenges
a healthy champion, which only a cleared candidate can.
"""

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from churn_assets.modeling.bootstrap import paired_differences

HurdleOutcome = Literal["cleared", "tied", "failed"]


@dataclass(frozen=True)
class Hurdle:
    baseline: str  # the best baseline by validation AUC
    baseline_auc: float
    candidate_auc: float
    margin: float
    difference_low: float  # paired bootstrap interval of candidate minus baseline AUC
    difference_high: float
    confidence: float

    @property
    def outcome(self) -> HurdleOutcome:
        if math.isnan(self.candidate_auc):
            return "failed"
        if self.candidate_auc > self.baseline_auc + self.margin:
            return "cleared"
        return "tied" if self.difference_high > self.margin else "failed"

    @property
    def cleared(self) -> bool:
        return self.outcome == "cleared"

    @property
    def good_enough_for_a_doubtful_champion(self) -> bool:
        return self.outcome != "failed"

    @property
    def tag(self) -> str:
        """The ``cleared_hurdle`` tag: ``true``, ``tied`` or ``false`` (the last is provisional)."""
        return {"cleared": "true", "tied": "tied", "failed": "false"}[self.outcome]

    def verdict(self) -> str:
        return (
            f"val AUC {self.candidate_auc:.4f} vs best baseline {self.baseline} "
            f"{self.baseline_auc:.4f} + margin {self.margin:g}: {self.outcome} (difference "
            f"{self.candidate_auc - self.baseline_auc:+.4f}, {self.confidence:.0%} interval "
            f"[{self.difference_low:+.4f}, {self.difference_high:+.4f}])"
        )


def judge_hurdle(
    y_true: np.ndarray,
    candidate: np.ndarray,
    baselines: dict[str, np.ndarray],
    aucs: dict[str, float],
    margin: float,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> Hurdle:
    """The candidate's scores against the best of the baselines' on the same users.

    ``aucs`` holds the AUC of the candidate (key ``candidate``) and of each baseline, as
    measured already on these users.
    """
    best = max(baselines, key=lambda name: -math.inf if math.isnan(aucs[name]) else aucs[name])
    low, high = paired_differences(
        y_true,
        candidate,
        baselines[best],
        ("auc",),
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )["auc"]
    return Hurdle(best, aucs[best], aucs["candidate"], margin, low, high, confidence)
