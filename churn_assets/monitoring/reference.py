"""What a cohort is compared against: the champion's training data, or complete cohorts
standing in for it, and a bounded sample of either."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from churn_assets.features.feature_sets import (
    cohort_coverage,
    complete_cohorts,
    feature_columns_of,
    keep_common_features,
)
from churn_assets.features.windows import bulk_starts, truncated_features
from churn_assets.monitoring import psi
from churn_assets.partitions import month_start
from churn_assets.warehouse import run_sql_file

SQL = Path(__file__).parent / "drift_tables.sql"


SAMPLE_SQL = Path(__file__).parent / "feature_sample.sql"


@dataclass(frozen=True)
class Reference:
    """The cohorts a cohort is compared with, and why those."""

    cohorts: list[date]
    learnt_from: list[date]  # what the champion learnt from
    stand_in: bool  # True: complete cohorts standing in for a champion that learnt from holes

    @property
    def fair(self) -> bool:
        return bool(self.cohorts)

    def describe(self, version: str) -> str:
        text = ", ".join(f"{c:%Y-%m}" for c in self.cohorts)
        if not self.stand_in:
            return f"model v{version}'s training cohorts {text}"
        learnt = ", ".join(f"{c:%Y-%m}" for c in self.learnt_from)
        return (
            f"complete cohorts {text}, standing in for model v{version}'s training cohorts "
            f"{learnt} (incomplete windows)"
        )


def reference_for(conn, champion, cohort: date) -> Reference:
    """Everything the champion learnt from: its training cohorts and the one it validated on;
    only the complete ones (a hole in a window would make every later cohort look drifted).

    A champion that learnt only from incomplete cohorts (the first model of a short history) is
    compared through as many complete cohorts before this one, the nearest to its validation
    cohort: otherwise drift would be blind exactly while that provisional model is in charge.
    With none, the reference is empty: nothing fair to compare with.
    """
    learnt_tags = json.loads(champion.tags.get("training_cohorts", "[]"))
    learnt_tags.append(champion.tags.get("validation_cohort", ""))
    learnt_from = sorted({month_start(c) for c in learnt_tags if c})
    complete = complete_cohorts(conn, learnt_from)
    if complete:
        return Reference(complete, learnt_from, stand_in=False)
    earlier = complete_cohorts(conn, cohorts_before(conn, cohort))
    anchor = max(learnt_from, default=cohort)
    nearest = sorted(earlier, key=lambda c: (abs((c - anchor).days), c))
    return Reference(sorted(nearest[: max(len(learnt_from), 1)]), learnt_from, stand_in=True)


def cohorts_before(conn, cohort: date) -> list[date]:
    rows = conn.execute(
        "SELECT DISTINCT cohort_month FROM features WHERE cohort_month < ? ORDER BY 1", [cohort]
    ).fetchall()
    return [r[0] for r in rows]


def compared_columns(conn, cohort: date, reference: list[date]) -> list[str]:
    """Numeric feature columns both sides were built with, in the table's order."""
    empty = conn.execute("SELECT * FROM features LIMIT 0").df()
    common = feature_columns_of(list(keep_common_features(conn, empty, [cohort, *reference])))
    return psi.numeric_feature_columns(conn, common)


def truncated_columns(conn, cohorts: list[date], columns: list[str]) -> dict[str, list[date]]:
    """Which of ``columns`` are truncated in which of ``cohorts`` (their window reaching before
    the bulk of their table's history when the cohort was built): such a column differs between
    cohorts by how much history was loaded, so drift leaves it unjudged."""
    found: dict[str, list[date]] = {}
    for cohort in sorted(cohorts):
        starts = bulk_starts(cohort_coverage(conn, cohort))
        for column in truncated_features(cohort, starts, columns):
            found.setdefault(column, []).append(cohort)
    return found


def row_count(conn, cohorts: list[date]) -> int:
    return conn.execute(
        "SELECT count(*) FROM features WHERE cohort_month IN (SELECT unnest(?::DATE[]))",
        [cohorts],
    ).fetchone()[0]


def sample_rows(
    conn, cohorts: list[date], columns: list[str], rows: int, keep: int
) -> pd.DataFrame:
    return run_sql_file(
        conn,
        SAMPLE_SQL,
        {"cohorts": cohorts, "columns": columns, "hash_cut": psi.hash_cut(rows, keep)},
    ).df()
