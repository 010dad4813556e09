"""The ``online_features`` asset: a cohort's features and batch scores, published for lookups.

``churn-assets serve`` answers a user by msno from here: the features the cohort was scored on
and, where the serving model is the one that scored it, the batch's bucket (with the policy that
drew it) and reasons. Each materialization publishes a whole new version of the cohort and then
flips a pointer (:mod:`churn_assets.online`); the store keeps the newest two cohorts.
"""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets import keys
from churn_assets.features.feature_sets import feature_columns_of, read_cohort_features
from churn_assets.online.store import encode_payload
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.readable import readable
from churn_assets.resources import OnlineStoreResource
from churn_assets.warehouse import run_sql_file, table_exists

SCORES_SQL = Path(__file__).parent / "online_scores.sql"
SCORE_COLUMNS = ["churn_probability", "bucket", "model_version", "top_reasons", "bucket_policy"]


@dg.asset(
    key=keys.ONLINE_FEATURES,
    group_name="scoring",
    kinds={"duckdb", "redis"},
    partitions_def=monthly_partitions,
    deps=[keys.FEATURES, keys.PREDICTIONS],
)
def online_features(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBResource,
    online_store: OnlineStoreResource,
) -> dg.MaterializeResult:
    """The cohort's features and batch scores in the online store, published whole."""
    cohort = month_start(context.partition_key)
    with warehouse.get_connection() as conn:
        frame = read_cohort_features(conn, cohort)
        scores = _batch_scores(conn, cohort)
    columns = feature_columns_of(list(frame.columns))
    store = online_store.open()
    try:
        published = store.publish(cohort, columns, _records(frame, scores, columns))
    finally:
        store.close()
    versions = sorted(scores["model_version"].dropna().unique().tolist())
    return dg.MaterializeResult(
        metadata=readable(
            {
                "dagster/row_count": published.rows,
                "store": store.kind,
                "published_version": published.version,
                "scored_users": int(scores["churn_probability"].notna().sum()),
                "model_versions": ", ".join(versions) or "none",
                "feature_columns": len(columns),
                "retired_cohorts": ", ".join(f"{c:%Y-%m}" for c in published.retired_cohorts)
                or "none",
            }
        )
    )


def _batch_scores(conn, cohort: date) -> pd.DataFrame:
    """The cohort's predictions by msno (none when the cohort was never scored)."""
    if not table_exists(conn, "predictions"):
        return pd.DataFrame(columns=["msno", *SCORE_COLUMNS])
    return run_sql_file(conn, SCORES_SQL, {"cohort": cohort}).df()


def _records(
    frame: pd.DataFrame, scores: pd.DataFrame, columns: list[str]
) -> Iterator[tuple[str, str]]:
    """(msno, record) per user, feature values exactly as scoring converts them."""
    joined = frame.merge(scores, on="msno", how="left")
    values = list(zip(*(_plain(joined[c]) for c in columns), strict=True)) if columns else None
    answers = zip(*(_plain(joined[c]) for c in SCORE_COLUMNS), strict=True)
    for i, (msno, answer) in enumerate(zip(joined["msno"], answers, strict=True)):
        yield str(msno), encode_payload(list(values[i]) if values else [], *answer)


def _plain(series: pd.Series) -> list:
    """JSON-ready values: numbers as the float64 scoring reads (modeling/frame.py), other values
    as they are (scoring parses them as it does in batch), nulls as None."""
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        numbers = series.astype("float64").to_numpy()
        return [None if np.isnan(v) else v for v in numbers.tolist()]
    return [
        None if pd.isna(v) else v if isinstance(v, bool | int | float | str) else str(v)
        for v in series.tolist()
    ]
