"""The estimate made before labels, judged twice: when the cohort is scored, against the
champion's expected level; when its labels land, against what was realised.

* ``estimated_performance`` (at scoring): the estimated AUC and lift at 10 % against the
  version's expected level, the mean of its first out-of-time backtests (the same level
  ``champion_performance`` holds it to, :func:`churn_assets.performance.judging.expected_level`;
  validation metrics never stand in: they are optimistic). Until a backtest exists the verdict is
  ``n/a``. It warns when the level lies above the estimate's interval beyond doubt (the
  shortfall over the spread of estimate and level together, as ``champion_performance`` judges
  a realised dip; only outside the interval is information): under a covariate shift the
  estimate falls before any label lands. Never an error: an estimate rests on the scores'
  calibration, which only labels can confirm.
* **Bonferroni.** Two metrics are judged at once; to keep the chance of a false warning on a
  stable cohort within ``1 - confidence`` (default 99 %, as ``champion_performance``), each
  metric's interval is taken at ``1 - (1 - confidence) / k`` for k metrics judged (99.5 % for
  two). The level is a realised metric of earlier cohorts, and the interval is the spread of a
  realised metric of such a cohort under calibration, so the confidence is the test's own: no
  tolerance is tuned to any kind of drift.
* ``realised_vs_estimated_performance`` (when labels land): the realised metric lies within the
  estimate's interval, or the estimate was wrong, and which way. The estimate moved and the
  realised value followed: a covariate shift, seen before the labels. The realised value moved
  and the estimate did not: a concept shift, the relation between features and churn changed and
  the scores are no longer calibrated; only labels could show it. This is a diagnosis written
  into the verdict's detail, never an alarm of its own: the realised shortfall is
  ``champion_performance``'s to judge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from churn_assets.performance.estimation import Estimate
from churn_assets.performance.judging import (
    ExpectedLevel,
    MetricJudgement,
    PerformanceVerdict,
    judge_metrics,
)

ESTIMATE_MONITOR = "estimated_performance"
COMPARISON_MONITOR = "realised_vs_estimated_performance"
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
    """warn when the expected level lies above an estimate's interval beyond doubt (the
    shortfall over the estimate's spread and the level's own, as ``champion_performance``
    judges a realised dip); information when only outside the interval; n/a with no level."""
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
        expected,
        metrics,
        each,
    )
    basis = (
        f"{BEFORE_LABELS}; expected level from {expected.describe()}; {family:.0%} over "
        f"{len(metrics)} metrics, {each:.2%} each (Bonferroni)"
    )
    if not judgements:
        return PerformanceVerdict("n/a", f"n/a: no estimate of v{version} defined ({basis})"), []
    failing = [j for j in judgements if j.failed]
    shown = "; ".join(j.describe() for j in (failing or judgements))
    if any(j.beyond_doubt for j in failing):
        return PerformanceVerdict(
            "warn", f"champion v{version} expected to fall below its level: {shown} ({basis})"
        ), judgements
    if failing:
        return PerformanceVerdict(
            "pass",
            f"information: champion v{version} estimated below its level, within doubt once "
            f"the level's own noise counts: {shown} ({basis})",
        ), judgements
    return PerformanceVerdict(
        "pass", f"champion v{version} expected at its level: {shown} ({basis})"
    ), judgements


@dataclass(frozen=True)
class Comparison:
    verdict: PerformanceVerdict
    table: pd.DataFrame  # metric, estimate, low, high, realised, error, within


def _diagnose(row: pd.Series, level: float | None) -> str:
    """What an estimate and a realised value say together about the kind of shift."""
    moved = level is not None and not row["low"] <= level <= row["high"]
    shown = (
        f"{row['metric']} realised {row['realised']:.4f}, estimated {row['estimate']:.4f} "
        f"[{row['low']:.4f}, {row['high']:.4f}]"
        + (f", expected {level:.4f}" if level is not None else "")
    )
    if row["within"]:
        return shown + (
            ": both moved from the expected level, a covariate shift the estimate saw first"
            if moved
            else ": as estimated"
        )
    if level is None:
        return shown + ": outside the estimate, the scores were not calibrated on this cohort"
    if not moved:
        return shown + (
            ": the realised value moved and the estimate did not, a concept shift (the relation "
            "between features and churn changed; the scores are no longer calibrated)"
        )
    if (row["realised"] - row["estimate"]) * (level - row["estimate"]) > 0:
        return shown + (
            ": the estimate moved (a covariate shift) but the realised value did not follow, "
            "the model is not calibrated where the cohort moved"
        )
    return shown + (
        ": the estimate moved (a covariate shift) and the realised value moved further still, "
        "the relation to churn changed too (a concept shift as well)"
    )


def compare_with_realised(
    version: str,
    stored: pd.DataFrame,
    realised: Mapping[str, float] | None,
    expected: ExpectedLevel | None,
    metrics: Sequence[str] = ESTIMATE_JUDGED_METRICS,
) -> Comparison:
    """The champion's estimate for this cohort (rows of ``performance_estimates``) against its
    realised metrics, and what their agreement says of the kind of shift. A diagnosis, never
    an alarm: whether the realised figures fail is ``champion_performance``'s to say, so one
    shortfall does not raise two warnings."""
    if stored.empty or realised is None:
        why = "no estimate was stored" if realised is not None else "nothing realised"
        return Comparison(
            PerformanceVerdict("n/a", f"n/a: {why} for champion v{version} on this cohort"),
            pd.DataFrame(),
        )
    table = stored[["metric", "estimate", "low", "high"]].copy()
    table["realised"] = [float(realised.get(m, math.nan)) for m in table["metric"]]
    table["error"] = table["realised"] - table["estimate"]
    table["within"] = (table["realised"] >= table["low"]) & (table["realised"] <= table["high"])
    judged = table[table["metric"].isin(metrics) & table["realised"].notna()]
    if judged.empty or judged[["low", "high"]].isna().any(axis=None):
        return Comparison(
            PerformanceVerdict("n/a", f"n/a: no judged metric of v{version} to compare"), table
        )
    levels = expected.values if expected is not None else {}
    detail = "; ".join(_diagnose(r, levels.get(r["metric"])) for _, r in judged.iterrows())
    if judged["within"].all():
        return Comparison(
            PerformanceVerdict(
                "pass", f"champion v{version} realised what was estimated: {detail}"
            ),
            table,
        )
    return Comparison(
        PerformanceVerdict(
            "pass",
            f"information: champion v{version} realised outside its estimate made before "
            f"labels: {detail}",
        ),
        table,
    )
