"""Data-quality checks of the raw tables: the numbers a load measured, judged against thresholds.

Every check reports its numbers in its metadata, passed or not. KKBox quirks that the real dump
always has (blank ages, negative or day-long ``total_secs``, zero-day plans, duplicate rows, users
missing from members) are flagged with their shares and fail only beyond thresholds well above
their usual rates; only ``schema`` is blocking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from churn_assets.keys import (
    DUPLICATES_CHECK,
    NULLS_CHECK,
    RANGES_CHECK,
    REFERENTIAL_CHECK,
    SCHEMA_CHECK,
    VOLUME_CHECK,
)

SCHEMA, NULLS, RANGES, DUPLICATES, REFERENTIAL, VOLUME = (
    SCHEMA_CHECK,
    NULLS_CHECK,
    RANGES_CHECK,
    DUPLICATES_CHECK,
    REFERENTIAL_CHECK,
    VOLUME_CHECK,
)

# A column the features rely on may be null in at most this share of a partition's rows.
MAX_NULL_SHARE = 0.05
# Rows whose keys do not parse (no user id, no expiry date) tolerated before the load is blocked.
MAX_INVALID_KEY_SHARE = 0.01
# Rows of one key (user and day, or user, day, expiry and cancel flag) that differ otherwise.
MAX_KEY_DUPLICATE_SHARE = 0.01
# Activity rows of users unknown to members (KKBox's members file misses a few users).
MAX_UNKNOWN_USER_SHARE = 0.10
# Months of history the volume check compares a month with.
VOLUME_TRAILING_MONTHS = 3

# Largest tolerated share of each out-of-range quirk, per table (quality_*.sql names them
# ``range_<quirk>``). Real KKBox rates are far below these, except blank ages.
RANGE_LIMITS: dict[str, dict[str, float]] = {
    "members": {"invalid_bd": 0.80, "unknown_gender": 0.001, "future_registration": 0.001},
    "transactions": {
        "zero_day_plans": 0.10,
        "absurd_plan_days": 0.01,
        "absurd_prices": 0.001,
        "expiry_before_transaction": 0.01,
        "invalid_flags": 0.001,
    },
    "user_logs": {
        "negative_total_secs": 0.01,
        "absurd_total_secs": 0.01,
        "negative_counts": 0.001,
        "unique_above_plays": 0.01,
    },
    "labels": {},
}

# Which checks each raw table carries.
TABLE_CHECKS: dict[str, tuple[str, ...]] = {
    "members": (SCHEMA, NULLS, RANGES, DUPLICATES),
    "transactions": (SCHEMA, NULLS, RANGES, DUPLICATES, REFERENTIAL, VOLUME),
    "user_logs": (SCHEMA, NULLS, RANGES, DUPLICATES, REFERENTIAL, VOLUME),
    "labels": (SCHEMA, NULLS, DUPLICATES, REFERENTIAL),
}

DESCRIPTIONS = {
    SCHEMA: (
        "Rows were loaded and their keys (user, dates) parse; blocks downstream (ERROR). Columns "
        "the contract does not name are ignored and warn (WARN, not blocking)."
    ),
    NULLS: f"Columns features use are null in at most {MAX_NULL_SHARE:.0%} of rows.",
    RANGES: "Out-of-range values (ages, seconds, plan days, prices, flags) within their limits.",
    DUPLICATES: (
        "Exact duplicate rows are dropped and counted; rows sharing a key but differing are at "
        f"most {MAX_KEY_DUPLICATE_SHARE:.0%}."
    ),
    REFERENTIAL: (
        f"At most {MAX_UNKNOWN_USER_SHARE:.0%} of rows belong to users unknown to members."
    ),
    VOLUME: (
        f"Row count within the configured band around the mean of the trailing "
        f"{VOLUME_TRAILING_MONTHS} loaded months."
    ),
}


class VolumeBand(dg.Config):
    """How far a month's row count may stray from its trailing months before ``volume`` fails."""

    volume_min_ratio: float = 0.75
    volume_max_ratio: float = 1.5


@dataclass(frozen=True)
class Outcome:
    """One check's verdict on one partition (or the whole snapshot)."""

    check: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN


def check_specs(
    asset: str, partitions_def: dg.PartitionsDefinition | None = None
) -> list[dg.AssetCheckSpec]:
    """The asset's checks; ``schema`` is the only blocking one."""
    return [
        dg.AssetCheckSpec(
            name,
            asset=asset,
            blocking=name == SCHEMA,
            partitions_def=partitions_def,
            description=DESCRIPTIONS[name],
        )
        for name in TABLE_CHECKS[asset]
    ]


def _share(count: Any, rows: int) -> float:
    return int(count or 0) / rows if rows else 0.0


def schema_blocks(q: dict[str, Any], allow_empty: bool = False) -> bool:
    """Whether a partition's numbers fail the blocking schema check: no rows (outside a history
    backfill), or more rows with unusable keys than tolerated. A load that blocks stores nothing."""
    rows = int(q["rows"] or 0)
    share = _share(int(q["invalid_key_rows"] or 0), rows)
    return not ((rows > 0 or allow_empty) and share <= MAX_INVALID_KEY_SHARE)


def schema_outcome(
    table: str,
    q: dict[str, Any],
    where: str,
    extra: list[str],
    allow_empty: bool = False,
    unclaimed: list[str] | None = None,
) -> Outcome:
    rows = int(q["rows"] or 0)
    invalid = int(q["invalid_key_rows"] or 0)
    share = _share(invalid, rows)
    if rows == 0 and allow_empty:
        text = f"no {table} rows for {where}: a quiet month of the history backfill"
    elif rows == 0:
        text = f"no {table} rows for {where} in the landing folder"
    else:
        text = f"{invalid} of {rows} rows with unparseable keys ({share:.2%})"
    unlabelled = _unusable_labels(q)
    if rows and unlabelled:
        text = f"{invalid} of {rows} rows left out ({share:.2%}): {unlabelled}"
    loadable = not schema_blocks(q, allow_empty)
    if not loadable:
        text += "; nothing of it was stored (the stored rows are as they were)"
    if loadable and extra:
        # Loaded without them, so nothing downstream breaks; but the producer changed its format,
        # and a person should hear of it (a warning never blocks).
        text += f"; columns not in the contract, ignored: {', '.join(extra)}"
    if loadable and unclaimed:
        # A file meant for a table under a name no table reads would be missed for good.
        text += f"; landing files no table reads, not loaded: {', '.join(unclaimed)}"
    return Outcome(
        SCHEMA,
        loadable and not extra and not unclaimed,
        text,
        {
            "rows": rows,
            "invalid_key_rows": invalid,
            "invalid_key_share": share,
            "extra_columns_ignored": ", ".join(extra) or "none",
            "unclaimed_landing_files": ", ".join(unclaimed or []) or "none",
            **{
                k: int(q.get(k) or 0)
                for k in ("users_with_conflicting_labels", "users_with_label_outside_0_1")
                if k in q
            },
            # Rows of the month's files whose date is not a real YYYYMMDD day: left out, counted.
            "rows_without_valid_date": int(q.get("undated_rows_in_files") or 0),
        },
        dg.AssetCheckSeverity.ERROR if not loadable else dg.AssetCheckSeverity.WARN,
    )


def _unusable_labels(q: dict[str, Any]) -> str:
    """What makes a cohort's labels unusable, named: a user listed with both 0 and 1, a label
    other than 0 or 1."""
    conflicting = int(q.get("users_with_conflicting_labels") or 0)
    outside = int(q.get("users_with_label_outside_0_1") or 0)
    said = []
    if conflicting:
        said.append(f"{conflicting} users listed with conflicting labels (0 and 1)")
    if outside:
        said.append(f"{outside} users with an is_churn other than 0 or 1")
    return ", ".join(said)


def _nulls(q: dict[str, Any]) -> Outcome:
    rows = int(q["rows"] or 0)
    shares = {
        k.removeprefix("null_"): _share(v, rows) for k, v in q.items() if k.startswith("null_")
    }
    too_null = {k: round(v, 4) for k, v in shares.items() if v > MAX_NULL_SHARE}
    return Outcome(
        NULLS,
        not too_null,
        f"null share above {MAX_NULL_SHARE:.0%}: {too_null}" if too_null else "ok",
        {f"null_share_{k}": float(v) for k, v in shares.items()},
    )


def _ranges(table: str, q: dict[str, Any]) -> Outcome:
    rows = int(q["rows"] or 0)
    limits = RANGE_LIMITS[table]
    shares = {name: _share(q.get(f"range_{name}"), rows) for name in limits}
    beyond = {k: round(v, 4) for k, v in shares.items() if v > limits[k]}
    metadata: dict[str, Any] = {}
    for name, share in shares.items():
        metadata[f"{name}_rows"] = int(q.get(f"range_{name}") or 0)
        metadata[f"{name}_share"] = share
        metadata[f"{name}_limit"] = limits[name]
    flagged = {k: round(v, 4) for k, v in shares.items() if v > 0}
    if beyond:
        text = f"beyond limits: {beyond}"
    else:
        text = f"within limits; quirks present: {flagged}" if flagged else "no out-of-range values"
    return Outcome(RANGES, not beyond, text, metadata)


def _duplicates(q: dict[str, Any]) -> Outcome:
    rows = int(q["rows"] or 0)
    exact = int(q.get("exact_duplicates") or 0)
    keyed = int(q.get("key_duplicates") or 0)
    key_share = _share(keyed, rows)
    return Outcome(
        DUPLICATES,
        key_share <= MAX_KEY_DUPLICATE_SHARE,
        f"{exact} exact duplicate rows dropped; {keyed} rows share a key but differ "
        f"({key_share:.2%})",
        {
            "exact_duplicates_dropped": exact,
            "exact_duplicate_share": exact / (rows + exact) if rows + exact else 0.0,
            "key_duplicates": keyed,
            "key_duplicate_share": key_share,
        },
    )


def _referential(q: dict[str, Any], members_loaded: bool) -> Outcome:
    rows = int(q["rows"] or 0)
    unknown = int(q.get("unknown_user_rows") or 0)
    share = _share(unknown, rows)
    if not members_loaded:
        return Outcome(
            REFERENTIAL, True, "members not loaded yet: nothing to compare with", {"rows": rows}
        )
    return Outcome(
        REFERENTIAL,
        share <= MAX_UNKNOWN_USER_SHARE,
        f"{unknown} of {rows} rows for users unknown to members ({share:.2%})",
        {"unknown_user_rows": unknown, "unknown_user_share": share},
    )


def volume_outcome(month: date, rows: int, history: dict[date, int], band: VolumeBand) -> Outcome:
    """Compare ``rows`` with the mean of the trailing loaded months before ``month``."""
    trailing = sorted(m for m in history if m < month)[-VOLUME_TRAILING_MONTHS:]
    if not trailing:
        return Outcome(
            VOLUME,
            True,
            "no earlier month loaded: nothing to compare with",
            {"rows": rows, "trailing_months": 0},
        )
    mean = sum(history[m] for m in trailing) / len(trailing)
    ratio = rows / mean if mean else 0.0
    inside = band.volume_min_ratio <= ratio <= band.volume_max_ratio
    return Outcome(
        VOLUME,
        inside,
        f"{rows} rows, {ratio:.2f}× the mean of {', '.join(f'{m:%Y-%m}' for m in trailing)} "
        f"(band {band.volume_min_ratio}–{band.volume_max_ratio})",
        {
            "rows": rows,
            "trailing_mean": mean,
            "ratio": ratio,
            "trailing_months": len(trailing),
            "band_min": band.volume_min_ratio,
            "band_max": band.volume_max_ratio,
        },
    )


def evaluate(
    table: str,
    quality: dict[str, Any],
    where: str,
    *,
    extra_columns: list[str],
    members_loaded: bool,
    volume: Outcome | None = None,
    allow_empty: bool = False,
    unclaimed: list[str] | None = None,
) -> list[Outcome]:
    """Every check of ``table`` on one partition's quality numbers, in spec order.

    ``allow_empty``: a month with no rows passes ``schema`` (months of a ranged history backfill
    may be quiet in a small world; a single month's load fails earlier when no file covers it).
    ``unclaimed``: landing files no table reads; ``schema`` warns naming them.
    """
    found = {
        SCHEMA: lambda: schema_outcome(
            table, quality, where, extra_columns, allow_empty, unclaimed
        ),
        NULLS: lambda: _nulls(quality),
        RANGES: lambda: _ranges(table, quality),
        DUPLICATES: lambda: _duplicates(quality),
        REFERENTIAL: lambda: _referential(quality, members_loaded),
        VOLUME: lambda: volume,
    }
    outcomes = [found[name]() for name in TABLE_CHECKS[table]]
    return [o for o in outcomes if o is not None]
