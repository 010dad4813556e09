"""Baselines a tuned model must beat to be worth registering.

* ``rule``: the as-is process (:mod:`churn_assets.modeling.rule`), scored with each group's churn
  rate in the training cohorts.
* ``logistic_regression``: a linear model on the same features (median-imputed, standardised).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from churn_assets.modeling.frame import LABEL, as_matrix
from churn_assets.modeling.rule import RuleBaseline
from churn_assets.training.split import LabelledSplit


def fit_logistic_regression(split: LabelledSplit, seed: int) -> Pipeline:
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    model.fit(as_matrix(split.train, split.feature_columns), split.train[LABEL].to_numpy())
    return model


def fit_baselines(
    split: LabelledSplit, seed: int
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


def baseline_scores(split: LabelledSplit, seed: int) -> dict[str, np.ndarray]:
    """Both baselines fitted on the training cohorts; their scores of the validation cohort."""
    return {name: score(split.validation) for name, score in fit_baselines(split, seed).items()}
