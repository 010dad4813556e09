"""The knobs of model_performance and performance_estimate, each with its one default."""

import dagster as dg
from pydantic import Field

from churn_assets.modeling.bootstrap import DEFAULT_RESAMPLES
from churn_assets.performance.calibration import CALIBRATION_BINS, CALIBRATION_CONFIDENCE
from churn_assets.performance.estimate_judging import ESTIMATE_JUDGED_METRICS
from churn_assets.performance.judging import (
    DEFAULT_CONFIDENCE,
    DEFAULT_EXPECTED_COHORTS,
    DEFAULT_FAILURES,
    DEFAULT_WINDOW,
    JUDGEABLE_METRICS,
    JUDGED_METRICS,
)
from churn_assets.settings import BUCKET_A_MIN_PROBABILITY


class PerformanceConfig(dg.Config):
    bucket_a_min_probability: float = Field(
        default=BUCKET_A_MIN_PROBABILITY,
        description="Score from which bucket A (as in scoring): f2 and bucket A.",
    )
    bootstrap_resamples: int = Field(
        default=DEFAULT_RESAMPLES,
        ge=20,
        description="Resamples of the cohort's users behind each metric's interval.",
    )
    confidence: float = Field(
        default=DEFAULT_CONFIDENCE,
        gt=0.0,
        lt=1.0,
        description="Two-sided confidence of the intervals: a metric fails when the expected "
        "level lies outside, on the bad side.",
    )
    seed: int = Field(
        default=0, description="Seed of the resampling: the same cohort, the same interval."
    )
    persistence_failures: int = Field(
        default=DEFAULT_FAILURES,
        ge=1,
        description="k of 'k of the last n': failures of one metric that make an ERROR.",
    )
    persistence_window: int = Field(
        default=DEFAULT_WINDOW,
        ge=1,
        description="n of 'k of the last n': the champion's latest cohorts judged.",
    )
    expected_cohorts: int = Field(
        default=DEFAULT_EXPECTED_COHORTS,
        ge=1,
        description="How many of the champion's first out-of-time backtests set its expected "
        "level (their mean).",
    )
    judged_metrics: list[str] = Field(
        default=list(JUDGED_METRICS),
        description=f"Metrics judged, among {', '.join(JUDGEABLE_METRICS)}.",
    )
    calibration_bins: int = Field(
        default=CALIBRATION_BINS,
        ge=2,
        description="Equal-mass bins of the champion's scores in its reliability curve.",
    )
    calibration_confidence: float = Field(
        default=CALIBRATION_CONFIDENCE,
        gt=0.0,
        lt=1.0,
        description="Confidence of the calibration test: warn when the gap between scores and "
        "churn rates per bin exceeds this quantile of what binomial noise gives.",
    )


class EstimateConfig(dg.Config):
    confidence: float = Field(
        default=DEFAULT_CONFIDENCE,
        gt=0.0,
        lt=1.0,
        description="Confidence over all the metrics judged together; each metric's interval "
        "takes its Bonferroni share (99 % over two metrics: 99.5 % each).",
    )
    draws: int = Field(
        default=DEFAULT_RESAMPLES,
        ge=20,
        description="Seeded draws (users resampled, labels drawn from their scores) behind "
        "each estimate's interval.",
    )
    seed: int = Field(
        default=0, description="Seed of the draws: the same scores, the same interval."
    )
    expected_cohorts: int = Field(
        default=DEFAULT_EXPECTED_COHORTS,
        ge=1,
        description="How many of the version's first out-of-time backtests set its expected "
        "level (their mean), as in model_performance.",
    )
    judged_metrics: list[str] = Field(
        default=list(ESTIMATE_JUDGED_METRICS),
        description=f"Estimates judged against the expected level, among "
        f"{', '.join(ESTIMATE_JUDGED_METRICS)}.",
    )
