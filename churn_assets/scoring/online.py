"""The ``online_features`` asset: a cohort's features and batch scores, published for lookups.

``churn-assets serve`` answers a user by msno from here: the features the cohort was scored on
and, where the serving model is the one that scored it, the batch's bucket (with the policy that
drew it) and reasons. Batch explains only the users someone acts on (A and B); the others are
explained here, once per cohort, by the version that scored them and in the same words, so that no
request waits for TreeSHAP. Each materialization publishes a whole new version of the cohort and
then flips a pointer (:mod:`churn_assets.online`); the store keeps the newest two cohorts.
"""

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from dagster_duckdb import DuckDBResource

from churn_assets import keys
from churn_assets.features.feature_sets import (
    feature_columns_of,
    read_cohort_features,
    read_cohort_matrix,
)
from churn_assets.modeling.calibration import ChurnModel, load_churn_model
from churn_assets.online.store import encode_payload
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.readable import readable
from churn_assets.resources import ModelRegistryResource, OnlineStoreResource
from churn_assets.scoring.assets import scoring_threads
from churn_assets.scoring.buckets import PublicationConfig
from churn_assets.scoring.reasons import contribution_tables, explain_rows
from churn_assets.warehouse import run_sql_file, table_exists

SCORES_SQL = Path(__file__).parent / "online_scores.sql"
SCORE_COLUMNS = [
    "churn_probability",
    "bucket",
    "model_version",
    "top_reasons",
    "bucket_policy",
    "reasons_from",
]


@dg.asset(
    key=keys.ONLINE_FEATURES,
    group_name="scoring",
    kinds={"duckdb", "redis"},
    partitions_def=monthly_partitions,
    deps=[keys.FEATURES, keys.PREDICTIONS],
)
def online_features(
    context: dg.AssetExecutionContext,
    config: PublicationConfig,
    warehouse: DuckDBResource,
    online_store: OnlineStoreResource,
    registry: ModelRegistryResource,
) -> dg.MaterializeResult:
    """The cohort's features and batch scores in the online store, published whole, with
    reasons for every scored user."""
    cohort = month_start(context.partition_key)
    with warehouse.get_connection() as conn:
        frame = read_cohort_features(conn, cohort)
        scores = _batch_scores(conn, cohort)
        scores["reasons_from"] = np.where(scores["top_reasons"].notna(), "batch", None)
        explanation = (
            _explain_the_rest(conn, cohort, scores, registry, config, context.log)
            if config.explain_every_user
            else {"explained_at_publication": 0, "reasons_at_publication": "not asked for"}
        )
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
                **explanation,
            }
        )
    )


def _batch_scores(conn, cohort: date) -> pd.DataFrame:
    """The cohort's predictions by msno (none when the cohort was never scored)."""
    if not table_exists(conn, "predictions"):
        return pd.DataFrame(columns=["msno", *SCORE_COLUMNS[:-1]])
    return run_sql_file(conn, SCORES_SQL, {"cohort": cohort}).df()


def _explain_the_rest(
    conn,
    cohort: date,
    scores: pd.DataFrame,
    registry: ModelRegistryResource,
    config: PublicationConfig,
    log: dg.DagsterLogManager,
) -> dict:
    """Reasons for the scored users batch left unexplained, written into ``scores`` with
    ``reasons_from`` "publication"; the others keep "batch". Each user is explained by the
    version that scored them, from the cohort's features as they stand (the ones published
    beside them), so the words are the ones the API's on-demand path would give. A version
    that no longer loads leaves its users to the API's on-demand path."""
    unexplained = scores["churn_probability"].notna() & scores["top_reasons"].isna()
    explained, started, methods = 0, time.perf_counter(), set()
    for version in sorted(scores.loc[unexplained, "model_version"].dropna().unique()):
        try:
            model = load_churn_model(registry, str(version))
            msno, values = read_cohort_matrix(conn, cohort, model.features)
        except Exception as exc:  # a version gone, or features it reads gone: on demand
            log.warning(f"v{version}'s users keep on-demand reasons: {exc}")
            continue
        mine = unexplained & (scores["model_version"] == version)
        reasons, tabulated = _reasons_of(model, msno, values, scores.loc[mine, "msno"], config)
        mine &= scores["msno"].isin(reasons.index)
        scores.loc[mine, "top_reasons"] = scores.loc[mine, "msno"].map(reasons)
        scores.loc[mine, "reasons_from"] = "publication"
        explained += len(reasons)
        methods.add("tables" if tabulated else "pred_contrib")
    return {
        "explained_at_publication": explained,
        "reasons_at_publication": ", ".join(sorted(methods)) or "none needed",
        "explained_at_publication_seconds": round(time.perf_counter() - started, 2),
    }


def _reasons_of(
    model: ChurnModel,
    msno: pa.ChunkedArray,
    values: np.ndarray,
    users: pd.Series,
    config: PublicationConfig,
) -> tuple[pd.Series, bool]:
    """Reasons of ``users`` (msno) by msno, from the cohort's matrix (rows in ``msno`` order);
    and whether the trees were tabulated for them."""
    order = pd.Index(msno.to_numpy(zero_copy_only=False))
    rows = np.sort(order.get_indexer(users))
    rows = rows[rows >= 0]
    tables = contribution_tables(model.booster, len(rows), config.tabulate_contributions_from)
    texts = explain_rows(
        model.booster, values, model.features, rows, num_threads=scoring_threads(), tables=tables
    )
    return pd.Series(texts, index=order[rows]), tables is not None


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
