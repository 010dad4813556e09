"""The registered versions, the champion and why it is champion: on which users, against what.

Each version's validation AUC is measured on its own validation cohort, so two versions' figures
are comparable only when that cohort is the same; the backtests (``model_performance``) score every
version on the same labelled cohort, which is the like-for-like comparison the summary shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from churn_assets.keys import PROMOTED_TAG
from churn_assets.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets.warehouse import table_exists


@dataclass(frozen=True)
class VersionFact:
    version: str
    complete: bool  # False: registration was cut off (no 'promoted' tag), never used
    as_of: str
    validation_cohort: str  # YYYY-MM: where val_auc was measured
    val_auc: float
    aliases: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ChampionChange:
    version: str
    previous: str
    action: str  # initial, auto_promote, promote, rollback
    reason: str
    changed_at: datetime


@dataclass(frozen=True)
class Backtest:
    """Every registered version scored on one labelled cohort (the same users for all)."""

    cohort: date
    users: int
    auc: dict[str, float]  # version -> AUC
    out_of_time: dict[str, bool]  # version -> the version learnt nothing from this cohort


def version_facts(tracking_uri: str) -> list[VersionFact]:
    """The registered versions, oldest first (an empty list before the first registration)."""
    client = MlflowClient(tracking_uri)
    try:
        found = client.search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'")
    except MlflowException:
        return []
    facts = []
    for summary in sorted(found, key=lambda v: int(v.version)):
        # Search results leave aliases out: fetch each version whole.
        v = client.get_model_version(REGISTERED_MODEL_NAME, summary.version)
        facts.append(
            VersionFact(
                str(v.version),
                PROMOTED_TAG in v.tags,
                v.tags.get("as_of_month", "?"),
                v.tags.get("validation_cohort", "?")[:7],
                float(v.tags.get("val_auc", "nan")),
                tuple(v.aliases),
                dict(v.tags),
            )
        )
    return facts


def holder(versions: list[VersionFact], alias: str) -> VersionFact | None:
    return next((v for v in versions if alias in v.aliases), None)


def champion_changes(conn: duckdb.DuckDBPyConnection) -> list[ChampionChange]:
    """Every change of champion, oldest first (``model_promotions``)."""
    if not table_exists(conn, "model_promotions"):
        return []
    rows = conn.execute(
        "SELECT model_version, coalesce(previous_version, ''), action, coalesce(reason, ''), "
        "changed_at FROM model_promotions ORDER BY changed_at"
    ).fetchall()
    return [ChampionChange(*row) for row in rows]


def newest_backtest(conn: duckdb.DuckDBPyConnection) -> Backtest | None:
    """The newest labelled cohort every version was scored on, or None before any labels."""
    if not table_exists(conn, "model_performance"):
        return None
    rows = conn.execute(
        "SELECT cohort_month, model_version, auc, out_of_time, users FROM model_performance "
        "WHERE cohort_month = (SELECT max(cohort_month) FROM model_performance) "
        "ORDER BY model_version::INTEGER"
    ).fetchall()
    if not rows:
        return None
    return Backtest(
        rows[0][0],
        max(r[4] for r in rows),
        {r[1]: r[2] for r in rows},
        {r[1]: r[3] for r in rows},
    )


def why_champion(champion: VersionFact, changes: list[ChampionChange]) -> str:
    """How the champion got its alias and on what evidence, in one or two sentences."""
    made = next((c for c in reversed(changes) if c.version == champion.version), None)
    how = (
        f"champion since {made.changed_at:%Y-%m-%d %H:%M} ({made.action}"
        + (f", replacing v{made.previous}" if made.previous else "")
        + f"): {made.reason or 'no reason given'}"
        if made
        else "champion (no change recorded in model_promotions)"
    )
    tags = champion.tags
    if "comparison_cohort" not in tags:
        return f"v{champion.version} {how}"
    basis = (
        "users neither model was tuned on"
        if tags.get("comparison_neutral") == "true"
        else "users one of them had seen (not a neutral comparison)"
    )
    return (
        f"v{champion.version} {how}. Compared with v{tags.get('compared_with_champion')} on "
        f"{tags.get('comparison_users')} {basis} of cohort {tags['comparison_cohort'][:7]}: AUC "
        f"{float(tags.get('challenger_comparison_auc', 'nan')):.3f} against "
        f"{float(tags.get('champion_comparison_auc', 'nan')):.3f}, difference interval "
        f"{tags.get('auc_diff_interval', '?')}"
    )


def challenger_waiting(versions: list[VersionFact]) -> VersionFact | None:
    """The challenger, when it is newer than the champion and not champion: a person's call."""
    champion, challenger = holder(versions, CHAMPION_ALIAS), holder(versions, CHALLENGER_ALIAS)
    if challenger is None or (champion is not None and challenger.version == champion.version):
        return None
    if champion is not None and int(challenger.version) < int(champion.version):
        return None
    return challenger
