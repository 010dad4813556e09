"""What a raw load measured, and how it is told: its ``LoadReport``, the quality checks per month
and the materialization that carries them (one per run, checks per partition for a range)."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from churn_assets.partitions import partition_key
from churn_assets.raw import quality as qc
from churn_assets.readable import readable
from churn_assets.warehouse import run_sql_file

SQL = Path(__file__).parent / "sql"
# The members snapshot and a labels cohort have no date range; their checks use this key.
SNAPSHOT = date(1970, 1, 1)

RawEvent = dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output


@dataclass
class LoadReport:
    """What one load measured: quality numbers per month, and facts about the files."""

    months: dict[date, dict[str, Any]]
    files: list[str]
    extra_columns: list[str]
    members_loaded: bool
    volume_history: dict[date, int] = field(default_factory=dict)
    # Per month loaded: the fingerprint of the files it was loaded from (see landing.catalog).
    fingerprints: dict[str, str] = field(default_factory=dict)
    # Per month: the signatures of every file its stored rows come from or it was judged on,
    # departed files included; what the landing sensor compares with the files present.
    file_signatures: dict[str, list[str]] = field(default_factory=dict)
    # Files whose rows stay although they have left the landing folder, and those a retracting
    # load removed.
    departed_files_kept: list[str] = field(default_factory=list)
    retracted_files: list[str] = field(default_factory=list)
    # A retracting load may leave a month empty on purpose: its checks allow that.
    retracting: bool = False
    # Landing files no table reads (the members load names them in its schema check).
    unclaimed: list[str] = field(default_factory=list)
    # False when the blocking schema check failed and the load was rolled back.
    stored: bool = True


def quality_by_month(
    conn: duckdb.DuckDBPyConnection, table: str, params: dict[str, Any]
) -> dict[date, dict[str, Any]]:
    """The quality numbers of each month in the window, with the duplicates the load counted.

    Duplicates come from ``duplicate_counts``, counted by the load as it folds exact copies (which
    the stored rows no longer show); the other numbers are read from the stored rows.
    """
    duplicates = {
        month: {"exact_duplicates": int(exact), "key_duplicates": int(keyed)}
        for month, exact, keyed in conn.execute(
            "SELECT month, exact_duplicates, key_duplicates FROM duplicate_counts"
        ).fetchall()
    }
    cursor = run_sql_file(conn, SQL / f"quality_{table}.sql", params)
    names = [d[0] for d in cursor.description]
    months = {}
    for row in cursor.fetchall():
        numbers = dict(zip(names, row, strict=True))
        month = numbers.pop("month")
        months[month] = numbers | duplicates.get(
            month, {"exact_duplicates": 0, "key_duplicates": 0}
        )
    return months


def _numbers(quality: dict[str, Any]) -> dict[str, int | float]:
    return {k: (float(v) if isinstance(v, float) else int(v or 0)) for k, v in quality.items()}


def _outcomes(
    table: str,
    report: LoadReport,
    month: date,
    where: str,
    band: qc.VolumeBand | None,
    allow_empty: bool = False,
) -> list[qc.Outcome]:
    quality = report.months.get(month) or {"rows": 0, "invalid_key_rows": 0}
    volume = (
        qc.volume_outcome(month, int(quality["rows"] or 0), report.volume_history, band)
        if band is not None
        else None
    )
    return qc.evaluate(
        table,
        quality,
        where,
        extra_columns=report.extra_columns,
        members_loaded=report.members_loaded,
        volume=volume,
        allow_empty=allow_empty,
        unclaimed=report.unclaimed,
    )


def _check_result(outcome: qc.Outcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=outcome.check,
        passed=outcome.passed,
        severity=outcome.severity,
        description=outcome.description,
        metadata=readable(outcome.metadata),
    )


def _materialization_metadata(report: LoadReport, where: str) -> dict[str, Any]:
    rows = sum(int(q["rows"] or 0) for q in report.months.values())
    return {
        "dagster/row_count": rows if report.stored else 0,
        "stored": report.stored,
        "partition_scope": where,
        "source_files": dg.MetadataValue.json(report.files),
        "extra_columns_ignored": dg.MetadataValue.json(report.extra_columns),
        "unclaimed_landing_files": dg.MetadataValue.json(report.unclaimed),
        # What the landing sensor compares with the files as they are now.
        "fingerprints": dg.MetadataValue.json(report.fingerprints),
        "file_signatures": dg.MetadataValue.json(report.file_signatures),
        "departed_files_kept": dg.MetadataValue.json(report.departed_files_kept),
        "retracted_files": dg.MetadataValue.json(report.retracted_files),
        "quality": dg.MetadataValue.json(
            {f"{m:%Y-%m}": _numbers(q) for m, q in sorted(report.months.items())}
            if len(report.months) > 1
            else _numbers(next(iter(report.months.values()), {"rows": 0}))
        ),
    }


def snapshot_result(table: str, report: LoadReport, where: str) -> dg.MaterializeResult:
    """Materialization of an unpartitioned or single-cohort load, with its checks."""
    month = next(iter(report.months), SNAPSHOT)
    return dg.MaterializeResult(
        metadata=readable(_materialization_metadata(report, where)),
        check_results=[_check_result(o) for o in _outcomes(table, report, month, where, None)],
    )


def monthly_results(
    context: dg.AssetExecutionContext,
    table: str,
    report: LoadReport,
    window: list[date],
    band: qc.VolumeBand,
) -> Iterator[RawEvent]:
    """One materialization for the run, and every check on every month of its window.

    A single-partition run reports checks the usual way; a range run reports them per partition
    as evaluations, so each month's verdict is kept with that month, then closes each check's
    output (which an ``AssetCheckResult`` would otherwise do).
    """
    where = f"{window[0]:%Y-%m}" + (f"..{window[-1]:%Y-%m}" if len(window) > 1 else "")
    if len(window) == 1:
        outcomes = _outcomes(table, report, window[0], where, band, report.retracting)
        yield dg.MaterializeResult(
            metadata=readable(_materialization_metadata(report, where)),
            check_results=[_check_result(o) for o in outcomes],
        )
        return
    yield dg.MaterializeResult(metadata=readable(_materialization_metadata(report, where)))
    selected = context.selected_asset_check_keys
    for month in window:
        for outcome in _outcomes(table, report, month, f"{month:%Y-%m}", band, allow_empty=True):
            if dg.AssetCheckKey(context.asset_key, outcome.check) not in selected:
                continue
            yield dg.AssetCheckEvaluation(
                asset_key=context.asset_key,
                check_name=outcome.check,
                passed=outcome.passed,
                severity=outcome.severity,
                description=outcome.description,
                metadata=outcome.metadata,
                blocking=outcome.check == qc.SCHEMA,
                partition=partition_key(month),
            )
    for key in sorted(selected, key=lambda k: k.name):
        yield dg.Output(
            None, output_name=context.assets_def.get_output_name_for_asset_check_key(key)
        )
