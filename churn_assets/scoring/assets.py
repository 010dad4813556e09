"""The ``predictions`` asset: the champion's churn score, bucket and reasons for every cohort user.

Buckets follow the retention playbook: A (will leave unless someone calls), B (on the fence: offer a
discount), C (likely to stay: a thank-you is enough).
"""

from datetime import date, datetime
from pathlib import Path

import dagster as dg
import lightgbm as lgb
import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets import keys
from churn_assets.features.feature_sets import cohort_coverage, read_cohort_features
from churn_assets.modeling.frame import as_matrix
from churn_assets.outcomes.control import in_control_group
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.resources import ControlGroupResource, ModelRegistryResource
from churn_assets.scoring.buckets import ScoringConfig, assign_buckets
from churn_assets.scoring.reasons import reason_text, top_reasons
from churn_assets.warehouse import run_sql_file, transaction

SQL = Path(__file__).parent / "predictions.sql"


@dg.asset(
    group_name="scoring",
    kinds={"duckdb", "lightgbm"},
    partitions_def=monthly_partitions,
    deps=[keys.FEATURES, keys.CHURN_MODEL],
)
def predictions(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    warehouse: DuckDBResource,
    registry: ModelRegistryResource,
    control: ControlGroupResource,
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
        return _nothing_to_score(cohort, coverage)
    scored = _score(frame, cohort, booster, str(champion.version), config, control.share)
    with warehouse.get_connection() as conn:
        conn.register("scored", scored)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort})
    return dg.MaterializeResult(metadata=_scoring_metadata(scored, coverage))


def _nothing_to_score(cohort: date, coverage: dict) -> dg.MaterializeResult:
    """A cohort never built fails; one built empty (a hole in the data) scores nobody."""
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


def _score(
    frame: pd.DataFrame,
    cohort: date,
    booster: lgb.Booster,
    version: str,
    config: ScoringConfig,
    control_share: float,
) -> pd.DataFrame:
    """One row per user: probability, bucket, three reasons and control-group membership."""
    try:
        matrix = as_matrix(frame, list(booster.feature_name()))
    except KeyError as exc:
        raise dg.Failure(f"model v{version} cannot score cohort {cohort:%Y-%m}: {exc}") from exc
    probability = booster.predict(matrix)
    reasons = top_reasons(booster, matrix)
    return pd.DataFrame(
        {
            "msno": frame["msno"],
            "cohort_month": cohort,
            "churn_probability": probability,
            "bucket": assign_buckets(
                probability, config.bucket_a_min_probability, config.bucket_b_min_probability
            ),
            "model_version": version,
            "top_reasons": ["; ".join(reason_text(*reason) for reason in r) for r in reasons],
            "scored_at": datetime.now(),
            "control_group": in_control_group(frame["msno"], control_share),
        }
    )


def _scoring_metadata(scored: pd.DataFrame, coverage: dict) -> dict[str, object]:
    """What the materialization shows: sizes, buckets, the control group, the riskiest users."""
    buckets = scored["bucket"].value_counts().reindex(["A", "B", "C"], fill_value=0)
    return {
        "dagster/row_count": len(scored),
        "model_version": str(scored["model_version"].iloc[0]),
        "window_complete": bool(coverage["complete"]),
        "warning": "none"
        if coverage["complete"]
        else f"incomplete windows, missing {coverage['missing_months']}",
        "mean_churn_probability": float(scored["churn_probability"].mean()),
        "bucket_counts": dg.MetadataValue.json({k: int(v) for k, v in buckets.items()}),
        "control_group_users": int(scored["control_group"].sum()),
        "highest_risk": dg.MetadataValue.md(
            scored.nlargest(10, "churn_probability")[
                ["msno", "churn_probability", "bucket", "top_reasons"]
            ].to_markdown(index=False)
        ),
    }
