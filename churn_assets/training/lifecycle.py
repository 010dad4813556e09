"""Champion changes and version retention, shared by training, the lifecycle jobs and the CLI.

Aliases in the MLflow registry say which version scores now; they keep no history. Every change of
champion is therefore also written to the DuckDB table ``model_promotions`` and tagged on the
version, so "who was champion when, and why" can be answered after the fact and rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd
from dagster_duckdb import DuckDBResource

from churn_assets.resources import ModelRegistryResource
from churn_assets.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS
from churn_assets.warehouse import run_sql_file, table_exists, transaction

SQL = Path(__file__).parent / "model_promotions.sql"
Action = Literal["initial", "auto_promote", "promote", "rollback"]


class LifecycleError(ValueError):
    """A requested promotion, rollback or deletion that cannot be carried out."""


@dataclass(frozen=True)
class ChampionChange:
    model_version: str
    previous_version: str | None
    action: str
    reason: str
    changed_at: datetime


def record_change(warehouse: DuckDBResource, change: ChampionChange) -> None:
    row = pd.DataFrame(
        [
            {
                "model_version": change.model_version,
                "previous_version": change.previous_version,
                "action": change.action,
                "reason": change.reason,
                "changed_at": change.changed_at,
            }
        ]
    ).astype({"previous_version": "object"})
    with warehouse.get_connection() as conn:
        conn.register("promotion_row", row)
        with transaction(conn):
            run_sql_file(conn, SQL)


def change_champion(
    registry: ModelRegistryResource,
    warehouse: DuckDBResource,
    version: str,
    action: Action,
    reason: str,
) -> ChampionChange:
    """Point ``champion`` at ``version`` and record who it replaced, how and why."""
    client = registry.client
    try:
        client.get_model_version(registry.model_name, version)
    except Exception as exc:  # MLflow raises its own RestException subclasses
        raise LifecycleError(f"{registry.model_name} has no version {version!r}") from exc
    current = registry.champion()
    previous = str(current.version) if current is not None else None
    if previous == str(version):
        raise LifecycleError(f"v{version} is already the champion")
    change = ChampionChange(str(version), previous, action, reason, datetime.now())
    registry.set_alias(CHAMPION_ALIAS, str(version))
    for key, value in {
        "champion_since": f"{change.changed_at:%Y-%m-%dT%H:%M:%S}",
        "champion_action": action,
        "champion_reason": reason,
        "previous_champion": previous or "none",
        "promoted": "true",
    }.items():
        client.set_model_version_tag(registry.model_name, str(version), key, value)
    if previous is not None:
        client.set_model_version_tag(
            registry.model_name,
            previous,
            "champion_until",
            f"{change.changed_at:%Y-%m-%dT%H:%M:%S}",
        )
    record_change(warehouse, change)
    return change


def rollback_target(registry: ModelRegistryResource, warehouse: DuckDBResource) -> str:
    """The version the current champion replaced, from the promotion history (then MLflow tags)."""
    champion = registry.champion()
    if champion is None:
        raise LifecycleError("there is no champion to roll back")
    previous: str | None = None
    with warehouse.get_connection() as conn:
        if table_exists(conn, "model_promotions"):
            row = conn.execute(
                "SELECT previous_version FROM model_promotions WHERE model_version = ? "
                "ORDER BY changed_at DESC LIMIT 1",
                [str(champion.version)],
            ).fetchone()
            previous = row[0] if row else None
    previous = previous or champion.tags.get("previous_champion")
    if not previous or previous == "none":
        raise LifecycleError(f"champion v{champion.version} replaced no earlier version")
    return str(previous)


def protected_versions(registry: ModelRegistryResource) -> set[str]:
    return {
        str(v.version)
        for v in (registry.version_by_alias(a) for a in (CHAMPION_ALIAS, CHALLENGER_ALIAS))
        if v is not None
    }


def versions_created_before(registry: ModelRegistryResource, cutoff: datetime) -> list[str]:
    """Registered versions older than ``cutoff`` that are neither champion nor challenger."""
    keep = protected_versions(registry)
    limit_ms = cutoff.timestamp() * 1000
    return sorted(
        (
            str(v.version)
            for v in registry.client.search_model_versions(f"name = '{registry.model_name}'")
            if v.creation_timestamp < limit_ms and str(v.version) not in keep
        ),
        key=int,
    )


def delete_versions(registry: ModelRegistryResource, versions: list[str]) -> None:
    keep = protected_versions(registry)
    for version in versions:
        if version in keep:  # re-checked: an alias may have moved since the list was made
            raise LifecycleError(f"v{version} is champion or challenger and is never deleted")
        registry.client.delete_model_version(registry.model_name, version)
