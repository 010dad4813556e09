"""The one writer of ``monitor_verdicts``: the same verdicts the asset checks give, as history."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

import duckdb

from churn_assets.warehouse import run_sql_file

SQL = Path(__file__).parent / "monitor_verdicts.sql"
Severity = Literal["pass", "warn", "error", "n/a"]
SEVERITIES = ("pass", "warn", "error", "n/a")


def record_verdict(
    conn: duckdb.DuckDBPyConnection, cohort: date, monitor: str, severity: Severity, detail: str
) -> None:
    """Append one verdict; call it inside the transaction that stores what was judged.

    ``n/a`` is for nothing to judge (no champion yet, no labels): not an alarm.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    run_sql_file(
        conn,
        SQL,
        {
            "cohort": cohort,
            "monitor": monitor,
            "severity": severity,
            "detail": detail,
            "evaluated_at": datetime.now(),
        },
    )
