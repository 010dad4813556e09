"""The retraining policy: when to retrain, when not to, and when to call a person.

Triggers (any of them, evaluated by ``training_sensor``):
* **drift**: the newest ``feature_drift`` check failed at the policy's tier or above (default
  WARN: the guards below bound what a moderate shift costs, and a retrained candidate replaces
  the champion only when it wins on users neither was tuned on);
* **performance**: the newest ``champion_performance`` check failed with severity ERROR (its
  k-of-n persistence rule already separates a bad month from a persistent failure), or the
  newest ``champion_beats_rule`` did (the champion ranks churners worse than the as-is rule);
* **staleness**: the newest labels the champion learnt from are more than ``stale_after_cohorts``
  cohorts older than the newest labels known (default 3);
* **provisional**: the champion was registered only so that something scores (below the hurdle,
  or from cohorts with incomplete windows); it is replaced as soon as newer labels allow.

Guards, in order: nothing while a training runs; nothing without labels newer than the champion's;
at most one training per newest labelled cohort whatever the trigger (a rejected candidate does
not trigger again until new labels land, so a failing check cannot start a storm); a cool-down of
``cooldown_months`` between trainings (default 1). A failed training run is retried as any run is.

Outcomes: the training promotes its candidate or keeps the champion. When a training triggered by
a failing monitor kept the champion (or left its candidate waiting for a person in manual
promotion mode), the policy escalates once: "needs a person".

Every decision is appended to the warehouse table ``retraining_decisions`` and reported as an
observation of ``churn_model`` (so it shows on that asset's page in the UI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.entities.model_registry import ModelVersion

from churn_assets.dagster_internals import AssetCheckExecutionRecordStatus
from churn_assets.keys import (
    CHAMPION_PERFORMANCE_CHECK_KEY,
    CHURN_MODEL,
    DRIFT_CHECK_KEY,
    LABELS,
    LABELS_TAG,
    RULE_CHECK_KEY,
    TRAINING_JOB,
)
from churn_assets.partitions import latest_labelled_cohort, month_start, partition_key
from churn_assets.resources import RetrainingPolicy
from churn_assets.training.lifecycle import is_provisional
from churn_assets.warehouse import run_sql_file, table_exists, transaction

SQL = Path(__file__).parent / "retraining_decisions.sql"
RECORDED_SQL = Path(__file__).parent / "decision_recorded.sql"
SEVERITY_RANK = {dg.AssetCheckSeverity.WARN: 1, dg.AssetCheckSeverity.ERROR: 2}


@dataclass(frozen=True)
class Trigger:
    kind: str  # drift, performance, staleness, provisional
    cohort: str  # the cohort (partition) the evidence was observed on
    evidence: str
    kinds: tuple[str, ...] = ()  # every trigger in force with it, itself first


@dataclass
class Decision:
    trigger: Trigger
    action: str  # retrain, hold, escalate
    reason: str
    newest_labels: str
    run_key: str = ""
    run_id: str = ""
    request: dg.RunRequest | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """What makes two decisions the same one (a repeated tick records nothing new)."""
        return "|".join(
            (self.trigger.kind, self.trigger.cohort, self.action, self.newest_labels, self.run_id)
        )


def _latest_check(instance: dg.DagsterInstance, key: dg.AssetCheckKey):
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    return records[0] if records else None


def _failed_at(record, tier: dg.AssetCheckSeverity) -> bool:
    if record is None or record.status != AssetCheckExecutionRecordStatus.FAILED:
        return False
    severity = record.evaluation.severity if record.evaluation else dg.AssetCheckSeverity.ERROR
    return SEVERITY_RANK.get(severity, 2) >= SEVERITY_RANK[tier]


def triggers(
    instance: dg.DagsterInstance,
    policy: RetrainingPolicy,
    champion: ModelVersion,
    newest_labels: str,
) -> list[Trigger]:
    """The triggers in force now, with their evidence."""
    found = []
    drift = _latest_check(instance, DRIFT_CHECK_KEY)
    if _failed_at(drift, policy.drift_severity):
        found.append(
            Trigger("drift", drift.partition or "", drift.evaluation.description or "drift")
        )
    # A persistent failure against the champion's own expected level, or a champion that ranks
    # churners worse than the as-is rule: either way the score no longer earns its keep.
    for key in (CHAMPION_PERFORMANCE_CHECK_KEY, RULE_CHECK_KEY):
        performance = _latest_check(instance, key)
        if _failed_at(performance, dg.AssetCheckSeverity.ERROR):
            found.append(
                Trigger(
                    "performance",
                    performance.partition or "",
                    performance.evaluation.description or f"{key.name} failed",
                )
            )
            break
    if is_provisional(champion):
        found.append(
            Trigger(
                "provisional",
                newest_labels,
                f"champion v{champion.version} was registered only so that something scores "
                "(below the hurdle, or from cohorts with incomplete windows)",
            )
        )
    learnt_until = champion.tags.get("validation_cohort", "")
    if learnt_until and newest_labels:
        age = _months_apart(learnt_until, newest_labels)
        if age > policy.stale_after_cohorts:
            found.append(
                Trigger(
                    "staleness",
                    newest_labels,
                    f"champion v{champion.version} learnt from labels up to {learnt_until[:7]}, "
                    f"{age} cohorts older than the newest ({newest_labels[:7]}; limit "
                    f"{policy.stale_after_cohorts})",
                )
            )
    return found


def _months_apart(earlier: str, later: str) -> int:
    a, b = month_start(earlier), month_start(later)
    return (b.year - a.year) * 12 + b.month - a.month


def newest_labels_known(instance: dg.DagsterInstance, today: date) -> str:
    newest = partition_key(latest_labelled_cohort(today))
    known = [p for p in instance.get_materialized_partitions(LABELS) if p <= newest]
    return max(known, default="")


def _training_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=TRAINING_JOB)))


def _outcome(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict:
    """What a finished training run decided (registered, promoted, why), from its metadata."""
    for record in instance.fetch_materializations(CHURN_MODEL, limit=50).records:
        if record.run_id == run.run_id and record.asset_materialization is not None:
            return {k: v.value for k, v in record.asset_materialization.metadata.items()}
    return {}


def decide(
    instance: dg.DagsterInstance,
    policy: RetrainingPolicy,
    champion: ModelVersion,
    today: date,
) -> Decision | None:
    """One decision for this evaluation, or None when no trigger is in force."""
    newest = newest_labels_known(instance, today)
    found = triggers(instance, policy, champion, newest)
    if not found:
        return None
    trigger = found[0]  # the most urgent: drift, then performance, then staleness
    evidence = "; ".join(f"{t.kind}: {t.evidence}" for t in found)
    trigger = Trigger(trigger.kind, trigger.cohort, evidence, tuple(t.kind for t in found))
    runs = _training_runs(instance)
    if any(not r.is_finished for r in runs):
        return Decision(trigger, "hold", "a training is running", newest)
    learnt_until = champion.tags.get("validation_cohort", "")
    if not newest or newest <= learnt_until:
        return Decision(
            trigger, "hold", f"no labels newer than the champion's ({learnt_until[:7]})", newest
        )
    on_these = [r for r in runs if r.tags.get(LABELS_TAG) == newest]
    done = [r for r in on_these if r.status == dg.DagsterRunStatus.SUCCESS]
    if done:
        outcome = _outcome(instance, done[0])
        if outcome.get("promoted_to_champion"):
            return Decision(
                trigger,
                "hold",
                f"retrained on labels {newest[:7]}; waiting for new labels",
                newest,
            )
        why = (
            f"challenger v{outcome.get('model_version')} awaits a person's promotion"
            if outcome.get("model_version")
            else outcome.get("not_trained_because")
            or f"candidate rejected: {outcome.get('hurdle', 'no better than the champion')}"
        )
        return Decision(
            trigger,
            "escalate",
            f"retraining on labels {newest[:7]} did not help ({why}): needs a person",
            newest,
            run_id=done[0].run_id,
        )
    last_as_of = max(
        (r.tags.get(LABELS_TAG, "") for r in runs if r.status == dg.DagsterRunStatus.SUCCESS),
        default="",
    )
    if last_as_of and _months_apart(last_as_of, newest) < policy.cooldown_months:
        return Decision(
            trigger, "hold", f"cool-down: last training on labels {last_as_of[:7]}", newest
        )
    return Decision(trigger, "retrain", f"{trigger.kind} with labels up to {newest[:7]}", newest)


def already_recorded(warehouse: DuckDBResource, decision: Decision) -> bool:
    """Whether the history holds this decision, or one taken on newer labels already."""
    with warehouse.get_connection() as conn:
        if not table_exists(conn, "retraining_decisions"):
            return False
        params = {
            "trigger": decision.trigger.kind,
            "cohort": month_start(decision.trigger.cohort) if decision.trigger.cohort else None,
            "action": decision.action,
            "newest": month_start(decision.newest_labels) if decision.newest_labels else None,
            "run_id": decision.run_id or "",
        }
        return bool(run_sql_file(conn, RECORDED_SQL, params).fetchone()[0])


def record_decisions(warehouse: DuckDBResource, decisions: list[Decision]) -> None:
    """Append decisions to ``retraining_decisions`` in one transaction."""
    if not decisions:
        return
    rows = pd.DataFrame(
        [
            {
                "decided_at": datetime.now(),
                "cohort_month": month_start(d.trigger.cohort) if d.trigger.cohort else None,
                "trigger": d.trigger.kind,
                "evidence": d.trigger.evidence,
                "action": d.action,
                "reason": d.reason,
                "newest_labelled_cohort": month_start(d.newest_labels) if d.newest_labels else None,
                "run_key": d.run_key,
                "run_id": d.run_id,
            }
            for d in decisions
        ]
    )
    with warehouse.get_connection() as conn:
        conn.register("decision_rows", rows)
        with transaction(conn):
            run_sql_file(conn, SQL)
        conn.unregister("decision_rows")


def observation(decision: Decision) -> dg.AssetObservation:
    """The decision as an observation of churn_model, for the asset's page in the UI."""
    return dg.AssetObservation(
        asset_key=CHURN_MODEL,
        description=f"retraining decision: {decision.action} ({decision.reason})",
        metadata={
            "trigger": decision.trigger.kind,
            "cohort": decision.trigger.cohort,
            "evidence": decision.trigger.evidence,
            "action": decision.action,
            "reason": decision.reason,
            "newest_labelled_cohort": decision.newest_labels,
            "run_key": decision.run_key,
            "run_id": decision.run_id,
        },
    )


__all__ = [
    "Decision",
    "Trigger",
    "decide",
    "newest_labels_known",
    "observation",
    "record_decisions",
]
