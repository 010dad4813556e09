"""What a training run leaves in MLflow and in the Dagster UI: parameters, metrics, the search,
the booster as an MLflow model, and the materialization's metadata."""

import math
import time
from collections.abc import Mapping
from datetime import date

import dagster as dg
import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

from churn_assets.keys import LABELS_TAG, TRAINING_CAUSE_TAG
from churn_assets.modeling.frame import as_matrix
from churn_assets.settings import REGISTERED_MODEL_NAME
from churn_assets.training.candidate import Candidate
from churn_assets.training.config import TrainingConfig

# What a logged booster needs to be loaded and scored anywhere.
MODEL_REQUIREMENTS = [
    f"lightgbm=={lgb.__version__}",
    f"pandas=={pd.__version__}",
    f"numpy=={np.__version__}",
    f"mlflow=={mlflow.__version__}",
]


def training_run_name(run_tags: Mapping[str, str], as_of: date) -> str:
    """The MLflow run's name, by what it did: "train labels 2016-07 (drift)"; a run launched by
    hand (no sensor tags) says so and names the month it trained as of."""
    labels = run_tags.get(LABELS_TAG, "")[:7]
    cause = run_tags.get(TRAINING_CAUSE_TAG) or ("retraining" if labels else "by hand")
    return f"train labels {labels} ({cause})" if labels else f"train as of {as_of:%Y-%m} ({cause})"


def name_training_run(client: MlflowClient, run_tags: Mapping[str, str], as_of: date) -> None:
    """Name the active MLflow run (dagster-mlflow names every run after the job)."""
    run = mlflow.active_run()
    if run is not None:
        client.update_run(run.info.run_id, name=training_run_name(run_tags, as_of))


def _log_search_history(mlf, history: pd.DataFrame, metric: str) -> None:
    """Each trial's validation score as a stepped metric, and the trial table as an artifact."""
    mlf.log_text(history.to_csv(index=False), "flaml_search_history.csv")
    run = mlf.active_run()
    if run is None or history.empty:
        return
    # FLAML minimises: log loss as is, AUC as 1 - AUC.
    name, score, better = (
        ("val_auc", lambda loss: 1.0 - loss, max)
        if metric == "roc_auc"
        else ("val_log_loss", lambda loss: loss, min)
    )
    now_ms = int(time.time() * 1000)
    best, metrics = None, []
    for step, loss in enumerate(history["validation_loss"]):
        if loss is None or pd.isna(loss):
            continue
        value = score(float(loss))
        best = value if best is None else better(best, value)
        metrics += [
            Metric(f"search_trial_{name}", value, now_ms, step),
            Metric(f"search_best_{name}", best, now_ms, step),
        ]
    # One batched write: a search easily runs hundreds of trials.
    for start in range(0, len(metrics), 1000):
        MlflowClient().log_batch(run.info.run_id, metrics=metrics[start : start + 1000])


def _markdown_metrics(rows: dict[str, dict[str, float]]) -> str:
    frame = pd.DataFrame(rows).T[["auc", "log_loss", "brier", "ks", "lift_top_decile"]]
    return frame.round(4).to_markdown()


def log_candidate_run(
    mlf, config: TrainingConfig, as_of: date, candidate: Candidate, register: bool
) -> None:
    """Parameters, metrics, the search and the hurdle on the candidate's MLflow run."""
    split, tuned, hurdle = candidate.split, candidate.tuned, candidate.hurdle
    choice = candidate.window_choice
    mlf.log_params(
        {
            "as_of_month": f"{as_of:%Y-%m}",
            "training_cohorts": ",".join(f"{c:%Y-%m}" for c in split.training_cohorts),
            "validation_cohort": f"{split.validation_cohort:%Y-%m}",
            "time_budget_s": candidate.budget_s,
            "seed": config.seed,
            "class_weight": config.class_weight,
            "search_metric": config.search_metric,
            "warm_started": tuned.warm_started,
            "hurdle_margin": config.hurdle_margin,
            "train_rows": len(split.train),
            "validation_rows": len(split.validation),
            "held_out_rows": len(split.held_out),
            **{f"lgbm_{k}": v for k, v in tuned.best_config.items()},
            **(choice.params() if choice is not None else {}),
            **candidate.calibration.params(),
        }
    )
    mlf.log_metrics(
        {f"val_{k}": v for k, v in candidate.metrics.items() if not math.isnan(v)}
        | {
            f"baseline_{name}_{k}": v
            for name, values in candidate.baselines.items()
            for k, v in values.items()
            if not math.isnan(v)
        }
        | {
            "flaml_best_loss": float(tuned.automl.best_loss),
            "flaml_trials": float(len(candidate.history)),
            "hurdle_auc_diff_low": hurdle.difference_low,
            "hurdle_auc_diff_high": hurdle.difference_high,
        }
        | (choice.run_metrics() if choice is not None else {})
        | candidate.calibration.metrics()
    )
    _log_search_history(mlf, candidate.history, config.search_metric)
    mlf.log_dict(candidate.importance().to_dict(), "feature_importance_gain.json")
    mlf.log_dict(tuned.best_config, "flaml_best_config.json")
    mlf.log_text(candidate.calibration.calibration.to_tag(), "calibration.json")
    verdict = hurdle.verdict()
    mlf.set_tags(
        {
            "candidate_status": "registered" if register else "rejected",
            "cleared_hurdle": hurdle.tag,
            "hurdle": verdict,
            **({} if register else {"rejection_reason": f"does not beat the baseline: {verdict}"}),
            **(choice.tags() if choice is not None else {}),
        }
    )


def log_booster(candidate: Candidate, register: bool) -> ModelInfo:
    """The booster as an MLflow model, registered as a new version when it is to be."""
    booster = candidate.booster
    # The booster's own feature list is what scoring, drift and reasons use.
    example = as_matrix(candidate.split.validation, list(booster.feature_name())).head(5)
    return mlflow.lightgbm.log_model(
        booster,
        name="model",
        signature=infer_signature(example, booster.predict(example)),
        input_example=example,
        registered_model_name=REGISTERED_MODEL_NAME if register else None,
        # Named rather than inferred: inference imports the model in a subprocess to see which
        # modules it touches, seconds per training for a list that is known.
        pip_requirements=MODEL_REQUIREMENTS,
    )


def candidate_metadata(
    as_of: date, candidate: Candidate, register: bool, run_id: str
) -> dict[str, object]:
    """What the materialization shows of every candidate, registered or not."""
    split, window, tuned, metrics = (
        candidate.split,
        candidate.window,
        candidate.tuned,
        candidate.metrics,
    )
    return {
        "registered": register,
        "cleared_hurdle": candidate.hurdle.cleared,
        "hurdle_outcome": candidate.hurdle.outcome,
        "val_auc": metrics["auc"],
        "val_log_loss": metrics["log_loss"],
        "val_brier": metrics["brier"],
        "val_ks": metrics["ks"],
        "val_lift_top_decile": metrics["lift_top_decile"],
        "val_churn_rate": metrics["churn_rate"],
        "baseline_rule_auc": candidate.baselines["rule"]["auc"],
        "baseline_logistic_regression_auc": candidate.baselines["logistic_regression"]["auc"],
        "hurdle": candidate.hurdle.verdict(),
        "hurdle_baseline": candidate.hurdle.baseline,
        "hurdle_auc_diff_low": candidate.hurdle.difference_low,
        "hurdle_auc_diff_high": candidate.hurdle.difference_high,
        "as_of_month": f"{as_of:%Y-%m}",
        "training_cohorts": ", ".join(f"{c:%Y-%m}" for c in split.training_cohorts),
        "validation_cohort": f"{split.validation_cohort:%Y-%m}",
        "train_rows": len(split.train),
        "validation_rows": len(split.validation),
        "held_out_rows": len(split.held_out),
        "features_used": len(candidate.booster.feature_name()),
        "features_dropped_uninformative": dg.MetadataValue.json(candidate.dropped),
        "trained_on_incomplete_cohorts": window.used_incomplete,
        "incomplete_cohorts": ", ".join(f"{c:%Y-%m}" for c in window.incomplete_cohorts) or "none",
        "warm_started": tuned.warm_started,
        "search_budget_s": candidate.budget_s,
        "search_out_of_time": tuned.out_of_time,
        "search_trials": len(candidate.history),
        "mlflow_run_id": run_id,
        "best_config": dg.MetadataValue.json(tuned.best_config),
        "candidate_vs_baselines": dg.MetadataValue.md(
            _markdown_metrics({"candidate": metrics, **candidate.baselines})
        ),
        "feature_importance_gain": dg.MetadataValue.md(
            candidate.importance().head(15).to_frame("gain").to_markdown()
        ),
        **candidate.calibration.metadata(),
        **(candidate.window_choice.metadata() if candidate.window_choice is not None else {}),
    }
