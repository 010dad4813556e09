"""A small world for the online store and the API: two cohorts of fabricated features, two
LightGBM versions fitted directly (no FLAML search) and registered as training registers them,
the first champion, and the real ``predictions`` and ``online_features`` assets materialized."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from churn_assets.keys import CALIBRATION_TAG
from churn_assets.modeling.calibration import Calibration
from churn_assets.resources import default_resources
from churn_assets.scoring.assets import predictions
from churn_assets.scoring.online import online_features
from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets_tests.helpers import materialize, register_booster

COHORTS = [date(2016, 5, 1), date(2016, 6, 1)]
USERS = 300
# Feature names from scoring/reasons.py, so reasons read as they do for real cohorts.
FEATURES = ["last_is_auto_renew", "last_is_cancel", "plays_30d", "secs_30d", "age", "city"]


def _cohort(cohort: date, rng: np.random.Generator) -> pd.DataFrame:
    """Users u0000..: the first half in both cohorts, the rest in one only."""
    offset = 0 if cohort == COHORTS[0] else USERS // 2
    n = USERS
    frame = pd.DataFrame(
        {
            "msno": [f"u{i + offset:04d}" for i in range(n)],
            "cohort_month": cohort,
            "last_is_auto_renew": rng.integers(0, 2, n),
            "last_is_cancel": (rng.random(n) < 0.15).astype(int),
            "plays_30d": rng.poisson(40, n),
            "secs_30d": rng.gamma(2.0, 3000.0, n),
            "age": rng.integers(15, 60, n).astype(float),
            "city": rng.integers(1, 22, n),
        }
    )
    frame.loc[rng.random(n) < 0.2, "age"] = np.nan  # nulls, as KKBox's bd gives
    frame.loc[rng.random(n) < 0.05, "secs_30d"] = np.nan
    logit = (
        -1.0
        - 1.5 * frame["last_is_auto_renew"]
        + 1.2 * frame["last_is_cancel"]
        - 0.02 * frame["plays_30d"]
    )
    frame["is_churn"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def _fit(frame: pd.DataFrame, seed: int, rounds: int) -> lgb.Booster:
    data = lgb.Dataset(frame[FEATURES].astype(float), frame["is_churn"].to_numpy())
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": seed, "n_jobs": 1}
    return lgb.train(params, data, num_boost_round=rounds)


# Each version's probabilities go through a calibration, as training stores it: batch and API
# must apply the same one.
CALIBRATIONS = [
    Calibration("platt", slope=0.8, intercept=-0.3),
    Calibration("isotonic", x=(0.0, 0.2, 0.5, 1.0), y=(0.02, 0.15, 0.55, 0.9)),
]


def register(
    home: Path, booster: lgb.Booster, training_cohorts: list[str], calibration: Calibration
) -> str:
    """Log and register a booster with the tags training writes (``promoted`` last)."""
    tags = {
        "training_cohorts": str(training_cohorts).replace("'", '"'),
        "validation_cohort": "2016-04-01",
        CALIBRATION_TAG: calibration.to_tag(),
    }
    return register_booster(f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts", booster, tags)


def build_world(home: Path, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Features of two cohorts, versions 1 (champion) and 2, both cohorts scored and published."""
    home.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    frame = pd.concat([_cohort(c, rng) for c in COHORTS], ignore_index=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE features AS SELECT * EXCLUDE (is_churn) FROM frame")
    first = register(
        home, _fit(frame, seed=1, rounds=30), ["2016-02-01", "2016-03-01"], CALIBRATIONS[0]
    )
    second = register(
        home, _fit(frame, seed=2, rounds=60), ["2016-03-01", "2016-04-01"], CALIBRATIONS[1]
    )
    MlflowClient(f"sqlite:///{home / 'mlflow.db'}").set_registered_model_alias(
        REGISTERED_MODEL_NAME, CHAMPION_ALIAS, first
    )
    resources = default_resources({"CHURN_HOME": str(home), **(environ or {})})
    for cohort in COHORTS:
        publish(resources, cohort, with_predictions=True)
    return {"home": home, "resources": resources, "versions": (first, second)}


def publish(resources: dict[str, Any], cohort: date, with_predictions: bool = False) -> None:
    assets = [predictions, online_features] if with_predictions else [online_features]
    result = materialize(assets, partition_key=f"{cohort:%Y-%m-01}", resources=resources)
    assert result.success


def batch_rows(home: Path) -> pd.DataFrame:
    """The predictions table joined to the features each user was scored on."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT * FROM predictions JOIN features USING (msno, cohort_month) "
            "ORDER BY msno, cohort_month"
        ).df()


def redis_answers(url: str = "redis://127.0.0.1:6379/0") -> bool:
    """Whether a Redis server answers at ``url`` (tests that need one skip otherwise)."""
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
