"""The ``predictions`` asset: the champion's churn score and bucket for every cohort user, and
reasons for those someone acts on.

Buckets follow the retention playbook: A (will leave unless someone calls), B (on the fence: offer a
discount), C (likely to stay: a thank-you is enough). Reasons are exact TreeSHAP contributions,
which cost tens to hundreds of times the score itself: batch explains buckets A and B only, the
users an agent or an offer reaches; the others' ``top_reasons`` stay NULL (DESIGN §5).
"""

import contextlib
import os
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dagster_duckdb import DuckDBResource

from churn_assets import keys
from churn_assets.features.feature_sets import CohortBlock, cohort_blocks, cohort_coverage
from churn_assets.modeling.calibration import ChurnModel, load_churn_model
from churn_assets.modeling.contributions import ContributionTables
from churn_assets.outcomes.control import in_control_group
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.readable import readable
from churn_assets.resources import BucketPolicy, ControlGroupResource, ModelRegistryResource
from churn_assets.scoring.buckets import (
    ScoringConfig,
    assign_buckets,
    capacity_buckets,
    cut_off_policy,
)
from churn_assets.scoring.reasons import contribution_tables, explain_blocks
from churn_assets.warehouse import run_sql_file, transaction

SQL = Path(__file__).parent / "predictions.sql"
SUMMARY_SQL = Path(__file__).parent / "predictions_summary.sql"
RISKIEST_SQL = Path(__file__).parent / "predictions_riskiest.sql"
BUCKET_LABELS = ["A", "B", "C"]
EXPLAINED_BUCKETS = ("A", "B")
# Rows explained at a time: small enough that wording one block overlaps the next one's
# contributions several times over.
EXPLAIN_BLOCK_ROWS = 16_384


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
    buckets: BucketPolicy,
) -> dg.MaterializeResult:
    """Scores of the cohort by the ``champion`` model version; three reasons for A and B."""
    cohort = month_start(context.partition_key)
    champion = registry.champion()
    if champion is None:
        raise dg.Failure(
            f"no '{registry.model_name}' version is champion yet: materialize churn_model first"
        )
    model = load_churn_model(registry, champion)
    with warehouse.get_connection() as conn:
        coverage = cohort_coverage(conn, cohort)
        try:
            scored = _score(conn, cohort, model, config, control.share, buckets)
        except KeyError as exc:
            raise dg.Failure(
                f"model v{model.version} cannot score cohort {cohort:%Y-%m}: {exc}"
            ) from exc
    if not coverage["complete"]:
        context.log.warning(
            f"cohort {cohort:%Y-%m} was built with incomplete windows (missing "
            f"{coverage['missing_months']}): its scores understate what the missing months held"
        )
    if scored is None:
        return _nothing_to_score(cohort, coverage)
    scores, method = scored
    with warehouse.get_connection() as conn:
        conn.register("scored", scores)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort})
        conn.unregister("scored")
        metadata = _scoring_metadata(conn, cohort, coverage)
    metadata["contributions_from"] = method
    return dg.MaterializeResult(metadata=readable(metadata))


def _nothing_to_score(cohort: date, coverage: dict) -> dg.MaterializeResult:
    """A cohort never built fails; one built empty (a hole in the data) scores nobody."""
    if "listening_months_required" not in coverage:
        raise dg.Failure(f"no features for cohort {cohort:%Y-%m}: materialize features first")
    # Built, but empty: a hole in the data emptied the cohort (its coverage says which).
    return dg.MaterializeResult(
        metadata=readable(
            {
                "dagster/row_count": 0,
                "status": f"n/a: cohort {cohort:%Y-%m} has no users (missing "
                f"{coverage['missing_months'] or 'nothing'})",
            }
        )
    )


def scoring_threads() -> int:
    """LightGBM's threads: the cores this process may use (not the machine's: a container's
    share is smaller, and oversubscribed OpenMP threads slow each other down)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _score(
    conn: duckdb.DuckDBPyConnection,
    cohort: date,
    model: ChurnModel,
    config: ScoringConfig,
    control_share: float,
    policy: BucketPolicy,
) -> tuple[pa.Table, str] | None:
    """One row per user: probability, bucket, control-group membership; reasons for A and B;
    and how the contributions were computed. None when the cohort has no users.

    Two passes over the cohort's rows, one block in memory at a time: everyone is scored, then
    buckets are drawn (a capacity ranks the whole cohort), then the users of A and B are read
    again and explained. Columns stay arrays (no per-row Python) up to one Arrow table, which
    DuckDB inserts in bulk; what every row shares is one repeated value.
    """
    threads = scoring_threads()
    scored = _predict(conn, cohort, model, threads)
    if scored is None:
        return None
    rowid, msno, probability = scored
    control = in_control_group(msno.to_numpy(zero_copy_only=False), control_share)
    bucket, bucket_policy = _buckets(probability, control, msno, config, policy)
    explained = np.flatnonzero(np.logical_or.reduce([bucket == b for b in EXPLAINED_BUCKETS]))
    tables = contribution_tables(model.booster, len(explained), config.tabulate_contributions_from)
    reasons = _reasons(conn, cohort, model, rowid, msno, explained, threads, tables)
    rows = len(probability)
    table = pa.table(
        {
            "msno": msno,
            "cohort_month": pa.array(np.full(rows, np.datetime64(cohort, "D"))),
            "churn_probability": probability,
            "bucket": _bucket_array(bucket),
            "model_version": _repeated(model.version, rows),
            "top_reasons": pa.array(reasons, type=pa.string()),
            "scored_at": pa.array(np.full(rows, np.datetime64(datetime.now(), "us"))),
            "control_group": control,
            "bucket_policy": _repeated(bucket_policy, rows),
        }
    )
    return table, "tables (modeling/contributions.py)" if tables is not None else "pred_contrib"


def _predict(
    conn: duckdb.DuckDBPyConnection, cohort: date, model: ChurnModel, threads: int
) -> tuple[np.ndarray, pa.ChunkedArray, np.ndarray] | None:
    """Every user's calibrated probability, block by block: (rowids, msno, probability)."""
    rowids, msnos, probabilities = [], [], []
    for block in cohort_blocks(conn, cohort, model.features):
        probabilities.append(model.predict(block.values, num_threads=threads))
        rowids.append(block.rowid)
        msnos.append(block.msno)
    if not probabilities:
        return None
    return np.concatenate(rowids), pa.chunked_array(msnos), np.concatenate(probabilities)


def _reasons(
    conn: duckdb.DuckDBPyConnection,
    cohort: date,
    model: ChurnModel,
    rowid: np.ndarray,
    msno: pa.ChunkedArray,
    explained: np.ndarray,
    threads: int,
    tables: ContributionTables | None,
) -> np.ndarray:
    """Three reasons for each ``explained`` position (None elsewhere), from the rows read again
    by rowid, in chunks: the contribution matrix of a whole cohort is never held."""
    reasons = np.full(len(rowid), None, dtype=object)
    if not len(explained):
        return reasons
    by_rowid = np.argsort(rowid)
    blocks = cohort_blocks(
        conn, cohort, model.features, rowids=rowid[explained], block_rows=EXPLAIN_BLOCK_ROWS
    )
    with contextlib.closing(blocks):  # the reader thread stops even if explaining fails
        located = ((_positions(rowid, by_rowid, msno, block), block.values) for block in blocks)
        for at, texts in explain_blocks(model.booster, located, model.features, threads, tables):
            reasons[at] = texts
    return reasons


def _positions(
    rowid: np.ndarray, by_rowid: np.ndarray, msno: pa.ChunkedArray, block: CohortBlock
) -> np.ndarray:
    """Where a block read again by rowid sits among the scored rows; the same users, checked
    (a rowid that moved between the passes would otherwise put reasons on someone else)."""
    at = by_rowid[np.searchsorted(rowid, block.rowid, sorter=by_rowid)]
    if not msno.take(pa.array(at)).equals(pa.chunked_array([block.msno])):
        raise RuntimeError("the cohort's rows changed while it was scored: materialize again")
    return at


def _repeated(text: str, rows: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(np.zeros(rows, dtype=np.int8), pa.array([text]))


def _bucket_array(bucket: np.ndarray) -> pa.Array:
    """Buckets as Arrow strings, taken from the three labels (not converted one by one)."""
    codes = np.zeros(len(bucket), dtype=np.int8)
    for code, label in enumerate(BUCKET_LABELS[1:], start=1):
        codes[bucket == label] = code
    return pa.array(BUCKET_LABELS).take(codes)


def _buckets(
    probability: np.ndarray,
    control: np.ndarray,
    msno: pa.ChunkedArray,
    config: ScoringConfig,
    policy: BucketPolicy,
) -> tuple[np.ndarray, str]:
    """Buckets by the cut-offs, or bucket A by the call centre's capacity (equal scores ranked
    by msno); and which it was."""
    a_min, b_min = config.bucket_a_min_probability, config.bucket_b_min_probability
    calls = policy.calls(int((~control).sum()))
    if calls is None:
        return assign_buckets(probability, a_min, b_min), cut_off_policy(a_min, b_min)
    by_msno = pc.rank(msno, sort_keys="ascending", tiebreaker="first").to_numpy()
    return capacity_buckets(probability, control, calls, b_min, tie_break=by_msno)


def _scoring_metadata(
    conn: duckdb.DuckDBPyConnection, cohort: date, coverage: dict
) -> dict[str, object]:
    """What the materialization shows, counted in the table just written: sizes, buckets, the
    control group, the riskiest users."""
    [summary] = run_sql_file(conn, SUMMARY_SQL, {"cohort": cohort}).fetchall()
    rows, model_version, mean, *counts, control_users, bucket_policy, explained = summary
    riskiest = run_sql_file(conn, RISKIEST_SQL, {"cohort": cohort}).df()
    return {
        "dagster/row_count": rows,
        "model_version": model_version,
        "window_complete": bool(coverage["complete"]),
        "warning": "none"
        if coverage["complete"]
        else f"incomplete windows, missing {coverage['missing_months']}",
        "mean_churn_probability": float(mean),
        "bucket_counts": dg.MetadataValue.json(dict(zip(BUCKET_LABELS, counts, strict=True))),
        "control_group_users": int(control_users),
        "bucket_policy": bucket_policy,
        "explained_users": int(explained),
        "explained_buckets": ", ".join(EXPLAINED_BUCKETS),
        "highest_risk": dg.MetadataValue.md(riskiest.to_markdown(index=False)),
    }
