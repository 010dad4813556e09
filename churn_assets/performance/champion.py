"""The champion judged on one labelled cohort: against the as-is rule (paired bootstrap) and
against its own expected level, with the history that makes a failure persistent."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.entities.model_registry import ModelVersion

from churn_assets.modeling.bootstrap import bootstrap_intervals
from churn_assets.performance.backtest import ScoredVersions, out_of_time_rows
from churn_assets.performance.config import PerformanceConfig
from churn_assets.performance.judging import (
    DEFAULT_CONFIDENCE,
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
from churn_assets.readable import readable
from churn_assets.warehouse import table_exists

JUDGEMENTS_SQL = Path(__file__).parent / "performance_judgements.sql"


MONITOR = "performance"


# Worst first: the monitor's verdict is the worse of the two checks.
_RANK = {"error": 3, "warn": 2, "pass": 1, "n/a": 0}


def worse_verdict(*verdicts: PerformanceVerdict) -> PerformanceVerdict:
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
    error; better on this cohort's point estimate only is information, named in the detail: on
    a few dozen churners the two AUCs trade places by luck alone.
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
        return PerformanceVerdict(
            "pass", f"information: {shown}: below the rule on this cohort's point estimate only"
        )
    return PerformanceVerdict("pass", shown)


def backtested_level(
    conn,
    version: str,
    cohort: date,
    history: list[tuple[date, str, bool]],
    cohorts: int,
    metrics: Iterable[str],
) -> ExpectedLevel | None:
    """The version's expected level before ``cohort``: its first out-of-time backtests, the
    cohorts on which a metric failed its judgement (``history``) left out of that metric."""
    return expected_level(
        out_of_time_rows(conn, version, cohort),
        failed=[(c, m) for c, m, failed in history if failed],
        cohorts=cohorts,
        metrics=metrics,
    )


def judgement_history(conn, version: str, cohort: date) -> list[tuple[date, str, bool]]:
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


def history_markdown(conn, cohort: date) -> str:
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


def build_judgement_rows(
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
                "expected_source": expected.source,
                "expected_cohorts": ", ".join(expected.cohorts[j.metric]),
                "failed": j.failed,
                "shortfall_z": j.shortfall_z,
                "beyond_doubt": j.beyond_doubt,
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
            "shortfall_z",
            "beyond_doubt",
            "evaluated_at",
        ],
    ).astype({"failed": bool, "beyond_doubt": bool})


def champion_check_result(
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
        metadata=readable({"severity": verdict.severity, **(metadata or {})}),
    )


def champion_evidence(
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


@dataclass(frozen=True)
class ChampionJudgement:
    verdict: PerformanceVerdict
    judgements: list[MetricJudgement] = field(default_factory=list)
    expected: ExpectedLevel | None = None
    found: Persistence = field(default_factory=Persistence)


def judge_champion(
    warehouse: DuckDBResource,
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
        history = judgement_history(conn, version, cohort)
        expected = backtested_level(
            conn, version, cohort, history, config.expected_cohorts, config.judged_metrics
        )
    if expected is None:
        return ChampionJudgement(
            PerformanceVerdict(
                "n/a",
                f"n/a: champion v{version} has no out-of-time backtest before cohort "
                f"{cohort:%Y-%m} to expect a level from (its validation metrics are optimistic: "
                "it was tuned on that cohort)",
            )
        )
    return _judge_against_expected(scored, y, cohort, expected, history, config)


def _judge_against_expected(
    scored: ScoredVersions,
    y: np.ndarray,
    cohort: date,
    expected: ExpectedLevel,
    history: list[tuple[date, str, bool]],
    config: PerformanceConfig,
) -> ChampionJudgement:
    """Each judged metric's bootstrap interval on this cohort against the expected level, and
    the persistence of failures over the champion's latest cohorts."""
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
        with_decile_ratio(scored.champion_row),
        intervals,
        expected,
        config.judged_metrics,
        config.confidence,
    )
    found = persistence(cohort, judgements, history, config.persistence_window)
    verdict = verdict_of(
        scored.champion_version,
        judgements,
        expected,
        found,
        config.persistence_failures,
        config.persistence_window,
    )
    return ChampionJudgement(verdict, judgements, expected, found)
