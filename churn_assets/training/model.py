"""Fitting and judging a candidate: FLAML restricted to LightGBM, validated on a later cohort."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from flaml import AutoML

from churn_assets.performance.metrics import classification_metrics

LABEL = "is_churn"
ClassWeight = Literal["none", "balanced"]
SearchMetric = Literal["log_loss", "roc_auc"]

__all__ = [
    "LABEL",
    "ClassWeight",
    "LabeledSplit",
    "SearchMetric",
    "TunedModel",
    "as_matrix",
    "class_weights",
    "classification_metrics",
    "fit_default_lightgbm",
    "fit_lightgbm_automl",
    "held_out_users",
    "informative_columns",
    "predict_probability",
    "search_history",
    "split_by_time",
]


@dataclass(frozen=True)
class LabeledSplit:
    """Training rows from earlier cohorts, validation rows from the newest labelled cohort.

    ``held_out`` are users of the validation cohort kept from the search altogether (see
    :func:`held_out_users`): neither fitted nor tuned on, they are where the candidate and the
    champion can be compared fairly. ``validation`` is then the rest of that cohort.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    feature_columns: list[str]
    training_cohorts: list[date]
    validation_cohort: date
    held_out: pd.DataFrame = field(default_factory=pd.DataFrame)
    held_out_share: float = 0.0


# Users are split by a hash of msno into this many slots; a share holds out the lowest slots.
_HASH_SLOTS = 10_000


def held_out_users(msno: pd.Series, share: float) -> np.ndarray:
    """True for the users held out of tuning: a fixed hash of msno, not a random draw.

    Every training that validates on a cohort holds out the same users (and a larger share holds
    out a superset), so two versions tuned on one cohort were both blind to the smaller share's
    users, and are compared there on equal terms.
    """
    if share <= 0:
        return np.zeros(len(msno), dtype=bool)
    slots = pd.util.hash_pandas_object(msno.astype(str), index=False).to_numpy() % _HASH_SLOTS
    return slots < round(share * _HASH_SLOTS)


def split_by_time(
    frame: pd.DataFrame, feature_columns: list[str], held_out_share: float = 0.0
) -> LabeledSplit:
    """Validate on the newest cohort that has both churners and stayers, train on the earlier
    ones: never a random split across time. Later single-class cohorts are left out (no AUC or
    log loss can be judged on them, and training on them would leak past the validation).

    With ``held_out_share``, that share of the validation cohort's users is kept out of the
    search (``held_out``), unless either part would then lack churners or stayers: the cohort
    is then validated on whole and nothing is held out."""
    months = pd.to_datetime(frame["cohort_month"]).dt.date
    cohorts = sorted(months.unique())
    if len(cohorts) < 2:
        raise ValueError(
            f"training needs at least 2 labelled cohorts (one to validate on), found {len(cohorts)}"
        )
    classes = frame.groupby(months)[LABEL].nunique()
    judged = [c for c in cohorts[1:] if classes.get(c, 0) == 2]
    if not judged:
        raise ValueError(
            "no labelled cohort after the first has both churners and stayers to validate on"
        )
    newest = judged[-1]
    train = frame[months < newest]
    if train[LABEL].nunique() < 2:
        raise ValueError(
            f"the cohorts before {newest:%Y-%m} hold a single class: nothing to learn from"
        )
    validation = frame[months == newest]
    held = (
        held_out_users(validation["msno"], held_out_share)
        if held_out_share > 0
        else np.zeros(len(validation), dtype=bool)
    )
    if (
        held.any()
        and validation[LABEL][held].nunique() == 2
        and validation[LABEL][~held].nunique() == 2
    ):
        held_out, validation = validation[held], validation[~held]
    else:
        held_out, held_out_share = validation.iloc[:0], 0.0
    return LabeledSplit(
        train=train,
        validation=validation,
        feature_columns=feature_columns,
        training_cohorts=[c for c in cohorts if c < newest],
        validation_cohort=newest,
        held_out=held_out,
        held_out_share=held_out_share,
    )


def informative_columns(frame: pd.DataFrame, feature_columns: list[str]) -> list[str]:
    """The feature columns that vary in ``frame``: constant and all-null ones carry nothing.

    FLAML's preprocessing drops them silently, leaving a booster with fewer features than the
    frame; dropping them first keeps the booster's feature list the one truth for scoring,
    drift and reasons.
    """
    matrix = as_matrix(frame, feature_columns)
    return [c for c in feature_columns if matrix[c].nunique(dropna=True) > 1]


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


def class_weights(y: np.ndarray, mode: ClassWeight) -> np.ndarray | None:
    """Per-row weights giving both classes equal total weight, or None (unweighted).

    Unweighted is the default: it keeps the probabilities calibrated for the bucket thresholds
    (weighting inflates every score by the changed class ratio).
    """
    if mode == "none":
        return None
    positives = min(max(float(np.mean(y)), 1e-9), 1 - 1e-9)
    return np.where(y == 1, 0.5 / positives, 0.5 / (1 - positives))


@dataclass(frozen=True)
class TunedModel:
    booster: lgb.Booster
    best_config: dict[str, Any]
    automl: AutoML
    warm_started: bool  # False also when FLAML rejected the starting configuration
    # True when no trial finished inside the budget and one configuration was fitted unclocked
    out_of_time: bool = False


def fit_lightgbm_automl(
    split: LabeledSplit,
    time_budget_s: float,
    seed: int,
    starting_config: dict[str, Any] | None = None,
    class_weight: ClassWeight = "none",
    log_file: Path | None = None,
    metric: SearchMetric = "log_loss",
) -> TunedModel:
    """Tune LightGBM with FLAML on the training cohorts, scored on the validation cohort.

    Log loss is the default objective: the buckets cut on absolute probabilities, so they need
    calibrated scores, and on the simulated benchmark searching on log loss ranked as well as
    searching on AUC (BENCHMARKS.md, "Model quality").

    ``starting_config`` (the champion's best configuration) is tried first, so a retrain starts
    where the last search ended instead of from FLAML's cold default.
    """
    y_train = split.train[LABEL].to_numpy()
    settings: dict[str, Any] = {
        "X_train": as_matrix(split.train, split.feature_columns),
        "y_train": y_train,
        "X_val": as_matrix(split.validation, split.feature_columns),
        "y_val": split.validation[LABEL].to_numpy(),
        "task": "classification",
        "metric": metric,
        "estimator_list": ["lgbm"],
        "time_budget": time_budget_s,
        "seed": seed,
        "n_jobs": 2,
        "verbose": 0,
        # FLAML's own MLflow logging breaks inside an active MLflow 3 run; we log ourselves.
        "mlflow_logging": False,
    }
    weights = class_weights(y_train, class_weight)
    if weights is not None:
        settings["sample_weight"] = weights
    if log_file is not None:
        settings["log_file_name"] = str(log_file)
    automl, warm_started = _search(settings, starting_config)
    out_of_time = automl.model is None
    if out_of_time:
        # On a loaded machine the budget can end before the first trial does, and FLAML then
        # returns no model at all. One trial without a clock still gives a real model.
        automl, warm_started = _search(
            settings | {"time_budget": -1, "max_iter": 1}, starting_config
        )
    booster = automl.model.estimator.booster_
    return TunedModel(booster, dict(automl.best_config), automl, warm_started, out_of_time)


def _search(
    settings: dict[str, Any], starting_config: dict[str, Any] | None
) -> tuple[AutoML, bool]:
    """One FLAML search, from the starting configuration when FLAML accepts it."""
    if starting_config:
        automl = AutoML()
        try:
            automl.fit(**settings, starting_points={"lgbm": dict(starting_config)})
            return automl, True
        except (ValueError, KeyError, AssertionError, TypeError):
            pass  # a stale configuration FLAML rejects for today's data: search from cold instead
    automl = AutoML()
    automl.fit(**settings)
    return automl, False


def search_history(log_file: Path) -> pd.DataFrame:
    """FLAML's trial log as a table: one row per evaluated configuration, in search order."""
    columns = ["trial", "wall_clock_s", "validation_loss", "trial_time_s", "config"]
    rows = []
    if log_file.exists():
        for line in log_file.read_text().splitlines():
            record = json.loads(line)
            if "record_id" not in record:
                continue  # FLAML's closing summary line
            rows.append(
                {
                    "trial": record["record_id"],
                    "wall_clock_s": record.get("wall_clock_time"),
                    "validation_loss": record.get("validation_loss"),
                    "trial_time_s": record.get("trial_time"),
                    "config": json.dumps(record.get("config", {}), sort_keys=True),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def fit_default_lightgbm(split: LabeledSplit, seed: int) -> lgb.Booster:
    """LightGBM with its library defaults: what tuning has to beat to be worth its budget."""
    model = lgb.LGBMClassifier(random_state=seed, n_jobs=2, verbose=-1)
    model.fit(as_matrix(split.train, split.feature_columns), split.train[LABEL].to_numpy())
    return model.booster_


def predict_probability(booster: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """Churn probability from a booster, checking the columns it was trained on are all there."""
    return booster.predict(as_matrix(frame, list(booster.feature_name())))
