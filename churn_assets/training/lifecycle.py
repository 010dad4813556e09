"""Champion changes and version retention, shared by training, the lifecycle jobs and the CLI.

Aliases in the MLflow registry say which version scores now; they keep no history. Every change of
champion is therefore also written to the DuckDB table ``model_promotions`` and tagged on the
version, so "who was champion when, and why" can be answered after the fact and rolled back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from churn_assets.keys import PROMOTED_TAG
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


def is_provisional(version: ModelVersion) -> bool:
    """A version registered only so that something scores: below the hurdle, or learnt from
    cohorts with holes in their windows. The retraining policy replaces it as soon as newer
    labels allow, and the first candidate that clears or ties the hurdle on complete cohorts
    does."""
    return (
        version.tags.get("cleared_hurdle") == "false"
        or version.tags.get("trained_on_incomplete_cohorts") == "true"
    )


def _promotion_row(change: ChampionChange) -> pd.DataFrame:
    return pd.DataFrame(
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
        found = client.get_model_version(registry.model_name, version)
    except MlflowException as exc:
        # Only "no such version" is the caller's mistake; an unreachable server is not.
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise LifecycleError(f"{registry.model_name} has no version {version!r}") from exc
    if PROMOTED_TAG not in found.tags:
        raise LifecycleError(
            f"{registry.model_name} v{version} was cut off mid-registration (its tags are "
            "incomplete): it cannot be champion"
        )
    current = registry.champion()
    previous = str(current.version) if current is not None else None
    if previous == str(version):
        raise LifecycleError(f"v{version} is already the champion")
    change = ChampionChange(str(version), previous, action, reason, datetime.now())
    # The history row and the alias move together: if the alias cannot be set the row is rolled
    # back, and the alias is only moved once the row is written.
    with warehouse.get_connection() as conn:
        conn.register("promotion_row", _promotion_row(change))
        with transaction(conn):
            run_sql_file(conn, SQL)
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
    return change


def champion_history(warehouse: DuckDBResource) -> list[str]:
    """The champions as a stack, oldest first: promotions push, rollbacks pop.

    After 1 -> 2 (promote) -> 1 (rollback) the stack is [1]: a second rollback has nowhere to go,
    rather than bouncing back to the version just rolled back.
    """
    with warehouse.get_connection() as conn:
        if not table_exists(conn, "model_promotions"):
            return []
        rows = conn.execute(
            "SELECT model_version, action FROM model_promotions ORDER BY changed_at"
        ).fetchall()
    stack: list[str] = []
    for version, action in rows:
        if action == "rollback" and stack:
            stack.pop()
        if not stack or stack[-1] != version:
            stack.append(version)
    return stack


def rollback_target(registry: ModelRegistryResource, warehouse: DuckDBResource) -> str:
    """The champion before the current one, undoing promotions one at a time."""
    champion = registry.champion()
    if champion is None:
        raise LifecycleError("there is no champion to roll back")
    history = champion_history(warehouse)
    if history and history[-1] == str(champion.version):
        if len(history) < 2:
            raise LifecycleError(
                f"champion v{champion.version} has no earlier champion to roll back to"
            )
        return history[-2]
    # The alias moved outside this project's jobs: fall back to what the version remembers.
    previous = champion.tags.get("previous_champion")
    if not previous or previous == "none":
        raise LifecycleError(f"champion v{champion.version} replaced no earlier version")
    return str(previous)


def protected_versions(
    registry: ModelRegistryResource, warehouse: DuckDBResource | None = None
) -> set[str]:
    """Champion, challenger and, with the warehouse, the version a rollback would return to."""
    keep = {
        str(v.version)
        for v in (registry.version_by_alias(a) for a in (CHAMPION_ALIAS, CHALLENGER_ALIAS))
        if v is not None
    }
    if warehouse is not None:
        with contextlib.suppress(LifecycleError):  # no champion, or nothing to roll back to
            keep.add(rollback_target(registry, warehouse))
    return keep


def versions_created_before(
    registry: ModelRegistryResource, warehouse: DuckDBResource, cutoff: datetime
) -> list[str]:
    """Registered versions older than ``cutoff`` that no alias or rollback needs."""
    keep = protected_versions(registry, warehouse)
    limit_ms = cutoff.timestamp() * 1000
    return sorted(
        (
            str(v.version)
            for v in registry.client.search_model_versions(f"name = '{registry.model_name}'")
            if v.creation_timestamp < limit_ms and str(v.version) not in keep
        ),
        key=int,
    )


def delete_versions(
    registry: ModelRegistryResource, warehouse: DuckDBResource, versions: list[str]
) -> None:
    keep = protected_versions(registry, warehouse)
    for version in versions:
        if version in keep:  # re-checked: an alias may have moved since the list was made
            raise LifecycleError(
                f"v{version} is champion, challenger or the rollback target: never deleted"
            )
        registry.client.delete_model_version(registry.model_name, version)
