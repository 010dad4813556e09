"""A fair challenger: champion and candidate compared on users neither was tuned on.

The candidate's validation cohort is where FLAML chose it, so its score there flatters it; the
champion's validation cohort flatters the champion. Every labelled cohort in a training window is
either fitted on or tuned on by the candidate (training takes all cohorts before its validation
cohort), so no whole cohort is neutral to both. Training therefore holds a share of the
validation cohort's users out of the search (default half, chosen by a fixed hash of msno, see
:func:`churn_assets.training.model.held_out_users`): the candidate never saw them, and the
champion, validated on an earlier cohort (or on this one with the same users held out), did not
either.

On those users both are scored and a **paired bootstrap** resamples the same users for both
(default 200 resamples, 90 % two-sided interval): the interval of the AUC difference (challenger
minus champion) is free of the luck of which users landed in the cohort, which both share.
The challenger is promoted when the **lower bound of the AUC difference exceeds
``promotion_margin``** (default 0): it ranks churners better with 95 % one-sided confidence. AUC
is the rule because ranking is what the retention list is cut from; ``promotion_metric =
"log_loss"`` promotes instead when the upper bound of the log-loss difference is below
``-promotion_margin`` (better calibrated). Both intervals are recorded either way.

When the comparison users are ones the challenger was tuned on (a validation cohort too small to
split into two two-class halves), the comparison is recorded but the challenger is not promoted
automatically: such a comparison is tilted towards it. A comparison tilted towards the champion
(validated on these very users) may still promote: it only makes promotion harder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import numpy as np

from churn_assets.performance.bootstrap import DEFAULT_RESAMPLES, paired_differences
from churn_assets.performance.metrics import classification_metrics

DEFAULT_PROMOTION_CONFIDENCE = 0.90
DEFAULT_HELD_OUT_SHARE = 0.5
PromotionMetric = Literal["auc", "log_loss"]
# Version tag: the share of its validation cohort's users a version was not tuned on.
HELD_OUT_TAG = "tuning_held_out_share"
_NAN = (float("nan"), float("nan"))


def champion_saw(
    tags: dict[str, str], cohort: date, held_out_share: float, users_held_out: bool
) -> str:
    """Why the champion (by its version tags) has seen the comparison users; '' if it has not."""
    validated_on = tags.get("validation_cohort", "")[:10]
    key = f"{cohort:%Y-%m-01}"
    trained_on = json.loads(tags.get("training_cohorts") or "[]")
    if key in trained_on:
        return f"the champion was trained on {cohort:%Y-%m}"
    if not validated_on or validated_on < key:
        return ""
    if validated_on > key:
        return (
            f"the champion was trained on cohorts up to {validated_on[:7]}, {cohort:%Y-%m} included"
        )
    champion_share = float(tags.get(HELD_OUT_TAG) or 0.0)
    if users_held_out and champion_share >= held_out_share:
        return ""  # the same hash held these users out of the champion's search too
    return f"the champion was tuned on these users of {cohort:%Y-%m}"


@dataclass(frozen=True)
class ChampionComparison:
    """Challenger against champion on one set of users, with paired bootstrap intervals."""

    champion_version: str
    cohort: date
    users: int
    basis: str
    seen_by_challenger: bool
    seen_by_champion: str  # why the champion saw these users, '' if it did not
    challenger: dict[str, float] = field(default_factory=dict)  # auc, log_loss
    champion: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # challenger - champ
    confidence: float = DEFAULT_PROMOTION_CONFIDENCE
    champion_unscorable: str = ""

    @property
    def neutral(self) -> bool:
        return not self.seen_by_challenger and not self.seen_by_champion

    def difference(self, metric: str) -> float:
        return self.challenger.get(metric, math.nan) - self.champion.get(metric, math.nan)

    def decide(self, metric: PromotionMetric, margin: float) -> tuple[bool, str]:
        """Does the challenger beat the champion, and the one-line reason."""
        if self.champion_unscorable:
            return (
                True,
                f"champion v{self.champion_version} cannot score: {self.champion_unscorable}",
            )
        low, high = self.intervals.get(metric, _NAN)
        level = f"{self.confidence:.0%}"
        shown = (
            f"{metric} difference {self.difference(metric):+.4f}, {level} interval "
            f"[{low:+.4f}, {high:+.4f}] on {self.users} {self.basis}"
        )
        if self.seen_by_challenger:
            return False, f"not promoted automatically: compared on users it was tuned on ({shown})"
        if metric == "auc":
            beats = not math.isnan(low) and low > margin
            rule = f"lower bound {'>' if beats else '<='} margin {margin:g}"
        else:
            beats = not math.isnan(high) and high < -margin
            rule = f"upper bound {'<' if beats else '>='} -margin {-margin:g}"
        return beats, f"{shown}: {rule}"

    def holds_up(self, metric: PromotionMetric) -> tuple[bool, str]:
        """Is the challenger at least as good as the champion on these users (the point
        estimate of the paired difference), and the one-line reason. Only for a champion in
        question; never on users the challenger was tuned on."""
        difference = self.difference(metric)
        shown = f"{metric} difference {difference:+.4f} on {self.users} {self.basis}"
        if self.champion_unscorable:
            return True, f"champion v{self.champion_version} cannot score"
        if self.seen_by_challenger or math.isnan(difference):
            return False, f"cannot be compared fairly ({shown})"
        holds = difference >= 0 if metric == "auc" else difference <= 0
        return holds, f"is {'at least as good' if holds else 'worse'} ({shown})"

    def tags(self) -> dict[str, str]:
        auc_low, auc_high = self.intervals.get("auc", _NAN)
        ll_low, ll_high = self.intervals.get("log_loss", _NAN)
        return {
            "comparison_cohort": f"{self.cohort:%Y-%m-01}",
            "comparison_users": str(self.users),
            "comparison_basis": self.basis,
            "comparison_neutral": str(self.neutral).lower(),
            "comparison_confidence": f"{self.confidence:g}",
            "champion_comparison_auc": f"{self.champion.get('auc', math.nan):.6f}",
            "challenger_comparison_auc": f"{self.challenger.get('auc', math.nan):.6f}",
            "auc_diff": f"{self.difference('auc'):.6f}",
            "auc_diff_interval": f"[{auc_low:.6f}, {auc_high:.6f}]",
            "log_loss_diff": f"{self.difference('log_loss'):.6f}",
            "log_loss_diff_interval": f"[{ll_low:.6f}, {ll_high:.6f}]",
        }

    def metadata(self) -> dict[str, object]:
        auc_low, auc_high = self.intervals.get("auc", _NAN)
        ll_low, ll_high = self.intervals.get("log_loss", _NAN)
        return {
            "comparison_cohort": f"{self.cohort:%Y-%m}",
            "comparison_users": self.users,
            "comparison_basis": self.basis,
            "comparison_neutral": self.neutral,
            "comparison_not_neutral_because": "; ".join(
                r
                for r in (
                    "the challenger was tuned on these users" if self.seen_by_challenger else "",
                    self.seen_by_champion,
                )
                if r
            ),
            "champion_comparison_auc": self.champion.get("auc", math.nan),
            "challenger_comparison_auc": self.challenger.get("auc", math.nan),
            "auc_diff": self.difference("auc"),
            "auc_diff_low": auc_low,
            "auc_diff_high": auc_high,
            "log_loss_diff": self.difference("log_loss"),
            "log_loss_diff_low": ll_low,
            "log_loss_diff_high": ll_high,
            "comparison_confidence": self.confidence,
        }


def compare_scores(
    y_true: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    champion_version: str,
    cohort: date,
    basis: str,
    seen_by_challenger: bool,
    seen_by_champion: str,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_PROMOTION_CONFIDENCE,
    seed: int = 0,
) -> ChampionComparison:
    """Both models' AUC and log loss on the same users, and the paired bootstrap intervals."""
    y = np.asarray(y_true, dtype=int)

    def scored(p: np.ndarray) -> dict[str, float]:
        metrics = classification_metrics(y, p)
        return {"auc": metrics["auc"], "log_loss": metrics["log_loss"]}

    return ChampionComparison(
        champion_version=champion_version,
        cohort=cohort,
        users=len(y),
        basis=basis,
        seen_by_challenger=seen_by_challenger,
        seen_by_champion=seen_by_champion,
        challenger=scored(challenger),
        champion=scored(champion),
        intervals=paired_differences(
            y, challenger, champion, resamples=resamples, confidence=confidence, seed=seed
        ),
        confidence=confidence,
    )
