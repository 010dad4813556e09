"""The champion per customer segment once a cohort's labels land: where it ranks churners worse.

A model can hold its whole-cohort AUC while failing one city or one payment method. So for each
segment of the segment columns (``SEGMENT_COLUMNS``: city, channel, payment method, plan) the
champion's AUC and churn rate are measured, with DeLong's interval, and written to
``segment_performance``:

* **Judged only with both classes**: at least ``MIN_CLASS`` (10) churners and 10 stayers; with
  fewer, an AUC rests on a handful of pairs and its interval spans most of [0, 1]. At most the
  ``MAX_SEGMENTS`` (20) largest of each column.
* **DeLong's interval** (DeLong, DeLong & Clarke-Pearson, 1988): the AUC's variance from each
  churner's share of stayers ranked below it and each stayer's share of churners ranked above,
  in closed form, one sort a segment, no resampling, at the monitor's ``confidence``.
* **Below beyond doubt**: the shortfall from the champion's expected AUC (its out-of-time level,
  :mod:`churn_assets.performance.judging`; before it has one, its AUC on this whole cohort) over
  the segment's standard error passes the normal quantile of ``DOUBT_ALPHA`` divided by the
  number of segments judged (Bonferroni over the segments, as over the metrics). The level is
  measured on whole cohorts, many times a segment, so its own noise is left out.
* **Information, not an alarm**: within a segment the separation *between* segments is gone (a
  city that churns more is a signal the whole-cohort AUC counts), so a segment's AUC may sit
  below the whole cohort's with nothing broken. A segment below beyond doubt is named in the
  metadata for a person to look at; the verdict does not change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from statistics import NormalDist

import dagster as dg
import numpy as np
import pandas as pd
from scipy.stats import rankdata

from churn_assets.features.feature_sets import SEGMENT_COLUMNS
from churn_assets.performance.judging import DOUBT_ALPHA, doubt_quantile
from churn_assets.warehouse import run_sql_file

SQL = Path(__file__).parent / "segment_performance.sql"
MIN_CLASS = 10  # churners and stayers a segment needs for its AUC to be judged
MAX_SEGMENTS = 20  # per segment column: the largest in the cohort
FIELDS = [
    "segment_column", "segment_value", "users", "churners", "churn_rate", "auc", "low", "high",
    "expected_auc", "shortfall_z", "below",
]  # fmt: skip


def delong_auc(y: np.ndarray, probability: np.ndarray) -> tuple[float, float]:
    """AUC (ties count one half) and its DeLong standard error."""
    positive, negative = probability[y == 1], probability[y == 0]
    m, n = len(positive), len(negative)
    ranks = rankdata(np.concatenate([positive, negative]))
    # Each churner's share of stayers scored below it, each stayer's of churners above it.
    below = (ranks[:m] - rankdata(positive)) / n
    above = 1.0 - (ranks[m:] - rankdata(negative)) / m
    variance = below.var(ddof=1) / m + above.var(ddof=1) / n
    return float(below.mean()), math.sqrt(max(variance, 0.0))


def segment_values(
    frame: pd.DataFrame, y: np.ndarray, column: str, max_segments: int = MAX_SEGMENTS
) -> list[float]:
    """The values of ``column`` with ``MIN_CLASS`` churners and stayers, the largest first."""
    counts = (
        pd.DataFrame({"value": frame[column].to_numpy(float), "y": y})
        .dropna()
        .groupby("value")["y"]
        .agg(["size", "sum"])
    )
    enough = counts[(counts["sum"] >= MIN_CLASS) & (counts["size"] - counts["sum"] >= MIN_CLASS)]
    return enough.sort_values("size", ascending=False).index[:max_segments].tolist()


def measure_segments(
    frame: pd.DataFrame,
    y: np.ndarray,
    probability: np.ndarray,
    expected_auc: float,
    confidence: float,
    columns: Sequence[str] = SEGMENT_COLUMNS,
) -> pd.DataFrame:
    """One row per judged segment (``FIELDS``): size, churn rate, AUC, interval, and whether it
    falls below ``expected_auc`` beyond doubt over all segments judged."""
    z_interval = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    rows = []
    for column in [c for c in columns if c in frame.columns]:
        values = frame[column].to_numpy(float)
        for value in segment_values(frame, y, column):
            inside = values == value
            auc, error = delong_auc(y[inside], probability[inside])
            rows.append(
                {
                    "segment_column": column,
                    "segment_value": value,
                    "users": int(inside.sum()),
                    "churners": int(y[inside].sum()),
                    "churn_rate": float(y[inside].mean()),
                    "auc": auc,
                    "low": max(auc - z_interval * error, 0.0),
                    "high": min(auc + z_interval * error, 1.0),
                    "expected_auc": expected_auc,
                    "shortfall_z": (expected_auc - auc) / error if error > 0 else 0.0,
                }
            )
    judged = pd.DataFrame(rows, columns=FIELDS[:-1])
    quantile = doubt_quantile(len(judged), DOUBT_ALPHA)
    return judged.assign(below=judged["shortfall_z"] >= quantile).astype({"below": bool})


def below_names(segments: pd.DataFrame) -> list[str]:
    """The segments below the expected AUC beyond doubt, with their AUC and interval."""
    return [
        f"{r.segment_column}={r.segment_value:g} (AUC {r.auc:.3f} [{r.low:.3f}, {r.high:.3f}] "
        f"vs {r.expected_auc:.3f}, {r.users} users)"
        for r in segments[segments["below"]].itertuples()
    ]


def segments_markdown(segments: pd.DataFrame) -> str:
    if segments.empty:
        return f"_no segment with {MIN_CLASS} churners and {MIN_CLASS} stayers_"
    table = segments.assign(segment_value=[f"{v:g}" for v in segments["segment_value"]])
    return table.drop(columns="expected_auc").round(4).to_markdown(index=False)


def segment_metadata(segments: pd.DataFrame) -> dict:
    """The segments table and the segments below beyond doubt, for the materialization."""
    return {
        "segments": dg.MetadataValue.md(segments_markdown(segments)),
        "segments_below": ", ".join(below_names(segments)) or "none",
    }


def record_segments(
    conn, cohort: date, version: str, segments: pd.DataFrame, now: datetime
) -> None:
    """The cohort's rows of ``segment_performance``, replacing any earlier ones (in the caller's
    transaction)."""
    rows = segments.assign(cohort_month=cohort, model_version=version, evaluated_at=now)
    conn.register("segment_rows", rows)
    try:
        run_sql_file(conn, SQL, {"cohort": cohort})
    finally:
        conn.unregister("segment_rows")


def champion_segments(
    frame: pd.DataFrame,
    y: np.ndarray,
    probability: np.ndarray | None,
    expected: dict[str, float] | None,
    whole_auc: float,
    confidence: float,
) -> pd.DataFrame:
    """The champion's segments on this cohort, against its expected AUC (else its AUC on the
    whole cohort); none when it could not score the cohort or the cohort holds one class."""
    level = (expected or {}).get("auc", whole_auc)
    if probability is None or not math.isfinite(level):
        return pd.DataFrame(columns=FIELDS).astype({"below": bool})
    return measure_segments(frame, y, probability, level, confidence)
