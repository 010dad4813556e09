"""The retraining policy: when to retrain, when not to, and when to call a person.

Triggers (any of them, evaluated by ``training_sensor``):
* **drift**: the newest ``feature_drift`` check failed at the policy's tier or above (default
  WARN: the guards below bound what a moderate shift costs, and a retrained candidate replaces
  the champion only when it wins on users neither was tuned on);
* **performance**: the newest ``champion_performance`` check failed with severity ERROR (its
  k-of-n persistence rule already separates a bad month from a persistent failure), or the
  newest ``champion_beats_rule`` did (the champion ranks churners worse than the as-is rule);
* **calibration**: the newest ``champion_calibration`` check failed (the champion's scores are
  miscalibrated beyond doubt, or in 2 of its last 3 cohorts: the buckets and the estimate before
  labels read them as probabilities). The training then also weighs recalibrating the champion
  (:mod:`churn_assets.training.recalibration`) against replacing it;
* **staleness**: the champion was last put to the test (its own validation cohort, or a training
  on newer labels whose candidate did not replace it) more than ``stale_after_cohorts`` cohorts
  before the newest labels known (default 3);
* **provisional**: the champion was registered only so that something scores (below the hurdle,
  or from cohorts with incomplete windows); it is replaced as soon as newer labels allow, that
  is once the candidate's window holds ``MIN_COMPLETE_COHORTS`` complete labelled cohorts (one to
  learn from, the newest to validate on). Before that a candidate learns from incomplete cohorts
  too, is itself provisional, and may replace the champion only by beating it beyond doubt, as
  any candidate may: the trigger would buy a training that cannot do what it is for.

Guards, in order: nothing while a training runs; nothing without labels newer than the champion's;
at most one training per newest labelled cohort whatever the trigger (a rejected candidate does
not trigger again until new labels land, so a failing check cannot start a storm); a cool-down of
``cooldown_months`` between trainings (default 1). A failed training run is retried as any run is.

Outcomes: the training promotes its candidate or keeps the champion. Escalation ("needs a
person") is for a retraining that did not help with what it was meant to fix: only when the
trigger was a failing monitor (drift or performance), the training on the newest labels kept the
champion (or left its candidate waiting for a person in manual promotion mode), and that monitor
still fails. A retraining for staleness or a provisional champion that keeps the champion is no
failure: it holds until new labels land. At most one escalation per episode: an episode is the
unbroken run of failing evaluations of that monitor's check, and it ends when the check passes;
a person is called once for it, not every month it lasts.

False triggers, measured (README, "Retraining policy"): the drift and performance triggers fired
on none of 34 undrifted cohorts of replayed simulated worlds (at most 8.8 % with 95 % confidence,
3 / 34 by the rule of three); a 12-month world without a shift trains 3 times over 10 labelled
cohorts (first model, its replacement once two complete cohorts are labelled, one for staleness).

Every decision is appended to the warehouse table ``retraining_decisions`` and reported as an
observation of ``churn_model`` (so it shows on that asset's page in the UI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.entities.model_registry import ModelVersion

from churn_assets.dagster_internals import AssetCheckExecutionRecordStatus
from churn_assets.keys import (
    CALIBRATION_CHECK_KEY,
    CHAMPION_PERFORMANCE_CHECK_KEY,
    CHURN_MODEL,
    DRIFT_CHECK_KEY,
    FEATURES,
    LABELS,
    LABELS_TAG,
    RULE_CHECK_KEY,
    TRAINING_JOB,
)
from churn_assets.partitions import latest_labelled_cohort, month_start, partition_key
from churn_assets.readable import readable
from churn_assets.resources import RetrainingPolicy
from churn_assets.training.config import TrainingConfig
from churn_assets.training.lifecycle import is_provisional
from churn_assets.training.window import MIN_COMPLETE_COHORTS
from churn_assets.warehouse import run_sql_file, table_exists, transaction

SQL = Path(__file__).parent / "retraining_decisions.sql"
RECORDED_SQL = Path(__file__).parent / "decision_recorded.sql"
SEVERITY_RANK = {dg.AssetCheckSeverity.WARN: 1, dg.AssetCheckSeverity.ERROR: 2}


# Triggers that are a monitor failing: what a retraining is meant to fix, and may escalate.
FAILURE_TRIGGERS = ("drift", "performance", "calibration")


@dataclass(frozen=True)
class Trigger:
    kind: str  # drift, performance, calibration, staleness, provisional
    cohort: str  # the cohort (partition) the evidence was observed on
    evidence: str
    kinds: tuple[str, ...] = ()  # every trigger in force with it, itself first
    episode_start: datetime | None = None  # a failing monitor: its first failure in this run


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


EPISODE_LOOKBACK = 200  # check evaluations read back to find where a failing run began


def _episode_start(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey, tier: dg.AssetCheckSeverity
) -> datetime | None:
    """When the unbroken run of failing evaluations of ``key`` (at ``tier`` or above) that the
    newest evaluation belongs to began; None when the newest does not fail."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=EPISODE_LOOKBACK
    )
    start = None
    for record in records:  # newest first
        if not _failed_at(record, tier):
            break
        start = record.create_timestamp
    return datetime.fromtimestamp(start) if start is not None else None


def _check_trigger(
    instance: dg.DagsterInstance,
    kind: str,
    key: dg.AssetCheckKey,
    tier: dg.AssetCheckSeverity,
) -> Trigger | None:
    """A ``kind`` trigger when the newest evaluation of ``key`` failed at ``tier`` or above."""
    record = _latest_check(instance, key)
    if not _failed_at(record, tier):
        return None
    return Trigger(
        kind,
        record.partition or "",
        record.evaluation.description or f"{key.name} failed",
        episode_start=_episode_start(instance, key, tier),
    )


def triggers(
    instance: dg.DagsterInstance,
    policy: RetrainingPolicy,
    champion: ModelVersion,
    newest_labels: str,
) -> list[Trigger]:
    """The triggers in force now, with their evidence."""
    found = []
    drift = _check_trigger(instance, "drift", DRIFT_CHECK_KEY, policy.drift_severity)
    if drift:
        found.append(drift)
    # A persistent failure against the champion's own expected level, or a champion that ranks
    # churners worse than the as-is rule: either way the score no longer earns its keep.
    for key in (CHAMPION_PERFORMANCE_CHECK_KEY, RULE_CHECK_KEY):
        performance = _check_trigger(instance, "performance", key, dg.AssetCheckSeverity.ERROR)
        if performance:
            found.append(performance)
            break
    # Scores that no longer mean the churn they announce: the buckets and the estimate read them.
    calibration = _check_trigger(
        instance, "calibration", CALIBRATION_CHECK_KEY, dg.AssetCheckSeverity.WARN
    )
    if calibration:
        found.append(calibration)
    if is_provisional(champion) and _complete_labelled(instance, newest_labels) >= (
        MIN_COMPLETE_COHORTS
    ):
        found.append(
            Trigger(
                "provisional",
                newest_labels,
                f"champion v{champion.version} was registered only so that something scores "
                "(below the hurdle, or from cohorts with incomplete windows)",
            )
        )
    stale = _staleness(instance, policy, champion, newest_labels)
    return [*found, stale] if stale else found


def _staleness(
    instance: dg.DagsterInstance,
    policy: RetrainingPolicy,
    champion: ModelVersion,
    newest_labels: str,
) -> Trigger | None:
    """The staleness trigger, when the champion was last put to the test more than
    ``stale_after_cohorts`` labelled cohorts ago: by its own validation cohort, or by a training
    on newer labels whose candidate it kept its place against (that training asked what newer
    labels could teach, and the answer was "nothing better"; asking again every cohort after it
    would be a schedule of one training per cohort, not a staleness limit)."""
    learnt_until = champion.tags.get("validation_cohort", "")
    if not (learnt_until and newest_labels):
        return None
    tested = max(learnt_until, _last_tested_on(instance))
    age = _months_apart(tested, newest_labels)
    if age <= policy.stale_after_cohorts:
        return None
    held = ""
    if tested > learnt_until:
        held = f", held against a candidate on labels up to {tested[:7]}"
    return Trigger(
        "staleness",
        newest_labels,
        f"champion v{champion.version} learnt from labels up to {learnt_until[:7]}{held}, "
        f"{age} cohorts older than the newest ({newest_labels[:7]}; limit "
        f"{policy.stale_after_cohorts})",
    )


def _last_tested_on(instance: dg.DagsterInstance) -> str:
    """The newest labels a finished training judged a candidate on ('' when none did)."""
    tested = [
        r.tags.get(LABELS_TAG, "")
        for r in _training_runs(instance)
        if r.status == dg.DagsterRunStatus.SUCCESS
        and not _outcome(instance, r).get("not_trained_because")
    ]
    return max(tested, default="")


def _complete_labelled(instance: dg.DagsterInstance, newest_labels: str) -> int:
    """How many of the labelled cohorts a training on ``newest_labels`` learns from (the newest
    ``window_cohorts`` of them) were built with complete windows, by the ``window_complete``
    their features recorded; a cohort built before that was recorded counts as complete."""
    window = TrainingConfig.model_fields["window_cohorts"].default
    labelled = sorted(
        (p for p in instance.get_materialized_partitions(LABELS) if p <= newest_labels),
        reverse=True,
    )[:window]
    complete = 0
    for cohort in labelled:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=FEATURES, asset_partitions=[cohort]), limit=1
        )
        record = result.records[0] if result.records else None
        flag = record.asset_materialization.metadata.get("window_complete") if record else None
        complete += flag is None or bool(flag.value)
    return complete


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
    escalated_since: Callable[[str, datetime, str], bool] = lambda kind, since, run_id: False,
) -> Decision | None:
    """One decision for this evaluation, or None when no trigger is in force.

    ``escalated_since(kind, when, run_id)``: whether the history holds an escalation for a
    ``kind`` trigger decided at or after ``when`` (the episode's start) about another training
    run than ``run_id``: one call per episode."""
    newest = newest_labels_known(instance, today)
    found = triggers(instance, policy, champion, newest)
    if not found:
        return None
    first = found[0]  # the most urgent: drift, performance, calibration, then the others
    evidence = "; ".join(f"{t.kind}: {t.evidence}" for t in found)
    trigger = Trigger(
        first.kind, first.cohort, evidence, tuple(t.kind for t in found), first.episode_start
    )
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
        return _after_retraining(instance, trigger, newest, done[0], escalated_since)
    last_as_of = max(
        (r.tags.get(LABELS_TAG, "") for r in runs if r.status == dg.DagsterRunStatus.SUCCESS),
        default="",
    )
    if last_as_of and _months_apart(last_as_of, newest) < policy.cooldown_months:
        return Decision(
            trigger, "hold", f"cool-down: last training on labels {last_as_of[:7]}", newest
        )
    return Decision(trigger, "retrain", f"{trigger.kind} with labels up to {newest[:7]}", newest)


def _after_retraining(
    instance: dg.DagsterInstance,
    trigger: Trigger,
    newest: str,
    run: dg.DagsterRun,
    escalated_since: Callable[[str, datetime, str], bool],
) -> Decision:
    """A training on the newest labels is done and a trigger is still in force: hold, or call a
    person once per episode when it was meant to fix a failing monitor that still fails."""
    outcome = _outcome(instance, run)
    if outcome.get("promoted_to_champion") or outcome.get("champion_recalibrated"):
        return Decision(
            trigger, "hold", f"retrained on labels {newest[:7]}; waiting for new labels", newest
        )
    why = (
        f"challenger v{outcome.get('model_version')} awaits a person's promotion"
        if outcome.get("model_version")
        else outcome.get("not_trained_because")
        or f"candidate rejected: {outcome.get('hurdle', 'no better than the champion')}"
    )
    if trigger.kind not in FAILURE_TRIGGERS:
        return Decision(
            trigger,
            "hold",
            f"retrained on labels {newest[:7]} for {trigger.kind}, the champion stays ({why}); "
            "no monitor fails, so nothing needs a person: waiting for new labels",
            newest,
        )
    since = trigger.episode_start
    if since is not None and escalated_since(trigger.kind, since, run.run_id):
        return Decision(
            trigger,
            "hold",
            f"{trigger.kind} still fails after retraining on labels {newest[:7]} ({why}); a "
            f"person was called once for this episode (failing since {since:%Y-%m-%d %H:%M}): "
            "no second call until the check passes",
            newest,
        )
    return Decision(
        trigger,
        "escalate",
        f"retraining on labels {newest[:7]} did not help ({why}) and {trigger.kind} still "
        "fails: needs a person",
        newest,
        run_id=run.run_id,
    )


def escalated_since(warehouse: DuckDBResource, kind: str, since: datetime, run_id: str) -> bool:
    """Whether the decision history holds an escalation for a ``kind`` trigger from ``since``
    about another training run than ``run_id`` (the same one is the same decision, repeated)."""
    with warehouse.get_connection() as conn:
        if not table_exists(conn, "retraining_decisions"):
            return False
        return bool(
            conn.execute(
                "SELECT count(*) > 0 FROM retraining_decisions "
                "WHERE action = 'escalate' AND trigger = ? AND decided_at >= ? "
                "AND coalesce(run_id, '') <> ?",
                [kind, since, run_id],
            ).fetchone()[0]
        )


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
        metadata=readable(
            {
                "trigger": decision.trigger.kind,
                "cohort": decision.trigger.cohort,
                "evidence": decision.trigger.evidence,
                "action": decision.action,
                "reason": decision.reason,
                "newest_labelled_cohort": decision.newest_labels,
                "run_key": decision.run_key,
                "run_id": decision.run_id,
            }
        ),
    )


__all__ = [
    "Decision",
    "Trigger",
    "decide",
    "escalated_since",
    "newest_labels_known",
    "observation",
    "record_decisions",
]
