"""Bootstrap intervals of a cohort's metrics: how far a figure may move by the luck of the draw.

A cohort is one sample of users. Resampling its users with replacement (a seeded multinomial draw
of how many times each user is taken) and recomputing the metric gives its sampling spread; the
quantiles of the resampled values are the interval. Every metric is computed for all resamples
at once from a weight matrix (resamples x users) with numpy: AUC from score-sorted weighted
counts (ties count one half, as in ``roc_auc_score``), top-share churn rates from cumulative
weights (the same ranks as :func:`churn_assets.modeling.metrics._top_share`), log loss and F2
as weighted sums. Resamples are processed in chunks so memory stays bounded on large cohorts.

:func:`paired_differences` draws the same users for two score vectors (champion and challenger
on one cohort), so the difference's interval is free of the cohort-to-cohort noise both share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from churn_assets.modeling.metrics import base_rate_entropy

# The metrics the monitor can judge, and which way is better.
HIGHER_IS_BETTER = {
    "auc": True,
    "log_loss": False,
    # Log loss over the entropy of the cohort's churn rate: comparable across cohorts whose
    # churn rates differ (see metrics.normalized_log_loss).
    "normalized_log_loss": False,
    "lift_top_decile": True,
    "f2": True,
    # Churn rate of the top-scored decile over that of the second decile: how sharply the
    # highest scores separate from merely warm ones.
    "decile_ratio": True,
}
DEFAULT_RESAMPLES = 200
# Entries of one (resamples x users) weight block: ~8 MB per float64 array.
_CHUNK_ENTRIES = 1_000_000


def _resample_weights(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """How many times each user is drawn, per resample, in chunks of resamples."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ENTRIES // max(n, 1))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        # Row r's draws are offset by r * n, so one bincount counts every row at once.
        drawn = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


class _Scored:
    """One score vector, its users put in rank order once (highest score first, ties in input
    order, as the point estimates rank them).

    Resample weights are drawn directly in this order: users are exchangeable for the draw, so
    no resample has to be permuted (a gather that would cost more than every metric together).
    """

    def __init__(self, y: np.ndarray, probability: np.ndarray, bucket_a_min: float):
        self.n = len(y)
        self.order = np.argsort(-probability, kind="mergesort")
        scores = probability[self.order]
        self.y = y[self.order]
        # Start of each run of equal scores: tied users count one half in AUC.
        self.groups = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
        clipped = np.clip(scores, 1e-7, 1 - 1e-7)
        self.loss = -(self.y * np.log(clipped) + (1 - self.y) * np.log(1 - clipped))
        in_a = scores >= bucket_a_min
        # F2 counts as weighted sums: churners in bucket A, churners outside it, stayers in it.
        self.f2_terms = np.stack([self.y * in_a, self.y * ~in_a, (1 - self.y) * in_a], axis=1)

    def auc(self, w: np.ndarray) -> np.ndarray:
        churners = w * self.y
        if len(self.groups) < self.n:
            pos = np.add.reduceat(churners, self.groups, axis=1)
            neg = np.add.reduceat(w, self.groups, axis=1) - pos
        else:
            pos, neg = churners, w - churners
        negatives = neg.sum(axis=1, keepdims=True)
        # Stayers scored below each group: all stayers minus those down to and including it.
        below = negatives - np.cumsum(neg, axis=1)
        pairs = pos.sum(axis=1) * negatives[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = (pos * (below + 0.5 * neg)).sum(axis=1) / pairs
        return np.where(pairs > 0, auc, np.nan)

    def top_share_rates(
        self, w: np.ndarray, shares: Sequence[tuple[float, float]]
    ) -> list[np.ndarray]:
        """Churn rate of the resampled users ranked in each [start, stop) (highest first)."""
        # Only the first ranks matter: cumulate a little beyond the last share's expected end,
        # and over everything only for a resample that drew too few users there.
        reach = max(stop for _, stop in shares)
        width = min(self.n, int(np.ceil((reach + 0.05) * self.n)) + 20)
        end = np.cumsum(w[:, :width], axis=1)
        if width < self.n and end[:, -1].min() < np.ceil(reach * self.n):
            end = np.cumsum(w, axis=1)
            width = self.n
        begin = end - w[:, :width]
        rates = []
        for start, stop in shares:
            low = int(np.floor(start * self.n))
            high = min(max(int(np.ceil(stop * self.n)), low + 1), self.n)
            taken = np.clip(np.minimum(end, high) - np.maximum(begin, low), 0.0, None)
            count = taken.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                rates.append(np.where(count > 0, (taken @ self.y[:width]) / count, np.nan))
        return rates

    def metrics(self, names: Sequence[str], w: np.ndarray) -> dict[str, np.ndarray]:
        """Every named metric on every resample (a row of ``w``)."""
        unknown = set(names) - set(HIGHER_IS_BETTER)
        if unknown:
            raise ValueError(f"no bootstrap for metric(s) {sorted(unknown)}")
        out: dict[str, np.ndarray] = {}
        if "auc" in names:
            out["auc"] = self.auc(w)
        if "log_loss" in names or "normalized_log_loss" in names:
            loss = w @ self.loss / self.n
            if "log_loss" in names:
                out["log_loss"] = loss
            if "normalized_log_loss" in names:
                out["normalized_log_loss"] = loss / base_rate_entropy(w @ self.y / self.n)
        if "f2" in names:
            tp, fn, fp = (w @ self.f2_terms).T
            denominator = 5 * tp + 4 * fn + fp
            with np.errstate(invalid="ignore", divide="ignore"):
                out["f2"] = np.where(denominator > 0, 5 * tp / denominator, 0.0)
        if "lift_top_decile" in names or "decile_ratio" in names:
            top, second = self.top_share_rates(w, [(0.0, 0.1), (0.1, 0.2)])
            base = w @ self.y / self.n
            with np.errstate(invalid="ignore", divide="ignore"):
                if "lift_top_decile" in names:
                    out["lift_top_decile"] = np.where(base > 0, top / base, np.nan)
                if "decile_ratio" in names:
                    out["decile_ratio"] = np.where(second > 0, top / second, np.nan)
        return out


def _prepare(y_true, probability) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError("labels and scores must be 1-d arrays of the same length")
    return y, p


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Two-sided quantile interval; NaN when most resamples leave the metric undefined."""
    finite = values[np.isfinite(values)]
    if len(finite) < max(2, len(values) // 2):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    y_true: Sequence[int] | np.ndarray,
    probability: Sequence[float] | np.ndarray,
    metrics: Sequence[str] = tuple(HIGHER_IS_BETTER),
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
    bucket_a_min: float = 0.3,
) -> dict[str, tuple[float, float]]:
    """Each metric's two-sided ``confidence`` interval over ``resamples`` resamples of users."""
    y, p = _prepare(y_true, probability)
    if len(y) == 0:
        return {m: (float("nan"), float("nan")) for m in metrics}
    scored = _Scored(y, p, bucket_a_min)
    values: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for w in _resample_weights(len(y), resamples, seed):
        for m, v in scored.metrics(metrics, w).items():
            values[m].append(v)
    return {m: _interval(np.concatenate(v), confidence) for m, v in values.items()}


def paired_differences(
    y_true: Sequence[int] | np.ndarray,
    challenger: Sequence[float] | np.ndarray,
    champion: Sequence[float] | np.ndarray,
    metrics: Sequence[str] = ("auc", "log_loss"),
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.90,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Interval of challenger minus champion for each metric, both scored on the same resamples.

    A positive AUC difference and a negative log-loss difference favour the challenger.
    """
    y, p_new = _prepare(y_true, challenger)
    _, p_old = _prepare(y_true, champion)
    if len(y) == 0:
        return {m: (float("nan"), float("nan")) for m in metrics}
    new, old = _Scored(y, p_new, 0.3), _Scored(y, p_old, 0.3)
    # Weights are drawn in the champion's rank order; the challenger reads the same users'.
    champion_position = np.empty(len(y), dtype=np.int64)
    champion_position[old.order] = np.arange(len(y))
    challenger_position = champion_position[new.order]
    values: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for w in _resample_weights(len(y), resamples, seed):
        before = old.metrics(metrics, w)
        for m, v in new.metrics(metrics, w[:, challenger_position]).items():
            values[m].append(v - before[m])
    return {m: _interval(np.concatenate(v), confidence) for m, v in values.items()}
