"""The ``performance_estimate`` asset: the champion's performance on a cohort, estimated from its
scores the day the cohort is scored, two months before its labels land.

Calibrated scores say how many churners to expect, and where (see
:mod:`churn_assets.performance.estimation`): AUC, log loss, lift at 10 %, bucket-A precision and
recall and the churn rate (overall and per bucket) follow, each with an interval. They go to
``performance_estimates`` (one row per metric, replacing the cohort's rows for the version that
scored it), and the estimated AUC and lift are judged against the version's expected level (see
:mod:`churn_assets.performance.estimate_judging`): check ``estimated_performance`` and the
verdict of the same name. When the labels land, ``model_performance`` holds the realised metrics
against these estimates.
"""

import math
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets import keys
from churn_assets.keys import ESTIMATED_PERFORMANCE_CHECK
from churn_assets.monitoring.verdicts import record_verdict
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.performance.champion import (
    backtested_level,
    champion_check_result,
    judgement_history,
)
from churn_assets.performance.config import EstimateConfig
from churn_assets.performance.estimate_judging import (
    BEFORE_LABELS,
    ESTIMATE_JUDGED_METRICS,
    ESTIMATE_MONITOR,
    judge_estimate,
    per_metric_confidence,
)
from churn_assets.performance.estimation import (
    Estimate,
    estimate_performance,
    expected_confusion,
)
from churn_assets.performance.judging import (
    ExpectedLevel,
    MetricJudgement,
    PerformanceVerdict,
)
from churn_assets.readable import readable
from churn_assets.warehouse import run_sql_file, table_exists, transaction

SQL = Path(__file__).parent / "performance_estimates.sql"
SCORES_SQL = Path(__file__).parent / "cohort_scores.sql"

ESTIMATE_CHECKS = [
    dg.AssetCheckSpec(
        ESTIMATED_PERFORMANCE_CHECK,
        asset=keys.PERFORMANCE_ESTIMATE,
        partitions_def=monthly_partitions,
        description="Before the labels land: the champion's AUC and lift at 10 %, estimated "
        "from its scores assuming they are calibrated, hold its expected (out-of-time) level "
        "within the estimate's interval (99 % over both, Bonferroni). Fails WARN only; n/a "
        "until the version has an out-of-time backtest.",
    ),
]


@dg.asset(
    group_name="performance",
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    deps=[keys.PREDICTIONS],
    check_specs=ESTIMATE_CHECKS,
)
def performance_estimate(
    context: dg.AssetExecutionContext, config: EstimateConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """The scoring version's metrics on the cohort, estimated before its labels exist."""
    unknown = sorted(set(config.judged_metrics) - set(ESTIMATE_JUDGED_METRICS))
    if unknown:
        raise dg.Failure(f"judged_metrics: unknown metric(s) {', '.join(unknown)}")
    cohort = month_start(context.partition_key)
    scores = _stored_scores(warehouse, cohort)
    if scores.empty:
        return _nothing_to_estimate(warehouse, cohort)
    version = str(scores["model_version"].iloc[0])
    each = per_metric_confidence(config.confidence, len(config.judged_metrics))
    estimates = estimate_performance(
        scores["churn_probability"].to_numpy(),
        scores["bucket"].to_numpy(),
        confidence=each,
        draws=config.draws,
        seed=config.seed,
    )
    expected = _expected_level(warehouse, version, cohort, config)
    verdict, judgements = judge_estimate(
        version, estimates, expected, config.confidence, config.judged_metrics
    )
    if verdict.severity == "warn":
        context.log.warning(f"{ESTIMATE_MONITOR} warn: {verdict.detail}")
    rows = estimate_rows(cohort, version, estimates, each, len(scores))
    with warehouse.get_connection() as conn:
        conn.register("estimate_rows", rows)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort, "version": version})
            record_verdict(conn, cohort, ESTIMATE_MONITOR, verdict.severity, verdict.detail)
    return _estimate_result(scores, estimates, expected, judgements, verdict, each, config)


def _stored_scores(warehouse: DuckDBResource, cohort: date) -> pd.DataFrame:
    with warehouse.get_connection() as conn:
        if not table_exists(conn, "predictions"):
            return pd.DataFrame(columns=["churn_probability", "bucket", "model_version"])
        return run_sql_file(conn, SCORES_SQL, {"cohort": cohort}).df()


def _expected_level(
    warehouse: DuckDBResource, version: str, cohort: date, config: EstimateConfig
) -> ExpectedLevel | None:
    """The version's level from its first out-of-time backtests before this cohort (the cohorts
    on which a metric failed its judgement left out, as model_performance does); no stand-in."""
    with warehouse.get_connection() as conn:
        history = judgement_history(conn, version, cohort)
        return backtested_level(
            conn, version, cohort, history, config.expected_cohorts, config.judged_metrics
        )


def estimate_rows(
    cohort: date, version: str, estimates: dict[str, Estimate], confidence: float, users: int
) -> pd.DataFrame:
    """One ``performance_estimates`` row per metric."""
    now = datetime.now()
    return pd.DataFrame(
        [
            {
                "cohort_month": cohort,
                "model_version": version,
                "metric": e.metric,
                "estimate": e.estimate,
                "low": e.low,
                "high": e.high,
                "confidence": confidence,
                "users": users,
                "estimated_at": now,
            }
            for e in estimates.values()
        ]
    )


def _nothing_to_estimate(warehouse: DuckDBResource, cohort: date) -> dg.MaterializeResult:
    """A cohort with no scores (emptied by a hole in the data): nothing to estimate, no alarm."""
    detail = f"n/a: no scores stored for cohort {cohort:%Y-%m}, nothing to estimate"
    with warehouse.get_connection() as conn, transaction(conn):
        record_verdict(conn, cohort, ESTIMATE_MONITOR, "n/a", detail)
    return dg.MaterializeResult(
        metadata=readable({"dagster/row_count": 0, "users": 0, "verdict": detail}),
        check_results=[
            champion_check_result(ESTIMATED_PERFORMANCE_CHECK, PerformanceVerdict("n/a", detail))
        ],
    )


def _estimate_result(
    scores: pd.DataFrame,
    estimates: dict[str, Estimate],
    expected: ExpectedLevel | None,
    judgements: list[MetricJudgement],
    verdict: PerformanceVerdict,
    each: float,
    config: EstimateConfig,
) -> dg.MaterializeResult:
    """The estimates rounded for reading, as numbers and a table, and the check's result."""
    levels = expected.values if expected is not None else {}
    table = pd.DataFrame(
        [
            {
                "metric": e.metric,
                "estimate": e.estimate,
                "low": e.low,
                "high": e.high,
                "expected": levels.get(e.metric),
            }
            for e in estimates.values()
        ]
    )
    confusion = pd.DataFrame(expected_confusion(scores["churn_probability"], scores["bucket"]))
    evidence = {
        "model_version": str(scores["model_version"].iloc[0]),
        "expected_level_from": expected.describe() if expected is not None else "none yet",
        "confidence": config.confidence,
        "confidence_each": each,
        "judged": ", ".join(f"{j.metric}{' (failed)' if j.failed else ''}" for j in judgements)
        or "none",
    }
    return dg.MaterializeResult(
        metadata=readable(
            {
                "dagster/row_count": len(estimates),
                "users": len(scores),
                **evidence,
                **{f"estimated_{e.metric}": round(e.estimate, 4) for e in estimates.values()},
                "estimates": dg.MetadataValue.json(
                    {
                        e.metric: [_rounded(v) for v in (e.estimate, e.low, e.high)]
                        for e in estimates.values()
                    }
                ),
                "estimates_table": dg.MetadataValue.md(table.round(4).to_markdown(index=False)),
                "expected_confusion": dg.MetadataValue.md(
                    confusion.round(1).to_markdown(index=False)
                ),
                "draws": config.draws,
                "basis": BEFORE_LABELS,
                "verdict": f"{verdict.severity}: {verdict.detail}",
            }
        ),
        check_results=[champion_check_result(ESTIMATED_PERFORMANCE_CHECK, verdict, evidence)],
    )


def _rounded(value: float) -> float | None:
    """For reading, and for JSON: an undefined estimate (an empty bucket) is null."""
    return round(value, 4) if math.isfinite(value) else None
