"""The ``retention_outcome`` asset: churn of actioned vs control users per bucket, with a CI.

Once a cohort's labels land, each bucket's churn rate among users who were actioned is compared
with its rate among the control group (held out of actions, see :mod:`.control`). The reduction
(control rate minus actioned rate) comes with a normal-approximation confidence interval of a
difference of two proportions; a bucket whose control group is too small for an interval says so.
"""

import math
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.readable import readable
from churn_assets.warehouse import run_sql_file, table_exists, transaction

SQL = Path(__file__).parent / "retention_outcome.sql"
STORE_SQL = Path(__file__).parent / "store_outcome.sql"
# Below this many users on either side, no interval is given: it would mean nothing.
MIN_GROUP_USERS = 10


class OutcomeConfig(dg.Config):
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Interval confidence.")


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def reduction_interval(
    actioned_users: int,
    actioned_churners: int,
    control_users: int,
    control_churners: int,
    confidence: float,
) -> tuple[float, float, float]:
    """Control churn rate minus actioned churn rate, and its interval (NaN when too small)."""
    if min(actioned_users, control_users) < MIN_GROUP_USERS:
        return math.nan, math.nan, math.nan
    p_action = actioned_churners / actioned_users
    p_control = control_churners / control_users
    reduction = p_control - p_action
    spread = math.sqrt(
        p_action * (1 - p_action) / actioned_users + p_control * (1 - p_control) / control_users
    )
    margin = _z(confidence) * spread
    return reduction, reduction - margin, reduction + margin


def outcome_rows(counts: pd.DataFrame, cohort, confidence: float) -> pd.DataFrame:
    rows = []
    for record in counts.to_dict("records"):
        reduction, low, high = reduction_interval(
            int(record["actioned_users"]),
            int(record["actioned_churners"]),
            int(record["control_users"]),
            int(record["control_churners"]),
            confidence,
        )
        rows.append(
            {
                "cohort_month": cohort,
                "bucket": record["bucket"],
                "actioned_users": int(record["actioned_users"]),
                "actioned_churn_rate": record["actioned_churners"] / record["actioned_users"]
                if record["actioned_users"]
                else math.nan,
                "control_users": int(record["control_users"]),
                "control_churn_rate": record["control_churners"] / record["control_users"]
                if record["control_users"]
                else math.nan,
                "churn_reduction": reduction,
                "ci_low": low,
                "ci_high": high,
                "confidence": confidence,
                "evaluated_at": datetime.now(),
            }
        )
    return pd.DataFrame(rows)


@dg.asset(
    group_name="performance",
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    deps=["predictions", "labels"],
)
def retention_outcome(
    context: dg.AssetExecutionContext, config: OutcomeConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """Per bucket, churn of actioned vs control users of the cohort whose labels just landed."""
    cohort = month_start(context.partition_key)
    with warehouse.get_connection() as conn:
        ready = table_exists(conn, "predictions") and table_exists(conn, "labels")
        counts = run_sql_file(conn, SQL, {"cohort": cohort}).df() if ready else pd.DataFrame()
        if counts.empty:
            return dg.MaterializeResult(
                metadata=readable(
                    {"status": f"n/a: cohort {cohort:%Y-%m} has no scored, labelled users"}
                )
            )
        rows = outcome_rows(counts, cohort, config.confidence)
        conn.register("outcome_rows", rows)
        with transaction(conn):
            run_sql_file(conn, STORE_SQL, {"cohort": cohort})
        conn.unregister("outcome_rows")
    shown = rows.drop(columns=["cohort_month", "evaluated_at", "confidence"])
    return dg.MaterializeResult(
        metadata=readable(
            {
                "status": "evaluated",
                "confidence": config.confidence,
                "outcome_by_bucket": dg.MetadataValue.md(shown.round(4).to_markdown(index=False)),
                "control_users": int(rows["control_users"].sum()),
                "actioned_users": int(rows["actioned_users"].sum()),
            }
        )
    )
