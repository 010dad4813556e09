"""Test helpers: resources pointed at a temporary CHURN_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from churn_assets.partitions import month_start, months_between, register_months
from churn_assets.partitions import partition_key as partition_key_of
from churn_assets.resources import default_resources
from churn_assets.training.registration import register_booster

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def resources_for(home: Path, landing: Path | None = None) -> dict[str, Any]:
    env = {"CHURN_HOME": str(home)}
    if landing is not None:
        env["CHURN_LANDING_DIR"] = str(landing)
    return default_resources(env)


def materialize(
    assets: list,
    partition_key: str | None = None,
    tags: dict[str, str] | None = None,
    instance: dg.DagsterInstance | None = None,
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    """``dg.materialize`` with the run's months registered first, as the landing sensor would.

    Months are dynamic partitions: a partition (or range) must exist on the instance before a run
    can target it. Without ``instance``, an ephemeral one is used.
    """
    tags = dict(tags or {})
    months = [partition_key] if partition_key else []
    first, last = tags.get(RANGE_START), tags.get(RANGE_END)
    if first and last:
        months += [
            partition_key_of(m) for m in months_between(month_start(first), month_start(last))
        ]
    if instance is None:
        with dg.DagsterInstance.ephemeral() as ephemeral:
            register_months(ephemeral, months)
            return dg.materialize(
                assets, partition_key=partition_key, tags=tags, instance=ephemeral, **kwargs
            )
    register_months(instance, months)
    return dg.materialize(
        assets, partition_key=partition_key, tags=tags, instance=instance, **kwargs
    )


def fit_and_register_champion(
    train: Any,
    tracking_uri: str,
    artifacts: Path,
    training: list,
    validation: Any,
    min_data_in_leaf: int,
) -> Any:
    """A small LightGBM fitted on every feature column of ``train``, registered as champion
    with the cohorts it learnt from (``training``, ``validation``); the booster."""
    import json

    import lightgbm as lgb

    columns = [c for c in train.columns if c not in ("msno", "cohort_month", "is_churn")]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_in_leaf": min_data_in_leaf,
         "num_leaves": 7},
        lgb.Dataset(train[columns].astype(float), train["is_churn"]),
        num_boost_round=40,
    )  # fmt: skip
    tags = {
        "training_cohorts": json.dumps([f"{c:%Y-%m-01}" for c in training]),
        "validation_cohort": f"{validation:%Y-%m-01}",
        "feature_columns": json.dumps(columns),
    }
    register_booster(tracking_uri, artifacts, booster, tags, champion=True)
    return booster


def cohort_features(
    root: Path, files: dict[str, str], cohort: str, listening_from: str
) -> list[dict[str, Any]]:
    """Land ``files`` (name -> text) under ``root``, load them as the loop would (members, then
    payment history from 2015-01 and listening from ``listening_from``, both through ``cohort``'s
    month), build the cohort's features, and return its rows."""
    import duckdb

    from churn_assets.features.assets import features
    from churn_assets.raw.assets import members, transactions, user_logs

    landing = root / "landing"
    landing.mkdir()
    for name, text in files.items():
        (landing / name).write_text(text)
    home = root / "home"
    resources = resources_for(home, landing)
    assert materialize([members], resources=resources).success
    for asset, first in ((transactions, "2015-01-01"), (user_logs, listening_from)):
        tags = {RANGE_START: first, RANGE_END: cohort}
        assert materialize([asset], tags=tags, resources=resources).success
    assert materialize([features], partition_key=cohort, resources=resources).success
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        frame = conn.execute("SELECT * FROM features WHERE cohort_month = ?", [cohort]).df()
    return frame.to_dict("records")


COMMAND_BUDGET_S = "2"


def _command_env(home: Path) -> dict[str, str]:
    """A person's environment on ``home``: its own CHURN_HOME and Dagster home, a small budget."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CHURN_LANDING_DIR", "MLFLOW_TRACKING_URI", "DAGSTER_HOME")
    }
    return {**env, "CHURN_HOME": str(home), "CHURN_TRAINING_BUDGET_S": COMMAND_BUDGET_S}


def replay_command(home: Path, landing: Path, out: Path) -> subprocess.Popen:
    """``churn-assets replay`` in a process of its own, its output in ``out``.out and .err."""
    return subprocess.Popen(
        [sys.executable, "-m", "churn_assets.cli", "replay", "--landing", str(landing)],
        env=_command_env(home),
        stdout=out.with_suffix(".out").open("w"),
        stderr=out.with_suffix(".err").open("w"),
        stdin=subprocess.DEVNULL,
    )
