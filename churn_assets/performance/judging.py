"""Is the champion still performing as expected? One cohort against an expected level, over time.

Four ideas, each with a default and its reason:

* **Metrics judged:** AUC, normalized log loss (log loss over the entropy of the cohort's churn
  rate: raw log loss rises and falls with the churn rate, which made a stable model fail in a
  world without drift), lift at 10 %, F2 and the top-to-second decile churn ratio.
* **Expected level, out of time only.** What the champion should reach is what it reached on the
  first labelled cohorts after its validation cohort (its first ``expected_cohorts`` out-of-time
  backtests before the judged cohort, averaged; default 2). Its validation metrics are not a
  level: FLAML chose the model on that very cohort, so they are optimistic, and judging the first
  cohorts against them warned on models that were fine. Until an out-of-time backtest exists the
  verdict is ``n/a``. A cohort on which a metric failed is not part of that metric's level, so a
  shift that starts right after promotion does not become the new normal.
* **Tolerance from the cohort itself.** Each metric gets a bootstrap interval over the cohort's
  users (default 200 seeded resamples, 99 % two-sided). A metric fails when the expected level
  lies outside that interval on the bad side (AUC, lift, F2, decile ratio above it; log loss
  below it): this cohort is then unlikely to come from a model performing at the expected level.
  A small cohort gets a wide interval, a large one a narrow one, with no fixed tolerance to tune.
  Why 99 % and not 95 %: the expected level is itself measured on one or two cohorts, and its
  noise adds to this cohort's. On simulated stable cohorts (800 and 3,000 users, 30 seeds x 6
  cohorts, five metrics) 95 % gave a false ERROR in 7-8 % of cohorts (a third of the runs had
  one), 99 % in 1-2 %; a concept shift taking AUC from 0.87 to 0.81 was an ERROR within two
  shifted cohorts in every run at both levels.
* **A dip is information; persistence or certainty is an alarm.** One cohort below its interval
  can be bad luck, one test among several metrics: it is recorded (``failed`` in
  ``performance_judgements``) and named in the detail, but the verdict stays ``pass``. It warns
  only when it is beyond doubt: the shortfall, over the standard error of (cohort minus level)
  (the cohort's bootstrap spread and the level's own, from as many cohorts as it averages),
  exceeds the normal quantile of ``DOUBT_ALPHA`` divided by the number of metrics judged
  (Bonferroni: with five metrics, each is held to 0.0002, so all five together raise a false
  warning in at most 1 cohort in 1,000). A metric that fails again in ``failures`` of the last
  ``window`` cohorts judged for the same champion (default 2 of 3) is a persistent failure, an
  ``error``, which is what retraining acts on. The count is per metric, so two unrelated single
  dips of different metrics do not add up to an alarm.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from statistics import NormalDist

from churn_assets.modeling.bootstrap import HIGHER_IS_BETTER

# What can be judged, and what is by default: raw log loss moves with each cohort's churn rate,
# so its normalized form is judged in its place.
JUDGEABLE_METRICS = tuple(HIGHER_IS_BETTER)
JUDGED_METRICS = tuple(m for m in HIGHER_IS_BETTER if m != "log_loss")
DEFAULT_CONFIDENCE = 0.99
DEFAULT_FAILURES = 2
DEFAULT_WINDOW = 3
DEFAULT_EXPECTED_COHORTS = 2
# Family-wise chance that a cohort whose model performs at its level is called below it beyond
# doubt, split over the metrics judged (Bonferroni).
DOUBT_ALPHA = 0.001


def decile_ratio(top: float, second: float) -> float:
    """Churn rate of the top decile over the second's; NaN when the second has no churner."""
    if top is None or second is None or math.isnan(top) or math.isnan(second) or second <= 0:
        return float("nan")
    return top / second


def with_decile_ratio(metrics: Mapping[str, float]) -> dict[str, float]:
    out = dict(metrics)
    out["decile_ratio"] = decile_ratio(
        metrics.get("churn_rate_top_decile", float("nan")),
        metrics.get("churn_rate_second_decile", float("nan")),
    )
    return out


def _finite(value) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class ExpectedLevel:
    """What the champion should reach per metric, from which out-of-time cohorts each figure
    comes."""

    values: dict[str, float]
    cohorts: dict[str, tuple[str, ...]]  # metric -> YYYY-MM of the cohorts measured

    @property
    def source(self) -> str:
        return "out_of_time"

    def basis(self, metric: str) -> str:
        return f"out-of-time {', '.join(self.cohorts.get(metric, ()))}"

    def averaged(self, metric: str) -> int:
        """How many cohorts the level of ``metric`` averages (its noise falls with them)."""
        return max(len(self.cohorts.get(metric, ())), 1)

    def describe(self) -> str:
        parts: dict[str, list[str]] = {}
        for metric in self.values:
            parts.setdefault(self.basis(metric), []).append(metric)
        if len(parts) == 1:
            [basis] = parts
            return basis
        return "; ".join(f"{basis} ({', '.join(ms)})" for basis, ms in parts.items())


def expected_level(
    out_of_time_rows: Iterable[Mapping],
    failed: Iterable[tuple[date, str]] = (),
    cohorts: int = DEFAULT_EXPECTED_COHORTS,
    metrics: Iterable[str] = JUDGED_METRICS,
) -> ExpectedLevel | None:
    """Per metric, the mean over the version's first ``cohorts`` out-of-time backtests (rows in
    cohort order) on which that metric did not fail its own judgement (``failed``: (cohort,
    metric) pairs), so a degraded cohort does not lower the bar. None when no metric has one:
    the verdict is then n/a, never a comparison with the optimistic validation metrics."""
    rows = [with_decile_ratio(r) for r in out_of_time_rows]
    failures = {(c, m) for c, m in failed}
    values, months = {}, {}
    for metric in metrics:
        clean = [
            r
            for r in rows
            if _finite(r.get(metric)) and (r["cohort_month"], metric) not in failures
        ][:cohorts]
        if clean:
            values[metric] = sum(r[metric] for r in clean) / len(clean)
            months[metric] = tuple(f"{r['cohort_month']:%Y-%m}" for r in clean)
    return ExpectedLevel(values, months) if values else None


@dataclass(frozen=True)
class MetricJudgement:
    metric: str
    value: float
    low: float
    high: float
    expected: float
    failed: bool  # the expected level lies outside the cohort's interval, on the bad side
    shortfall_z: float = 0.0  # shortfall over its standard error (0 when not short)
    beyond_doubt: bool = False  # shortfall_z beyond the Bonferroni-corrected doubt quantile

    def describe(self) -> str:
        side = "below" if HIGHER_IS_BETTER[self.metric] else "above"
        certainty = f", z {self.shortfall_z:.1f}" if self.failed else ""
        return (
            f"{self.metric} {self.value:.4f} [{self.low:.4f}, {self.high:.4f}] "
            f"{side if self.failed else 'consistent with'} expected {self.expected:.4f}"
            f"{certainty}"
        )


def doubt_quantile(metrics_judged: int, alpha: float = DOUBT_ALPHA) -> float:
    """The one-sided normal quantile a shortfall must pass to be beyond doubt (Bonferroni)."""
    return float(NormalDist().inv_cdf(1.0 - alpha / max(metrics_judged, 1)))


def shortfall_z(
    metric: str, value: float, low: float, high: float, level: float, confidence: float,
    averaged: int,
) -> float:  # fmt: skip
    """How many standard errors of (cohort minus level) the cohort falls short of the level.

    The cohort's standard error comes from its bootstrap interval (its width over twice the
    normal quantile of ``confidence``); the level averages ``averaged`` cohorts of about the same
    size, so the difference's error is that times sqrt(1 + 1 / averaged).
    """
    z_interval = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    spread = (high - low) / (2.0 * z_interval) * math.sqrt(1.0 + 1.0 / max(averaged, 1))
    shortfall = (level - value) if HIGHER_IS_BETTER[metric] else (value - level)
    if shortfall <= 0:
        return 0.0
    return math.inf if spread <= 0 else shortfall / spread


def judge_metrics(
    point: Mapping[str, float],
    intervals: Mapping[str, tuple[float, float]],
    expected: ExpectedLevel,
    metrics: Iterable[str] = JUDGED_METRICS,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float = DOUBT_ALPHA,
) -> list[MetricJudgement]:
    """One judgement per metric with a finite value, interval and expected level."""
    judgeable = []
    for metric in metrics:
        low, high = intervals.get(metric, (float("nan"), float("nan")))
        value, level = point.get(metric), expected.values.get(metric)
        if all(_finite(x) for x in (low, high, value, level)):
            judgeable.append((metric, float(value), float(low), float(high), float(level)))
    quantile = doubt_quantile(len(judgeable), alpha)
    judged = []
    for metric, value, low, high, level in judgeable:
        failed = level > high if HIGHER_IS_BETTER[metric] else level < low
        z = shortfall_z(metric, value, low, high, level, confidence, expected.averaged(metric))
        judged.append(
            MetricJudgement(metric, value, low, high, level, failed, z, failed and z >= quantile)
        )
    return judged


@dataclass(frozen=True)
class Persistence:
    """Per failing metric, the judged cohorts of the window and those that failed."""

    window: dict[str, list[date]] = field(default_factory=dict)
    failed: dict[str, list[date]] = field(default_factory=dict)

    def persistent(self, failures: int) -> list[str]:
        return [m for m, months in self.failed.items() if len(months) >= failures]


def persistence(
    cohort: date,
    judgements: list[MetricJudgement],
    history: Iterable[tuple[date, str, bool]],
    window: int = DEFAULT_WINDOW,
) -> Persistence:
    """For each metric failing on ``cohort``: the last ``window`` cohorts that judged it (this
    one included, earlier ones from ``history`` rows of (cohort, metric, failed)) and which of
    them failed. Only earlier cohorts count: a backfilled older month does not see later ones."""
    earlier: dict[str, dict[date, bool]] = {}
    for month, metric, failed in history:
        if month < cohort:
            earlier.setdefault(metric, {})[month] = bool(failed)
    result = Persistence()
    for j in judgements:
        if not j.failed:
            continue
        past = sorted(earlier.get(j.metric, {}).items())[-(window - 1) :] if window > 1 else []
        months = [m for m, _ in past] + [cohort]
        result.window[j.metric] = months
        result.failed[j.metric] = [m for m, failed in past if failed] + [cohort]
    return result


@dataclass(frozen=True)
class PerformanceVerdict:
    severity: str  # pass, warn, error, n/a
    detail: str


def verdict_of(
    version: str,
    judgements: list[MetricJudgement],
    expected: ExpectedLevel,
    found: Persistence,
    failures: int = DEFAULT_FAILURES,
    window: int = DEFAULT_WINDOW,
) -> PerformanceVerdict:
    """error on a persistent failure, warn on a single one beyond doubt, pass otherwise (a
    single dip named as information); n/a if none judged."""
    level = f"expected level from {expected.describe()}"
    if not judgements:
        return PerformanceVerdict(
            "n/a", f"n/a: no metric of champion v{version} could be judged ({level})"
        )
    failing = [j for j in judgements if j.failed]
    if not failing:
        return PerformanceVerdict(
            "pass",
            f"champion v{version} within its cohort intervals on "
            f"{', '.join(j.metric for j in judgements)} ({level})",
        )
    persistent = found.persistent(failures)
    evidence = "; ".join(j.describe() for j in failing)
    if persistent:
        months = ", ".join(
            f"{m} in {', '.join(f'{c:%Y-%m}' for c in found.failed[m])}" for m in persistent
        )
        return PerformanceVerdict(
            "error",
            f"champion v{version} persistently below its expected level, failing in at least "
            f"{failures} of the last {window} cohorts judged ({months}): {evidence} ({level})",
        )
    quantile = doubt_quantile(len(judgements))
    if any(j.beyond_doubt for j in failing):
        return PerformanceVerdict(
            "warn",
            f"champion v{version} below its expected level on this cohort beyond doubt "
            f"(z from {quantile:.1f}, Bonferroni over {len(judgements)} metrics): {evidence} "
            f"({level})",
        )
    return PerformanceVerdict(
        "pass",
        f"information: champion v{version} dipped on this cohort only, within doubt (z below "
        f"{quantile:.1f}, Bonferroni over {len(judgements)} metrics): {evidence} ({level})",
    )
