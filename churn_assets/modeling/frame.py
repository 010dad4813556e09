"""The label, the feature matrix a booster reads, and the probability it gives."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

# The label column of the training frame and of the labels table (DESIGN §2).
LABEL = "is_churn"


def as_matrix(frame: pd.DataFrame, feature_columns: list[str]) -> pd.DataFrame:
    """Float columns throughout, so the MLflow signature matches at scoring time (nulls -> NaN).

    A column stored with another type (text codes, booleans) is converted value by value; what
    does not parse as a number becomes NaN, which LightGBM treats as missing.
    """
    missing = [c for c in feature_columns if c not in frame.columns]
    if missing:
        raise KeyError(f"feature column(s) missing from the feature table: {', '.join(missing)}")
    selected = frame[feature_columns]
    numeric = selected.select_dtypes(include=["number", "bool"]).columns
    if len(numeric) == len(feature_columns):
        return selected.astype("float64")
    return selected.apply(pd.to_numeric, errors="coerce").astype("float64")


def informative_columns(frame: pd.DataFrame, feature_columns: list[str]) -> list[str]:
    """The feature columns that vary in ``frame``: constant and all-null ones carry nothing.

    FLAML's preprocessing drops them silently, leaving a booster with fewer features than the
    frame; dropping them first keeps the booster's feature list the one truth for scoring,
    drift and reasons.
    """
    matrix = as_matrix(frame, feature_columns)
    return [c for c in feature_columns if matrix[c].nunique(dropna=True) > 1]


def predict_probability(booster: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """Churn probability from a booster, checking the columns it was trained on are all there."""
    return booster.predict(as_matrix(frame, list(booster.feature_name())))
