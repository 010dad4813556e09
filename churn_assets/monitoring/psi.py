"""Population stability of features and scores, computed in DuckDB, judged in three tiers.

Statistics (``feature_bins.sql`` / ``score_bins.sql`` then ``psi.sql``), per column:

* **PSI** over ten bins cut at the reference's deciles (numeric columns) or over the categories
  (``CATEGORICAL_FEATURES``); missing values are a bin of their own; a bin empty on one side counts
  half a row there. The current side is the whole cohort; the reference is the champion's
  complete training cohorts, thinned by a hash of ``msno`` to about ``MAX_REFERENCE_ROWS`` when
  larger (its sampling noise then adds at most 9 / 1,000,000 to a PSI); the deciles come from a
  hash sample of about ``EDGE_SAMPLE_ROWS`` of them (any fixed binning gives a valid PSI; the
  sample only moves the cuts by a fraction of a percentile).
* **Jensen-Shannon distance** over the same bins (0 same, 1 disjoint), for the record.

Sampling noise: between two samples of one distribution, PSI is not zero but about
``expected_psi = (bins - 1) * (1/n_ref + 1/n_cur)`` (n_eff * PSI is close to chi-square with
bins - 1 degrees of freedom), which on a 300-user cohort is 0.03 for deciles and more for a column
with many categories. What is judged, ``adjusted_score``, is therefore the PSI beyond that mean,
and only when the PSI also exceeds ``noise_limit``, the 99.9th percentile of that chi-square law
(normal deviate ``NOISE_Z``): below it, sampling alone explains the value and the column counts 0.
On a cohort of a million users both corrections are below 1e-4 and PSI is judged as it is.
Nothing is tuned to any simulated drift: the numbers are the law's, and the thresholds are:

Tiers, the credit-scoring conventions for PSI, applied alike to a single column, to the
importance-weighted score and to the prediction PSI:

* **pass**: below ``MODERATE_PSI`` (0.1), a stable population;
* **warn**: from 0.1 to below ``MAJOR_PSI`` (0.25), a moderate shift worth a look;
* **error**: 0.25 and above, a major shift: the model is scoring a population it did not learn.

A column on its own: the weighted score lets a shift of one minor column pass, yet a major shift
of one column, however little the model uses it, is how a broken feed or a new acquisition
channel first shows. Such a column **stands out** (``standouts``) when its PSI is beyond what
noise gives with a family-wise error of ``FAMILY_ALPHA`` over every column tested (the chi-square
quantile at ``FAMILY_ALPHA`` / columns, Bonferroni) and its adjusted score is major, on sides
large enough for the chi-square law to hold (``MIN_ROWS_PER_BIN`` rows a bin, Cochran's rule).
A standout makes data drift at least a warning; it never makes it an error on its own.

Importance weighting: each feature's adjusted PSI is weighted by the champion's normalised gain
importance (LightGBM ``feature_importance('gain')``, summing to 1 over the model's features; a
feature the model does not use weighs 0). The weighted score is their sum, a weighted mean of
PSIs judged on the same scale: a shift of three features carrying half the gain counts, twenty
minor features that together carry 2 % of it do not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import chi2

from churn_assets.warehouse import run_sql_file

HERE = Path(__file__).parent
MACROS_SQL = HERE / "drift_macros.sql"
FEATURE_BINS_SQL = HERE / "feature_bins.sql"
SCORE_BINS_SQL = HERE / "score_bins.sql"
PSI_SQL = HERE / "psi.sql"
NEW_MEMBERS_SQL = HERE / "new_members.sql"

BINS = 10  # deciles; the SQL writes out their nine edges
MODERATE_PSI = 0.1
MAJOR_PSI = 0.25
NOISE_Z = 3.090  # one-sided 99.9 %: about one noise column in a thousand passes the limit
FAMILY_ALPHA = 0.01  # chance that noise alone makes any column of a cohort stand out
MIN_ROWS_PER_BIN = 5  # Cochran: the chi-square law of PSI holds from about 5 rows a bin
MAX_REFERENCE_ROWS = 1_000_000
EDGE_SAMPLE_ROWS = 100_000
SCORE_COLUMN = "churn_probability"

Tier = Literal["pass", "warn", "error"]
_HASH_MAX = 2**64 - 1
# DuckDB column types PSI reads as numbers.
NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
    "DECIMAL",
)


def tier_of(score: float, moderate: float = MODERATE_PSI, major: float = MAJOR_PSI) -> Tier:
    if not math.isfinite(score) or score < moderate:
        return "pass"
    return "error" if score >= major else "warn"


def worst(tiers: Sequence[str]) -> Tier:
    order = {"pass": 0, "warn": 1, "error": 2}
    return max(tiers, key=lambda t: order.get(t, 0), default="pass")  # type: ignore[return-value]


def hash_cut(rows: int, keep: int) -> int:
    """The ``hash(msno) <= cut`` that keeps about ``keep`` of ``rows`` users (all when fewer)."""
    if rows <= keep or rows <= 0:
        return _HASH_MAX
    return int(_HASH_MAX * (keep / rows))


def numeric_feature_columns(
    conn: duckdb.DuckDBPyConnection, candidates: Sequence[str]
) -> list[str]:
    """``candidates`` that ``features`` holds as numbers, in the table's column order."""
    wanted = set(candidates)
    return [
        name
        for name, column_type, *_ in conn.execute("DESCRIBE features").fetchall()
        if name in wanted and column_type.split("(")[0] in NUMERIC_TYPES
    ]


def _psi_frame(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    run_sql_file(conn, PSI_SQL, {"noise_z": NOISE_Z})
    return conn.execute("SELECT * FROM drift_psi ORDER BY column_name").df()


def feature_psi(
    conn: duckdb.DuckDBPyConnection,
    cohort: date,
    reference_cohorts: Sequence[date],
    columns: Sequence[str],
    categorical: Sequence[str],
    max_reference_rows: int = MAX_REFERENCE_ROWS,
    max_registration_days: int | None = None,
) -> pd.DataFrame:
    """PSI, JS distance and noise figures of each of ``columns`` (numeric, in table order);
    with ``max_registration_days``, of the members registered at most that long before their
    cohort's cut-off, on both sides."""
    source = "features"
    if max_registration_days is not None:
        source = "drift_new_members"
        run_sql_file(
            conn,
            NEW_MEMBERS_SQL,
            {
                "cohorts": [*reference_cohorts, cohort],
                "max_registration_days": max_registration_days,
            },
        )
    reference_rows = conn.execute(
        f"SELECT count(*) FROM {source} WHERE cohort_month IN (SELECT unnest(?::DATE[]))",
        [list(reference_cohorts)],
    ).fetchone()[0]
    run_sql_file(conn, MACROS_SQL)
    run_sql_file(
        conn,
        FEATURE_BINS_SQL,
        {
            "cohort": cohort,
            "reference_cohorts": list(reference_cohorts),
            "columns": list(columns),
            "categorical": [c for c in categorical if c in columns],
            "reference_hash_cut": hash_cut(reference_rows, max_reference_rows),
            "edge_hash_cut": hash_cut(reference_rows, EDGE_SAMPLE_ROWS),
            "source": source,
        },
    )
    return _psi_frame(conn)


def score_psi(
    conn: duckdb.DuckDBPyConnection, reference: np.ndarray, current: np.ndarray
) -> pd.Series:
    """The same statistics for the champion's scores on the reference and on the cohort."""
    conn.register("reference_scores", pd.DataFrame({SCORE_COLUMN: np.asarray(reference, float)}))
    conn.register("current_scores", pd.DataFrame({SCORE_COLUMN: np.asarray(current, float)}))
    try:
        run_sql_file(conn, MACROS_SQL)
        run_sql_file(conn, SCORE_BINS_SQL)
        return _psi_frame(conn).iloc[0]
    finally:
        conn.unregister("reference_scores")
        conn.unregister("current_scores")


def adjusted(psi: pd.Series, expected: pd.Series, limit: pd.Series) -> pd.Series:
    """PSI beyond its sampling-noise mean, and 0 where noise alone explains it."""
    return (psi - expected).clip(lower=0.0).where(psi > limit, 0.0)


def judge_columns(
    stats: pd.DataFrame,
    importance: Mapping[str, float],
    moderate: float = MODERATE_PSI,
    major: float = MAJOR_PSI,
) -> pd.DataFrame:
    """Per column: adjusted score, tier, normalised importance and weighted contribution."""
    frame = stats.copy()
    frame["adjusted_score"] = adjusted(frame["psi"], frame["expected_psi"], frame["noise_limit"])
    frame["tier"] = [tier_of(s, moderate, major) for s in frame["adjusted_score"]]
    frame["drifted"] = frame["tier"] != "pass"
    frame["importance"] = normalised_importance(importance, frame["column_name"])
    frame["weighted_contribution"] = frame["importance"] * frame["adjusted_score"]
    return frame.sort_values(
        ["weighted_contribution", "adjusted_score", "importance"], ascending=False
    ).reset_index(drop=True)


def normalised_importance(importance: Mapping[str, float], columns: Sequence[str]) -> list[float]:
    """Gain shares over the compared columns the model uses; equal shares if it has no gain."""
    gains = {c: max(float(importance.get(c, 0.0)), 0.0) for c in columns}
    total = sum(gains.values())
    if total > 0:
        return [gains[c] / total for c in columns]
    used = [c for c in columns if c in importance]
    return [1.0 / len(used) if c in used else 0.0 for c in columns]


def standouts(
    stats: pd.DataFrame,
    tested: int,
    major: float = MAJOR_PSI,
    alpha: float = FAMILY_ALPHA,
) -> pd.Series:
    """Per row of ``stats`` (``feature_psi`` output): does this column stand out on its own?

    ``tested`` is how many columns were tested in all (over every population compared), the
    Bonferroni divisor. Beyond noise means a PSI above the chi-square quantile at ``alpha`` /
    ``tested`` times 1 / n_eff; major means the PSI less its noise mean reaches ``major``.
    """
    if stats.empty:
        return pd.Series(dtype=bool)
    degrees = (stats["bins"] - 1).clip(lower=1)
    inverse_n_eff = 1.0 / stats["reference_rows"] + 1.0 / stats["current_rows"]
    limit = chi2.isf(alpha / max(tested, 1), degrees) * inverse_n_eff
    enough = np.minimum(stats["reference_rows"], stats["current_rows"]) >= (
        MIN_ROWS_PER_BIN * stats["bins"]
    )
    return enough & (stats["psi"] > limit) & (stats["psi"] - stats["expected_psi"] >= major)
