"""The ``model_performance`` asset: backtest every registered version on a newly labelled cohort.

Labels of cohort M land two months after the cohort was scored. Each version is scored again on
that cohort's features and judged against what really happened; a version evaluated on a cohort
after the one it was validated on is ``out_of_time`` (an honest backtest).

Two checks judge the champion (see :mod:`churn_assets.performance.judging` for the defaults and
their reasons):

* ``champion_performance``: its AUC, normalized log loss, lift at 10 %, F2 and top-to-second
  decile churn ratio against its expected level (its first out-of-time backtests, else its
  validation metrics), with the tolerance from a bootstrap interval of this cohort. A failure on
  one cohort is a WARN; a metric failing in 2 of the last 3 cohorts judged is an ERROR, the
  signal for retraining. Only severity ERROR means "act".
* ``champion_beats_rule``: a model that ranks churners worse than "auto-renew off or cancelled"
  beyond doubt (the paired bootstrap interval of the AUC difference on this cohort's users lies
  below 0) is worse than no model, an ERROR at once; worse on the point estimate only is
  information (the check passes and its detail says so).

Where there is nothing to judge (no champion yet, no labelled rows, a single-class cohort) both
checks pass saying n/a, and the ``performance`` verdict is ``n/a``, not an alarm. The verdict
written to ``monitor_verdicts`` is the worse of the two checks. Two more verdicts go with it
(:mod:`churn_assets.performance.findings`): ``calibration``, the champion's scores against the
churn they announced, and ``realised_vs_estimated_performance``, the estimate made before the
labels (``performance_estimate``) against what was realised.
"""

import json
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets import keys
from churn_assets.keys import CALIBRATION_CHECK, CHAMPION_PERFORMANCE_CHECK, RULE_CHECK
from churn_assets.modeling.bootstrap import paired_differences
from churn_assets.modeling.frame import LABEL
from churn_assets.modeling.metrics import classification_metrics
from churn_assets.modeling.rule import rule_flags
from churn_assets.monitoring.verdicts import record_verdict
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.performance.backtest import (
    METRIC_COLUMNS,
    SQL,
    ScoredVersions,
    load_labelled_cohort,
    score_versions,
)
from churn_assets.performance.calibration import CALIBRATION_MONITOR
from churn_assets.performance.champion import (
    JUDGEMENTS_SQL,
    MONITOR,
    ChampionJudgement,
    build_judgement_rows,
    champion_check_result,
    champion_evidence,
    history_markdown,
    judge_against_rule,
    judge_champion,
    worse_verdict,
)
from churn_assets.performance.config import PerformanceConfig
from churn_assets.performance.findings import (
    Finding,
    findings_metadata,
    labelled_findings,
    nothing_labelled,
)
from churn_assets.performance.judging import JUDGEABLE_METRICS, PerformanceVerdict
from churn_assets.performance.segments import (
    champion_segments,
    record_segments,
    segment_metadata,
)
from churn_assets.readable import readable
from churn_assets.resources import ModelRegistryResource
from churn_assets.training.lifecycle import is_provisional
from churn_assets.warehouse import run_sql_file, transaction

PERFORMANCE_CHECKS = [
    dg.AssetCheckSpec(
        RULE_CHECK,
        asset=keys.MODEL_PERFORMANCE,
        partitions_def=monthly_partitions,
        description="The champion ranks this cohort's churners at least as well as the "
        "as-is rule (auto-renew off or cancelled).",
    ),
    dg.AssetCheckSpec(
        CHAMPION_PERFORMANCE_CHECK,
        asset=keys.MODEL_PERFORMANCE,
        partitions_def=monthly_partitions,
        description="The champion performs at its expected (out-of-time) level: its AUC, log "
        "loss, lift, F2 and decile ratio against this cohort's bootstrap intervals. WARN on "
        "one bad cohort, ERROR when a metric fails in 2 of the last 3 judged (retrain).",
    ),
    dg.AssetCheckSpec(
        CALIBRATION_CHECK,
        asset=keys.MODEL_PERFORMANCE,
        partitions_def=monthly_partitions,
        description="The champion's scores mean the churn they announce: its reliability curve "
        "on this cohort within binomial noise (Hosmer-Lemeshow, 99 %). WARN when miscalibrated "
        "beyond doubt or in 2 of the last 3 cohorts judged (the retraining policy then weighs "
        "recalibrating the champion against retraining it); one cohort is information.",
    ),
]


@dg.asset(
    group_name="performance",
    kinds={"duckdb", "mlflow"},
    partitions_def=monthly_partitions,
    deps=[keys.LABELS, keys.FEATURES, keys.CHURN_MODEL],
    check_specs=PERFORMANCE_CHECKS,
)
def model_performance(
    context: dg.AssetExecutionContext,
    config: PerformanceConfig,
    warehouse: DuckDBResource,
    registry: ModelRegistryResource,
) -> dg.MaterializeResult:
    """Every registered version's metrics on the cohort whose labels just landed."""
    unknown = sorted(set(config.judged_metrics) - set(JUDGEABLE_METRICS))
    if unknown:
        raise dg.Failure(f"judged_metrics: unknown metric(s) {', '.join(unknown)}")
    cohort = month_start(context.partition_key)
    frame = load_labelled_cohort(warehouse, cohort)
    if frame.empty:
        return _nothing_to_backtest(context, warehouse, cohort)
    y = frame[LABEL].to_numpy()
    rule_scores = rule_flags(frame).astype(float)
    rule_auc = classification_metrics(y, rule_scores)["auc"]
    champion = registry.champion()
    scored = score_versions(registry, frame, cohort, config, champion)
    rule_verdict = _judge_rule(scored, y, rule_scores, rule_auc, config)
    judged = judge_champion(warehouse, champion, scored, y, cohort, config)
    verdict = worse_verdict(judged.verdict, rule_verdict)
    if verdict.severity in ("warn", "error"):
        context.log.warning(f"performance {verdict.severity}: {verdict.detail}")
    provisional = champion is not None and is_provisional(champion)
    findings = labelled_findings(warehouse, cohort, scored, y, judged, config, provisional)
    segments = champion_segments(
        frame,
        y,
        scored.champion_probability,
        judged.expected.values if judged.expected else None,
        (scored.champion_row or {}).get("auc", float("nan")),
        config.confidence,
    )
    history_md = _record(warehouse, cohort, scored, judged, verdict, config, findings, segments)
    return _performance_result(
        frame,
        scored,
        judged,
        rule_verdict,
        verdict,
        rule_auc,
        history_md,
        config,
        findings,
        segments,
    )


def _judge_rule(
    scored: ScoredVersions,
    y: np.ndarray,
    rule_scores: np.ndarray,
    rule_auc: float,
    config: PerformanceConfig,
) -> PerformanceVerdict:
    """The champion against the as-is rule, by the paired bootstrap of their AUC difference."""
    difference = (
        paired_differences(
            y,
            scored.champion_probability,
            rule_scores,
            ("auc",),
            resamples=config.bootstrap_resamples,
            confidence=config.confidence,
            seed=config.seed,
        )["auc"]
        if scored.champion_row is not None and len(np.unique(y)) == 2
        else (float("nan"), float("nan"))
    )
    return judge_against_rule(
        scored.champion_row, rule_auc, scored.cannot_score, difference, config.confidence
    )


def _record(
    warehouse: DuckDBResource,
    cohort: date,
    scored: ScoredVersions,
    judged: ChampionJudgement,
    verdict: PerformanceVerdict,
    config: PerformanceConfig,
    findings: list[Finding],
    segments: pd.DataFrame,
) -> str:
    """Every version's metrics, the champion's judgements, its segments and the verdicts, in one
    transaction; the judgement history as markdown."""
    judgement_rows = build_judgement_rows(
        cohort,
        scored.champion_version or "",
        judged.judgements,
        judged.expected,
        config.confidence,
        scored.evaluated_at,
    )
    with warehouse.get_connection() as conn:
        conn.register("performance_rows", scored.performance)
        conn.register("judgement_rows", judgement_rows)
        with transaction(conn):
            run_sql_file(conn, SQL, {"cohort": cohort})
            run_sql_file(conn, JUDGEMENTS_SQL, {"cohort": cohort})
            if scored.champion_version is not None:
                record_segments(
                    conn, cohort, scored.champion_version, segments, scored.evaluated_at
                )
            record_verdict(conn, cohort, MONITOR, verdict.severity, verdict.detail)
            _record_findings(conn, cohort, findings)
        return history_markdown(conn, cohort)


def _record_findings(conn, cohort: date, findings: list[Finding]) -> None:
    for finding in findings:
        record_verdict(
            conn, cohort, finding.monitor, finding.verdict.severity, finding.verdict.detail
        )


def _nothing_to_backtest(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, cohort: date
) -> dg.MaterializeResult:
    """Labels of a cohort that was never scored (e.g. before the first features): nothing to
    backtest, which is not a failure of the load it runs with."""
    detail = f"n/a: no labelled feature rows for cohort {cohort:%Y-%m}, nothing to backtest"
    context.log.info(detail)
    nothing = PerformanceVerdict("n/a", detail)
    with warehouse.get_connection() as conn, transaction(conn):
        record_verdict(conn, cohort, MONITOR, "n/a", detail)
        _record_findings(conn, cohort, nothing_labelled(cohort))
    return dg.MaterializeResult(
        metadata=readable({"dagster/row_count": 0, "users": 0, "verdict": detail}),
        check_results=[
            champion_check_result(RULE_CHECK, nothing),
            champion_check_result(CHAMPION_PERFORMANCE_CHECK, nothing),
            champion_check_result(CALIBRATION_CHECK, nothing),
        ],
    )


def _calibration_check(findings: list[Finding], version: str | None) -> dg.AssetCheckResult:
    """The calibration finding as a check the retraining policy can read."""
    found = next(f for f in findings if f.monitor == CALIBRATION_MONITOR)
    figures = {
        k: v
        for k, v in found.metadata.items()
        if k.startswith("calibration_") and isinstance(v, int | float)
    }
    return champion_check_result(
        CALIBRATION_CHECK, found.verdict, {"champion_version": version or "", **figures}
    )


# The champion's figures on the cohort that the materialization shows as champion_<metric>.
CHAMPION_FIGURES = ("auc", "log_loss", "brier", "ks", "lift_top_decile", "bucket_a_recall")


def _performance_result(
    frame: pd.DataFrame,
    scored: ScoredVersions,
    judged: ChampionJudgement,
    rule_verdict: PerformanceVerdict,
    verdict: PerformanceVerdict,
    rule_auc: float,
    history_md: str,
    config: PerformanceConfig,
    findings: list[Finding],
    segments: pd.DataFrame,
) -> dg.MaterializeResult:
    """The materialization's metadata and both checks' results."""
    performance = scored.performance
    champion_metrics = scored.champion_row or dict.fromkeys(METRIC_COLUMNS, float("nan"))
    this_cohort = (
        performance.set_index("model_version")[["auc", "log_loss", "ks", "lift_top_decile"]]
        .round(4)
        .to_markdown()
        if not performance.empty
        else "_no registered version could score this cohort_"
    )
    evidence = champion_evidence(judged.judgements, judged.expected, judged.found, config)
    return dg.MaterializeResult(
        metadata=readable(
            {
                "dagster/row_count": len(performance),
                "users": len(frame),
                "churn_rate": float(np.mean(frame[LABEL].to_numpy())),
                "champion_version": scored.champion_version or "",
                **{f"champion_{m}": champion_metrics[m] for m in CHAMPION_FIGURES},
                "rule_auc": rule_auc,
                "verdict": f"{verdict.severity}: {verdict.detail}",
                "expected_level_from": evidence.get("expected_level_from", ""),
                "versions_evaluated": len(performance),
                "versions_unscorable": dg.MetadataValue.json(scored.unscorable),
                "this_cohort": dg.MetadataValue.md(this_cohort),
                "auc_history": dg.MetadataValue.md(history_md),
                **findings_metadata(findings),
                **segment_metadata(segments),
            }
        ),
        check_results=[
            champion_check_result(
                RULE_CHECK,
                rule_verdict,
                {
                    "champion_auc": champion_metrics["auc"],
                    "rule_auc": rule_auc,
                    "versions": json.dumps(sorted(r["model_version"] for r in scored.rows)),
                },
            ),
            champion_check_result(
                CHAMPION_PERFORMANCE_CHECK,
                judged.verdict,
                {"champion_version": scored.champion_version or "", **evidence},
            ),
            _calibration_check(findings, scored.champion_version),
        ],
    )
