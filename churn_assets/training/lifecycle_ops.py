"""Ops behind the lifecycle jobs: change the champion by hand, and prune old versions.

They are ops, not assets: they change which registered version serves, not what data exists.
"""

from datetime import datetime
from typing import Literal

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from churn_assets.readable import readable
from churn_assets.resources import ModelRegistryResource
from churn_assets.training.lifecycle import (
    LifecycleError,
    change_champion,
    delete_versions,
    protected_versions,
    rollback_target,
    versions_created_before,
)


class PromotionConfig(dg.Config):
    action: Literal["promote", "rollback"] = Field(
        default="promote",
        description="promote: make `version` champion; rollback: return to `version`, or when "
        "empty to the version the current champion replaced.",
    )
    version: str = Field(default="", description="Registered version number of churn-model.")
    reason: str = Field(default="", description="Why: kept in model_promotions and MLflow tags.")


@dg.op(description="Move the `champion` alias and record the change in model_promotions.")
def change_champion_op(
    context: dg.OpExecutionContext,
    config: PromotionConfig,
    registry: ModelRegistryResource,
    warehouse: DuckDBResource,
) -> dg.Output[str]:
    version = config.version.strip().lstrip("v")
    try:
        if config.action == "promote" and not version:
            raise LifecycleError("promote needs a version")
        target = version or rollback_target(registry, warehouse)
        change = change_champion(
            registry,
            warehouse,
            target,
            config.action,
            config.reason or f"{config.action} by hand (run {context.run_id[:8]})",
        )
    except LifecycleError as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info(
        f"champion v{change.previous_version} -> v{change.model_version} ({change.action})"
    )
    return dg.Output(
        change.model_version,
        metadata=readable(
            {
                "model_version": change.model_version,
                "previous_version": change.previous_version or "",
                "action": change.action,
                "reason": change.reason,
            }
        ),
    )


class RetentionConfig(dg.Config):
    created_before: str = Field(
        description="Delete versions registered before this date (YYYY-MM-DD); the champion, "
        "the challenger and the rollback target are always kept."
    )
    dry_run: bool = Field(default=False, description="List what would be deleted, delete nothing.")


@dg.op(
    description="Delete registered versions older than a date, never the champion, the "
    "challenger or the version a rollback would return to."
)
def delete_old_versions_op(
    context: dg.OpExecutionContext,
    config: RetentionConfig,
    registry: ModelRegistryResource,
    warehouse: DuckDBResource,
) -> dg.Output[list[str]]:
    try:
        cutoff = datetime.fromisoformat(config.created_before)
    except ValueError as exc:
        raise dg.Failure(
            f"created_before must be YYYY-MM-DD, got {config.created_before!r}"
        ) from exc
    doomed = versions_created_before(registry, warehouse, cutoff)
    if not config.dry_run:
        try:
            delete_versions(registry, warehouse, doomed)
        except LifecycleError as exc:
            raise dg.Failure(str(exc)) from exc
    context.log.info(
        f"{'would delete' if config.dry_run else 'deleted'} {len(doomed)} version(s): {doomed}"
    )
    return dg.Output(
        doomed,
        metadata=readable(
            {
                "deleted": dg.MetadataValue.json([] if config.dry_run else doomed),
                "would_delete": dg.MetadataValue.json(doomed if config.dry_run else []),
                "kept": dg.MetadataValue.json(
                    sorted(protected_versions(registry, warehouse), key=int)
                ),
            }
        ),
    )
