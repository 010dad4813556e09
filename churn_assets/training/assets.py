"""The ``churn_model`` asset: train, log to MLflow, register, and decide the champion.

Every registered version becomes ``challenger``. It also becomes ``champion`` when there is none
yet, or when it scores at least as well (plus ``promotion_margin``) as the current champion on the
same, newest labelled cohort.
"""

import json
import math
from datetime import date
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.models import infer_signature
from pydantic import Field

from churn_assets.features.assets import feature_columns_of
from churn_assets.partitions import add_months, latest_labeled_cohort, month_start
from churn_assets.resources import ModelRegistryResource
from churn_assets.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets.training.model import (
    LABEL,
    LabeledSplit,
    as_matrix,
    classification_metrics,
    fit_lightgbm_automl,
    predict_probability,
    split_by_time,
)
from churn_assets.warehouse import run_sql_file

SQL = Path(__file__).parent / "training_frame.sql"


class TrainingConfig(dg.Config):
    """Knobs of a training run; replay and the retraining sensor set ``as_of_month``."""

    as_of_month: str = Field(
        default="",
        description="Train as on the first day of this month (YYYY-MM); empty means today.",
    )
    window_cohorts: int = Field(default=6, description="Labelled cohorts used, newest validates.")
    time_budget_s: float = Field(default=30.0, description="FLAML search budget in seconds.")
    seed: int = 42
    promotion_margin: float = Field(
        default=0.0, description="AUC a challenger must gain over the champion to replace it."
    )


def load_labeled_window(
    warehouse: DuckDBResource, as_of: date, window_cohorts: int
) -> pd.DataFrame:
    """Rows of the newest ``window_cohorts`` cohorts whose labels are known at ``as_of``."""
    last = latest_labeled_cohort(as_of)
    first = add_months(last, -(window_cohorts - 1))
    with warehouse.get_connection() as conn:
        return run_sql_file(conn, SQL, {"first_cohort": first, "last_cohort": last}).df()


def champion_score_on(
    registry: ModelRegistryResource, split: LabeledSplit
) -> tuple[str | None, float | None]:
    """The current champion's AUC on the candidate's validation cohort, if it can be scored."""
    champion = registry.champion()
    if champion is None:
        return None, None
    booster = registry.load_model(champion.version)
    try:
        probability = predict_probability(booster, split.validation)
    except KeyError:  # the champion needs a feature the table no longer has
        return champion.version, float("-inf")
    return champion.version, classification_metrics(
        split.validation[LABEL].to_numpy(), probability
    )["auc"]


@dg.asset(
    group_name="training",
    kinds={"mlflow", "lightgbm"},
    deps=["features", "labels"],
    # dagster-mlflow's tracking resource is old-style, so every resource is asked for by key.
    required_resource_keys={"mlflow", "warehouse", "registry"},
)
def churn_model(context: dg.AssetExecutionContext, config: TrainingConfig) -> dg.MaterializeResult:
    """A FLAML-tuned LightGBM churn classifier, registered in MLflow as ``churn-model``."""
    warehouse: DuckDBResource = context.resources.warehouse
    registry: ModelRegistryResource = context.resources.registry
    as_of = month_start(config.as_of_month) if config.as_of_month else month_start(date.today())
    frame = load_labeled_window(warehouse, as_of, config.window_cohorts)
    if frame.empty:
        raise dg.Failure(f"no labelled feature rows with labels known by {as_of:%Y-%m}")
    try:
        split = split_by_time(frame, feature_columns_of([c for c in frame.columns if c != LABEL]))
    except ValueError as exc:
        raise dg.Failure(str(exc)) from exc

    booster, best_config, automl = fit_lightgbm_automl(split, config.time_budget_s, config.seed)
    y_val = split.validation[LABEL].to_numpy()
    probability = predict_probability(booster, split.validation)
    metrics = classification_metrics(y_val, probability)
    importance = (
        pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
        .sort_values(ascending=False)
        .round(1)
    )

    mlf = context.resources.mlflow
    mlf.log_params(
        {
            "as_of_month": f"{as_of:%Y-%m}",
            "training_cohorts": ",".join(f"{c:%Y-%m}" for c in split.training_cohorts),
            "validation_cohort": f"{split.validation_cohort:%Y-%m}",
            "time_budget_s": config.time_budget_s,
            "seed": config.seed,
            "train_rows": len(split.train),
            "validation_rows": len(split.validation),
            **{f"lgbm_{k}": v for k, v in best_config.items()},
        }
    )
    mlf.log_metrics(
        {f"val_{k}": v for k, v in metrics.items() if not math.isnan(v)}
        | {"flaml_best_loss": float(automl.best_loss)}
    )
    mlf.log_dict(importance.to_dict(), "feature_importance_gain.json")
    example = as_matrix(split.validation, split.feature_columns).head(5)
    model_info = mlflow.lightgbm.log_model(
        booster,
        name="model",
        signature=infer_signature(example, booster.predict(example)),
        input_example=example,
        registered_model_name=REGISTERED_MODEL_NAME,
    )
    version = str(model_info.registered_model_version)

    champion_version, champion_auc = champion_score_on(registry, split)
    candidate_auc = metrics["auc"]
    promote = champion_version is None or (
        not math.isnan(candidate_auc) and candidate_auc >= champion_auc + config.promotion_margin
    )
    client = registry.client
    tags = {
        "as_of_month": f"{as_of:%Y-%m}",
        "training_cohorts": json.dumps([f"{c:%Y-%m-01}" for c in split.training_cohorts]),
        "validation_cohort": f"{split.validation_cohort:%Y-%m-01}",
        "val_auc": f"{candidate_auc:.6f}",
        "feature_columns": json.dumps(split.feature_columns),
        "compared_with_champion": str(champion_version or "none"),
        "champion_val_auc": "" if champion_auc is None else f"{champion_auc:.6f}",
        "promoted": str(promote).lower(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(REGISTERED_MODEL_NAME, version, key, value)
    registry.set_alias(CHALLENGER_ALIAS, version)
    if promote:
        registry.set_alias(CHAMPION_ALIAS, version)
    context.log.info(
        f"registered {REGISTERED_MODEL_NAME} v{version} (val AUC {candidate_auc:.4f}); "
        f"champion is now v{version if promote else champion_version}"
    )
    mlf.end_run()

    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "champion_version": version if promote else str(champion_version),
            "promoted_to_champion": promote,
            "champion_val_auc_before": champion_auc if champion_auc is not None else float("nan"),
            "val_auc": metrics["auc"],
            "val_log_loss": metrics["log_loss"],
            "val_brier": metrics["brier"],
            "val_churn_rate": metrics["churn_rate"],
            "as_of_month": f"{as_of:%Y-%m}",
            "training_cohorts": ", ".join(f"{c:%Y-%m}" for c in split.training_cohorts),
            "validation_cohort": f"{split.validation_cohort:%Y-%m}",
            "train_rows": len(split.train),
            "validation_rows": len(split.validation),
            "mlflow_run_id": model_info.run_id,
            "model_uri": f"models:/{REGISTERED_MODEL_NAME}/{version}",
            "best_config": dg.MetadataValue.json(best_config),
            "feature_importance_gain": dg.MetadataValue.md(
                importance.head(15).to_frame("gain").to_markdown()
            ),
        }
    )
