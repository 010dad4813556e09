"""The ``model_performance`` asset: backtest every registered version on a newly labelled cohort.

Labels of cohort M land two months after the cohort was scored. Each version is scored again on
that cohort's features and judged against what really happened; a version evaluated on a cohort
after the one it was validated on is ``out_of_time`` (an honest backtest). The champion is also
held against the as-is rule: a model that ranks churners worse than "auto-renew off or cancelled"
is worse than no model, an ``error`` verdict.
"""

import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from churn_assets.features.feature_sets import keep_common_features
from churn_assets.monitoring.verdicts import record_verdict
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.performance.metrics import classification_metrics
from churn_assets.resources import ModelRegistryResource
from churn_assets.settings import BUCKET_A_MIN_PROBABILITY
from churn_assets.training.baselines import rule_flags
from churn_assets.training.model import LABEL, predict_probability
from churn_assets.warehouse import run_sql_file, table_exists, transaction

SQL = Path(__file__).parent / "model_performance.sql"
COHORT_SQL = Path(__file__).parent / "labelled_cohort.sql"
PERFORMANCE_CHECK = "champion_beats_rule"
MONITOR = "performance"
METRIC_COLUMNS = (
    "auc",
    "log_loss",
    "f2",
    "ks",
    "lift_top_decile",
    "brier",
    "lift_top_1pct",
    "lift_top_5pct",
    "churn_rate",
    "churn_rate_top_decile",
    "churn_rate_second_decile",
    "bucket_a_precision",
    "bucket_a_recall",
)


class PerformanceConfig(dg.Config):
    bucket_a_min_probability: float = Field(
        default=BUCKET_A_MIN_PROBABILITY,
        description="Score from which bucket A (as in scoring): f2 and bucket A.",
    )
    degradation_tolerance: float = Field(
        default=0.05,
        description="AUC the champion may lose against its own validation AUC before a warning.",
    )


@dataclass(frozen=True)
class Verdict:
    severity: str  # pass, warn, error
    detail: str


def judge_champion(
    champion: dict | None, rule_auc: float, validation_auc: float | None, tolerance: float
) -> Verdict:
    """The performance monitor's verdict on the champion's row of a backtested cohort."""
    if champion is None:
        return Verdict("warn", "no champion model could be evaluated on this cohort")
    auc = champion["auc"]
    version = champion["model_version"]
    if math.isnan(auc):
        return Verdict("warn", f"champion v{version}: AUC undefined (a single-class cohort)")
    if not math.isnan(rule_auc) and auc < rule_auc:
        return Verdict(
            "error", f"champion v{version} AUC {auc:.4f} is below the as-is rule's {rule_auc:.4f}"
        )
    if validation_auc is not None and auc < validation_auc - tolerance:
        return Verdict(
            "warn",
            f"champion v{version} AUC {auc:.4f} fell more than {tolerance:g} below its "
            f"validation AUC {validation_auc:.4f}",
        )
    return Verdict("pass", f"champion v{version} AUC {auc:.4f} (as-is rule {rule_auc:.4f})")


def _history_markdown(conn, cohort: date) -> str:
    """AUC per cohort (rows) and version (columns) up to this cohort: the backtest history."""
    history = conn.execute(
        "SELECT cohort_month, model_version, auc FROM model_performance "
        "WHERE cohort_month <= ? ORDER BY cohort_month",
        [cohort],
    ).df()
    if history.empty:
        return "_no backtests yet_"
    table = history.pivot_table(
        index="cohort_month", columns="model_version", values="auc", aggfunc="first"
    )
    table = table[sorted(table.columns, key=lambda v: int(v) if v.isdigit() else 0)]
    table.columns = [f"v{c} AUC" for c in table.columns]
    table.index = [f"{c:%Y-%m}" for c in pd.to_datetime(table.index)]
    return table.round(4).to_markdown()


@dg.asset(
    group_name="performance",
    kinds={"duckdb", "mlflow"},
    partitions_def=monthly_partitions,
    deps=["labels", "features", "churn_model"],
    check_specs=[
        dg.AssetCheckSpec(
            PERFORMANCE_CHECK,
            asset="model_performance",
            partitions_def=monthly_partitions,
            description="The champion ranks this cohort's churners at least as well as the "
            "as-is rule (auto-renew off or cancelled).",
        )
    ],
)
def model_performance(
    context: dg.AssetExecutionContext,
    config: PerformanceConfig,
    warehouse: DuckDBResource,
    registry: ModelRegistryResource,
) -> dg.MaterializeResult:
    """Every registered version's metrics on the cohort whose labels just landed."""
    cohort = month_start(context.partition_key)
    with warehouse.get_connection() as conn:
        frame = (
            run_sql_file(conn, COHORT_SQL, {"cohort": cohort}).df()
            if table_exists(conn, "features") and table_exists(conn, "labels")
            else pd.DataFrame()
        )
        if not frame.empty:
            frame = keep_common_features(conn, frame, [cohort])
    if frame.empty:
        # Labels of a cohort that was never scored (e.g. before the first features): nothing to
        # backtest, which is not a failure of the load it runs with.
        detail = f"no labelled feature rows for cohort {cohort:%Y-%m}: nothing to backtest"
        context.log.warning(detail)
        return dg.MaterializeResult(
            metadata={"dagster/row_count": 0, "users": 0, "verdict": f"skipped: {detail}"},
            check_results=[
                dg.AssetCheckResult(
                    check_name=PERFORMANCE_CHECK,
                    passed=True,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=detail,
                )
            ],
        )
    y = frame[LABEL].to_numpy()
    rule_scores = rule_flags(frame).astype(float)
    rule_auc = classification_metrics(y, rule_scores)["auc"]

    client = registry.client
    champion = registry.champion()
    champion_version = str(champion.version) if champion is not None else None
    versions = sorted(
        client.search_model_versions(f"name = '{registry.model_name}'"),
        key=lambda v: int(v.version),
    )
    now = datetime.now()
    rows, unscorable = [], {}
    for version in versions:
        try:
            probability = predict_probability(registry.load_model(version.version), frame)
        except KeyError as exc:  # the version needs a feature this cohort does not have
            unscorable[str(version.version)] = str(exc)
            continue
        validated_on = version.tags.get("validation_cohort", "")
        rows.append(
            {
                "model_version": str(version.version),
                "cohort_month": cohort,
                **classification_metrics(y, probability, config.bucket_a_min_probability),
                "users": len(frame),
                "is_champion": str(version.version) == champion_version,
                "out_of_time": bool(validated_on) and f"{cohort:%Y-%m-01}" > validated_on,
                "evaluated_at": now,
            }
        )
    performance = pd.DataFrame(
        rows,
        columns=[
            "model_version",
            "cohort_month",
            *METRIC_COLUMNS,
            "users",
            "is_champion",
            "out_of_time",
            "evaluated_at",
        ],
    )
    champion_row = next((r for r in rows if r["is_champion"]), None)
    validation_auc = (
        float(champion.tags["val_auc"])
        if champion is not None and champion.tags.get("val_auc")
        else None
    )
    verdict = judge_champion(champion_row, rule_auc, validation_auc, config.degradation_tolerance)
    if champion_version in unscorable:
        verdict = Verdict(
            "error", f"champion v{champion_version} cannot score: {unscorable[champion_version]}"
        )
    with warehouse.get_connection() as conn:
        conn.register("performance_rows", performance)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort})
            record_verdict(conn, cohort, MONITOR, verdict.severity, verdict.detail)
        history = _history_markdown(conn, cohort)

    champion_metrics = champion_row or dict.fromkeys(METRIC_COLUMNS, float("nan"))
    this_cohort = (
        performance.set_index("model_version")[["auc", "log_loss", "ks", "lift_top_decile"]]
        .round(4)
        .to_markdown()
        if not performance.empty
        else "_no registered version could score this cohort_"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(performance),
            "users": len(frame),
            "churn_rate": float(np.mean(y)),
            "champion_version": champion_version or "",
            "champion_auc": champion_metrics["auc"],
            "champion_log_loss": champion_metrics["log_loss"],
            "champion_brier": champion_metrics["brier"],
            "champion_ks": champion_metrics["ks"],
            "champion_lift_top_decile": champion_metrics["lift_top_decile"],
            "champion_bucket_a_recall": champion_metrics["bucket_a_recall"],
            "rule_auc": rule_auc,
            "verdict": f"{verdict.severity}: {verdict.detail}",
            "versions_evaluated": len(performance),
            "versions_unscorable": dg.MetadataValue.json(unscorable),
            "this_cohort": dg.MetadataValue.md(this_cohort),
            "auc_history": dg.MetadataValue.md(history),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=PERFORMANCE_CHECK,
                passed=verdict.severity != "error",
                severity=dg.AssetCheckSeverity.ERROR
                if verdict.severity == "error"
                else dg.AssetCheckSeverity.WARN,
                description=verdict.detail,
                metadata={
                    "severity": verdict.severity,
                    "champion_auc": champion_metrics["auc"],
                    "rule_auc": rule_auc,
                    "versions": json.dumps(sorted(r["model_version"] for r in rows)),
                },
            )
        ],
    )
