"""Performance before labels land: confidence-based performance estimation (CBPE, as NannyML's).

A calibrated score p_i is the chance that user i churns. Assume calibration, and the cohort's
labels are independent Bernoulli(p_i) draws: every metric's expected value follows from the
scores alone, months before the labels do.

* **Closed forms.** Churn rate: mean p (per bucket: mean p in it; bucket-A precision is bucket
  A's). Log loss: mean binary entropy of p, clipped as the metric clips. Bucket-A recall: the
  expected churners in A over all expected churners. Lift at 10 %: mean p of the top-scored
  decile (the ranks :func:`churn_assets.modeling.metrics.classification_metrics` takes) over
  mean p. AUC: pairs with s_i > s_j weigh p_i (1 - p_j), tied pairs half, over the expected
  number of churner-stayer pairs, sum over i != j of p_i (1 - p_j). The ratios are ratios of
  expectations, off the expected ratio by O(1/n). The expected confusion matrix at each bucket
  cut-off is the sum of p (churners) and of 1 - p (stayers) on either side of it.
* **The interval.** ``draws`` seeded replicates each resample the cohort's users (with
  replacement) and draw their labels from Bernoulli(p). The metric's spread over them is that of
  a cohort of this size, from the same population, scored by a model calibrated on it: both the
  noise of the metric this cohort will realise and that of a level realised on another cohort of
  the population. ``low`` and ``high`` are the estimate plus or minus z standard deviations of
  the draws (z the normal quantile of the two-sided ``confidence``), clipped to the metric's
  range: a Bonferroni split of a 99 % confidence over several metrics asks for tails that the
  quantiles of a few hundred draws do not reach, and each metric is a mean over many users.

The estimate is only as good as the calibration it assumes: a covariate shift (other users, the
same relation to churn) moves it as it moves the realised metric; a concept shift (the same
users, another relation) leaves it where it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# The metrics estimated (DESIGN §5 names the first five), with the range each lives in.
ESTIMATED_METRICS = {
    "auc": (0.0, 1.0),
    "log_loss": (0.0, np.inf),
    "lift_top_decile": (0.0, np.inf),
    "bucket_a_precision": (0.0, 1.0),
    "churn_rate": (0.0, 1.0),
    "bucket_a_recall": (0.0, 1.0),
    "churn_rate_bucket_b": (0.0, 1.0),
    "churn_rate_bucket_c": (0.0, 1.0),
}
_CLIP = 1e-7  # as classification_metrics clips scores for log loss
_CHUNK_ENTRIES = 1_000_000  # entries of one (draws x users) block


@dataclass(frozen=True)
class Estimate:
    metric: str
    estimate: float
    low: float
    high: float


class _Cohort:
    """The scores in rank order (highest first, ties in input order) and what every metric
    needs of them."""

    def __init__(self, probability: np.ndarray, buckets: np.ndarray):
        self.order = np.argsort(-probability, kind="mergesort")
        self.p = probability[self.order]
        self.n = len(self.p)
        self.groups = np.flatnonzero(np.r_[True, self.p[1:] != self.p[:-1]])
        clipped = np.clip(self.p, _CLIP, 1 - _CLIP)
        self.loss_churn, self.loss_stay = -np.log(clipped), -np.log(1 - clipped)
        ranked = np.asarray(buckets)[self.order]
        self.masks = {b: (ranked == b).astype(float) for b in "ABC"}
        self.top = max(int(np.ceil(0.1 * self.n)), 1)  # as _top_share ranks the first decile

    def expected(self) -> dict[str, float]:
        """Each metric's expected value under calibration (closed forms)."""
        p, q, a = self.p, 1 - self.p, self.masks["A"]
        churners = p.sum()
        # Per tie group: its churners against the stayers scored below it, and (counted half)
        # against the other users of the group; a user is never paired with itself.
        churn, stay = np.add.reduceat(p, self.groups), np.add.reduceat(q, self.groups)
        below = stay.sum() - np.cumsum(stay)
        pairs = churners * q.sum() - (p * q).sum()
        wins = (churn * below).sum()
        ties = churn * stay - np.add.reduceat(p * q, self.groups)
        return {
            "auc": _ratio(wins + 0.5 * ties.sum(), pairs),
            "log_loss": float((p * self.loss_churn + q * self.loss_stay).mean()),
            "lift_top_decile": _ratio(p[: self.top].mean(), p.mean()),
            "bucket_a_precision": _ratio(p @ a, a.sum()),
            "churn_rate": float(p.mean()),
            "bucket_a_recall": _ratio(p @ a, churners),
            "churn_rate_bucket_b": _ratio(p @ self.masks["B"], self.masks["B"].sum()),
            "churn_rate_bucket_c": _ratio(p @ self.masks["C"], self.masks["C"].sum()),
        }

    def realised(self, w: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric on each draw: ``w`` how often each user is drawn, ``y`` their labels."""
        churn = w * y
        stay = w - churn
        churners, total = churn.sum(axis=1), w.sum(axis=1)
        if len(self.groups) < self.n:
            pos, neg = np.add.reduceat(churn, self.groups, 1), np.add.reduceat(stay, self.groups, 1)
        else:
            pos, neg = churn, stay
        below = neg.sum(axis=1, keepdims=True) - np.cumsum(neg, axis=1)
        rate = _ratio(churners, total)
        a, b, c = self.masks["A"], self.masks["B"], self.masks["C"]
        return {
            "auc": _ratio((pos * (below + 0.5 * neg)).sum(axis=1), churners * neg.sum(axis=1)),
            "log_loss": (churn @ self.loss_churn + stay @ self.loss_stay) / total,
            "lift_top_decile": _ratio(self._top_rate(w, y), rate),
            "bucket_a_precision": _ratio(churn @ a, w @ a),
            "churn_rate": rate,
            "bucket_a_recall": _ratio(churn @ a, churners),
            "churn_rate_bucket_b": _ratio(churn @ b, w @ b),
            "churn_rate_bucket_c": _ratio(churn @ c, w @ c),
        }

    def _top_rate(self, w: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Churn rate of the first decile of ranks of each draw. Only the first ranks matter:
        a draw fills them within a few standard deviations of the decile's end, else all count."""
        width = min(self.n, self.top + int(6 * np.sqrt(self.top)) + 20)
        end = np.cumsum(w[:, :width], axis=1)
        if width < self.n and end[:, -1].min() < self.top:
            width, end = self.n, np.cumsum(w, axis=1)
        taken = np.clip(np.minimum(end, self.top) - (end - w[:, :width]), 0.0, None)
        return _ratio((taken * y[:, :width]).sum(axis=1), taken.sum(axis=1))

    def draws(self, count: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Resampled users (how often each is drawn) and their Bernoulli labels, in chunks."""
        rng = np.random.default_rng(seed)
        chunk = max(1, _CHUNK_ENTRIES // max(self.n, 1))
        for start in range(0, count, chunk):
            size = min(chunk, count - start)
            drawn = rng.integers(0, self.n, (size, self.n)) + (np.arange(size) * self.n)[:, None]
            w = np.bincount(drawn.ravel(), minlength=size * self.n).reshape(size, self.n)
            yield w.astype(float), (rng.random((size, self.n)) < self.p).astype(float)


def _ratio(numerator, denominator):
    """numerator / denominator, NaN where the denominator is 0 (no churner, an empty bucket)."""
    num, den = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def estimate_performance(
    probability: np.ndarray,
    buckets: np.ndarray,
    *,
    confidence: float,
    draws: int = 200,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Each metric's expected value and two-sided ``confidence`` interval under calibration."""
    cohort = _Cohort(np.asarray(probability, dtype=float), np.asarray(buckets))
    if cohort.n == 0:
        return {m: Estimate(m, np.nan, np.nan, np.nan) for m in ESTIMATED_METRICS}
    values: dict[str, list[np.ndarray]] = {m: [] for m in ESTIMATED_METRICS}
    for w, y in cohort.draws(draws, seed):
        for metric, v in cohort.realised(w, y).items():
            values[metric].append(v)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    out = {}
    for metric, point in cohort.expected().items():
        drawn = np.concatenate(values[metric])
        finite = drawn[np.isfinite(drawn)]
        spread = float(finite.std(ddof=1)) if len(finite) >= max(2, len(drawn) // 2) else np.nan
        floor, ceiling = ESTIMATED_METRICS[metric]
        low, high = np.clip([point - z * spread, point + z * spread], floor, ceiling)
        out[metric] = Estimate(metric, point, float(low), float(high))
    return out


def realised_metrics(
    y: np.ndarray, probability: np.ndarray, buckets: np.ndarray
) -> dict[str, float]:
    """The estimated metrics on labels that landed, computed as each draw computes them."""
    cohort = _Cohort(np.asarray(probability, dtype=float), np.asarray(buckets))
    labels = np.asarray(y, dtype=float)[cohort.order][None, :]
    return {m: float(v[0]) for m, v in cohort.realised(np.ones_like(labels), labels).items()}


def expected_confusion(probability: np.ndarray, buckets: np.ndarray) -> list[dict[str, object]]:
    """Expected confusion matrix when bucket A, then buckets A and B, count as "will churn"."""
    p, ranked = np.asarray(probability, dtype=float), np.asarray(buckets)
    rows = []
    for name, flagged in (("A", ranked == "A"), ("A+B", np.isin(ranked, ["A", "B"]))):
        rows.append(
            {
                "flagged": name,
                "users": int(flagged.sum()),
                "churners_flagged": float(p[flagged].sum()),
                "stayers_flagged": float((1 - p[flagged]).sum()),
                "churners_missed": float(p[~flagged].sum()),
                "stayers_passed": float((1 - p[~flagged]).sum()),
            }
        )
    return rows
