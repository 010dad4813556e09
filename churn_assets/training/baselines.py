"""Baselines a tuned model must beat to be worth registering.

* ``rule``: the as-is process. A member who switched auto-renew off or cancelled is expected to
  leave; the score is the churn rate of that group in the training cohorts, so it is a calibrated
  probability too (log loss comparable).
* ``logistic_regression``: a linear model on the same features (median-imputed, standardised).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from churn_assets.training.model import LABEL, LabeledSplit, as_matrix

RULE_COLUMNS = ("last_is_auto_renew", "last_is_cancel")


def rule_flags(frame: pd.DataFrame) -> np.ndarray:
    """True for members the as-is rule calls leavers: auto-renew off, or the plan cancelled.

    A feature table without either column flags nobody (the rule then ranks no better than chance).
    """
    flags = np.zeros(len(frame), dtype=bool)
    if "last_is_auto_renew" in frame.columns:
        flags |= frame["last_is_auto_renew"].astype("float64").fillna(0).to_numpy() < 0.5
    if "last_is_cancel" in frame.columns:
        flags |= frame["last_is_cancel"].astype("float64").fillna(0).to_numpy() >= 0.5
    return flags


@dataclass(frozen=True)
class RuleBaseline:
    """The as-is rule, scoring each group with the churn rate it had in the training cohorts."""

    flagged_rate: float
    unflagged_rate: float

    @classmethod
    def fit(cls, train: pd.DataFrame) -> RuleBaseline:
        y = train[LABEL].to_numpy()
        flags = rule_flags(train)
        overall = float(y.mean())
        return cls(
            flagged_rate=float(y[flags].mean()) if flags.any() else overall,
            unflagged_rate=float(y[~flags].mean()) if (~flags).any() else overall,
        )

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.where(rule_flags(frame), self.flagged_rate, self.unflagged_rate)


def fit_logistic_regression(split: LabeledSplit, seed: int) -> Pipeline:
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    model.fit(as_matrix(split.train, split.feature_columns), split.train[LABEL].to_numpy())
    return model


def fit_baselines(
    split: LabeledSplit, seed: int
) -> dict[str, Callable[[pd.DataFrame], np.ndarray]]:
    """Both baselines fitted on the training cohorts, as churn-probability scorers of a frame."""
    rule = RuleBaseline.fit(split.train)
    logistic = fit_logistic_regression(split, seed)
    return {
        "rule": rule.predict,
        "logistic_regression": lambda frame: logistic.predict_proba(
            as_matrix(frame, split.feature_columns)
        )[:, 1],
    }


def baseline_scores(split: LabeledSplit, seed: int) -> dict[str, np.ndarray]:
    """Both baselines fitted on the training cohorts; their scores of the validation cohort."""
    return {name: score(split.validation) for name, score in fit_baselines(split, seed).items()}

