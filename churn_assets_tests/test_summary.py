"""The summary demo and replay print is held to the records it claims to tell: the Dagster
instance (runs), the warehouse (verdicts, retraining decisions, champion changes), the alert log
and the registry's aliases, on the tiny drifted world replayed once for the suite."""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import duckdb
from mlflow.tracking import MlflowClient

from churn_assets.alerts.events import whole_clauses
from churn_assets.keys import TRIGGER_TAG
from churn_assets.report import Story, gather, next_steps, tell
from churn_assets.report.facts import DecisionFact
from churn_assets.report.models import VersionFact
from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME, churn_paths


def _told(story: Story) -> list[str]:
    lines: list[str] = []
    tell(story, lines.append)
    return "\n".join(lines).splitlines()


def test_the_summary_tells_what_the_instance_and_the_warehouse_hold(replayed_world):
    home, instance = replayed_world["home"], replayed_world["instance"]
    paths = churn_paths({"CHURN_HOME": str(home)})
    story = gather(paths, instance)

    # Runs: every run of the instance, once, oldest first, with its trigger and outcome.
    records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
    assert [r.run_id for r in story.runs] == [r.dagster_run.run_id for r in records]
    for fact, record in zip(story.runs, records, strict=True):
        run = record.dagster_run
        assert fact.trigger == run.tags.get(TRIGGER_TAG, "")
        assert (fact.status == "ok") == (run.status == dg.DagsterRunStatus.SUCCESS)
    replayed = [r.run_id for r in replayed_world["summary"].runs]
    assert [r.run_id for r in story.runs if r.run_id in set(replayed)] == replayed

    with duckdb.connect(str(paths.warehouse), read_only=True) as conn:
        verdicts = conn.execute(
            "SELECT cohort_month, monitor, severity FROM monitor_verdicts ORDER BY evaluated_at"
        ).fetchall()
        escalations = conn.execute(
            "SELECT reason FROM retraining_decisions WHERE action = 'escalate' ORDER BY decided_at"
        ).fetchall()
        changes = conn.execute(
            "SELECT model_version FROM model_promotions ORDER BY changed_at"
        ).fetchall()
    assert [(v.cohort, v.monitor, v.severity) for v in story.verdicts] == verdicts
    alarms = [v for v in verdicts if v[2] in ("warn", "error")]
    assert alarms, "the covariate drift of the tiny world is flagged"
    assert [(v.cohort, v.monitor, v.severity) for v in story.alarms] == alarms
    assert [e.reason for e in story.escalations] == [r[0] for r in escalations]

    log_lines = (
        (home / "logs" / "alerts.log").read_text().splitlines()
        if (home / "logs" / "alerts.log").exists()
        else []
    )
    assert [(a.at, a.event, a.subject) for a in story.alerts] == [
        tuple(line.split("\t")[i] for i in (0, 2, 3)) for line in log_lines
    ]

    client = MlflowClient(paths.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS)
    assert story.champion is not None and story.champion.version == str(champion.version)
    assert changes[-1][0] == story.champion.version

    text = _told(story)
    whole = "\n".join(text)
    # Every run once in the runs section (a retraining decision names its run beside it: an
    # escalation appears when the retrain did not help, which the search's budget decides); every
    # warning, error, escalation and alert; the champion and the next step.
    start = text.index("== runs") + 1
    end = next((i for i in range(start, len(text)) if text[i].startswith("== ")), len(text))
    for run in story.runs:
        assert sum(run.run_id[:8] in line for line in text[start:end]) == 1, run.run_id
    named = {run.run_id[:8] for run in story.runs}
    for decision in story.decisions:
        if decision.run_id:
            assert decision.run_id[:8] in named, decision
            assert any(f"(run {decision.run_id[:8]})" in line for line in text), decision
    for cohort, monitor, severity in alarms:
        assert any(
            line.startswith(f"{cohort:%Y-%m} {monitor} {severity.upper()}") for line in text
        ), (cohort, monitor)
    for (reason,) in escalations:
        assert reason in whole
    for alert in story.alerts:
        assert any(f"{alert.event} {alert.subject}:" in line for line in text), alert
    assert any(line.startswith(f"champion: v{champion.version} ") for line in text)
    steps = text[text.index("== next") + 1 :]
    assert steps and all(line.startswith("- ") for line in steps)
    # One drift figure (weighted PSI), one vocabulary, no indented line for replay's parser.
    assert "drifted share" not in whole and "FAILED" not in whole
    assert not any(line.startswith("  ") for line in text)


def _version(number: str, aliases: tuple[str, ...], validated: str, auc: float) -> VersionFact:
    return VersionFact(number, True, validated, validated, auc, aliases, {})


def test_an_escalation_with_a_challenger_waiting_asks_for_a_promotion_decision():
    """A retraining that kept the champion while the monitor still fails: the next step names
    the escalation and the command that would settle it."""
    story = Story(
        versions=[
            _version("4", (CHAMPION_ALIAS,), "2016-05", 0.71),
            _version("5", ("challenger",), "2016-06", 0.85),
        ],
        decisions=[
            DecisionFact(
                datetime(2026, 1, 1),
                date(2016, 7, 1),
                "drift",
                "drift: weighted PSI 0.3",
                "escalate",
                "retraining did not help and drift still fails: needs a person",
                "r1",
            )
        ],
    )
    steps = next_steps(story)
    assert steps[0].startswith("Needs a person (drift, cohort 2016-07)")
    assert "`churn-assets promote 5 --reason" in steps[1] and "keep v4" in steps[1]
    text = _told(story)
    assert (
        "Validation AUCs come from different cohorts: they rank versions only within one." in text
    )


def test_nothing_to_do_says_so_and_names_the_next_command():
    assert next_steps(Story()) == [
        "Nothing needs a person. When next month's files land, run `churn-assets replay`."
    ]


def test_long_evidence_is_shortened_at_clause_boundaries_never_mid_word():
    text = "drift: weighted PSI 0.2 (warn; warn from 0.1); top: a (PSI 0.7; w 0.1); 3 of 9 moved"
    assert (
        whole_clauses(text, 60)
        == "drift: weighted PSI 0.2 (warn; warn from 0.1) [2 more clause(s)]"
    )
    assert whole_clauses(text, 200) == text
