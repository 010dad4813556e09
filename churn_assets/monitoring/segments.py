"""Drift within customer segments: a shift confined to one city, channel, payment method or plan.

A 40 % fall in listening in a city of a fifth of the users moves every whole-cohort PSI by a few
hundredths: diluted, it passes. Within that city it is a major shift. So the judged feature
columns are also compared segment by segment, the cohort's members of a segment against the
reference's members of the same segment, and each segment gets the whole cohort's statistic
(:mod:`churn_assets.monitoring.psi`): per column the PSI beyond sampling noise over the segment's
own reference deciles, weighted by the champion's normalised gain importance (the segmenting
column itself, constant within its segments, left out and the others' shares renormalised).

Segments (``SEGMENT_COLUMNS``): the codes that say who a customer is and how they pay: ``city``,
``registered_via``, ``last_payment_method_id`` and the plan ``last_plan_days`` taken as a
category. One pass in DuckDB per step, grouped by segment (``segment_bins.sql``, then
``psi.sql``), bounded: at most ``max_segments`` (20) of each column, the largest in the cohort,
and about ``max_segment_rows`` rows a side, a hash sample of users as for the reference.

Judged only where the chi-square law of PSI holds on both sides: ``MIN_ROWS_PER_BIN`` (5) rows a
bin for the deciles, so at least 5 x 10 = 50 sampled rows of the segment in the cohort and in the
reference (Cochran's rule); a smaller segment is counted, not judged.

A segment **warns**, making data drift at least a warning (never an error on its own), when:

* **beyond noise over every segment tested**: its weighted PSI exceeds the weighted sum of its
  columns' chi-square quantiles at ``FAMILY_ALPHA`` (1 %) divided by the number of segments
  judged (Bonferroni), each times 1 / n_eff of the segment's rows, as
  :func:`~churn_assets.monitoring.psi.standouts` does for a column. A weighted sum of quantiles is
  the quantile of the weighted noise when the columns' noise moves together (listening features
  do) and above it when they move independently: the cautious bound;
* **major**: its adjusted weighted PSI (beyond each column's noise) reaches ``major_psi`` (0.25):
  within the segment, the model scores a population it did not learn;
* **it matters**: its share of the cohort's users times its adjusted weighted PSI reaches the
  moderate tier (``moderate_psi``, 0.1). That product is the segment's part of the cohort's
  within-segment shift: the divergence of (segment, features) splits into the segments' own
  shift plus the share-weighted mean of each segment's feature divergence, and a segment's term
  of that mean is its share times its divergence. A whole-cohort statistic dilutes a segment's
  shift by about its share squared, which is why it misses one; this dilutes it by its share,
  as the users it is made of weigh on the cohort's outcomes. So a tenth of the users scored far
  out of what the model learnt (weighted PSI 1) warns, as does half of them a moderate way
  out; a few dozen users of a minor segment moving is information (``moves``), shown in the
  table, not an alarm. (An even share of the column's segments, the floor a column standing out
  needs of the model's gain, is no measure here: with one city or channel holding most users,
  only that majority could ever reach it, and a shift of the majority shows whole-cohort.)

No number here is tuned to a simulated drift: the quantiles are the law's, the tiers the
credit-scoring conventions, the floor the column's own count of segments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
from scipy.stats import chi2

from churn_assets.features.feature_sets import CATEGORICAL_FEATURES, SEGMENT_COLUMNS
from churn_assets.monitoring import psi
from churn_assets.monitoring.reference import row_count
from churn_assets.warehouse import run_sql_file

SEGMENT_BINS_SQL = Path(__file__).parent / "segment_bins.sql"
MAX_SEGMENTS = 20  # per segment column: the largest in the cohort
# A side's rows: beyond it, a hash sample of users. A 1 % segment still keeps 1,000 rows, whose
# noise (9 x 2 / 1,000 = 0.018 on average) is far below a major shift; the grouped pass costs its
# rows times the segment columns, so the sample, not the cohort, sets its time.
MAX_SEGMENT_ROWS = 100_000
MIN_SEGMENT_ROWS = psi.MIN_ROWS_PER_BIN * psi.BINS  # Cochran, on each side

_KEY = ["segment_column", "segment_value"]
SEGMENT_FIELDS = [
    *_KEY, "segment", "reference_users", "current_users", "reference_rows", "current_rows",
    "share", "contribution", "psi", "expected_psi", "noise_limit", "adjusted_score", "tier",
    "moves", "warns", "top_column",
]  # fmt: skip


def segment_label(column: str, value: float) -> str:
    """``city=13``: the segment as drift_metrics and the check name it."""
    return f"{column}={value:g}"


def segment_columns_of(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The segment columns ``features`` holds as numbers, in the table's order."""
    return psi.numeric_feature_columns(conn, SEGMENT_COLUMNS)


def no_segments() -> pd.DataFrame:
    return pd.DataFrame(columns=SEGMENT_FIELDS).astype({"moves": bool, "warns": bool})


def measure_segments(
    conn: duckdb.DuckDBPyConnection,
    cohort: date,
    reference: Sequence[date],
    columns: Sequence[str],
    importance: Mapping[str, float],
    config,
) -> tuple[pd.DataFrame, int]:
    """The judged segments (``SEGMENT_FIELDS``) and how many were too small to judge."""
    segment_columns = segment_columns_of(conn)
    if not (segment_columns and columns and config.max_segments):
        return no_segments(), 0
    sizes, stats = segment_stats(
        conn, cohort, reference, columns, segment_columns, config.max_segments,
        config.max_segment_rows,
    )  # fmt: skip
    judged = judge_segments(sizes, stats, importance, config.moderate_psi, config.major_psi)
    return judged, int((~sizes["large_enough"]).sum())


def segment_stats(
    conn: duckdb.DuckDBPyConnection,
    cohort: date,
    reference: Sequence[date],
    columns: Sequence[str],
    segment_columns: Sequence[str],
    max_segments: int,
    max_rows: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every segment's sizes (``drift_segment_sizes``) and, per judged segment and column, the
    statistics of :func:`~churn_assets.monitoring.psi.feature_psi`."""
    run_sql_file(
        conn,
        SEGMENT_BINS_SQL,
        {
            "cohort": cohort,
            "reference_cohorts": list(reference),
            "segment_columns": list(segment_columns),
            "columns": list(columns),
            "categorical": [c for c in CATEGORICAL_FEATURES if c in columns],
            "reference_hash_cut": psi.hash_cut(row_count(conn, list(reference)), max_rows),
            "current_hash_cut": psi.hash_cut(row_count(conn, [cohort]), max_rows),
            "min_rows": MIN_SEGMENT_ROWS,
            "max_segments": max_segments,
        },
    )
    sizes = conn.execute("SELECT * FROM drift_segment_sizes").df()
    run_sql_file(conn, psi.PSI_SQL, {"noise_z": psi.NOISE_Z})
    stats = conn.execute(
        "SELECT column_name.segment_column AS segment_column, "
        "column_name.segment_value AS segment_value, column_name.column_name AS column_name, "
        "* EXCLUDE (column_name) FROM drift_psi"
    ).df()
    return sizes, stats


def judge_segments(
    sizes: pd.DataFrame,
    stats: pd.DataFrame,
    importance: Mapping[str, float],
    moderate: float = psi.MODERATE_PSI,
    major: float = psi.MAJOR_PSI,
    alpha: float = psi.FAMILY_ALPHA,
) -> pd.DataFrame:
    """One row per judged segment: its weighted PSI, noise figures, tier and whether it warns."""
    judged = sizes[sizes["judged"]].reset_index(drop=True)
    if judged.empty:
        return no_segments()
    weighted = _weighted(_columns_within(stats), importance, tested=len(judged), alpha=alpha)
    frame = judged.merge(weighted, on=_KEY, how="left")
    for name in ("psi", "expected_psi", "noise_limit", "adjusted_score"):
        frame[name] = frame[name].fillna(0.0)
    frame["segment"] = [segment_label(c, v) for c, v in zip(*(frame[k] for k in _KEY), strict=True)]
    frame["share"] = frame["current_users"] / frame["cohort_users"].clip(lower=1)
    frame["contribution"] = frame["share"] * frame["adjusted_score"]
    frame["tier"] = [psi.tier_of(s, moderate, major) for s in frame["adjusted_score"]]
    frame["moves"] = (frame["psi"] > frame["noise_limit"]) & (frame["adjusted_score"] >= major)
    frame["warns"] = frame["moves"] & (frame["contribution"] >= moderate)
    return (
        frame[SEGMENT_FIELDS]
        .sort_values(["warns", "adjusted_score"], ascending=False)
        .reset_index(drop=True)
    )


def _columns_within(stats: pd.DataFrame) -> pd.DataFrame:
    """Each segment's columns compared on both sides, without the segmenting column itself."""
    return stats[
        (stats["column_name"] != stats["segment_column"])
        & (stats["reference_rows"] > 0)
        & (stats["current_rows"] > 0)
    ].copy()


def _weighted(
    stats: pd.DataFrame, importance: Mapping[str, float], tested: int, alpha: float
) -> pd.DataFrame:
    """Per segment: importance-weighted PSI, noise mean, Bonferroni noise limit and adjusted PSI,
    and the column contributing most."""
    if stats.empty:
        return pd.DataFrame(columns=[*_KEY, "psi", "expected_psi", "noise_limit", "adjusted_score"])
    stats["weight"] = stats.groupby(_KEY)["column_name"].transform(
        lambda names: psi.normalised_importance(importance, list(names))
    )
    degrees = (stats["bins"] - 1).clip(lower=1)
    inverse_n_eff = 1.0 / stats["reference_rows"] + 1.0 / stats["current_rows"]
    adjusted = psi.adjusted(stats["psi"], stats["expected_psi"], stats["noise_limit"])
    parts = pd.DataFrame(
        {
            **{k: stats[k] for k in _KEY},
            "psi": stats["weight"] * stats["psi"],
            "expected_psi": stats["weight"] * stats["expected_psi"],
            "noise_limit": stats["weight"]
            * chi2.isf(alpha / max(tested, 1), degrees)
            * inverse_n_eff,
            "adjusted_score": stats["weight"] * adjusted,
        }
    )
    sums = parts.groupby(_KEY, as_index=False).sum()
    top = parts.loc[parts.groupby(_KEY)["adjusted_score"].idxmax(), _KEY]
    top["top_column"] = stats.loc[top.index, "column_name"].to_numpy()
    return sums.merge(top, on=_KEY, how="left")


def warning_names(segments: pd.DataFrame) -> list[str]:
    """The warning segments, named with their adjusted weighted PSI and share of users."""
    return [
        f"{r.segment} (weighted PSI {r.adjusted_score:.2f} beyond noise, {r.share:.0%} of users"
        f", most from {r.top_column})"
        for r in segments[segments["warns"]].itertuples()
    ]


def segments_markdown(segments: pd.DataFrame, rows: int = 25) -> str:
    """The judged segments as a table, the warning and largest shifts first."""
    if segments.empty:
        return "_no segment large enough to judge_"
    table = segments.head(rows).rename(
        columns={
            "segment_column": "column",
            "current_users": "users current",
            "reference_users": "users reference",
            "psi": "weighted PSI",
            "adjusted_score": "adjusted",
        }
    )
    table["segment"] = [f"{v:g}" for v in table["segment_value"]]
    columns = [
        "column", "segment", "users current", "users reference", "share", "weighted PSI",
        "adjusted", "tier", "warns",
    ]  # fmt: skip
    return table[columns].round(4).to_markdown(index=False)
