"""Who is champion: a fair comparison of challenger and champion, and the one promotion rule.

Registration (:func:`registers`) and promotion (:func:`decide_promotion`) are decided here and
nowhere else.

A fair challenger: champion and candidate compared on users neither was tuned on.

The candidate's validation cohort is where FLAML chose it, so its score there flatters it; the
champion's validation cohort flatters the champion. Every labelled cohort in a training window is
either fitted on or tuned on by the candidate (training takes all cohorts before its validation
cohort), so no whole cohort is neutral to both. Training therefore holds a share of the
validation cohort's users out of the search (default half, chosen by a fixed hash of msno, see
:func:`churn_assets.training.split.held_out_users`): the candidate never saw them, and the
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
from mlflow.entities.model_registry import ModelVersion

from churn_assets.keys import HELD_OUT_TAG
from churn_assets.modeling.bootstrap import DEFAULT_RESAMPLES, paired_differences
from churn_assets.modeling.calibration import ChurnModel, load_churn_model
from churn_assets.modeling.frame import LABEL
from churn_assets.modeling.metrics import classification_metrics
from churn_assets.resources import ModelRegistryResource, ModelUnavailableError, version_facts
from churn_assets.training.config import DEFAULT_PROMOTION_CONFIDENCE, TrainingConfig
from churn_assets.training.hurdle import Hurdle
from churn_assets.training.lifecycle import is_provisional
from churn_assets.training.split import LabelledSplit

PromotionMetric = Literal["auc", "log_loss"]
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


def compare_with_champion(
    registry: ModelRegistryResource,
    champion: ModelVersion,
    challenger: ChurnModel,
    split: LabelledSplit,
    config: TrainingConfig,
) -> ChampionComparison:
    """Challenger and champion on the users held out of the search (paired bootstrap), each
    scored as it is (or would be) served: booster and calibration."""
    held_out = not split.held_out.empty
    rows = split.held_out if held_out else split.validation
    basis = (
        f"users of {split.validation_cohort:%Y-%m} held out of the search "
        f"({split.held_out_share:.0%} by msno hash)"
        if held_out
        else f"users of {split.validation_cohort:%Y-%m} the challenger was tuned on"
    )
    known = {
        "champion_version": str(champion.version),
        "cohort": split.validation_cohort,
        "basis": basis,
        "seen_by_challenger": not held_out,
        "seen_by_champion": champion_saw(
            version_facts(registry.client, champion),
            split.validation_cohort,
            split.held_out_share,
            held_out,
        ),
    }
    try:
        champion_probability = load_churn_model(registry, champion).probability(rows)
    except (KeyError, ModelUnavailableError) as exc:
        # The champion needs a feature the table no longer has, or its artifacts are gone: a
        # candidate replaces it rather than the training failing on it.
        return ChampionComparison(users=len(rows), champion_unscorable=str(exc), **known)
    return compare_scores(
        rows[LABEL].to_numpy(),
        challenger.probability(rows),
        champion_probability,
        resamples=config.promotion_resamples,
        confidence=config.promotion_confidence,
        seed=config.seed,
        **known,
    )


# Triggers that put the champion in question: with one in force, the burden of proof turns.
CHAMPION_IN_QUESTION = ("drift", "performance", "calibration", "staleness")


def in_question(config: TrainingConfig) -> list[str]:
    """The triggers in force for this run that put the champion in question."""
    return [t for t in config.champion_in_question if t in CHAMPION_IN_QUESTION]


@dataclass(frozen=True)
class Promotion:
    promote: bool
    beats_champion: bool
    reason: str


def decide_promotion(
    config: TrainingConfig,
    champion: ModelVersion | None,
    comparison: ChampionComparison | None,
    hurdle_ok: bool,
    used_incomplete: bool,
) -> Promotion:
    """Does a registered candidate become champion, and why.

    A healthy champion is replaced only by a challenger better beyond doubt (the paired
    bootstrap's bound). Two champions need less: a provisional one (registered below the hurdle
    or from cohorts with holes) gives way to the first candidate that clears or ties the hurdle
    (``hurdle_ok``, :mod:`churn_assets.training.hurdle`) on complete cohorts; one in question (the
    retraining was triggered by drift, a persistent performance failure or staleness) gives way
    to such a candidate that is at least as good on the users neither was tuned on: on a few
    hundred users "better beyond doubt" is rarely provable, and a champion that has lost its
    footing should not win on that.
    """
    if comparison is None:
        return Promotion(champion is None, False, "no champion to compare with")
    beats, reason = comparison.decide(config.promotion_metric, config.promotion_margin)
    version = comparison.champion_version
    provisional = champion is not None and is_provisional(champion)
    fit = hurdle_ok and not used_incomplete
    questioned = in_question(config)
    holds_up, holds_reason = comparison.holds_up(config.promotion_metric)
    if beats:
        replaces = True
    elif provisional and fit:
        replaces = True
        reason = (
            f"replaces provisional champion v{version} (registered below the hurdle or from "
            f"incomplete cohorts); this candidate passed the hurdle on complete cohorts ({reason})"
        )
    elif questioned and fit and holds_up:
        replaces = True
        reason = (
            f"replaces champion v{version}, in question ({', '.join(questioned)}): this "
            f"candidate passed the hurdle and {holds_reason}"
        )
    else:
        replaces = False
    return Promotion(config.auto_promote and replaces, beats, reason)


def registers(config: TrainingConfig, champion: ModelVersion | None, hurdle: Hurdle) -> bool:
    """A cleared hurdle registers; a tie does when the champion is provisional or in question;
    the very first model is registered whatever its hurdle (``first_model_skips_hurdle``)."""
    if champion is None:
        return hurdle.cleared or config.first_model_skips_hurdle
    doubtful = is_provisional(champion) or bool(in_question(config))
    return hurdle.cleared or (doubtful and hurdle.good_enough_for_a_doubtful_champion)
