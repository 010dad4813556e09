"""A registered version's tags, its challenger alias and, when decided, its promotion: all or
nothing, so no later step ever reads a half-registered version."""

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg

from churn_assets.keys import (
    BEST_CONFIG_TAG,
    CALIBRATION_TAG,
    HELD_OUT_TAG,
    PROMOTED_TAG,
    RECALIBRATED_FROM_TAG,
)
from churn_assets.resources import VERSION_DETAILS_FILE, ModelRegistryResource
from churn_assets.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets.training.candidate import Candidate
from churn_assets.training.lifecycle import change_champion
from churn_assets.training.promotion import ChampionComparison, Promotion

# What a person reads beside the aliases on the model's page in MLflow (and code reads back as a
# tag); everything a version says goes to its run's version_details.json, read through
# :func:`churn_assets.resources.version_facts`.
PERSON_TAGS = (
    "as_of_month",
    "training_cohorts",
    "validation_cohort",
    "val_auc",
    "trained_on_incomplete_cohorts",
    "compared_with_champion",
    "comparison",
    "beats_champion",
    "cleared_hurdle",
    "hurdle",
    "window_choice",
    RECALIBRATED_FROM_TAG,
    # Read back by every consumer of the version's probability (modeling.calibration).
    CALIBRATION_TAG,
    PROMOTED_TAG,
)


def version_details(
    as_of: date,
    candidate: Candidate,
    comparison: ChampionComparison | None,
    decision: Promotion,
) -> dict[str, str]:
    """Everything a version says of itself: its data, its hurdle, its comparison and its config."""
    split, hurdle = candidate.split, candidate.hurdle
    champion_version = comparison.champion_version if comparison is not None else None
    return {
        "as_of_month": f"{as_of:%Y-%m}",
        "training_cohorts": json.dumps([f"{c:%Y-%m-01}" for c in split.training_cohorts]),
        "validation_cohort": f"{split.validation_cohort:%Y-%m-01}",
        "val_auc": f"{candidate.metrics['auc']:.6f}",
        "baseline_rule_auc": f"{candidate.baselines['rule']['auc']:.6f}",
        "baseline_logistic_regression_auc": (
            f"{candidate.baselines['logistic_regression']['auc']:.6f}"
        ),
        "feature_columns": json.dumps(list(candidate.booster.feature_name())),
        "trained_on_incomplete_cohorts": str(candidate.window.used_incomplete).lower(),
        BEST_CONFIG_TAG: json.dumps(candidate.tuned.best_config),
        # Every consumer's probability goes through it (churn_assets.modeling.calibration).
        CALIBRATION_TAG: candidate.calibration.calibration.to_tag(),
        HELD_OUT_TAG: f"{split.held_out_share:g}",
        "compared_with_champion": str(champion_version or "none"),
        **(comparison.tags() if comparison is not None else {}),
        "comparison": decision.reason,
        "beats_champion": str(decision.beats_champion).lower(),
        "cleared_hurdle": hurdle.tag,
        "hurdle": hurdle.verdict(),
        **(
            candidate.window_choice.tags() | candidate.window_choice.params()
            if candidate.window_choice is not None
            else {}
        ),
        # Last, always: its presence says every tag above was written.
        PROMOTED_TAG: "false",
    }


def promotion_record(
    candidate: Candidate, comparison: ChampionComparison | None, decision: Promotion
) -> tuple[str, str]:
    """The action and reason written to ``model_promotions`` when this version becomes champion."""
    hurdle = candidate.hurdle
    if comparison is None:
        cleared = "" if hurdle.cleared else f" (hurdle {hurdle.outcome}: {hurdle.verdict()})"
        return "initial", "first registered version" + cleared
    if decision.beats_champion:
        return "auto_promote", f"beats champion v{comparison.champion_version}: {decision.reason}"
    return "auto_promote", decision.reason  # says which champion it replaces, and why


def tag_and_promote(
    context: dg.AssetExecutionContext,
    as_of: date,
    candidate: Candidate,
    version: str,
    comparison: ChampionComparison | None,
    decision: Promotion,
) -> None:
    """Tag the new version, make it challenger, and champion when decided; all or nothing."""
    registry: ModelRegistryResource = context.resources.registry
    details = version_details(as_of, candidate, comparison, decision)
    client = registry.client
    previous_challenger = registry.version_by_alias(CHALLENGER_ALIAS)
    try:
        run_id = client.get_model_version(REGISTERED_MODEL_NAME, version).run_id
        client.log_dict(run_id, details, VERSION_DETAILS_FILE)
        # In the order written, `promoted` last: its presence says the rest is there.
        for key in (k for k in details if k in PERSON_TAGS):
            client.set_model_version_tag(REGISTERED_MODEL_NAME, version, key, details[key])
        registry.set_alias(CHALLENGER_ALIAS, version)
        if decision.promote:
            action, reason = promotion_record(candidate, comparison, decision)
            change_champion(registry, context.resources.warehouse, version, action, reason)
    except Exception:
        # A version without its tags, alias or champion record would mislead every later step:
        # take it out of the registry (the MLflow run stays, for the post-mortem) and give the
        # challenger alias back.
        client.delete_model_version(REGISTERED_MODEL_NAME, version)
        if previous_challenger is not None:
            registry.set_alias(CHALLENGER_ALIAS, str(previous_challenger.version))
        raise


def register_booster(
    tracking_uri: str,
    artifacts: Path,
    booster: Any,
    tags: dict[str, str],
    *,
    champion: bool = False,
    validation_metrics: dict[str, float] | None = None,
    details: dict[str, str] | None = None,
    run_name: str | None = None,
) -> str:
    """Log and register a LightGBM booster fitted outside a candidate's search, as training
    registers one; its version. The benchmarks and the tests bring their own boosters this way,
    and a recalibrated champion is registered so.

    ``details`` (everything the version says of itself) are logged as the run's
    ``version_details.json`` before the version exists; its tags are written with ``promoted``
    last (saying the version was registered whole), the validation metrics (if any) logged as
    ``val_*``, and the ``champion`` alias set if asked.
    """
    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from churn_assets.resources import ensure_experiment

    mlflow.set_tracking_uri(tracking_uri)
    example = pd.DataFrame({c: [0.0] for c in booster.feature_name()})
    with mlflow.start_run(
        experiment_id=ensure_experiment(tracking_uri, artifacts), run_name=run_name
    ):
        if details:
            mlflow.log_dict(details, VERSION_DETAILS_FILE)
        finite = {k: v for k, v in (validation_metrics or {}).items() if math.isfinite(v)}
        mlflow.log_metrics({f"val_{k}": v for k, v in finite.items()})
        info = mlflow.lightgbm.log_model(
            booster,
            name="model",
            input_example=example,
            registered_model_name=REGISTERED_MODEL_NAME,
            pip_requirements=["lightgbm"],  # named: inferring them takes seconds
        )
    version = str(info.registered_model_version)
    client = MlflowClient(tracking_uri)
    for key, value in {**tags, PROMOTED_TAG: tags.get(PROMOTED_TAG, "false")}.items():
        client.set_model_version_tag(REGISTERED_MODEL_NAME, version, key, value)
    if champion:
        client.set_registered_model_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS, version)
    return version
