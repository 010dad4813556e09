"""Classification metrics a retention team reads: ranking, calibration, and the action buckets.

One implementation serves training (validation), the monthly backtests and the quality benchmark,
so a number means the same thing wherever it is shown.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, fbeta_score, log_loss, roc_auc_score, roc_curve

# Shares of the highest-scored users at which lift is reported.
LIFT_SHARES = {"lift_top_1pct": 0.01, "lift_top_5pct": 0.05, "lift_top_decile": 0.10}


def _top_share(y_true: np.ndarray, probability: np.ndarray, start: float, stop: float) -> float:
    """Churn rate of the users ranked between ``start`` and ``stop`` (shares, highest score first).

    A stable sort keeps ties in input order so equal scores give repeatable figures.
    """
    order = np.argsort(-probability, kind="mergesort")
    n = len(order)
    low, high = int(np.floor(start * n)), max(int(np.ceil(stop * n)), int(np.floor(start * n)) + 1)
    chosen = y_true[order[low : min(high, n)]]
    return float(chosen.mean()) if len(chosen) else float("nan")


def base_rate_entropy(rate):
    """Log loss of always predicting ``rate`` itself: the entropy of a cohort's churn rate."""
    rate = np.asarray(rate, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        entropy = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    return np.where((rate > 0) & (rate < 1), entropy, np.nan)


def normalized_log_loss(loss: float, base_rate: float) -> float:
    """Log loss over the entropy of the cohort's churn rate ("normalized entropy", He et al.,
    Practical Lessons from Predicting Clicks on Ads at Facebook, 2014): 1 is no better than
    knowing the rate, lower is better. Raw log loss rises and falls with the churn rate itself
    (0.16 at 5.6 % churn, 0.21 at 7.6 % for one model of one world), so only this form can be
    compared across cohorts."""
    return float(loss / base_rate_entropy(base_rate)) if 0 < base_rate < 1 else float("nan")


def classification_metrics(
    y_true: np.ndarray, probability: np.ndarray, bucket_a_min: float = 0.3
) -> dict[str, float]:
    """Every metric of DESIGN §5 and more; ranking metrics are NaN on a single-class cohort.

    ``f2`` and the bucket-A figures treat bucket A (score >= ``bucket_a_min``) as "predicted churn":
    that is the list the retention team calls, so its recall matters more than its precision.
    """
    y_true = np.asarray(y_true, dtype=int)
    probability = np.asarray(probability, dtype=float)
    clipped = np.clip(probability, 1e-7, 1 - 1e-7)
    both = len(np.unique(y_true)) == 2
    base_rate = float(y_true.mean()) if len(y_true) else float("nan")
    in_a = probability >= bucket_a_min
    metrics = {
        "auc": float(roc_auc_score(y_true, probability)) if both else float("nan"),
        "log_loss": float(log_loss(y_true, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, probability)),
        "churn_rate": base_rate,
        "f2": float(fbeta_score(y_true, in_a, beta=2, zero_division=0)),
        "bucket_a_precision": float(y_true[in_a].mean()) if in_a.any() else float("nan"),
        "bucket_a_recall": float(in_a[y_true == 1].mean()) if y_true.any() else float("nan"),
        "churn_rate_top_decile": _top_share(y_true, probability, 0.0, 0.1),
        "churn_rate_second_decile": _top_share(y_true, probability, 0.1, 0.2),
    }
    if both:
        fpr, tpr, _ = roc_curve(y_true, probability)
        metrics["ks"] = float(np.max(tpr - fpr))
    else:
        metrics["ks"] = float("nan")
    metrics["normalized_log_loss"] = normalized_log_loss(metrics["log_loss"], base_rate)
    for name, share in LIFT_SHARES.items():
        top = _top_share(y_true, probability, 0.0, share)
        metrics[name] = top / base_rate if base_rate else float("nan")
    return metrics
