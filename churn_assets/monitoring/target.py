"""Target drift: has the churn rate moved since the champion learnt it?

Labels come two months after a cohort (DESIGN §3), so the cohort judged is not the one being
drift-checked but the newest labelled cohort whose labels are known by the first day of the
checked month and which the champion did not learn from. Its churn rate is compared with the churn
rate of the champion's reference cohorts (``labelled_churn.sql``).

Tiers, on the ratio of the two rates (the larger over the smaller, so a halving counts as a
doubling) and only when the difference is significant (two-proportion z-test, |z| at least
``SIGNIFICANT_Z``, p < 0.001 two-sided, so that small cohorts do not alarm on noise):

* **warn** from ``WARN_RATIO`` (1.25): a quarter more (or a fifth fewer) churners than the model
  expects; calibrated probabilities, and the buckets cut on them, are off by as much;
* **error** from ``ERROR_RATIO`` (1.5): half as many again (or a third fewer);
* **n/a** when there is nothing to judge: no labels yet beyond what the champion learnt from.

PSI is not used here: over two bins it barely moves when a 10 % churn rate doubles (0.08).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from churn_assets.partitions import latest_labelled_cohort
from churn_assets.warehouse import run_sql_file, table_exists

SQL = Path(__file__).parent / "labelled_churn.sql"
WARN_RATIO = 1.25
ERROR_RATIO = 1.5
SIGNIFICANT_Z = 3.291

TargetSeverity = Literal["pass", "warn", "error", "n/a"]


@dataclass(frozen=True)
class TargetDrift:
    severity: TargetSeverity
    detail: str
    labelled_cohort: date | None = None
    reference_rate: float | None = None
    current_rate: float | None = None
    rate_ratio: float | None = None
    z: float | None = None


def churn_rate_shift(
    reference_users: int, reference_churners: int, current_users: int, current_churners: int
) -> tuple[TargetSeverity, float, float]:
    """(tier, ratio of the rates, z) for two labelled populations."""
    p1 = reference_churners / reference_users
    p2 = current_churners / current_users
    pooled = (reference_churners + current_churners) / (reference_users + current_users)
    se = math.sqrt(pooled * (1 - pooled) * (1 / reference_users + 1 / current_users))
    z = (p2 - p1) / se if se > 0 else 0.0
    low, high = min(p1, p2), max(p1, p2)
    ratio = 1.0 if high == 0 else (math.inf if low == 0 else high / low)
    if abs(z) < SIGNIFICANT_Z:
        return "pass", ratio, z
    if ratio >= ERROR_RATIO:
        return "error", ratio, z
    return ("warn" if ratio >= WARN_RATIO else "pass"), ratio, z


def target_drift(
    conn: duckdb.DuckDBPyConnection, checked_cohort: date, reference_cohorts: list[date]
) -> TargetDrift:
    """Judge the newest labelled cohort known by ``checked_cohort`` against the reference."""
    if not table_exists(conn, "labels"):
        return TargetDrift("n/a", "no labels loaded yet")
    known_by = latest_labelled_cohort(checked_cohort)
    rows = run_sql_file(
        conn, SQL, {"labels_known_by": known_by, "reference_cohorts": list(reference_cohorts)}
    ).fetchall()
    sides = {side: (cohort, users, churners) for side, cohort, users, churners in rows}
    _, reference_users, reference_churners = sides.get("reference", (None, 0, 0))
    if "current" not in sides:
        return TargetDrift(
            "n/a",
            f"no labelled cohort up to {known_by:%Y-%m} beyond the champion's reference cohorts",
        )
    labelled, current_users, current_churners = sides["current"]
    if not reference_users or not current_users:
        return TargetDrift("n/a", "the champion's reference cohorts have no labels", labelled)
    severity, ratio, z = churn_rate_shift(
        reference_users, reference_churners, current_users, current_churners
    )
    p1, p2 = reference_churners / reference_users, current_churners / current_users
    detail = (
        f"churn rate {p2:.1%} in labelled cohort {labelled:%Y-%m} ({current_users} users) vs "
        f"{p1:.1%} in the reference ({reference_users} users): ratio {ratio:.2f}, z {z:+.1f} "
        f"(warn from {WARN_RATIO:g}x, error from {ERROR_RATIO:g}x when |z| >= {SIGNIFICANT_Z})"
    )
    return TargetDrift(severity, detail, labelled, p1, p2, ratio, z)
