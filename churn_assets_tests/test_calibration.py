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


def _mild(rng: np.random.Generator):
    """A cohort miscalibrated beyond the 99 % quantile and materially, yet short of p < 0.001."""
    for n in (400, 600, 800, 1000):
        p = _truth(rng, n)
        y = (rng.random(len(p)) < p).astype(int)
        for factor in np.linspace(1.05, 2.5, 59):
            odds = factor * p / (1 - p)
            mild = judge_calibration(y, odds / (1 + odds), "3")
            material = mild.ece - mild.ece_noise >= 0.25 * y.mean()
            if mild.statistic > mild.threshold and mild.p_value >= 0.001 and material:
                return y, odds / (1 + odds), mild
    raise AssertionError("no mild, material miscalibration found")


def test_one_mildly_miscalibrated_cohort_is_information_two_of_three_warn():
    y, scores, mild = _mild(np.random.default_rng(9))
    assert mild.verdict.severity == "pass"
    assert mild.verdict.detail.startswith("information:")
    assert "miscalibrated beyond sampling noise" in mild.verdict.detail
    again = judge_calibration(y, scores, "3", earlier=[False, True])
    assert again.verdict.severity == "warn" and "in 2 of its last 3" in again.verdict.detail
    long_ago = judge_calibration(y, scores, "3", earlier=[True, False, False])
    assert long_ago.verdict.severity == "pass"


def test_gaps_beyond_noise_that_do_not_matter_are_information_however_large_the_cohort():
    rng = np.random.default_rng(11)
    p = _truth(rng, 60_000)
    y = (rng.random(len(p)) < p).astype(int)
    odds = 1.12 * p / (1 - p)  # a tenth more churn announced: the test sees it at this size
    slight = judge_calibration(y, odds / (1 + odds), "3")
    assert slight.p_value < 0.001, slight.p_value
    assert slight.ece - slight.ece_noise < 0.25 * y.mean()
    assert slight.verdict.severity == "pass"
    assert "not material" in slight.verdict.detail
    # Not counted towards persistence: the history reads "miscalibrated" only where it mattered.
    assert "miscalibrated beyond sampling noise" not in slight.verdict.detail
    # Twice the churn odds at the same size matters: it warns.
    odds = 2.0 * p / (1 - p)
    assert judge_calibration(y, odds / (1 + odds), "3").verdict.severity == "warn"
