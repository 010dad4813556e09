"""FLAML's search restricted to LightGBM, validated on a later cohort, and its trial history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from flaml import AutoML

from churn_assets.modeling.frame import LABEL, as_matrix
from churn_assets.training.split import LabelledSplit

ClassWeight = Literal["none", "balanced"]
SearchMetric = Literal["log_loss", "roc_auc"]


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
    split: LabelledSplit,
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
    best_config = dict(automl.best_config)
    if "n_estimators" in best_config:
        # FLAML stops adding trees when a trial runs out of its share of the clock, so on a busy
        # machine the fitted booster can hold fewer than the configuration names: record what
        # was fitted, so a refit of the configuration is this booster again.
        best_config["n_estimators"] = booster.current_iteration()
    return TunedModel(booster, best_config, automl, warm_started, out_of_time)


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


def fit_default_lightgbm(split: LabelledSplit, seed: int) -> lgb.Booster:
    """LightGBM with its library defaults: what tuning has to beat to be worth its budget."""
    model = lgb.LGBMClassifier(random_state=seed, n_jobs=2, verbose=-1)
    model.fit(as_matrix(split.train, split.feature_columns), split.train[LABEL].to_numpy())
    return model.booster_
