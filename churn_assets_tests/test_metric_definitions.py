"""The metrics a retention team reads, worked out by hand on small cohorts, and what their
bootstrap intervals mean."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from churn_assets.modeling.bootstrap import bootstrap_intervals
from churn_assets.modeling.metrics import classification_metrics


def _cohort(n: int = 2000, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-(-1.2 + 1.5 * rng.normal(size=n))))
    return (rng.random(n) < p).astype(int), p


def test_ks_is_the_largest_gap_by_which_churners_are_ranked_ahead():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    perfect = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.1, 0.05])
    assert classification_metrics(y, perfect)["ks"] == pytest.approx(1.0)
    # Ranking every stayer ahead of every churner separates nothing in the churners' favour.
    inverted = perfect[::-1].copy()
    assert classification_metrics(y, inverted)["ks"] == pytest.approx(0.0)
    assert classification_metrics(y, inverted)["auc"] == pytest.approx(0.0)
    # Two churners, one of the five stayers, then the third churner: all churners are found
    # with a fifth of the stayers.
    mixed = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.05, 0.01])
    assert classification_metrics(y, mixed)["ks"] == pytest.approx(1 - 1 / 5)


def test_lift_is_the_top_shares_churn_rate_over_the_cohorts():
    # 100 users, 20 churners; the ten highest scores hold 8 of them.
    y = np.zeros(100, dtype=int)
    y[:8] = 1  # top decile
    y[10:22] = 1  # elsewhere
    p = np.linspace(0.99, 0.01, 100)
    metrics = classification_metrics(y, p)
    assert metrics["churn_rate"] == pytest.approx(0.2)
    assert metrics["churn_rate_top_decile"] == pytest.approx(0.8)
    assert metrics["lift_top_decile"] == pytest.approx(0.8 / 0.2)
    assert metrics["lift_top_1pct"] == pytest.approx(1.0 / 0.2)
    assert metrics["churn_rate_second_decile"] == pytest.approx(1.0)


def test_predicting_the_churn_rate_itself_has_a_normalized_log_loss_of_one():
    y = np.array([1] * 25 + [0] * 75)
    metrics = classification_metrics(y, np.full(100, 0.25))
    assert metrics["normalized_log_loss"] == pytest.approx(1.0)
    better = classification_metrics(y, np.where(y == 1, 0.6, 0.1))
    assert 0 < better["normalized_log_loss"] < 1


def test_a_95_percent_interval_of_a_mean_spans_about_1_96_standard_errors_each_side():
    y, p = _cohort()
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    losses = -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
    standard_error = losses.std() / np.sqrt(len(losses))
    for confidence in (0.90, 0.95):
        [(low, high)] = bootstrap_intervals(
            y, p, ["log_loss"], resamples=2000, confidence=confidence, seed=1
        ).values()
        expected_width = 2 * norm.ppf(0.5 + confidence / 2) * standard_error
        assert low < losses.mean() < high
        assert (high - low) / expected_width == pytest.approx(1.0, abs=0.08)


def test_scores_that_rank_nobody_ahead_have_an_auc_of_one_half_in_every_resample():
    y, _ = _cohort(500)
    [(low, high)] = bootstrap_intervals(y, np.full(len(y), 0.3), ["auc"], resamples=50).values()
    assert (low, high) == pytest.approx((0.5, 0.5))
