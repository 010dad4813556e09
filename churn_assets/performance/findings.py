"""What a labelled cohort says of the champion beyond its metrics: whether its scores were
calibrated (:mod:`churn_assets.performance.calibration`), and whether the estimate made from them
before the labels held (:mod:`churn_assets.performance.estimate_judging`). Each is a verdict of
its own in ``monitor_verdicts``, recorded with the backtest, and numbers in its metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets.performance.backtest import ScoredVersions
from churn_assets.performance.calibration import CALIBRATION_MONITOR, judge_calibration, not_judged
from churn_assets.performance.champion import ChampionJudgement
from churn_assets.performance.config import PerformanceConfig
from churn_assets.performance.estimate_judging import (
    COMPARISON_MONITOR,
    ESTIMATE_JUDGED_METRICS,
    Comparison,
    compare_with_realised,
)
from churn_assets.performance.judging import PerformanceVerdict
from churn_assets.warehouse import table_exists


@dataclass(frozen=True)
class Finding:
    monitor: str
    verdict: PerformanceVerdict
    metadata: dict = field(default_factory=dict)


def labelled_findings(
    warehouse: DuckDBResource,
    cohort: date,
    scored: ScoredVersions,
    y: np.ndarray,
    judged: ChampionJudgement,
    config: PerformanceConfig,
    provisional: bool = False,
) -> list[Finding]:
    """The champion's calibration on the cohort, and its estimate against what it realised;
    ``provisional``: the champion is provisional (its calibration is information)."""
    version = scored.champion_version
    scores = scored.champion_probability if scored.cannot_score is None else None
    with warehouse.get_connection() as conn:
        stored = stored_estimates(conn, cohort, version or "")
        earlier = miscalibrated_before(conn, cohort, version or "")
    calibration = judge_calibration(
        y,
        scores,
        version,
        config.calibration_bins,
        config.calibration_confidence,
        earlier,
        provisional,
    )
    comparison = compare_with_realised(version or "", stored, scored.champion_row, judged.expected)
    return [
        Finding(CALIBRATION_MONITOR, calibration.verdict, calibration.metadata()),
        Finding(COMPARISON_MONITOR, comparison.verdict, comparison_metadata(comparison)),
    ]


def miscalibrated_before(conn, cohort: date, version: str) -> list[bool]:
    """Whether ``version`` was miscalibrated on each earlier cohort judged, oldest first (from
    the ``calibration`` verdicts recorded; the latest verdict of each cohort counts)."""
    if not version or not table_exists(conn, "monitor_verdicts"):
        return []
    rows = conn.execute(
        "SELECT arg_max(detail, evaluated_at) FROM monitor_verdicts WHERE monitor = ? "
        "AND cohort_month < ? AND severity IN ('pass', 'warn') AND (detail LIKE ? OR detail "
        "LIKE ?) GROUP BY cohort_month ORDER BY cohort_month",
        [
            CALIBRATION_MONITOR,
            cohort,
            f"champion v{version} %",
            f"information: champion v{version} %",
        ],
    ).fetchall()
    return ["miscalibrated beyond sampling noise" in detail for (detail,) in rows]


def nothing_labelled(cohort: date) -> list[Finding]:
    """No labelled rows: neither calibration nor the estimate can be held to anything."""
    detail = f"no labelled rows for cohort {cohort:%Y-%m}"
    return [
        Finding(CALIBRATION_MONITOR, not_judged(detail).verdict),
        Finding(COMPARISON_MONITOR, PerformanceVerdict("n/a", f"n/a: {detail}")),
    ]


def stored_estimates(conn, cohort: date, version: str) -> pd.DataFrame:
    """The version's estimate of the cohort, as made when the cohort was scored."""
    if not table_exists(conn, "performance_estimates"):
        return pd.DataFrame(columns=["metric", "estimate", "low", "high"])
    return conn.execute(
        "SELECT metric, estimate, low, high FROM performance_estimates "
        "WHERE cohort_month = ? AND model_version = ? ORDER BY metric",
        [cohort, version],
    ).df()


def comparison_metadata(comparison: Comparison) -> dict[str, object]:
    """Estimated and realised side by side, and the estimate's error (realised - estimated)."""
    out: dict[str, object] = {
        "estimate_vs_realised": f"{comparison.verdict.severity}: {comparison.verdict.detail}"
    }
    table = comparison.table
    if table.empty:
        return out
    for row in table[table["metric"].isin(ESTIMATE_JUDGED_METRICS)].itertuples():
        out[f"estimated_{row.metric}"] = float(row.estimate)
        out[f"realised_{row.metric}"] = float(row.realised)
        out[f"estimate_error_{row.metric}"] = float(row.error)
    out["estimated_vs_realised"] = dg.MetadataValue.md(table.round(4).to_markdown(index=False))
    return out


def findings_metadata(findings: list[Finding]) -> dict[str, object]:
    return {key: value for finding in findings for key, value in finding.metadata.items()}
