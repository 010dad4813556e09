"""Performance estimated before labels land, from the scores alone.

Labels are drawn from known probabilities, so the truth of every cohort is known: scores equal
to the truth are calibrated, and the estimate must cover what the labels then realise; a score
moved off the truth (miscalibrated) or labels that follow another truth (a concept shift) must
leave the realised metric outside the estimate.
"""

from __future__ import annotations

import numpy as np
import pytest

from churn_assets.modeling.metrics import classification_metrics
from churn_assets.performance.estimation import (
    Estimate,
    estimate_performance,
    expected_confusion,
    realised_metrics,
)
from churn_assets.scoring.buckets import assign_buckets

CHECKED = ("auc", "log_loss", "churn_rate", "lift_top_decile", "bucket_a_precision")


def _truth(rng: np.random.Generator, n: int, intercept: float = -2.4) -> np.ndarray:
    return 1 / (1 + np.exp(-(intercept + 1.6 * rng.normal(size=n))))


def _buckets(p: np.ndarray) -> np.ndarray:
    return assign_buckets(p, 0.3, 0.1)


def _estimate(p: np.ndarray, confidence: float = 0.95, seed: int = 0) -> dict[str, Estimate]:
    return estimate_performance(p, _buckets(p), confidence=confidence, draws=200, seed=seed)


def test_a_draw_computes_each_metric_as_the_shipped_metrics_do():
    rng = np.random.default_rng(1)
    p = np.round(_truth(rng, 3000), 2)  # rounded: many tied scores
    y = (rng.random(len(p)) < p).astype(int)
    mine = realised_metrics(y, p, _buckets(p))
    shipped = classification_metrics(y, p, 0.3)
    for metric in ("auc", "log_loss", "lift_top_decile", "bucket_a_precision", "bucket_a_recall"):
        assert mine[metric] == pytest.approx(shipped[metric], rel=1e-9), metric
    assert mine["churn_rate"] == pytest.approx(y.mean())


def test_closed_forms_are_the_mean_of_many_label_draws():
    rng = np.random.default_rng(2)
    p = np.round(_truth(rng, 2000), 3)
    estimates = _estimate(p)
    draws = [realised_metrics(rng.random(len(p)) < p, p, _buckets(p)) for _ in range(400)]
    for metric in CHECKED:
        mean = np.mean([d[metric] for d in draws])
        # Ratios of expectations are off the expected ratio by O(1/n) only.
        assert estimates[metric].estimate == pytest.approx(mean, rel=0.01), metric
    assert estimates["churn_rate"].estimate == pytest.approx(p.mean())


def test_calibrated_scores_cover_what_the_labels_realise():
    """Coverage over many cohorts: each of a new population draw, with labels from its truth."""
    rng = np.random.default_rng(3)
    covered = {m: 0 for m in CHECKED}
    cohorts = 60
    for seed in range(cohorts):
        p = _truth(rng, 1500)
        estimates = _estimate(p, seed=seed)
        y = (rng.random(len(p)) < p).astype(int)
        realised = realised_metrics(y, p, _buckets(p))
        for metric in CHECKED:
            e = estimates[metric]
            covered[metric] += e.low <= realised[metric] <= e.high
    # 95 % intervals (users resampled too: on the cohort's own users they are conservative).
    assert all(count >= 0.88 * cohorts for count in covered.values()), covered


def test_a_miscalibrated_score_or_a_concept_shift_leaves_the_realised_metric_outside():
    rng = np.random.default_rng(4)
    outside = {"churn_rate": 0, "log_loss": 0, "auc": 0}
    cohorts = 20
    for seed in range(cohorts):
        truth = _truth(rng, 3000)
        # Miscalibrated: the score doubles the odds of churn, ranking untouched.
        odds = 2 * truth / (1 - truth)
        estimates = _estimate(odds / (1 + odds), seed=seed)
        y = (rng.random(len(truth)) < truth).astype(int)
        realised = realised_metrics(y, truth, _buckets(truth))
        outside["churn_rate"] += realised["churn_rate"] < estimates["churn_rate"].low
        outside["log_loss"] += realised["log_loss"] < estimates["log_loss"].low
        # Concept shift: the scores are the old truth, churn now follows another signal half.
        shifted = 1 / (1 + np.exp(-(np.log(odds / 2) * 0.5 + 0.8 * rng.normal(size=3000))))
        y_new = (rng.random(len(truth)) < shifted).astype(int)
        estimated = _estimate(truth, seed=seed)["auc"]
        outside["auc"] += realised_metrics(y_new, truth, _buckets(truth))["auc"] < estimated.low
    assert all(count >= 0.9 * cohorts for count in outside.values()), outside


def test_the_expected_confusion_matrix_adds_up():
    p = np.array([0.9, 0.5, 0.2, 0.15, 0.05, 0.01])
    rows = {r["flagged"]: r for r in expected_confusion(p, _buckets(p))}
    assert rows["A"]["users"] == 2 and rows["A+B"]["users"] == 4
    assert rows["A"]["churners_flagged"] == pytest.approx(1.4)
    for row in rows.values():
        churners = row["churners_flagged"] + row["churners_missed"]
        assert churners == pytest.approx(p.sum())
        total = churners + row["stayers_flagged"] + row["stayers_passed"]
        assert total == pytest.approx(len(p))


def test_an_empty_cohort_estimates_nothing():
    empty = estimate_performance(np.array([]), np.array([]), confidence=0.95)
    assert all(np.isnan(e.estimate) for e in empty.values())
    # No one in bucket A: its precision is undefined, the rest is estimated.
    low = np.full(500, 0.05)
    estimates = _estimate(low)
    assert np.isnan(estimates["bucket_a_precision"].estimate)
    assert estimates["churn_rate"].estimate == pytest.approx(0.05)
    assert estimates["auc"].estimate == pytest.approx(0.5)  # all tied: no ranking at all
