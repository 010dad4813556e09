"""The ``predictions`` asset: the champion's churn score, bucket and reasons for every cohort user.

Buckets follow the retention playbook: A (will leave unless someone calls), B (on the fence: offer a
discount), C (likely to stay: a thank-you is enough).
"""

from datetime import datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from churn_assets.features.feature_sets import cohort_coverage, read_cohort_features
from churn_assets.outcomes.control import in_control_group
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.resources import ModelRegistryResource
from churn_assets.scoring.reasons import reason_text, top_reasons
from churn_assets.settings import (
    BUCKET_A_MIN_PROBABILITY,
    BUCKET_B_MIN_PROBABILITY,
    control_share,
)
from churn_assets.training.model import as_matrix
from churn_assets.warehouse import run_sql_file, transaction

SQL = Path(__file__).parent / "predictions.sql"


class ScoringConfig(dg.Config):
    control_share: float = Field(
        default_factory=control_share,
        ge=0.0,
        lt=1.0,
        description="Share of users held out of actions (stable per user), to measure them.",
    )
    bucket_a_min_probability: float = Field(
        default=BUCKET_A_MIN_PROBABILITY, description="Score from which bucket A."
    )
    bucket_b_min_probability: float = Field(
        default=BUCKET_B_MIN_PROBABILITY, description="Score from which bucket B."
    )


def assign_buckets(probability: np.ndarray, a_min: float, b_min: float) -> np.ndarray:
    if not 0 <= b_min <= a_min <= 1:
        raise ValueError(f"bucket thresholds must satisfy 0 <= B ({b_min}) <= A ({a_min}) <= 1")
    return np.where(probability >= a_min, "A", np.where(probability >= b_min, "B", "C"))


@dg.asset(
    group_name="scoring",
    kinds={"duckdb", "lightgbm"},
    partitions_def=monthly_partitions,
    deps=["features", "churn_model"],
)
def predictions(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    warehouse: DuckDBResource,
    registry: ModelRegistryResource,
) -> dg.MaterializeResult:
    """Scores of the cohort by the ``champion`` model version, with its top three reasons."""
    cohort = month_start(context.partition_key)
    champion = registry.champion()
    if champion is None:
        raise dg.Failure(
            f"no '{registry.model_name}' version is champion yet: materialize churn_model first"
        )
    booster = registry.load_model(champion.version)
    with warehouse.get_connection() as conn:
        frame = read_cohort_features(conn, cohort)
        coverage = cohort_coverage(conn, cohort)
    if not coverage["complete"]:
        context.log.warning(
            f"cohort {cohort:%Y-%m} was built with incomplete windows (missing "
            f"{coverage['missing_months']}): its scores understate what the missing months held"
        )
    if frame.empty:
        if "listening_months_required" not in coverage:
            raise dg.Failure(f"no features for cohort {cohort:%Y-%m}: materialize features first")
        # Built, but empty: a hole in the data emptied the cohort (its coverage says which).
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": 0,
                "status": f"n/a: cohort {cohort:%Y-%m} has no users (missing "
                f"{coverage['missing_months'] or 'nothing'})",
            }
        )
    try:
        matrix = as_matrix(frame, list(booster.feature_name()))
    except KeyError as exc:
        raise dg.Failure(
            f"model v{champion.version} cannot score cohort {cohort:%Y-%m}: {exc}"
        ) from exc

    probability = booster.predict(matrix)
    reasons = top_reasons(booster, matrix)
    scored = pd.DataFrame(
        {
            "msno": frame["msno"],
            "cohort_month": cohort,
            "churn_probability": probability,
            "bucket": assign_buckets(
                probability, config.bucket_a_min_probability, config.bucket_b_min_probability
            ),
            "model_version": str(champion.version),
            "top_reasons": ["; ".join(reason_text(*reason) for reason in r) for r in reasons],
            "scored_at": datetime.now(),
            "control_group": in_control_group(frame["msno"], config.control_share),
        }
    )
    with warehouse.get_connection() as conn:
        conn.register("scored", scored)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort})
    buckets = scored["bucket"].value_counts().reindex(["A", "B", "C"], fill_value=0)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scored),
            "model_version": str(champion.version),
            "window_complete": bool(coverage["complete"]),
            "warning": "none"
            if coverage["complete"]
            else f"incomplete windows, missing {coverage['missing_months']}",
            "mean_churn_probability": float(probability.mean()),
            "bucket_counts": dg.MetadataValue.json({k: int(v) for k, v in buckets.items()}),
            "control_group_users": int(scored["control_group"].sum()),
            "highest_risk": dg.MetadataValue.md(
                scored.nlargest(10, "churn_probability")[
                    ["msno", "churn_probability", "bucket", "top_reasons"]
                ].to_markdown(index=False)
            ),
        }
    )
