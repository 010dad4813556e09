"""Fitting and judging a candidate: FLAML restricted to LightGBM, validated on a later cohort."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import lightgbm as lgb
import numpy as np
import pandas as pd
from flaml import AutoML
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

LABEL = "is_churn"


@dataclass(frozen=True)
class LabeledSplit:
    """Training rows from earlier cohorts, validation rows from the newest labelled cohort."""

    train: pd.DataFrame
    validation: pd.DataFrame
    feature_columns: list[str]
    training_cohorts: list[date]
    validation_cohort: date


def split_by_time(frame: pd.DataFrame, feature_columns: list[str]) -> LabeledSplit:
    """Validate on the newest cohort, train on the rest: never a random split across time."""
    cohorts = sorted(pd.to_datetime(frame["cohort_month"]).dt.date.unique())
    if len(cohorts) < 2:
        raise ValueError(
            f"training needs at least 2 labelled cohorts (one to validate on), found {len(cohorts)}"
        )
    newest = cohorts[-1]
    is_validation = pd.to_datetime(frame["cohort_month"]).dt.date == newest
    return LabeledSplit(
        train=frame[~is_validation],
        validation=frame[is_validation],
        feature_columns=feature_columns,
        training_cohorts=cohorts[:-1],
        validation_cohort=newest,
    )


def as_matrix(frame: pd.DataFrame, feature_columns: list[str]) -> pd.DataFrame:
    """Float columns throughout, so the MLflow signature matches at scoring time (nulls -> NaN)."""
    missing = [c for c in feature_columns if c not in frame.columns]
    if missing:
        raise KeyError(f"feature column(s) missing from the feature table: {', '.join(missing)}")
    return frame[feature_columns].astype("float64")


def fit_lightgbm_automl(
    split: LabeledSplit, time_budget_s: float, seed: int
) -> tuple[lgb.Booster, dict, AutoML]:
    """Tune LightGBM with FLAML on the training cohorts, scored by AUC on the validation cohort."""
    automl = AutoML()
    automl.fit(
        X_train=as_matrix(split.train, split.feature_columns),
        y_train=split.train[LABEL].to_numpy(),
        X_val=as_matrix(split.validation, split.feature_columns),
        y_val=split.validation[LABEL].to_numpy(),
        task="classification",
        metric="roc_auc",
        estimator_list=["lgbm"],
        time_budget=time_budget_s,
        seed=seed,
        n_jobs=2,
        verbose=0,
        # FLAML's own MLflow logging breaks inside an active MLflow 3 run; we log ourselves.
        mlflow_logging=False,
    )
    booster = automl.model.estimator.booster_
    return booster, dict(automl.best_config), automl


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """AUC, log loss and Brier score; AUC is undefined (NaN) on a single-class cohort."""
    clipped = np.clip(probability, 1e-7, 1 - 1e-7)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "auc": float(roc_auc_score(y_true, probability)) if both_classes else float("nan"),
        "log_loss": float(log_loss(y_true, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, probability)),
        "churn_rate": float(np.mean(y_true)),
    }


def predict_probability(booster: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """Churn probability from a booster, checking the columns it was trained on are all there."""
    return booster.predict(as_matrix(frame, list(booster.feature_name())))
