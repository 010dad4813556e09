"""Everything the summary says, gathered once from the instance, the warehouse, the registry and
the alert log, and what a person should do next.

The summary's text is rendered from a :class:`Story` only, so a test can hold the story to the
instance and the warehouse it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
import duckdb

from churn_assets.alerts.channels import alert_log
from churn_assets.report.facts import (
    AlertFact,
    DecisionFact,
    RunFact,
    VerdictFact,
    alert_facts,
    decision_facts,
    run_facts,
    verdict_facts,
)
from churn_assets.report.models import (
    Backtest,
    ChampionChange,
    VersionFact,
    challenger_waiting,
    champion_changes,
    holder,
    newest_backtest,
    version_facts,
)
from churn_assets.settings import CHAMPION_ALIAS, ChurnPaths
from churn_assets.warehouse import table_exists

ALARMS = ("warn", "error")


@dataclass
class Story:
    runs: list[RunFact] = field(default_factory=list)
    verdicts: list[VerdictFact] = field(default_factory=list)
    decisions: list[DecisionFact] = field(default_factory=list)
    alerts: list[AlertFact] = field(default_factory=list)
    versions: list[VersionFact] = field(default_factory=list)
    changes: list[ChampionChange] = field(default_factory=list)
    backtest: Backtest | None = None
    predictions: list[tuple] = field(default_factory=list)  # cohort, version, users, A, B, C
    weeks: list[tuple] = field(default_factory=list)  # week, cohort, call, offer, new, left
    given_up: list[tuple[str, str, str]] = field(default_factory=list)  # job, partition, run

    @property
    def alarms(self) -> list[VerdictFact]:
        """Every verdict that warned or erred, in the order evaluated."""
        return [v for v in self.verdicts if v.severity in ALARMS]

    @property
    def escalations(self) -> list[DecisionFact]:
        return [d for d in self.decisions if d.escalation]

    @property
    def failed_runs(self) -> list[RunFact]:
        """Failed runs that no attempt of the same request made good."""
        healed = {r.request for r in self.runs if r.status == "ok"}
        return [r for r in self.runs if r.status == "FAILED" and r.request not in healed]

    @property
    def champion(self) -> VersionFact | None:
        return holder(self.versions, CHAMPION_ALIAS)


def _scores(conn: duckdb.DuckDBPyConnection) -> tuple[list[tuple], list[tuple]]:
    predictions, weeks = [], []
    if table_exists(conn, "predictions"):
        predictions = conn.execute(
            "SELECT cohort_month, model_version, count(*), count(*) FILTER (bucket = 'A'), "
            "count(*) FILTER (bucket = 'B'), count(*) FILTER (bucket = 'C') "
            "FROM predictions GROUP BY ALL ORDER BY cohort_month"
        ).fetchall()
    if table_exists(conn, "at_risk_lists"):
        weeks = conn.execute(
            "SELECT week, any_value(cohort_month), count(*) FILTER (bucket = 'A' AND change <> "
            "'left'), count(*) FILTER (bucket = 'B' AND change <> 'left'), "
            "count(*) FILTER (change = 'new'), count(*) FILTER (change = 'left') "
            "FROM at_risk_lists GROUP BY week ORDER BY week"
        ).fetchall()
    return predictions, weeks


def gather(
    paths: ChurnPaths,
    instance: dg.DagsterInstance,
    given_up: list[tuple[str, str, str]] | None = None,
) -> Story:
    """The story as the instance, the warehouse, the registry and the alert log tell it."""
    story = Story(runs=run_facts(instance), given_up=list(given_up or []))
    story.alerts = alert_facts(alert_log(paths.home))
    if paths.warehouse.exists():
        with duckdb.connect(str(paths.warehouse), read_only=True) as conn:
            story.verdicts = verdict_facts(conn)
            story.decisions = decision_facts(conn)
            story.changes = champion_changes(conn)
            story.backtest = newest_backtest(conn)
            story.predictions, story.weeks = _scores(conn)
    if story.changes or story.runs:
        story.versions = version_facts(paths.mlflow_tracking_uri)
    return story


# Where each monitor's verdict is shown in the UI (the asset whose check gives it).
MONITOR_ASSET = {
    "data_drift": "drift_report",
    "prediction_drift": "drift_report",
    "target_drift": "drift_report",
    "estimated_performance": "performance_estimate",
}
# What the retraining policy acts on (automation/retraining.py): the feature_drift check at its
# default tier (warn) and a persistent performance failure (error).
POLICY_ACTS_ON = {("data_drift", "warn"), ("data_drift", "error"), ("performance", "error")}


def open_escalations(story: Story) -> list[DecisionFact]:
    """Escalations no change of champion has answered since."""
    last = max((c.changed_at for c in story.changes), default=None)
    return [e for e in story.escalations if last is None or e.decided_at > last]


def standing_alarms(story: Story) -> list[VerdictFact]:
    """Per monitor, its verdict on the newest cohort it judged, when that warns or errs."""
    newest: dict[str, VerdictFact] = {}
    for v in story.verdicts:  # in the order evaluated: the last of the newest cohort wins
        if v.monitor not in newest or v.cohort >= newest[v.monitor].cohort:
            newest[v.monitor] = v
    return [v for v in newest.values() if v.severity in ALARMS]


def _promotion_step(story: Story, waiting: VersionFact, champion: VersionFact) -> str:
    figures = ""
    bt = story.backtest
    if bt is not None and waiting.version in bt.auc and champion.version in bt.auc:
        figures = (
            f" (AUC on the same {bt.users} users of {bt.cohort:%Y-%m}: v{waiting.version} "
            f"{bt.auc[waiting.version]:.3f}, v{champion.version} {bt.auc[champion.version]:.3f})"
        )
    return (
        f"Decide between challenger v{waiting.version} and champion v{champion.version}"
        f'{figures}: `churn-assets promote {waiting.version} --reason "..."`, or keep '
        f"v{champion.version}."
    )


def next_steps(story: Story) -> list[str]:
    """What a person would do now, most urgent first; always at least one line."""
    steps = []
    if story.failed_runs or story.given_up:
        steps.append(
            "A run failed (its reason is above): fix what it names (a landing file, a setting), "
            "then run `churn-assets replay`; it retries failed runs and repeats no finished one."
        )
    champion, waiting = story.champion, challenger_waiting(story.versions)
    for e in open_escalations(story):
        steps.append(f"Needs a person ({e.trigger}, cohort {_month(e)}): {e.reason}.")
    if waiting is not None and champion is not None:
        steps.append(_promotion_step(story, waiting, champion))
    for v in standing_alarms(story):
        asset = MONITOR_ASSET.get(v.monitor, "model_performance")
        acts = (
            "the retraining policy acts on it when labels newer than the champion's land"
            if (v.monitor, v.severity) in POLICY_ACTS_ON
            else "the retraining policy does not act on it: judge it and decide"
        )
        steps.append(
            f"{v.monitor} is {v.severity} on cohort {v.cohort:%Y-%m}: see asset {asset} in "
            f"`dagster dev`; {acts}."
        )
    if not steps:
        steps.append(
            "Nothing needs a person. When next month's files land, run `churn-assets replay`."
        )
    if champion is not None:
        steps.append(f"Serve champion v{champion.version}'s scores: `churn-assets serve`.")
    return steps


def _month(decision: DecisionFact) -> str:
    return f"{decision.cohort:%Y-%m}" if decision.cohort else "-"
