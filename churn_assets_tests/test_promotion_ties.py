"""A challenger exactly as good as the champion: enough to replace one in question, never a
healthy one."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np

from churn_assets.training.config import TrainingConfig
from churn_assets.training.promotion import compare_scores, decide_promotion


def _comparison(challenger: np.ndarray, champion: np.ndarray, y: np.ndarray):
    return compare_scores(
        y,
        challenger,
        champion,
        champion_version="4",
        cohort=date(2016, 6, 1),
        basis="held-out users",
        seen_by_challenger=False,
        seen_by_champion="",
        resamples=50,
    )


def _promoted(comparison, metric: str, *in_question: str) -> bool:
    champion = SimpleNamespace(version="4", tags={"cleared_hurdle": "true"})
    config = TrainingConfig(champion_in_question=list(in_question), promotion_metric=metric)
    return decide_promotion(config, champion, comparison, True, False).promote


def test_a_challenger_ranking_users_exactly_as_the_champion_holds_up_on_auc():
    rng = np.random.default_rng(2)
    champion = rng.uniform(0.01, 0.9, 400)
    y = (rng.random(400) < champion).astype(int)
    # The same order of users, other probabilities: the same AUC to the last digit.
    same_order = champion**2
    tie = _comparison(same_order, champion, y)
    assert tie.difference("auc") == 0.0
    holds, reason = tie.holds_up("auc")
    assert holds and "at least as good" in reason
    assert _promoted(tie, "auc", "drift")
    assert not _promoted(tie, "auc")  # a healthy champion needs a gain beyond doubt


def test_a_challenger_with_the_champions_scores_holds_up_on_log_loss():
    rng = np.random.default_rng(3)
    champion = rng.uniform(0.01, 0.9, 400)
    y = (rng.random(400) < champion).astype(int)
    tie = _comparison(champion.copy(), champion, y)
    assert tie.difference("log_loss") == 0.0
    assert tie.holds_up("log_loss")[0]
    assert _promoted(tie, "log_loss", "staleness")
    # Worse calibrated on the same users: it does not hold up.
    worse = _comparison(np.clip(champion * 1.5, 0.001, 0.999), champion, y)
    assert worse.difference("log_loss") > 0
    assert not worse.holds_up("log_loss")[0]
    assert not _promoted(worse, "log_loss", "staleness")
