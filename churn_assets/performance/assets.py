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
  below 0) is worse than no model, an ERROR at once; worse on the point estimate only, a WARN.

Where there is nothing to judge (no champion yet, no labelled rows, a single-class cohort) both
checks pass saying n/a, and the ``performance`` verdict is ``n/a``, not an alarm. The verdict
written to ``monitor_verdicts`` is the worse of the two checks.
"""

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pydantic import Field

from churn_assets.features.feature_sets import keep_common_features
from churn_assets.monitoring.verdicts import record_verdict
from churn_assets.partitions import month_start, monthly_partitions
from churn_assets.performance.bootstrap import (
    DEFAULT_RESAMPLES,
    bootstrap_intervals,
    paired_differences,
)
from churn_assets.performance.judging import (
    DEFAULT_CONFIDENCE,
    DEFAULT_EXPECTED_COHORTS,
    DEFAULT_FAILURES,
    DEFAULT_WINDOW,
    JUDGEABLE_METRICS,
    JUDGED_METRICS,
    ExpectedLevel,
    MetricJudgement,
    PerformanceVerdict,
    Persistence,
    expected_level,
    judge_metrics,
    persistence,
    verdict_of,
    with_decile_ratio,
)
from churn_assets.performance.metrics import classification_metrics
from churn_assets.resources import ModelRegistryResource
from churn_assets.settings import BUCKET_A_MIN_PROBABILITY
from churn_assets.training.baselines import rule_flags
from churn_assets.training.model import LABEL, predict_probability
from churn_assets.warehouse import run_sql_file, table_exists, transaction

SQL = Path(__file__).parent / "model_performance.sql"
JUDGEMENTS_SQL = Path(__file__).parent / "performance_judgements.sql"
COHORT_SQL = Path(__file__).parent / "labelled_cohort.sql"
PERFORMANCE_CHECK = "champion_beats_rule"
CHAMPION_PERFORMANCE_CHECK = "champion_performance"
# What the retraining sensor reads: an ERROR evaluation of this check is a persistent failure.
CHAMPION_PERFORMANCE_CHECK_KEY = dg.AssetCheckKey(
    dg.AssetKey("model_performance"), CHAMPION_PERFORMANCE_CHECK
)
MONITOR = "performance"
METRIC_COLUMNS = (
    "auc",
    "log_loss",
    "normalized_log_loss",
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
# Worst first: the monitor's verdict is the worse of the two checks.
_RANK = {"error": 3, "warn": 2, "pass": 1, "n/a": 0}


class PerformanceConfig(dg.Config):
    bucket_a_min_probability: float = Field(
        default=BUCKET_A_MIN_PROBABILITY,
        description="Score from which bucket A (as in scoring): f2 and bucket A.",
    )
    bootstrap_resamples: int = Field(
        default=DEFAULT_RESAMPLES,
        ge=20,
        description="Resamples of the cohort's users behind each metric's interval.",
    )
    confidence: float = Field(
        default=DEFAULT_CONFIDENCE,
        gt=0.0,
        lt=1.0,
        description="Two-sided confidence of the intervals: a metric fails when the expected "
        "level lies outside, on the bad side.",
    )
    seed: int = Field(
        default=0, description="Seed of the resampling: the same cohort, the same interval."
    )
    persistence_failures: int = Field(
        default=DEFAULT_FAILURES,
        ge=1,
        description="k of 'k of the last n': failures of one metric that make an ERROR.",
    )
    persistence_window: int = Field(
        default=DEFAULT_WINDOW,
        ge=1,
        description="n of 'k of the last n': the champion's latest cohorts judged.",
    )
    expected_cohorts: int = Field(
        default=DEFAULT_EXPECTED_COHORTS,
        ge=1,
        description="How many of the champion's first out-of-time backtests set its expected "
        "level (their mean).",
    )
    judged_metrics: list[str] = Field(
        default=list(JUDGED_METRICS),
        description=f"Metrics judged, among {', '.join(JUDGEABLE_METRICS)}.",
    )


def _worse(*verdicts: PerformanceVerdict) -> PerformanceVerdict:
    worst = max(verdicts, key=lambda v: _RANK[v.severity])
    details = dict.fromkeys(v.detail for v in verdicts if v.severity == worst.severity)
    return PerformanceVerdict(worst.severity, "; ".join(details))


def judge_against_rule(
    champion: dict | None,
    rule_auc: float,
    unscorable: str | None = None,
    difference_interval: tuple[float, float] = (float("nan"), float("nan")),
    confidence: float = DEFAULT_CONFIDENCE,
) -> PerformanceVerdict:
    """``champion_beats_rule``: the champion ranks churners at least as well as the as-is rule.

    ``difference_interval`` is the paired bootstrap interval of champion AUC minus rule AUC on
    this cohort's users. The rule ranking better beyond doubt (the whole interval below 0) is an
    error; better on this cohort's point estimate only, a warning: on a few dozen churners the
    two AUCs trade places by luck alone.
    """
    if unscorable is not None:
        return PerformanceVerdict("error", unscorable)
    if champion is None:
        return PerformanceVerdict("n/a", "n/a: no champion model yet, nothing to judge")
    auc, version = champion["auc"], champion["model_version"]
    if math.isnan(auc) or math.isnan(rule_auc):
        return PerformanceVerdict(
            "n/a", f"n/a: champion v{version} AUC undefined (a single-class cohort)"
        )
    low, high = difference_interval
    shown = (
        f"champion v{version} AUC {auc:.4f} vs the as-is rule's {rule_auc:.4f} (difference "
        f"{auc - rule_auc:+.4f}, {confidence:.0%} interval [{low:+.4f}, {high:+.4f}])"
    )
    if high < 0:
        return PerformanceVerdict("error", f"{shown}: the rule ranks churners better")
    if auc < rule_auc:
        return PerformanceVerdict("warn", f"{shown}: below the rule on this cohort only")
    return PerformanceVerdict("pass", shown)


def validation_metrics(registry: ModelRegistryResource, version: ModelVersion) -> dict[str, float]:
    """The version's validation metrics as its training run logged them (``val_*``)."""
    try:
        logged = registry.client.get_run(version.run_id).data.metrics if version.run_id else {}
    except MlflowException:
        logged = {}
    metrics = {k[4:]: float(v) for k, v in logged.items() if k.startswith("val_")}
    if "auc" not in metrics and version.tags.get("val_auc"):
        metrics["auc"] = float(version.tags["val_auc"])
    return metrics


def _out_of_time_rows(conn, version: str, cohort: date) -> list[dict]:
    """The version's out-of-time backtests before ``cohort`` (two-class ones), oldest first."""
    if not table_exists(conn, "model_performance"):
        return []
    frame = conn.execute(
        "SELECT * FROM model_performance WHERE model_version = ? AND out_of_time "
        "AND cohort_month < ? AND auc IS NOT NULL AND NOT isnan(auc) ORDER BY cohort_month",
        [version, cohort],
    ).df()
    frame["cohort_month"] = pd.to_datetime(frame["cohort_month"]).dt.date
    return frame.to_dict("records")


def _judgement_history(conn, version: str, cohort: date) -> list[tuple[date, str, bool]]:
    if not table_exists(conn, "performance_judgements"):
        return []
    return [
        (pd.Timestamp(c).date(), m, bool(f))
        for c, m, f in conn.execute(
            "SELECT cohort_month, metric, failed FROM performance_judgements "
            "WHERE model_version = ? AND cohort_month < ?",
            [version, cohort],
        ).fetchall()
    ]


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


def _judgement_rows(
    cohort: date,
    version: str,
    judgements: list[MetricJudgement],
    expected: ExpectedLevel | None,
    confidence: float,
    now: datetime,
) -> pd.DataFrame:
    """The champion's judgements as rows of ``performance_judgements`` (none if not judged)."""
    return pd.DataFrame(
        [
            {
                "cohort_month": cohort,
                "model_version": version,
                "metric": j.metric,
                "value": j.value,
                "interval_low": j.low,
                "interval_high": j.high,
                "confidence": confidence,
                "expected": j.expected,
                "expected_source": expected.sources[j.metric],
                "expected_cohorts": ", ".join(expected.cohorts[j.metric]),
                "failed": j.failed,
                "evaluated_at": now,
            }
            for j in judgements
        ],
        columns=[
            "cohort_month",
            "model_version",
            "metric",
            "value",
            "interval_low",
            "interval_high",
            "confidence",
            "expected",
            "expected_source",
            "expected_cohorts",
            "failed",
            "evaluated_at",
        ],
    ).astype({"failed": bool})


def _check_result(
    name: str, verdict: PerformanceVerdict, metadata: dict | None = None
) -> dg.AssetCheckResult:
    """pass and n/a pass; warn fails as a WARN; error fails as an ERROR (the one to act on)."""
    return dg.AssetCheckResult(
        check_name=name,
        passed=verdict.severity in ("pass", "n/a"),
        severity=dg.AssetCheckSeverity.ERROR
        if verdict.severity == "error"
        else dg.AssetCheckSeverity.WARN,
        description=verdict.detail,
        metadata={"severity": verdict.severity, **(metadata or {})},
    )


def _evidence(
    judgements: list[MetricJudgement],
    expected: ExpectedLevel | None,
    found: Persistence,
    config: PerformanceConfig,
) -> dict:
    """What a champion_performance result rests on, metric by metric."""
    if expected is None:
        return {}
    table = pd.DataFrame(
        [
            {
                "metric": j.metric,
                "cohort": j.value,
                "interval_low": j.low,
                "interval_high": j.high,
                "expected": j.expected,
                "expected_from": expected.basis(j.metric),
                "failed": j.failed,
            }
            for j in judgements
        ]
    )
    failing = {
        j.metric: {
            "value": round(j.value, 6),
            "interval": [round(j.low, 6), round(j.high, 6)],
            "expected": round(j.expected, 6),
            "expected_from": expected.basis(j.metric),
            "window": [f"{c:%Y-%m}" for c in found.window.get(j.metric, [])],
            "failed_cohorts": [f"{c:%Y-%m}" for c in found.failed.get(j.metric, [])],
        }
        for j in judgements
        if j.failed
    }
    return {
        "expected_level_from": expected.describe(),
        "expected_source": expected.source,
        "expected_cohorts": ", ".join(sorted({c for cs in expected.cohorts.values() for c in cs})),
        "confidence": config.confidence,
        "bootstrap_resamples": config.bootstrap_resamples,
        "persistence_rule": f"{config.persistence_failures} of the last "
        f"{config.persistence_window} cohorts judged",
        "failing_metrics": dg.MetadataValue.json(failing),
        "judgements": dg.MetadataValue.md(
            table.round(4).to_markdown(index=False) if not table.empty else "_none judged_"
        ),
    }


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
        ),
        dg.AssetCheckSpec(
            CHAMPION_PERFORMANCE_CHECK,
            asset="model_performance",
            partitions_def=monthly_partitions,
            description="The champion performs at its expected (out-of-time) level: its AUC, log "
            "loss, lift, F2 and decile ratio against this cohort's bootstrap intervals. WARN on "
            "one bad cohort, ERROR when a metric fails in 2 of the last 3 judged (retrain).",
        ),
    ],
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
    frame = _labelled_cohort(warehouse, cohort)
    if frame.empty:
        return _nothing_to_backtest(context, warehouse, cohort)
    y = frame[LABEL].to_numpy()
    rule_scores = rule_flags(frame).astype(float)
    rule_auc = classification_metrics(y, rule_scores)["auc"]
    champion = registry.champion()
    scored = _score_versions(registry, frame, cohort, config, champion)
    rule_verdict = judge_against_rule(
        scored.champion_row,
        rule_auc,
        scored.cannot_score,
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
        else (float("nan"), float("nan")),
        config.confidence,
    )
    judged = _judge_champion(warehouse, registry, champion, scored, y, cohort, config)
    verdict = _worse(judged.verdict, rule_verdict)
    if verdict.severity in ("warn", "error"):
        context.log.warning(f"performance {verdict.severity}: {verdict.detail}")
    judgement_rows = _judgement_rows(
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
            record_verdict(conn, cohort, MONITOR, verdict.severity, verdict.detail)
        history_md = _history_markdown(conn, cohort)
    return _performance_result(
        frame, scored, judged, rule_verdict, verdict, rule_auc, history_md, config
    )


def _labelled_cohort(warehouse: DuckDBResource, cohort: date) -> pd.DataFrame:
    """The cohort's features joined to its labels, in the columns it was built with."""
    with warehouse.get_connection() as conn:
        if not (table_exists(conn, "features") and table_exists(conn, "labels")):
            return pd.DataFrame()
        frame = run_sql_file(conn, COHORT_SQL, {"cohort": cohort}).df()
        return keep_common_features(conn, frame, [cohort]) if not frame.empty else frame


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
    return dg.MaterializeResult(
        metadata={"dagster/row_count": 0, "users": 0, "verdict": detail},
        check_results=[
            _check_result(PERFORMANCE_CHECK, nothing),
            _check_result(CHAMPION_PERFORMANCE_CHECK, nothing),
        ],
    )


@dataclass(frozen=True)
class ScoredVersions:
    """Every registered version's metrics on the cohort, and the champion's scores."""

    rows: list[dict]  # one per version that could score the cohort
    unscorable: dict[str, str]  # version -> why it cannot score the cohort
    champion_version: str | None
    champion_probability: np.ndarray | None
    evaluated_at: datetime

    @property
    def performance(self) -> pd.DataFrame:
        """The rows as the ``model_performance`` table's columns."""
        return pd.DataFrame(
            self.rows,
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

    @property
    def champion_row(self) -> dict | None:
        return next((r for r in self.rows if r["is_champion"]), None)

    @property
    def cannot_score(self) -> str | None:
        if self.champion_version in self.unscorable:
            return (
                f"champion v{self.champion_version} cannot score: "
                f"{self.unscorable[self.champion_version]}"
            )
        return None


def _score_versions(
    registry: ModelRegistryResource,
    frame: pd.DataFrame,
    cohort: date,
    config: PerformanceConfig,
    champion: ModelVersion | None,
) -> ScoredVersions:
    y = frame[LABEL].to_numpy()
    champion_version = str(champion.version) if champion is not None else None
    versions = sorted(
        registry.client.search_model_versions(f"name = '{registry.model_name}'"),
        key=lambda v: int(v.version),
    )
    now = datetime.now()
    rows, unscorable, champion_probability = [], {}, None
    for version in versions:
        try:
            probability = predict_probability(registry.load_model(version.version), frame)
        except KeyError as exc:  # the version needs a feature this cohort does not have
            unscorable[str(version.version)] = str(exc)
            continue
        if str(version.version) == champion_version:
            champion_probability = probability
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
    return ScoredVersions(rows, unscorable, champion_version, champion_probability, now)


@dataclass(frozen=True)
class ChampionJudgement:
    verdict: PerformanceVerdict
    judgements: list[MetricJudgement] = field(default_factory=list)
    expected: ExpectedLevel | None = None
    found: Persistence = field(default_factory=Persistence)


def _judge_champion(
    warehouse: DuckDBResource,
    registry: ModelRegistryResource,
    champion: ModelVersion | None,
    scored: ScoredVersions,
    y: np.ndarray,
    cohort: date,
    config: PerformanceConfig,
) -> ChampionJudgement:
    """The champion against its expected level, with the persistence rule; n/a when nothing
    can be judged."""
    champion_row, version = scored.champion_row, scored.champion_version
    if scored.cannot_score is not None:
        return ChampionJudgement(PerformanceVerdict("error", scored.cannot_score))
    if champion is None or champion_row is None:
        return ChampionJudgement(
            PerformanceVerdict("n/a", "n/a: no champion model yet, nothing to judge")
        )
    if len(np.unique(y)) < 2:
        return ChampionJudgement(
            PerformanceVerdict(
                "n/a", f"n/a: cohort {cohort:%Y-%m} holds a single class, no metric can be judged"
            )
        )
    with warehouse.get_connection() as conn:
        out_of_time = _out_of_time_rows(conn, version, cohort)
        history = _judgement_history(conn, version, cohort)
    expected = expected_level(
        out_of_time,
        validation_metrics(registry, champion),
        champion.tags.get("validation_cohort", ""),
        failed=[(c, m) for c, m, failed in history if failed],
        cohorts=config.expected_cohorts,
        metrics=config.judged_metrics,
    )
    if expected is None:
        return ChampionJudgement(
            PerformanceVerdict(
                "n/a",
                f"n/a: champion v{version} has neither an out-of-time backtest nor "
                "validation metrics to expect a level from",
            )
        )
    intervals = bootstrap_intervals(
        y,
        scored.champion_probability,
        config.judged_metrics,
        resamples=config.bootstrap_resamples,
        confidence=config.confidence,
        seed=config.seed,
        bucket_a_min=config.bucket_a_min_probability,
    )
    judgements = judge_metrics(
        with_decile_ratio(champion_row), intervals, expected.values, config.judged_metrics
    )
    found = persistence(cohort, judgements, history, config.persistence_window)
    verdict = verdict_of(
        version,
        judgements,
        expected,
        found,
        config.persistence_failures,
        config.persistence_window,
    )
    return ChampionJudgement(verdict, judgements, expected, found)


def _performance_result(
    frame: pd.DataFrame,
    scored: ScoredVersions,
    judged: ChampionJudgement,
    rule_verdict: PerformanceVerdict,
    verdict: PerformanceVerdict,
    rule_auc: float,
    history_md: str,
    config: PerformanceConfig,
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
    evidence = _evidence(judged.judgements, judged.expected, judged.found, config)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(performance),
            "users": len(frame),
            "churn_rate": float(np.mean(frame[LABEL].to_numpy())),
            "champion_version": scored.champion_version or "",
            "champion_auc": champion_metrics["auc"],
            "champion_log_loss": champion_metrics["log_loss"],
            "champion_brier": champion_metrics["brier"],
            "champion_ks": champion_metrics["ks"],
            "champion_lift_top_decile": champion_metrics["lift_top_decile"],
            "champion_bucket_a_recall": champion_metrics["bucket_a_recall"],
            "rule_auc": rule_auc,
            "verdict": f"{verdict.severity}: {verdict.detail}",
            "expected_level_from": evidence.get("expected_level_from", ""),
            "versions_evaluated": len(performance),
            "versions_unscorable": dg.MetadataValue.json(scored.unscorable),
            "this_cohort": dg.MetadataValue.md(this_cohort),
            "auc_history": dg.MetadataValue.md(history_md),
        },
        check_results=[
            _check_result(
                PERFORMANCE_CHECK,
                rule_verdict,
                {
                    "champion_auc": champion_metrics["auc"],
                    "rule_auc": rule_auc,
                    "versions": json.dumps(sorted(r["model_version"] for r in scored.rows)),
                },
            ),
            _check_result(
                CHAMPION_PERFORMANCE_CHECK,
                judged.verdict,
                {"champion_version": scored.champion_version or "", **evidence},
            ),
        ],
    )
