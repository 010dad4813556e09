"""The knobs of a training run, each with its one default."""

from typing import Literal

import dagster as dg
from pydantic import Field

from churn_assets.modeling.bootstrap import DEFAULT_RESAMPLES

# Two-sided confidence of the paired bootstrap that decides a promotion.
DEFAULT_PROMOTION_CONFIDENCE = 0.90
# Share of the validation cohort's users kept out of the search, where champion and challenger
# are compared (:mod:`churn_assets.training.promotion`).
DEFAULT_HELD_OUT_SHARE = 0.5


class TrainingConfig(dg.Config):
    """Knobs of a training run; replay and the retraining sensor set ``as_of_month``."""

    as_of_month: str = Field(
        default="",
        description="Train as on the first day of this month (YYYY-MM); empty means today.",
    )
    window_cohorts: int = Field(default=6, description="Labelled cohorts used, newest validates.")
    time_budget_s: float = Field(default=30.0, description="FLAML search budget in seconds.")
    warm_budget_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Share of time_budget_s a warm-started retrain searches: it starts from the "
        "champion's configuration, so it needs less of the search a cold start does.",
    )
    seed: int = 42
    class_weight: Literal["none", "balanced"] = Field(
        default="none",
        description="'balanced' weights churners up to half the total weight; 'none' keeps "
        "the probabilities calibrated.",
    )
    search_metric: Literal["roc_auc", "log_loss"] = Field(
        default="log_loss",
        description="What FLAML optimises on the validation cohort. Log loss, a proper scoring "
        "rule, keeps the probabilities calibrated for the buckets' absolute cut-offs; on the "
        "simulated benchmark it also ranked as well as searching on AUC.",
    )
    warm_start: bool = Field(
        default=True, description="Start the search from the champion's best configuration."
    )
    hurdle_margin: float = Field(
        default=0.0,
        description="AUC a candidate must gain over the best baseline to be registered.",
    )
    first_model_skips_hurdle: bool = Field(
        default=True,
        description="With no champion yet, register the candidate even below the hurdle, so "
        "that cohorts get scored at all.",
    )
    auto_promote: bool = Field(
        default=True,
        description="Promote a challenger that beats the champion by promotion_margin; when "
        "false, champions change only through promotion_job (the first one excepted).",
    )
    promotion_margin: float = Field(
        default=0.0,
        description="Gain a challenger must show beyond doubt to replace the champion: the lower "
        "bound of its AUC gain's interval must exceed it (log loss: the upper bound of the "
        "difference must be below minus it).",
    )
    promotion_metric: Literal["auc", "log_loss"] = Field(
        default="auc",
        description="What promotion is decided on: AUC (ranking, what the retention list is cut "
        "from) or log loss (calibration). Both differences are recorded.",
    )
    promotion_confidence: float = Field(
        default=DEFAULT_PROMOTION_CONFIDENCE,
        gt=0.0,
        lt=1.0,
        description="Two-sided confidence of the paired bootstrap interval of the difference.",
    )
    promotion_resamples: int = Field(
        default=DEFAULT_RESAMPLES, ge=20, description="Paired bootstrap resamples of the users."
    )
    comparison_held_out_share: float = Field(
        default=DEFAULT_HELD_OUT_SHARE,
        ge=0.0,
        lt=1.0,
        description="Share of the validation cohort's users (by a fixed hash of msno) kept out "
        "of the search, where challenger and champion are compared; 0 compares on the whole "
        "validation cohort, which the challenger was tuned on, so it is never auto-promoted.",
    )
    champion_in_question: list[str] = Field(
        default_factory=list,
        description="The triggers in force when the retraining sensor launched this run (drift, "
        "performance, calibration, staleness): with any of them the champion is replaced by a "
        "candidate at least as good on the users neither was tuned on, not only by one better "
        "beyond doubt; with calibration, a champion the candidate does not replace is "
        "recalibrated on this validation cohort when that beats its current map.",
    )
    recent_window_cohorts: int = Field(
        default=3,
        ge=1,
        description="After a persistent performance failure, the window choice also tries "
        "learning from only this many of the newest training cohorts.",
    )
    recency_half_life_cohorts: float = Field(
        default=2.0,
        gt=0.0,
        description="After a persistent performance failure, the window choice also tries the "
        "whole window with rows weighted down by half every this many cohorts of age.",
    )
    calibration: Literal["auto", "none", "platt", "isotonic"] = Field(
        default="auto",
        description="How the booster's scores are mapped to probabilities, fitted on the "
        "validation cohort: 'auto' keeps whichever of raw, Platt and isotonic (isotonic only "
        "with isotonic_min_positives churners) has the lowest cross-validated log loss there; "
        "a named method is fitted as is.",
    )
    isotonic_min_positives: int = Field(
        default=200,
        ge=1,
        description="Churners the validation cohort needs before 'auto' tries isotonic "
        "calibration: with fewer its steps follow the noise, and Platt's two parameters do better.",
    )
    calibration_confidence: float = Field(
        default=0.5,
        ge=0.5,
        lt=1.0,
        description="One-sided confidence that a calibration's out-of-fold log-loss gain over "
        "the raw scores is not noise; below it the raw scores are kept. 0.5: any out-of-fold "
        "gain (Platt on calibrated scores costs next to nothing; missing a real miscalibration "
        "on a cohort of a few dozen churners costs the estimate before labels its point).",
    )
    calibration_folds: int = Field(
        default=5, ge=2, description="Folds of the cross-validation that chooses the calibration."
    )
    include_incomplete_cohorts: bool = Field(
        default=False,
        description="Train on cohorts built with a hole in their windows too. By default they "
        "are used only while fewer than two complete labelled cohorts exist.",
    )
