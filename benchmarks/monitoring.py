"""Do the monitors decide well? Seeds x scenarios of simulated worlds, replayed through the loop.

For each scenario (no drift, segment shift, covariate, concept, one plan's price, outage, schema
change) and seed, a world is simulated with its drift from ``--drift-month`` on, replayed with
``churn-assets replay`` (as a user would, in its own CHURN_HOME), and judged from what the product
recorded:

* detection delay, in cohorts: the first cohort whose features see the drift is cohort D+1 (its
  features read up to the end of month D); its delay is 0 when that cohort's first drift verdict
  (``data_drift`` or ``prediction_drift``) is warn or error, 1 for the next one, ... For
  ``concept`` the first affected cohort is D itself, whose expiries the new churn function
  decides, and detection is its first ``performance`` error (known once its labels land); for
  ``outage`` and ``schema``, the first failed raw check or load of ``user_logs``;
* false alarms per undrifted cohort: cohorts before the first affected one (every cohort without
  drift) on which any monitor (drift, performance, estimated performance, calibration) ever said
  warn or error;
* escalations: "needs a person" decisions of the retraining policy on worlds without a shift;
* estimate error: mean absolute difference between the AUC estimated from the scores when a
  cohort was scored (``performance_estimates``) and the AUC realised once its labels landed, over
  undrifted cohorts; and, for covariate and segment shifts, how many cohorts before its labels
  land the estimate flags the shift (``estimated_performance`` warns; labels land two cohorts
  after scoring, so 2 is the most there is to gain);
* training runs per labelled cohort (first model included);
* AUC / truth: the AUC of the scores the loop served, over the AUC of the simulator's true
  probability on the same users, mean over labelled cohorts before the drift and over the last two.

``--thin-history MONTHS`` lands each world's payment history thinning toward the start of the
data (``simulate(thin_history=...)``), so yearly counts grow cohort by cohort by construction, as
in KKBox's first cohorts; its rows are labelled with the mean months back.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import parse_args, write_section

from churn_assets.partitions import add_months, month_start
from churn_assets.simulator import Drift, parse_drift, simulate
from churn_assets.simulator.thinning import THIN_HISTORY_MEAN
from churn_assets.warehouse import table_exists

SECTION = "## Monitoring that decides"
SCENARIOS = ("none", "segment", "covariate", "concept", "price", "outage", "schema")
# A shift the monitors were not designed around, run on request (--scenarios): one city's
# listening.
UNPLANNED = ("city_decline",)
SMOKE = {
    "args": [
        "--seeds",
        "1",
        "--users",
        "150",
        "--months",
        "5",
        "--drift-month",
        "4",
        "--budget",
        "1",
        "--scenarios",
        "none",
    ],
    "rows": ["none"],
}
FLAGGED = ("warn", "error")
RAW_CHECKS = ("schema", "volume")


@dataclass
class Outcome:
    scenario: str
    seed: int
    runs: int
    failed_runs: int
    delay: float  # cohorts; nan when never detected or nothing to detect
    false_alarms: int
    undrifted_cohorts: int
    trainings: int
    labelled_cohorts: int
    auc_ratio_before: float
    auc_ratio_after: float
    seconds: float
    thin_history: float = 0.0  # mean months back of each user's first landed payment; 0: all
    escalations: int = 0
    estimate_error: float = math.nan  # mean |estimated - realised| AUC, undrifted cohorts
    estimate_lead: float = math.nan  # cohorts before labels the estimate flagged the shift
    # What a perfect estimate would still miss on the same cohorts: the realised AUC's own
    # sampling error (Hanley-McNeil), as an expected absolute difference.
    estimate_noise: float = math.nan


def replay(world: Path, home: Path, budget: float) -> tuple[int, int]:
    """``churn-assets replay`` in its own home; (runs, failed runs) from its closing line."""
    env = {
        **os.environ,
        "CHURN_HOME": str(home),
        "CHURN_TRAINING_BUDGET_S": str(budget),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    env.pop("CHURN_LANDING_DIR", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "churn_assets.cli", "replay", "--landing", str(world / "landing")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    closing = [line for line in done.stdout.splitlines() if " runs, " in line and "failed" in line]
    if not closing:
        raise RuntimeError(f"replay of {world} printed no summary:\n{done.stdout}\n{done.stderr}")
    runs, failed = closing[-1].split(" runs, ")
    return int(runs), int(failed.split(" failed")[0])


def first_verdicts(conn: duckdb.DuckDBPyConnection, monitors: tuple[str, ...]) -> pd.DataFrame:
    """Per cohort, the first verdict of any of ``monitors`` (the alarm raised at scoring time)."""
    return conn.execute(
        "SELECT cohort_month, arg_min(severity, evaluated_at) AS severity FROM monitor_verdicts "
        "WHERE monitor IN (SELECT unnest(?)) GROUP BY 1 ORDER BY 1",
        [list(monitors)],
    ).df()


def alarmed_cohorts(conn: duckdb.DuckDBPyConnection) -> set:
    """Cohorts on which any monitor ever said warn or error."""
    rows = conn.execute(
        "SELECT DISTINCT cohort_month FROM monitor_verdicts WHERE severity IN ('warn', 'error')"
    ).fetchall()
    return {pd.Timestamp(r[0]).date() for r in rows}


def escalations(conn: duckdb.DuckDBPyConnection) -> int:
    """'Needs a person' decisions of the retraining policy (none when it never had to decide)."""
    if not table_exists(conn, "retraining_decisions"):
        return 0
    return conn.execute(
        "SELECT count(*) FROM retraining_decisions WHERE action = 'escalate'"
    ).fetchone()[0]


def estimate_errors(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per cohort: |AUC estimated at scoring - AUC realised| for the version that scored it, and
    the expected absolute error of the realised AUC itself (``noise``): sqrt(2 / pi) times its
    Hanley-McNeil standard error at the cohort's churners and stayers."""
    frame = conn.execute(
        "SELECT e.cohort_month, abs(e.estimate - p.auc) AS error, p.auc, "
        "round(p.users * p.churn_rate) AS churners, p.users FROM performance_estimates e "
        "JOIN model_performance p USING (cohort_month, model_version) WHERE e.metric = 'auc' "
        "AND p.auc IS NOT NULL"
    ).df()
    frame["cohort_month"] = pd.to_datetime(frame["cohort_month"]).dt.date
    frame["noise"] = [
        math.sqrt(2 / math.pi) * hanley_mcneil(a, n, u - n)
        for a, n, u in zip(frame["auc"], frame["churners"], frame["users"], strict=True)
    ]
    return frame.groupby("cohort_month")[["error", "noise"]].mean()


def hanley_mcneil(auc: float, positives: float, negatives: float) -> float:
    """Standard error of an AUC on so many positives and negatives (Hanley & McNeil, 1982)."""
    if positives < 1 or negatives < 1:
        return math.nan
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def estimate_flags(conn: duckdb.DuckDBPyConnection) -> list:
    """Cohorts whose estimated performance warned when they were scored."""
    rows = conn.execute(
        "SELECT DISTINCT cohort_month FROM monitor_verdicts WHERE monitor = "
        "'estimated_performance' AND severity IN ('warn', 'error') ORDER BY 1"
    ).fetchall()
    return [pd.Timestamp(r[0]).date() for r in rows]


def raw_alarms(home: Path) -> list[str]:
    """Months whose user_logs schema or volume check failed (from the Dagster instance)."""
    import dagster as dg

    from churn_assets.dagster_internals import AssetCheckExecutionRecordStatus

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    months = set()
    with dg.DagsterInstance.get() as instance:
        for check in RAW_CHECKS:
            key = dg.AssetCheckKey(dg.AssetKey("user_logs"), check)
            for record in instance.event_log_storage.get_asset_check_execution_history(
                key, limit=1000, status={AssetCheckExecutionRecordStatus.FAILED}
            ):
                if record.partition:
                    months.add(record.partition)
        for run in instance.get_runs(filters=dg.RunsFilter(job_name="load_job")):
            if run.status == dg.DagsterRunStatus.FAILURE and run.tags.get("dagster/partition"):
                months.add(run.tags["dagster/partition"])
    return sorted(months)


def auc_ratios(conn: duckdb.DuckDBPyConnection, truth: pd.DataFrame) -> pd.Series:
    """Per labelled, scored cohort: AUC of the served scores / AUC of the truth, same users."""
    served = conn.execute(
        "SELECT p.msno, p.cohort_month, p.churn_probability, l.is_churn FROM predictions p "
        "JOIN labels l USING (msno, cohort_month)"
    ).df()
    served["cohort_month"] = pd.to_datetime(served["cohort_month"]).dt.date
    joined = served.merge(truth, on=["msno", "cohort_month"])
    ratios = {}
    for cohort, group in joined.groupby("cohort_month"):
        if group["is_churn"].nunique() == 2:
            ratios[cohort] = roc_auc_score(group["is_churn"], group["churn_probability"]) / (
                roc_auc_score(group["is_churn"], group["truth"])
            )
    return pd.Series(ratios).sort_index()


def scenario_drifts(scenario: str, args: argparse.Namespace) -> list[Drift]:
    """The scenario's drift from ``--drift-month`` on (none for ``none``)."""
    drift_month = add_months(month_start(args.start), args.drift_month - 1)
    return [] if scenario == "none" else [parse_drift(f"{scenario}@{drift_month:%Y-%m}")]


def simulate_world(
    scenario: str, seed: int, root: Path, args: argparse.Namespace
) -> tuple[Path, list[Drift]]:
    """The scenario's world for ``seed``, its drift from ``--drift-month`` on; (folder, drifts)."""
    drifts = scenario_drifts(scenario, args)
    world = root / f"{scenario}-{seed}"
    simulate(
        world,
        users=args.users,
        start=args.start,
        months=args.months,
        seed=seed,
        drifts=drifts,
        thin_history=args.thin_history,
    )
    return world, drifts


def judge(scenario: str, seed: int, root: Path, args: argparse.Namespace) -> Outcome:
    started = time.monotonic()
    world, drifts = simulate_world(scenario, seed, root, args)
    runs, failed = replay(world, world / "home", args.budget)
    return measure(scenario, seed, world, drifts, (runs, failed), args, started)


def judge_kept(world: Path, args: argparse.Namespace) -> Outcome:
    """A world replayed earlier (``--keep``), judged again from what its home recorded."""
    scenario, _, seed = world.name.rpartition("-")
    drifts = scenario_drifts(scenario, args)
    outcome = measure(scenario, int(seed), world, drifts, run_counts(world / "home"), args, 0.0)
    outcome.seconds = math.nan  # not replayed now; the first judgement's line has the time
    return outcome


def run_counts(home: Path) -> tuple[int, int]:
    """(runs, failed runs) in a replayed home's Dagster instance."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        failed = sum(1 for r in runs if r.status == dg.DagsterRunStatus.FAILURE)
    return len(runs), failed


def measure(
    scenario: str,
    seed: int,
    world: Path,
    drifts: list[Drift],
    counts: tuple[int, int],
    args: argparse.Namespace,
    started: float,
) -> Outcome:
    """Every measure of one replayed world, from its truth and what its home recorded."""
    runs, failed = counts
    drift_month = drifts[0].month if drifts else None
    home = world / "home"
    first_affected = None
    if drifts:
        first_affected = drift_month if scenario == "concept" else add_months(drift_month, 1)
    truth = pd.read_csv(world / "truth" / "churn_probability.csv")
    truth = truth.rename(columns={"churn_probability": "truth"})[["msno", "cohort_month", "truth"]]
    truth["cohort_month"] = pd.to_datetime(truth["cohort_month"]).dt.date
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        drift = first_verdicts(conn, ("data_drift", "prediction_drift"))
        performance = first_verdicts(conn, ("performance",))
        ratios = auc_ratios(conn, truth)
        labelled = conn.execute("SELECT count(DISTINCT cohort_month) FROM labels").fetchone()[0]
        alarmed = alarmed_cohorts(conn)
        escalated = escalations(conn)
        errors = (
            estimate_errors(conn)
            if _has(conn, "performance_estimates")
            else pd.DataFrame(columns=["error", "noise"])
        )
        flagged = estimate_flags(conn)
    drift["cohort_month"] = pd.to_datetime(drift["cohort_month"]).dt.date
    performance["cohort_month"] = pd.to_datetime(performance["cohort_month"]).dt.date
    undrifted = drift[[first_affected is None or c < first_affected for c in drift.cohort_month]]
    false_alarms = sum(1 for c in undrifted.cohort_month if c in alarmed)
    quiet_errors = errors[[first_affected is None or c < first_affected for c in errors.index]]
    lead = math.nan
    if first_affected is not None and scenario in ("covariate", "segment"):
        early = [c for c in flagged if c >= first_affected]
        # Labels of the first affected cohort land two cohorts after it is scored: an estimate
        # that warns on it leads them by 2, on the next one by 1, two cohorts on by nothing.
        if early:
            late_by = (early[0].year - first_affected.year) * 12 + (
                early[0].month - first_affected.month
            )
            lead = float(max(2 - late_by, 0))
    if first_affected is None:
        delay = math.nan
    else:
        if scenario == "concept":
            found = list(performance[performance["severity"] == "error"]["cohort_month"])
        elif scenario in ("outage", "schema"):
            found = [add_months(month_start(m), 1) for m in raw_alarms(home)]
        else:
            found = list(drift[drift["severity"].isin(FLAGGED)]["cohort_month"])
        later = sorted(c for c in found if c >= first_affected)
        delay = (
            (later[0].year - first_affected.year) * 12 + later[0].month - first_affected.month
            if later
            else math.nan
        )
    before = ratios[[first_affected is None or c < first_affected for c in ratios.index]]
    return Outcome(
        scenario,
        seed,
        runs,
        failed,
        delay,
        false_alarms,
        len(undrifted),
        trainings(home),
        int(labelled),
        float(before.mean()) if len(before) else math.nan,
        float(ratios.tail(2).mean()) if len(ratios) else math.nan,
        time.monotonic() - started if started else math.nan,
        args.thin_history,
        escalated if first_affected is None else 0,
        float(quiet_errors["error"].mean()) if len(quiet_errors) else math.nan,
        lead,
        float(quiet_errors["noise"].mean()) if len(quiet_errors) else math.nan,
    )


def _has(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()[0]
    )


def trainings(home: Path) -> int:
    """Training runs the loop made (every candidate FLAML fitted, registered or not)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("churn")
    if experiment is None:
        return 0
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    return sum(1 for r in runs if "candidate_status" in r.data.tags)


def _row(scenario: str, thin_history: float, group: pd.DataFrame) -> str:
    """One table row: a scenario's worlds (on a thinning history, labelled with its mean)."""
    detected = group["delay"].dropna()
    label = f"{scenario}, thin history {thin_history:g}" if thin_history else scenario
    return (
        f"| {label} | {len(group)} | {int(group['failed_runs'].sum())} | "
        + (
            "-"
            if scenario == "none"
            else f"{len(detected)}/{len(group)}: "
            + (", ".join(str(int(d)) for d in detected) or "none")
        )
        + f" | {int(group['false_alarms'].sum())}/{int(group['undrifted_cohorts'].sum())} | "
        f"{group['trainings'].sum() / max(group['labelled_cohorts'].sum(), 1):.2f} | "
        f"{_figure(group['auc_ratio_before'].mean())} | "
        f"{_figure(group['auc_ratio_after'].mean())} | {int(group['escalations'].sum())} | "
        f"{_figure(group['estimate_error'].mean())} | "
        f"{_figure(group['estimate_noise'].mean())} | "
        f"{_leads(group) if scenario in ('covariate', 'segment') else '-'} | "
        f"{_seconds(group['seconds'].mean())} |"
    )


def _seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def _leads(group: pd.DataFrame) -> str:
    """Cohorts before labels the estimate flagged each world's shift ('-': it did not)."""
    return ", ".join("-" if math.isnan(v) else str(int(v)) for v in group["estimate_lead"])


def _thinning(frame: pd.DataFrame) -> str:
    """How the worlds' payment histories thin, as the heading sentence says it ('' when none)."""
    means = sorted({float(m) for m in frame["thin_history"] if m})
    if not means:
        return ""
    shown = ", ".join(f"{m:g}" for m in means)
    return f", payment history thinning toward the data's start ({shown} months back on average)"


def render(outcomes: list[Outcome], args: argparse.Namespace) -> str:
    frame = pd.DataFrame([o.__dict__ for o in outcomes])
    rows = [
        _row(scenario, thin_history, group)
        for (scenario, thin_history), group in frame.groupby(
            ["scenario", "thin_history"], sort=False
        )
    ]
    undrifted = frame["undrifted_cohorts"].sum()
    alarm_rate = frame["false_alarms"].sum() / undrifted if undrifted else math.nan
    quiet = frame[frame["scenario"] == "none"]
    quiet_per_label = quiet["trainings"].sum() / max(quiet["labelled_cohorts"].sum(), 1)
    shifts = frame[frame["scenario"].isin(["segment", "covariate"])]
    unplanned = frame[frame["scenario"].isin(UNPLANNED)]
    concept = frame[frame["scenario"] == "concept"]
    return "\n".join(
        [
            SECTION,
            "",
            f"{args.users} users, {args.months} months from {args.start}, drift from month "
            f"{args.drift_month}{_thinning(frame)}, FLAML budget {args.budget:g} s, seeds "
            f"{', '.join(str(s) for s in sorted({o.seed for o in outcomes}))}. Each world is "
            "replayed by "
            "`churn-assets replay` and judged from what the loop recorded (see the script's "
            "docstring for each measure).",
            "",
            "| scenario | worlds | failed runs | detected: delay in cohorts | false alarms / "
            "undrifted cohorts | trainings per labelled cohort | AUC/truth before | AUC/truth "
            "last two | escalations without a shift | estimated vs realised AUC, mean abs. "
            "error | realised AUC's own noise, mean abs. | estimate ahead of labels, cohorts | "
            "s per world |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Targets:",
            f"- segment or covariate shift flagged in its first or second cohort: "
            f"{_count(shifts['delay'].le(1))} of {len(shifts)} worlds;",
            f"- concept shift caught by performance once its labels land: "
            f"{_count(concept['delay'].notna())} of {len(concept)} worlds; AUC/truth of the last "
            f"two cohorts within 0.02 of before: "
            f"{_count((concept['auc_ratio_before'] - concept['auc_ratio_after']).le(0.02))} of "
            f"{len(concept)};",
            f"- false alarms (any monitor's warn or error before a shift): {alarm_rate:.3f} per "
            "undrifted cohort (target at most 1 in 50);",
            f"- on worlds without a shift: {quiet_per_label:.2f} training runs per labelled "
            f"cohort (target at most 0.4), {int(quiet['escalations'].sum())} escalations "
            "(target 0);",
            f"- estimated against realised AUC on undrifted cohorts: mean absolute error "
            f"{_figure(frame['estimate_error'].mean())} (target at most 0.02); the realised AUC "
            f"alone strays {_figure(frame['estimate_noise'].mean())} from its expectation on "
            "the same cohorts (sampling noise a perfect estimate would still show).",
            *(
                [
                    f"- shifts the monitors were not designed around ({', '.join(UNPLANNED)}): "
                    f"flagged in their first or second cohort in "
                    f"{_count(unplanned['delay'].le(1))} of {len(unplanned)} worlds."
                ]
                if len(unplanned)
                else []
            ),
        ]
    )


def _figure(value: float) -> str:
    """A ratio to three places, or '-' where there was nothing to measure (no scored labels)."""
    return "-" if math.isnan(value) else f"{value:.3f}"


def _count(mask: pd.Series) -> int:
    return int(mask.fillna(False).sum())


def logged_outcomes(logs: list[Path]) -> list[Outcome]:
    """The outcomes a run of this script printed, one ``Outcome(...)`` line each."""
    return [
        eval(line, {"Outcome": Outcome, "nan": math.nan})  # lines this script printed
        for log in logs
        for line in log.read_text().splitlines()
        if line.startswith("Outcome(")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--start", default="2016-01")
    parser.add_argument("--months", type=int, default=13)
    parser.add_argument("--drift-month", type=int, default=7, help="1-based month of the world")
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--first-seed", type=int, default=1, help="to split seeds across runs")
    parser.add_argument(
        "--thin-history",
        type=float,
        nargs="?",
        const=THIN_HISTORY_MEAN,
        default=0.0,
        metavar="MONTHS",
        help="payment history thinning toward the data's start, MONTHS back on average "
        f"(alone: {THIN_HISTORY_MEAN:g}); 0: every world lands its whole history",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="simulate and replay the worlds in this folder and keep them (default: a temporary "
        "folder, removed at the end)",
    )
    parser.add_argument(
        "--judge-kept",
        type=Path,
        metavar="DIR",
        help="judge again the worlds a run kept in DIR (--keep), replaying nothing: each "
        "subfolder SCENARIO-SEED with its home; the other options must be those of that run "
        "(with --from-logs, each world's replay time is taken from its logged line)",
    )
    parser.add_argument(
        "--from-logs",
        nargs="*",
        type=Path,
        help="render the section from the outcome lines these runs printed, running nothing",
    )
    args = parse_args(parser, SMOKE["args"])
    if args.from_logs and not args.judge_kept:
        outcomes = logged_outcomes(args.from_logs)
        order = (*SCENARIOS, *UNPLANNED)
        outcomes.sort(key=lambda o: (order.index(o.scenario), o.seed))
        args.seeds = len({o.seed for o in outcomes})
        print(write_section(args.output, SECTION, render(outcomes, args)))
        return
    if args.judge_kept:
        order = (*SCENARIOS, *UNPLANNED)
        kept = sorted(
            (w for w in args.judge_kept.iterdir() if (w / "home" / "warehouse.duckdb").exists()),
            key=lambda w: (int(w.name.rpartition("-")[2]), order.index(w.name.rpartition("-")[0])),
        )
        outcomes = [judge_kept(world, args) for world in kept]
        # The replay's own time, from the lines its run printed (--from-logs), when given.
        timed = {(o.scenario, o.seed): o.seconds for o in logged_outcomes(args.from_logs or [])}
        for outcome in outcomes:
            outcome.seconds = timed.get((outcome.scenario, outcome.seed), math.nan)
            print(outcome, flush=True)
        args.seeds = len({o.seed for o in outcomes})
        print(write_section(args.output, SECTION, render(outcomes, args)))
        return
    outcomes = []
    scenarios = args.scenarios.split(",")
    planned = len(scenarios) * args.seeds
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.nullcontext(str(args.keep))
        if args.keep
        else tempfile.TemporaryDirectory(prefix="churn_monitoring_")
    ) as folder:
        # Seed by seed, every scenario each time: a run stopped early still covers them all, and
        # the section is rewritten after each world with how many are in.
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for scenario in scenarios:
                outcome = judge(scenario, seed, Path(folder), args)
                print(outcome, flush=True)
                outcomes.append(outcome)
                section = render(outcomes, args)
                if len(outcomes) < planned:
                    section += f"\n\n(partial: {len(outcomes)} of {planned} worlds so far)"
                write_section(args.output, SECTION, section)
    print(write_section(args.output, SECTION, render(outcomes, args)))


if __name__ == "__main__":
    main()
