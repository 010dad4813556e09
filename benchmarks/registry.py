"""Register a booster fitted by a benchmark as training would, so the project's own assets and
commands read it as they read a trained version."""

from __future__ import annotations

from pathlib import Path


def register_champion(tracking_uri: str, artifacts: Path, booster, tags: dict[str, str]) -> str:
    """Log ``booster`` with the LightGBM flavour, tag it (``promoted`` last, as registration
    writes it), make it champion; its version."""
    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from churn_assets.keys import PROMOTED_TAG
    from churn_assets.resources import ensure_experiment
    from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME

    mlflow.set_tracking_uri(tracking_uri)
    example = pd.DataFrame({c: [0.0] for c in booster.feature_name()})
    with mlflow.start_run(experiment_id=ensure_experiment(tracking_uri, artifacts)):
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
    client.set_registered_model_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS, version)
    return version
