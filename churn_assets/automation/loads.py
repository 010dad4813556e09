"""Which raw loads are due: the landing files as they are now against what was loaded from them.

A table's month is due when a file in the landing folder that feeds it, or that its stored rows
came from, is not as its latest materialization recorded it (see
:mod:`churn_assets.landing.catalog`): a month never loaded, one whose load failed or was killed,
one whose file arrived late or was replaced. A file that leaves the landing folder (archived after
delivery) makes nothing due: its rows stay stored until a file replaces them or the month is
retracted (``churn-assets retract``). Only months that have ended by ``today`` are loaded; only
tables whose files cover the month are asked for, so a missing file shows as an incomplete cohort
rather than a failed run.
Months of payment history before the first listening month are loaded together in one ranged run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date

import dagster as dg

from churn_assets.automation.requests import keyed_request
from churn_assets.dagster_internals import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from churn_assets.keys import (
    LABELS,
    MEMBERS,
    MODEL_PERFORMANCE,
    RETENTION_OUTCOME,
    TRANSACTIONS,
    TRIGGER_TAG,
)
from churn_assets.landing.catalog import MONTHLY_TABLES, LandingCatalog
from churn_assets.partitions import (
    LABEL_DELAY_MONTHS,
    add_months,
    month_start,
    months_between,
    partition_key,
    register_months,
)

LABEL_ASSETS = [
    LABELS,
    MODEL_PERFORMANCE,
    RETENTION_OUTCOME,
]


def _recorded(instance: dg.DagsterInstance, table: str, month: date, name: str) -> object:
    """What the latest materialization of ``table``'s month recorded for it under ``name``."""
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(table), asset_partitions=[partition_key(month)]
        ),
        limit=1,
    )
    if not result.records:
        return None
    materialization = result.records[0].asset_materialization
    recorded = materialization.metadata.get(name) if materialization else None
    return (recorded.value or {}).get(partition_key(month)) if recorded else None


def loaded_fingerprint(instance: dg.DagsterInstance, table: str, month: date) -> str | None:
    """The files fingerprint the latest materialization of ``table``'s month recorded."""
    return _recorded(instance, table, month, "fingerprints")  # type: ignore[return-value]


def _is_stale(
    instance: dg.DagsterInstance, catalog: LandingCatalog, table: str, month: date
) -> bool:
    """A file that feeds the month, or whose rows it stores, differs from what was recorded.

    Loads recorded before files had signatures are compared by fingerprint, as then.
    """
    present = catalog.signatures(table, month)
    if not present:
        return False
    recorded = _recorded(instance, table, month, "file_signatures")
    if recorded is None:
        return loaded_fingerprint(instance, table, month) != catalog.fingerprint(table, month)
    known = set(recorded)  # type: ignore[arg-type]
    stored_from = {signature.rsplit(":", 2)[0] for signature in known}
    now = {e.name: e.signature for e in catalog.entries.values() if e.table == table}
    judged = set(present) | (stored_from & set(now))
    return any(now[name] not in known for name in judged)


def _digest(parts: list[str]) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]


def stale_tables(instance: dg.DagsterInstance, catalog: LandingCatalog, month: date) -> list[str]:
    """Tables whose files cover ``month`` and differ from what its last load read."""
    return [table for table in MONTHLY_TABLES if _is_stale(instance, catalog, table, month)]


def month_load(
    instance: dg.DagsterInstance, catalog: LandingCatalog, month: date, trigger: str
) -> dg.RunRequest | None:
    """Load members and the month's stale tables, if any and if an attempt is due."""
    tables = stale_tables(instance, catalog, month)
    if not tables:
        return None
    fingerprints = [f"{t}:{catalog.fingerprint(t, month)}" for t in MONTHLY_TABLES]
    return keyed_request(
        instance,
        f"raw-{partition_key(month)}-{_digest(fingerprints)}",
        tags={TRIGGER_TAG: trigger},
        partition_key=partition_key(month),
        asset_selection=[MEMBERS, *(dg.AssetKey(t) for t in tables)],
    )


def history_load(
    instance: dg.DagsterInstance, catalog: LandingCatalog, months: list[date]
) -> dg.RunRequest | None:
    """One ranged run of transactions over the history months that are stale."""
    stale = [m for m in months if "transactions" in stale_tables(instance, catalog, m)]
    if not stale:
        return None
    first, last = partition_key(stale[0]), partition_key(stale[-1])
    fingerprints = [catalog.fingerprint("transactions", m) for m in stale]
    return keyed_request(
        instance,
        f"history-{first}-{last}-{_digest(fingerprints)}",
        tags={
            TRIGGER_TAG: f"payment history {first[:7]}..{last[:7]} landed",
            ASSET_PARTITION_RANGE_START_TAG: first,
            ASSET_PARTITION_RANGE_END_TAG: last,
        },
        asset_selection=[MEMBERS, TRANSACTIONS],
    )


def label_load(
    instance: dg.DagsterInstance, catalog: LandingCatalog, cohort: date, trigger: str
) -> dg.RunRequest | None:
    """Load a cohort's labels (and backtest on them) when its label files are new or changed."""
    fingerprint = catalog.fingerprint("labels", cohort)
    if not fingerprint:
        return None
    return keyed_request(
        instance,
        f"labels-{partition_key(cohort)}-{fingerprint}",
        tags={TRIGGER_TAG: trigger},
        partition_key=partition_key(cohort),
        asset_selection=LABEL_ASSETS,
    )


def register_calendar(instance: dg.DagsterInstance, catalog: LandingCatalog, today: date) -> None:
    """Partitions for every month from the first landed data through ``today``."""
    months = [month_start(m) for t in MONTHLY_TABLES for m in catalog.months(t)]
    first = min(months, default=today)
    register_months(instance, months_between(min(first, today), today))


def due_loads(
    instance: dg.DagsterInstance, catalog: LandingCatalog, today: date
) -> Iterator[dg.RunRequest]:
    """Every load due on ``today``: history first, then each ended month, then labels."""
    register_calendar(instance, catalog, today)
    ended = {
        t: [month_start(m) for m in catalog.months(t) if month_start(m) < today]
        for t in MONTHLY_TABLES
    }
    first_listening = min(ended["user_logs"], default=today)
    history = [m for m in ended["transactions"] if m < first_listening]
    if len(history) > 1 and (request := history_load(instance, catalog, history)):
        yield request
    for month in sorted(set(ended["transactions"]) | set(ended["user_logs"])):
        if len(history) > 1 and month in history:
            continue
        if request := month_load(instance, catalog, month, f"files of {month:%Y-%m} landed"):
            yield request
    newest_labelled = add_months(today, -LABEL_DELAY_MONTHS)
    for cohort in months_between(first_listening, newest_labelled):
        if request := label_load(instance, catalog, cohort, f"labels of {cohort:%Y-%m} landed"):
            yield request
