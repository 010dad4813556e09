"""The estimate made before labels, judged when the cohort is scored against the champion's
expected level.

* ``estimated_performance`` (at scoring): the estimated AUC and lift at 10 % against the
  version's expected level, the mean of its first out-of-time backtests (the same level
  ``champion_performance`` holds it to, :func:`churn_assets.performance.judging.expected_level`;
  validation metrics never stand in: they are optimistic). Until a backtest exists the verdict is
  ``n/a``. It warns when the level lies outside the estimate's interval on the bad side (above
  it): under a covariate shift the estimate falls before any label lands. Never an error: an
  estimate rests on the scores' calibration, which only labels can confirm.
* **Bonferroni.** Two metrics are judged at once; to keep the chance of a false warning on a
  stable cohort within ``1 - confidence`` (default 99 %, as ``champion_performance``), each
  metric's interval is taken at ``1 - (1 - confidence) / k`` for k metrics judged (99.5 % for
  two). The level is a realised metric of earlier cohorts, and the interval is the spread of a
  realised metric of such a cohort under calibration, so the confidence is the test's own: no
  tolerance is tuned to any kind of drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from churn_assets.performance.estimation import Estimate
from churn_assets.performance.judging import (
    ExpectedLevel,
    MetricJudgement,
    PerformanceVerdict,
    judge_metrics,
)

ESTIMATE_MONITOR = "estimated_performance"
ESTIMATE_JUDGED_METRICS = ("auc", "lift_top_decile")
BEFORE_LABELS = "estimated from the scores before labels land, assuming they are calibrated"


def per_metric_confidence(family: float, metrics: int) -> float:
    """Bonferroni: each of ``metrics`` intervals at this level keeps the family's confidence."""
    return 1 - (1 - family) / max(metrics, 1)


def judge_estimate(
    version: str,
    estimates: Mapping[str, Estimate],
    expected: ExpectedLevel | None,
    family: float,
    metrics: Sequence[str] = ESTIMATE_JUDGED_METRICS,
) -> tuple[PerformanceVerdict, list[MetricJudgement]]:
    """warn when the expected level lies above an estimate's interval; n/a with no level."""
    each = per_metric_confidence(family, len(metrics))
    if expected is None:
        return PerformanceVerdict(
            "n/a",
            f"n/a: champion v{version} has no out-of-time backtest yet to expect a level from "
            f"({BEFORE_LABELS})",
        ), []
    judgements = judge_metrics(
        {m: e.estimate for m, e in estimates.items()},
        {m: (e.low, e.high) for m, e in estimates.items()},
        expected.values,
        metrics,
    )
    basis = (
        f"{BEFORE_LABELS}; expected level from {expected.describe()}; {family:.0%} over "
        f"{len(metrics)} metrics, {each:.2%} each (Bonferroni)"
    )
    if not judgements:
        return PerformanceVerdict("n/a", f"n/a: no estimate of v{version} defined ({basis})"), []
    failing = [j for j in judgements if j.failed]
    shown = "; ".join(j.describe() for j in (failing or judgements))
    if failing:
        return PerformanceVerdict(
            "warn", f"champion v{version} expected to fall below its level: {shown} ({basis})"
        ), judgements
    return PerformanceVerdict(
        "pass", f"champion v{version} expected at its level: {shown} ({basis})"
    ), judgements
