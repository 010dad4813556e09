"""The summary as text: one vocabulary (pass, warn, error, n/a; drift as weighted PSI), every
line whole, and no line indented (replay's own per-run lines are the indented ones)."""

from __future__ import annotations

from collections.abc import Callable

from churn_assets.alerts.events import clauses
from churn_assets.report.facts import RunFact
from churn_assets.report.models import holder, why_champion
from churn_assets.report.story import Story, next_steps
from churn_assets.settings import CHALLENGER_ALIAS, REGISTERED_MODEL_NAME

Say = Callable[[str], None]
# Monitors in the order of the loop: before labels (drift, estimate), then with labels.
MONITOR_ORDER = (
    "data_drift",
    "prediction_drift",
    "target_drift",
    "estimated_performance",
    "performance",
    "realised_vs_estimated_performance",
    "calibration",
)
# Clauses a headline keeps beside the first: what made a verdict warn, and each trigger.
TELLING = (
    "standing out",
    "segments warn",
    "evidence:",
    "drift:",
    "performance:",
    "calibration:",
    "staleness:",
    "provisional:",
)


def headline(text: str, where: str) -> str:
    """The first clause of ``text`` and those that say why, each whole; how many more are in
    ``where`` (a table or file holding the text in full)."""
    parts = clauses(text)
    kept = parts[:1] + [p for p in parts[1:] if p.startswith(TELLING)]
    left = len(parts) - len(kept)
    return "; ".join(kept) + (f" [{left} more clause(s) in {where}]" if left else "")


def run_line(number: int, run: RunFact) -> str:
    """``#3 2016-05-01 10:02 training_sensor training_job[2016-05] ok (trigger: ...)``."""
    where = f"[{run.partition}]" if run.partition else ""
    outcome = run.status if run.status != "FAILED" else f"failed: {run.reason}"
    trigger = f" (trigger: {headline(run.trigger, 'the run tags')})" if run.trigger else ""
    return f"#{number} {run.run_id[:8]} {run.launched_by} -> {run.job}{where}: {outcome}{trigger}"


def say_runs(story: Story, say: Say, listed: set[str] | None) -> None:
    """Every run once: those not ``listed`` above (all of them when None) here, in time order;
    runs of earlier commands only counted when the caller listed its own."""
    failed = story.failed_runs
    say("\n== runs")
    if listed is None:
        for number, run in enumerate(story.runs, 1):
            say(run_line(number, run))
        said = f"{len(story.runs)} run(s) on this Dagster instance"
    else:
        earlier = sum(r.run_id not in listed for r in story.runs)
        said = (
            f"{len(listed)} run(s) now, listed above as they ran; {earlier} earlier run(s) on this "
            "Dagster instance (`dagster dev` lists them)"
        )
    say(f"{said}; {len(failed)} failed with no later attempt succeeding")
    for run in failed:
        if listed is None or run.run_id not in listed:  # the caller names its own at the end
            say(f"failed and not made good: {run_line(story.runs.index(run) + 1, run)}")
    for job, partition, run_id in story.given_up:
        say(f"gave up: {job}[{partition}] after its attempts (last run {run_id[:8]})")


def say_monitors(story: Story, say: Say) -> None:
    """The latest verdict per cohort and monitor as a grid, then every warn and error whole."""
    if not story.verdicts:
        return
    seen = set(v.monitor for v in story.verdicts)
    monitors = [m for m in MONITOR_ORDER if m in seen] + sorted(seen - set(MONITOR_ORDER))
    latest = {(v.cohort, v.monitor): v.severity for v in story.verdicts}
    cohorts = sorted({v.cohort for v in story.verdicts})
    widths = [max(len(m), 5) for m in monitors]
    say("\n== monitors (monitor_verdicts; the latest verdict per cohort: pass, warn, error, n/a)")
    say("cohort   " + "  ".join(m.ljust(w) for m, w in zip(monitors, widths, strict=True)))
    for cohort in cohorts:
        cells = [
            latest.get((cohort, m), "-").ljust(w) for m, w in zip(monitors, widths, strict=True)
        ]
        say(f"{cohort:%Y-%m}  " + "  ".join(cells).rstrip())
    alarms = story.alarms
    errors = sum(v.severity == "error" for v in alarms)
    say(
        f"\n== warnings and errors ({errors} error(s), {len(alarms) - errors} warning(s), "
        "every evaluation in the order made; drift is measured as weighted PSI)"
    )
    for v in alarms:
        later = [
            w.severity
            for w in story.verdicts
            if (w.cohort, w.monitor) == (v.cohort, v.monitor) and w.evaluated_at > v.evaluated_at
        ]
        again = f" [judged again later: {later[-1]}]" if later else ""
        detail = headline(v.detail, "monitor_verdicts")
        say(f"{v.cohort:%Y-%m} {v.monitor} {v.severity.upper()}{again}: {detail}")


def say_decisions(story: Story, say: Say) -> None:
    if not story.decisions:
        return
    say("\n== retraining decisions (retraining_decisions; escalate = needs a person)")
    for d in story.decisions:
        cohort = f"{d.cohort:%Y-%m}" if d.cohort else "-"
        run = f" (run {d.run_id[:8]})" if d.run_id else ""
        flag = "ESCALATE, needs a person" if d.escalation else d.action
        say(f"{d.decided_at:%Y-%m-%d %H:%M} cohort {cohort} trigger {d.trigger}: {flag}{run}")
        say(f"why: {d.reason}. Evidence: {headline(d.evidence, 'retraining_decisions')}")


def say_alerts(story: Story, say: Say) -> None:
    say(f"\n== alerts ($CHURN_HOME/logs/alerts.log: {len(story.alerts)})")
    for a in story.alerts:
        say(f"{a.at} {a.severity} {a.event} {a.subject}: {headline(a.detail, 'the log')}")


def say_scores(story: Story, say: Say) -> None:
    if story.predictions:
        say("\n== scores (predictions: A call, B offer, C thank)")
        for cohort, version, users, a, b, c in story.predictions:
            say(f"{cohort:%Y-%m} model v{version}: {users} users, A {a}, B {b}, C {c}")
    if story.weeks:
        say("\n== weekly at-risk lists (at_risk_lists)")
        for week, cohort, a, b, new, left in story.weeks:
            say(f"{week} cohort {cohort:%Y-%m}: call {a}, offer {b}, new {new}, left {left}")


def say_models(story: Story, say: Say) -> None:
    say(f"\n== models ({REGISTERED_MODEL_NAME})")
    if not story.versions:
        say("no version registered yet: a first model needs two labelled cohorts")
        return
    for v in story.versions:
        if not v.complete:
            say(f"v{v.version}: registration cut off (no 'promoted' tag), never used")
            continue
        say(
            f"v{v.version}: as of {v.as_of}, validation AUC {v.val_auc:.3f} on its own "
            f"validation cohort {v.validation_cohort}, aliases {', '.join(v.aliases) or '-'}"
        )
    if len({v.validation_cohort for v in story.versions}) > 1:
        say("Validation AUCs come from different cohorts: they rank versions only within one.")
    if story.backtest is not None:
        bt = story.backtest
        figures = ", ".join(
            f"v{v} {auc:.3f}{'' if bt.out_of_time[v] else ' (learnt from it)'}"
            for v, auc in bt.auc.items()
        )
        say(
            f"Same users for every version, cohort {bt.cohort:%Y-%m} ({bt.users} users): "
            f"AUC {figures}"
        )
    champion = story.champion
    say(f"champion: {why_champion(champion, story.changes)}" if champion else "champion: none")
    challenger = holder(story.versions, CHALLENGER_ALIAS)
    if challenger is not None and challenger is not champion:
        say(f"challenger: v{challenger.version}: {challenger.tags.get('comparison', '')}")


def say_next(story: Story, say: Say) -> None:
    say("\n== next")
    for step in next_steps(story):
        say(f"- {step}")
