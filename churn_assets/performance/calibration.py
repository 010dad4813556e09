"""Is the champion still calibrated? Its scores against the churn they announced, once labels land.

The buckets cut at absolute scores (0.3, 0.1) and the estimate made before labels
(:mod:`churn_assets.performance.estimation`) assumes a score of 0.3 means three churners in ten:
both stand on calibration, which ranking metrics such as AUC do not see.

* **Reliability curve.** The champion's scores in ``bins`` equal-mass bins (default 10, by rank):
  per bin the mean score against the observed churn rate. The expected calibration error (ECE)
  is the users-weighted mean gap. A calibrated model's ECE is not 0: each bin's churn rate is a
  binomial draw; ``ece_noise`` is what that noise alone gives on average (sqrt(2 / pi) standard
  deviations a bin, the variance being the sum of p (1 - p) over its users).
* **The test** (Hosmer-Lemeshow style): the sum over bins of (churners - sum of p)^2 over that
  binomial variance is chi-square with as many degrees of freedom as bins when the scores are
  calibrated; no degree is lost, as nothing was fitted on this cohort (an out-of-time test).
  Bins are pooled from the lowest scores up until each expects 5 churners and 5 stayers
  (Cochran's rule, as for drift), so the chi-square law holds on small cohorts. A cohort whose
  statistic exceeds its ``confidence`` quantile (default 99 %: one stable cohort in a hundred by
  chance) is *miscalibrated*. As with a performance dip, one such cohort is information (the
  verdict passes and says so) unless it is beyond doubt (p below ``DOUBT_ALPHA``, 0.001); the
  verdict ``calibration`` warns then, or when the same version was miscalibrated on ``failures``
  of its last ``window`` cohorts judged (2 of 3, as ``champion_performance``). A *provisional*
  champion (registered below the hurdle, or learnt from cohorts whose windows reached before the
  data) is never warned about: its windows differ from the cohorts it now scores by
  construction, and the retraining policy already replaces it as soon as complete labelled
  cohorts allow, so its miscalibration is information, not a second alarm.
* **Material, not only significant.** The test's power grows with the cohort: on tens of
  thousands of users it rejects gaps no decision would notice, and a month whose churn runs a
  little high or low for every user alike (seasons, campaigns: variation the binomial law
  ignores) fails it too. A cohort counts as miscalibrated only when its gaps also matter: the
  ECE beyond its noise reaches ``MATERIAL_SHARE`` (a quarter) of the cohort's churn rate, the
  scores announcing on average a quarter more or less churn than occurs, the tier from which
  target drift warns (``WARN_RATIO`` 1.25 in :mod:`churn_assets.monitoring.target`). Gaps
  beyond noise but under it are information. It is ``n/a`` with
  no labels, no champion scores or too few expected churners to pool one bin. The thresholds are
  the noise law's, never tuned to a kind of drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
from scipy.stats import chi2

from churn_assets.monitoring.target import WARN_RATIO
from churn_assets.performance.judging import (
    DEFAULT_FAILURES,
    DEFAULT_WINDOW,
    DOUBT_ALPHA,
    PerformanceVerdict,
)

CALIBRATION_MONITOR = "calibration"
CALIBRATION_BINS = 10
CALIBRATION_CONFIDENCE = 0.99
COCHRAN_MINIMUM = 5.0  # expected churners, and stayers, a pooled bin needs
# The ECE beyond its noise, as a share of the churn rate, from which gaps matter: target drift's
# warning tier (a quarter more churn than expected), not a figure fitted to any world.
MATERIAL_SHARE = WARN_RATIO - 1.0
SHOWN = ["users", "score_from", "score_to", "mean_score", "observed_rate"]


def reliability_bins(y: np.ndarray, probability: np.ndarray, bins: int) -> pd.DataFrame:
    """Equal-mass bins of the scores (by rank): users, mean score, observed churn rate, and the
    binomial variance of the churner count under calibration."""
    order = np.argsort(probability, kind="mergesort")
    rows = []
    for part in np.array_split(order, min(bins, len(order))):
        p, churned = probability[part], y[part]
        rows.append(
            {
                "users": len(part),
                "score_from": float(p.min()),
                "score_to": float(p.max()),
                "mean_score": float(p.mean()),
                "observed_rate": float(churned.mean()),
                "churners": float(churned.sum()),
                "expected_churners": float(p.sum()),
                "variance": float((p * (1 - p)).sum()),
            }
        )
    return pd.DataFrame(rows)


def pooled(table: pd.DataFrame) -> pd.DataFrame:
    """Adjacent bins pooled from the lowest scores up until each expects ``COCHRAN_MINIMUM``
    churners and stayers; a short remainder joins the last pool. Empty when none fills."""
    sums = ["users", "churners", "expected_churners", "variance"]
    pools, current = [], None
    for _, row in table[sums].iterrows():
        current = row if current is None else current + row
        stayers = current["users"] - current["expected_churners"]
        if min(current["expected_churners"], stayers) >= COCHRAN_MINIMUM:
            pools.append(current)
            current = None
    if current is not None and pools:
        pools[-1] = pools[-1] + current
    return pd.DataFrame(pools, columns=sums)


@dataclass(frozen=True)
class Calibration:
    verdict: PerformanceVerdict
    bins: pd.DataFrame
    ece: float = math.nan
    ece_noise: float = math.nan
    statistic: float = math.nan
    degrees: int = 0
    threshold: float = math.nan

    @property
    def p_value(self) -> float:
        return float(chi2.sf(self.statistic, self.degrees)) if self.degrees else math.nan

    def metadata(self) -> dict[str, object]:
        """The curve as a table and as numbers, the error, its noise and the test."""
        shown = self.bins[SHOWN]
        return {
            "calibration": f"{self.verdict.severity}: {self.verdict.detail}",
            "calibration_ece": self.ece,
            "calibration_ece_noise": self.ece_noise,
            "calibration_statistic": self.statistic,
            "calibration_degrees": self.degrees,
            "calibration_threshold": self.threshold,
            "calibration_p_value": self.p_value,
            "reliability_curve": dg.MetadataValue.json(
                {
                    "mean_score": [round(v, 6) for v in shown["mean_score"]],
                    "observed_rate": [round(v, 6) for v in shown["observed_rate"]],
                    "users": [int(v) for v in shown["users"]],
                }
            ),
            "reliability": dg.MetadataValue.md(
                shown.round(4).to_markdown(index=False) if not shown.empty else "_no labels_"
            ),
        }


def not_judged(detail: str) -> Calibration:
    """Nothing to calibrate against (no labels, no champion scores): not an alarm."""
    return Calibration(PerformanceVerdict("n/a", f"n/a: {detail}"), pd.DataFrame(columns=SHOWN))


def judge_calibration(
    y: np.ndarray,
    probability: np.ndarray | None,
    version: str | None,
    bins: int = CALIBRATION_BINS,
    confidence: float = CALIBRATION_CONFIDENCE,
    earlier: list[bool] | None = None,
    provisional: bool = False,
) -> Calibration:
    """The champion's reliability curve on a labelled cohort, and whether its gaps exceed what
    binomial noise gives at ``confidence``; ``earlier``: whether the same version was
    miscalibrated on its previous cohorts judged, oldest first (the persistence rule);
    ``provisional``: the champion is provisional, so a miscalibration is information."""
    if probability is None or version is None or len(y) == 0:
        return not_judged("no champion scores on a labelled cohort, nothing to calibrate")
    y, probability = np.asarray(y, dtype=float), np.asarray(probability, dtype=float)
    table = reliability_bins(y, probability, bins)
    weights = table["users"] / table["users"].sum()
    ece = float((weights * (table["observed_rate"] - table["mean_score"]).abs()).sum())
    noise = float((weights * np.sqrt(2 / np.pi * table["variance"]) / table["users"]).sum())
    groups = pooled(table)
    if groups.empty:
        return Calibration(
            PerformanceVerdict(
                "n/a",
                f"n/a: champion v{version} expects fewer than {COCHRAN_MINIMUM:g} churners "
                "or stayers: too few to test calibration",
            ),
            table,
            ece,
            noise,
        )
    gaps = groups["churners"] - groups["expected_churners"]
    statistic = float((gaps**2 / groups["variance"]).sum())
    degrees = len(groups)
    threshold = float(chi2.isf(1 - confidence, degrees))
    return Calibration(
        _verdict(
            version,
            table,
            (ece, noise, statistic, threshold, confidence),
            degrees,
            earlier or [],
            provisional,
        ),
        table,
        ece,
        noise,
        statistic,
        degrees,
        threshold,
    )


def _verdict(
    version: str,
    table: pd.DataFrame,
    figures: tuple[float, float, float, float, float],
    degrees: int,
    earlier: list[bool],
    provisional: bool,
) -> PerformanceVerdict:
    """warn when miscalibrated beyond doubt or persistently; a single miscalibrated cohort, or
    any of a provisional champion's, is information; pass otherwise."""
    ece, noise, statistic, threshold, confidence = figures
    worst = table.loc[(table["observed_rate"] - table["mean_score"]).abs().idxmax()]
    shown = (
        f"ECE {ece:.4f} (binomial noise alone {noise:.4f}); chi-square {statistic:.1f} on "
        f"{degrees} bins, {confidence:.0%} threshold {threshold:.1f}; widest gap: mean score "
        f"{worst['mean_score']:.3f}, observed {worst['observed_rate']:.3f} "
        f"({int(worst['users'])} users)"
    )
    if statistic <= threshold:
        return PerformanceVerdict("pass", f"champion v{version} calibrated within noise: {shown}")
    rate = float(table["churners"].sum() / table["users"].sum())
    if ece - noise < MATERIAL_SHARE * rate:
        return PerformanceVerdict(
            "pass",
            f"information: champion v{version} has calibration gaps beyond binomial noise but "
            f"not material (ECE beyond noise {ece - noise:.4f}, under {MATERIAL_SHARE:.0%} of "
            f"the churn rate {rate:.4f}): {shown}",
        )
    if provisional:
        return PerformanceVerdict(
            "pass",
            f"information: provisional champion v{version} miscalibrated beyond sampling noise "
            "(its windows differ from this cohort's by construction; the retraining policy "
            f"replaces it once complete labelled cohorts allow): {shown}",
        )
    window = [*earlier[-(DEFAULT_WINDOW - 1) :], True]
    beyond_doubt = float(chi2.sf(statistic, degrees)) < DOUBT_ALPHA
    if beyond_doubt or sum(window) >= DEFAULT_FAILURES:
        why = (
            "beyond doubt"
            if beyond_doubt
            else f"in {sum(window)} of its last {len(window)} cohorts judged"
        )
        return PerformanceVerdict(
            "warn", f"champion v{version} miscalibrated beyond sampling noise, {why}: {shown}"
        )
    return PerformanceVerdict(
        "pass",
        f"information: champion v{version} miscalibrated beyond sampling noise on this cohort "
        f"only, within doubt (p from {DOUBT_ALPHA:g} warns): {shown}",
    )
