"""Calibration watched once labels land: a truth-scored cohort passes at the noise rate, a
score that announces another churn than the labels show warns."""

from __future__ import annotations

import numpy as np

from churn_assets.performance.calibration import judge_calibration, pooled, reliability_bins


def _truth(rng: np.random.Generator, n: int) -> np.ndarray:
    return 1 / (1 + np.exp(-(-2.4 + 1.6 * rng.normal(size=n))))


def test_reliability_bins_are_equal_mass_and_pool_to_cochrans_rule():
    rng = np.random.default_rng(5)
    p = _truth(rng, 1003)
    y = (rng.random(len(p)) < p).astype(int)
    table = reliability_bins(y, p, 10)
    assert list(table["users"]) == [101, 101, 101] + [100] * 7
    assert table["mean_score"].is_monotonic_increasing
    groups = pooled(table)
    stayers = groups["users"] - groups["expected_churners"]
    assert (groups["expected_churners"] >= 5).all() and (stayers >= 5).all()
    assert groups["users"].sum() == len(p) and len(groups) < len(table)


def test_calibrated_scores_pass_at_the_noise_rate_and_miscalibrated_ones_warn():
    rng = np.random.default_rng(6)
    warned, cohorts = 0, 100
    for _ in range(cohorts):
        p = _truth(rng, 1000)
        y = (rng.random(len(p)) < p).astype(int)
        calibration = judge_calibration(y, p, "3")
        warned += calibration.verdict.severity == "warn"
        assert calibration.ece < 4 * calibration.ece_noise
    assert warned <= 5  # 99 %: about one cohort in a hundred by chance
    p = _truth(rng, 1000)
    y = (rng.random(len(p)) < p).astype(int)
    odds = 1.8 * p / (1 - p)  # scores that announce nearly twice the churn odds
    miscalibrated = judge_calibration(y, odds / (1 + odds), "3")
    assert miscalibrated.verdict.severity == "warn"
    assert miscalibrated.ece > 2 * miscalibrated.ece_noise
    assert "miscalibrated beyond sampling noise" in miscalibrated.verdict.detail
    # A provisional champion is already being replaced: the same gaps are information.
    provisional = judge_calibration(y, odds / (1 + odds), "3", provisional=True)
    assert provisional.statistic == miscalibrated.statistic
    assert provisional.verdict.severity == "pass"
    assert provisional.verdict.detail.startswith("information: provisional champion v3")
    metadata = miscalibrated.metadata()
    assert len(metadata["reliability_curve"].data["mean_score"]) == 10
    assert judge_calibration(y, None, None).verdict.severity == "n/a"
    # Too few churners to fill one pooled bin: nothing to test.
    few = judge_calibration(np.zeros(30, dtype=int), np.full(30, 0.01), "3")
    assert few.verdict.severity == "n/a"


def test_one_mildly_miscalibrated_cohort_is_information_two_of_three_warn():
    rng = np.random.default_rng(9)
    p = _truth(rng, 1500)
    y = (rng.random(len(p)) < p).astype(int)
    # Find a mild miscalibration: beyond the 99 % quantile, short of p < 0.001.
    for factor in np.linspace(1.05, 1.6, 56):
        odds = factor * p / (1 - p)
        mild = judge_calibration(y, odds / (1 + odds), "3")
        if mild.statistic > mild.threshold and mild.p_value >= 0.001:
            break
    else:
        raise AssertionError("no mild miscalibration found")
    assert mild.verdict.severity == "pass"
    assert mild.verdict.detail.startswith("information:")
    again = judge_calibration(y, odds / (1 + odds), "3", earlier=[False, True])
    assert again.verdict.severity == "warn" and "in 2 of its last 3" in again.verdict.detail
    long_ago = judge_calibration(y, odds / (1 + odds), "3", earlier=[True, False, False])
    assert long_ago.verdict.severity == "pass"
