"""``churn-assets``: simulate a world, replay the production loop over it, run the demo, or serve
scores over HTTP.

The command sets the DESIGN §1 defaults (CHURN_HOME, DAGSTER_HOME under it) before Dagster loads,
so the runs it makes show up in ``dagster dev`` started with the same DAGSTER_HOME.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from churn_assets.home_lock import HomeBusyError, home_lock, refuse_while_a_daemon_runs
from churn_assets.keys import PROMOTION_JOB
from churn_assets.partitions import month_start
from churn_assets.progress import Progress
from churn_assets.quiet import quiet_dagster_notes
from churn_assets.settings import (
    DEFAULT_REPORTS_URL,
    REPORTS_VARIABLES,
    check_environment,
    check_home,
    check_tracking_server,
    churn_paths,
    read_variables,
)
from churn_assets.simulator.thinning import THIN_HISTORY_MEAN

# Exit codes (README, "Commands"): 0 done; 1 a run failed (each printed with its reason);
# 2 the request was refused (bad arguments or input, unknown version, nothing to roll back to);
# 3 another command holds this CHURN_HOME.
EXIT_OK, EXIT_RUN_FAILED, EXIT_REFUSED, EXIT_BUSY = 0, 1, 2, 3
# Interrupted (SIGINT or SIGTERM), as shells report a command Ctrl-C ended: 128 + SIGINT.
EXIT_INTERRUPTED = 130
# Set by the first SIGINT or SIGTERM: a replay stops after the run it cuts short.
INTERRUPTED = threading.Event()

# The instance `dagster dev` gets under CHURN_HOME: one run at a time, since the DuckDB warehouse
# takes a single writer, no telemetry, and no first-run pop-up in the UI.
DAGSTER_YAML = """\
concurrency:
  runs:
    max_concurrent_runs: 1
# A launched run whose process died is marked failed (and then retried by the sensors).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
telemetry:
  enabled: false
nux:
  enabled: false
"""


def _prepare_environment(landing: str | None = None) -> None:
    """The home ready to write in (or refused, naming why), DAGSTER_HOME under it by default."""
    paths = churn_paths()
    check_home(paths.home)
    check_tracking_server(paths.mlflow_tracking_uri)
    os.environ.setdefault("CHURN_HOME", str(paths.home))
    os.environ.setdefault("DAGSTER_HOME", str(paths.dagster_home))
    if landing:
        os.environ["CHURN_LANDING_DIR"] = str(Path(landing).resolve())
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = dagster_home / "dagster.yaml"
    if not instance_config.exists():
        instance_config.write_text(DAGSTER_YAML)


def cmd_simulate(args: argparse.Namespace) -> int:
    from churn_assets.simulator import (
        describe_world,
        draw_world,
        parse_drift,
        parse_late,
        parse_missing,
        simulate,
    )

    if args.fuzz is not None:
        spec = draw_world(args.fuzz)
        print(f"world {args.fuzz}: {describe_world(spec)}")
    else:
        spec = {
            "users": args.users,
            "start": args.start,
            "months": args.months,
            "seed": args.seed,
            "drifts": [parse_drift(d) for d in args.drift],
            "history_months": args.history_months,
            "degenerate": args.degenerate,
            "late": [parse_late(text) for text in args.late],
            "missing": [parse_missing(text) for text in args.missing],
            "member_changes": args.member_changes,
            "thin_history": args.thin_history,
        }
    summary = simulate(Path(args.out), **spec, progress=_simulate_progress)
    print(f"landing: {summary.landing_dir}")
    print(f"truth:   {summary.truth_dir}")
    print(f"users {summary.users}, months {summary.months[0]:%Y-%m}..{summary.months[-1]:%Y-%m}")
    print("rows: " + ", ".join(f"{k} {v}" for k, v in summary.rows.items()))
    return 0


def _simulate_progress(total: int) -> Progress:
    return Progress(total, "simulate", "step")


@contextlib.contextmanager
def _dagster_log(verbose: bool) -> Iterator[Path | None]:
    """Dagster's own log (step logs, tracebacks, warnings) into a file under CHURN_HOME.

    The command prints one line per run instead, with the reason of a failure; ``--verbose``
    leaves Dagster's log on the terminal.
    """
    if verbose:
        yield None
        return
    path = churn_paths().home / "logs" / "churn-assets.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle, contextlib.redirect_stderr(handle):
        handle.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(sys.argv)}\n")
        logging.captureWarnings(True)
        try:
            yield path
        finally:
            logging.captureWarnings(False)


def _run_replay(landing: Path, through: str | None, verbose: bool) -> object:
    """Replay under the home's lock, revealing a simulated world's files as they arrive."""
    paths = churn_paths()
    terminal = sys.stderr  # before Dagster's log takes stderr over: the bar's place

    def progress(total: int) -> Progress:
        # Replay says a line per month and per run already: no more lines without a terminal.
        return Progress(total, "replay", "month", stream=terminal, lines=False)

    with home_lock(paths.home, "replay"):
        arrivals = None
        from churn_assets.replay import staged_arrivals

        arrivals = staged_arrivals(landing, paths.home)
        if arrivals is not None:
            # Definitions read the landing folder from the environment: point them at the
            # staging folder the arrivals fill.
            os.environ["CHURN_LANDING_DIR"] = str(arrivals.staged)
        with _dagster_log(verbose) as log_file:
            import dagster as dg

            from churn_assets.definitions import build_definitions
            from churn_assets.replay import replay

            with dg.DagsterInstance.get() as instance:
                refuse_while_a_daemon_runs(instance, paths.home)
                try:
                    summary = replay(
                        build_definitions(),
                        instance,
                        landing,
                        through=month_start(through) if through else None,
                        arrivals=arrivals,
                        tracking_uri=paths.mlflow_tracking_uri,
                        log=_stdout,
                        interrupted=INTERRUPTED.is_set,
                        # A bar on a terminal; Dagster's own log on it (--verbose) would tear it.
                        progress=None if verbose else progress,
                    )
                except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):
                    # Ctrl-C inside a run reaches here as Dagster's own interruption.
                    _mark_interrupted(instance, paths.mlflow_tracking_uri)
                    raise KeyboardInterrupt from None
        if log_file is not None:
            print(f"Dagster's log: {log_file}")
        return summary


def _mark_interrupted(instance: object, tracking_uri: str) -> None:
    """The run cut short is marked failed (with its MLflow run) before the lock is let go, so
    the next replay retries it: this replay holds the home, so its unfinished runs are its own."""
    from churn_assets.automation.reaper import end_orphaned_mlflow_runs, reap_orphaned_runs

    with contextlib.suppress(Exception):  # interrupted: do what can be done, say the rest
        reap_orphaned_runs(instance)
        end_orphaned_mlflow_runs(instance, tracking_uri)


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C and SIGTERM stop a command: at once where it is, or after the run under way where
    Dagster catches the interruption and fails the run (replay then stops)."""
    INTERRUPTED.set()
    raise KeyboardInterrupt


def _stdout(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def _report_runs(summary) -> int:
    failed, unhealed = summary.failed_runs, summary.unhealed_failures
    healed = len(failed) - len(unhealed)
    print(
        f"{len(summary.runs)} runs, {len(failed)} failed"
        + (f" ({healed} retried with success)" if healed else "")
    )
    for run in unhealed:
        print(f"  FAILED {run.job}[{run.partition or '-'}] run {run.run_id}: {run.reason}")
    # Failed in an earlier replay, attempts used up, nothing made good since: still broken.
    earlier = [g for g in summary.given_up if g[2] not in {r.run_id for r in unhealed}]
    for job, partition, run_id in earlier:
        print(
            f"  GAVE UP {job}[{partition}] after its attempts (last run {run_id}): fix its "
            "input and replay again"
        )
    return EXIT_RUN_FAILED if unhealed or earlier else EXIT_OK


def _print_summary(summary) -> None:
    """The story of the home after a replay (churn_assets.report); the runs this replay made
    were printed as they ran, so only earlier ones are counted, and its failures are named by
    the closing lines (``_report_runs``). A home another command is
    writing cannot be read: said in one line, the replay's own outcome stands."""
    import duckdb
    from mlflow.exceptions import MlflowException

    from churn_assets.report import print_summary

    try:
        with dg.DagsterInstance.get() as instance:
            print_summary(
                churn_paths(),
                instance,
                listed={r.run_id for r in summary.runs},
            )
    except (duckdb.Error, MlflowException, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"\nno summary: the home could not be read ({first})")


def cmd_replay(args: argparse.Namespace) -> int:
    _prepare_environment(args.landing)
    summary = _run_replay(churn_paths().landing, args.through, args.verbose)
    _print_summary(summary)
    return _report_runs(summary)


def cmd_demo(args: argparse.Namespace) -> int:
    from churn_assets.simulator import parse_drift, simulate

    _prepare_environment()
    os.environ.setdefault("CHURN_TRAINING_BUDGET_S", str(args.budget))
    paths = churn_paths()
    started = time.monotonic()
    if (paths.home / "truth").exists() and paths.landing.exists():
        print(f"reusing the simulated world in {paths.home} (delete it to start over)")
    else:
        simulate(
            paths.home,
            users=args.users,
            start=args.start,
            months=args.months,
            seed=args.seed,
            drifts=[parse_drift(args.drift)],
            progress=_simulate_progress,
        )
        print(f"simulated {args.users} users over {args.months} months into {paths.landing}")
    summary = _run_replay(paths.landing, None, args.verbose)
    _print_summary(summary)
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s. Browse it with:")
    print(
        f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} CHURN_HOME={paths.home} "
        "PYTHONWARNINGS='ignore:Function `dev_command` is superseded' dagster dev"
    )
    print(f"  mlflow ui --backend-store-uri {paths.mlflow_tracking_uri}")
    reports_url = read_variables(REPORTS_VARIABLES).get("public_url", DEFAULT_REPORTS_URL)
    print(f"  CHURN_HOME={paths.home} churn-assets serve   # reports at {reports_url}/")
    return _report_runs(summary)


def _run_lifecycle_job(job_name: str, op_name: str, config: dict) -> int:
    """Run a lifecycle job on the project's Dagster instance, so the UI shows it like any run."""
    import dagster as dg

    from churn_assets.definitions import build_definitions
    from churn_assets.run_failures import first_step_failure

    _prepare_environment()
    with home_lock(churn_paths().home, job_name), _dagster_log(verbose=False):
        job = build_definitions().resolve_job_def(job_name)
        with dg.DagsterInstance.get() as instance:
            refuse_while_a_daemon_runs(instance, churn_paths().home)
            result = job.execute_in_process(
                run_config={
                    "ops": {op_name: {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
                },
                instance=instance,
                raise_on_error=False,
            )
    if result.success:
        return EXIT_OK
    failure = first_step_failure(result.all_events)
    if failure is not None and failure.refused:  # the job said no (unknown version, ...)
        print(f"churn-assets: {failure.message}", file=sys.stderr)
        return EXIT_REFUSED
    detail = failure.message if failure else "run failed"
    print(f"churn-assets: {detail} (run {result.run_id})", file=sys.stderr)
    return EXIT_RUN_FAILED


def _champion_change(action: str, version: str, reason: str) -> int:
    code = _run_lifecycle_job(
        PROMOTION_JOB,
        "change_champion_op",
        {"action": action, "version": version, "reason": reason},
    )
    if code == 0:
        from churn_assets.resources import default_resources

        champion = default_resources()["registry"].champion()
        print(f"champion is now v{champion.version}")
    return code


def cmd_promote(args: argparse.Namespace) -> int:
    return _champion_change("promote", args.version, args.reason)


def cmd_rollback(args: argparse.Namespace) -> int:
    return _champion_change("rollback", args.to or "", args.reason)


def cmd_retract(args: argparse.Namespace) -> int:
    """Take back the rows of files that have left the landing folder (churn_assets.retraction)."""
    from churn_assets.replay import staged_arrivals

    _prepare_environment(args.landing)
    paths = churn_paths()
    if (arrivals := staged_arrivals(paths.landing, paths.home)) is not None:
        os.environ["CHURN_LANDING_DIR"] = str(arrivals.staged)  # what the loads read
    month = month_start(args.month) if args.month else None
    with home_lock(paths.home, "retract"), _dagster_log(verbose=False):
        from churn_assets.definitions import build_definitions
        from churn_assets.retraction import RetractionFailed, retract

        with dg.DagsterInstance.get() as instance:
            refuse_while_a_daemon_runs(instance, paths.home)
            try:
                done = retract(build_definitions(), instance, args.table, month)
            except RetractionFailed as exc:
                print(f"churn-assets retract: {exc}", file=sys.stderr)
                return EXIT_RUN_FAILED
    print(done.describe())
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until stopped; it reads the home (registry, online store) and never takes its lock,
    so it runs beside replays and the daemon."""
    from churn_assets.serving.server import serve

    paths = churn_paths()
    check_tracking_server(paths.mlflow_tracking_uri)
    os.environ.setdefault("CHURN_HOME", str(paths.home))
    # uvicorn stops gracefully on SIGINT or SIGTERM, then passes the signal on: a clean stop.
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.host, args.port)
    return EXIT_OK


def _add_world_knobs(sim: argparse.ArgumentParser) -> None:
    """The flags that give a world its odd shapes (drifts, history and how it thins, degenerate
    columns, late and missing files, changing members), apart from its size so ``simulate`` reads
    at a glance."""
    sim.add_argument(
        "--drift",
        action="append",
        default=[],
        metavar="KIND@YYYY-MM",
        help="inject a drift from that month on (covariate, concept, schema, outage, segment, "
        "price, city_decline); repeatable",
    )
    sim.add_argument(
        "--history-months",
        type=int,
        default=12,
        metavar="N",
        help="months of subscription history (transactions only) before --start (default 12)",
    )
    sim.add_argument(
        "--thin-history",
        type=float,
        nargs="?",
        const=THIN_HISTORY_MEAN,
        default=0.0,
        metavar="MONTHS",
        help="each user's payments land from a month drawn per user, MONTHS before --start on "
        f"average (alone: {THIN_HISTORY_MEAN:g}), as a log that begins on a fixed day; 0: off",
    )
    sim.add_argument(
        "--degenerate",
        action="append",
        default=[],
        metavar="KIND",
        help="a column constant over the whole world: no_cancels, no_gender, no_age, "
        "single_city, single_payment_method or no_auto_renew; repeatable",
    )
    sim.add_argument(
        "--late",
        action="append",
        default=[],
        metavar="TABLE@YYYY-MM+K",
        help="that month's transactions, user_logs or members file lands K months late; repeatable",
    )
    sim.add_argument(
        "--missing",
        action="append",
        default=[],
        metavar="TABLE@YYYY-MM",
        help="that month's transactions, user_logs or members file never lands; repeatable",
    )
    sim.add_argument(
        "--member-changes",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of members whose city (sometimes age or channel) changes later (0..1)",
    )


def _add_simulate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``simulate``: a landing folder to replay, and the truth the world was drawn from."""
    sim = commands.add_parser("simulate", help="write a KKBox-format landing folder and its truth")
    sim.add_argument("--out", required=True, help="folder for landing/ and truth/")
    sim.add_argument("--users", type=int, default=2000)
    sim.add_argument("--start", default="2016-01", help="first month, YYYY-MM")
    sim.add_argument("--months", type=int, default=8)
    sim.add_argument("--seed", type=int, default=7)
    _add_world_knobs(sim)
    sim.add_argument(
        "--fuzz",
        type=int,
        metavar="SEED",
        help="draw the whole world from SEED (every other flag but --out is ignored)",
    )
    sim.set_defaults(func=cmd_simulate)


def _add_replay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``replay``: the production loop, month by month, over files already landed."""
    rep = commands.add_parser("replay", help="run the monthly loop over a landing folder")
    rep.add_argument("--landing", help="landing folder (default: CHURN_LANDING_DIR)")
    rep.add_argument("--through", help="last month to replay, YYYY-MM")
    rep.add_argument(
        "--verbose", action="store_true", help="Dagster's own log on the terminal, not in a file"
    )
    rep.set_defaults(func=cmd_replay)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``demo``: simulate, replay and summarise in one command, to show the whole loop."""
    demo = commands.add_parser("demo", help="simulate a small world with a drift and replay it")
    demo.add_argument("--users", type=int, default=2000)
    demo.add_argument("--start", default="2016-01")
    demo.add_argument("--months", type=int, default=8)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--drift", default="covariate@2016-06")
    demo.add_argument("--budget", type=float, default=10.0, help="FLAML seconds per training")
    demo.add_argument(
        "--verbose", action="store_true", help="Dagster's own log on the terminal, not in a file"
    )
    demo.set_defaults(func=cmd_demo)


def _add_promote(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``promote``: change the champion by hand, with the reason recorded."""
    promote = commands.add_parser("promote", help="make a registered model version the champion")
    promote.add_argument("version", help="version number of churn-model")
    promote.add_argument("--reason", default="", help="why (recorded in model_promotions)")
    promote.set_defaults(func=cmd_promote)


def _add_rollback(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``rollback``: undo the last champion change by hand, or return to a chosen version."""
    rollback = commands.add_parser(
        "rollback", help="return the champion to the version it replaced"
    )
    rollback.add_argument("--to", help="a version to return to instead")
    rollback.add_argument("--reason", default="", help="why (recorded in model_promotions)")
    rollback.set_defaults(func=cmd_rollback)


def _add_retract(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``retract``: remove what files no longer in the landing folder stored for a month."""
    retract = commands.add_parser(
        "retract",
        help="take back the stored rows of files that have left the landing folder",
        description="Rows stay stored when their file leaves the landing folder. Remove the "
        "file, then retract the month: it is loaded again from the files present only.",
    )
    retract.add_argument("table", choices=["transactions", "user_logs", "members"])
    retract.add_argument("month", nargs="?", help="YYYY-MM (transactions, user_logs)")
    retract.add_argument("--landing", help="the landing folder (default: CHURN_LANDING_DIR)")
    retract.set_defaults(func=cmd_retract)


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``serve``: the champion's scores over HTTP (DESIGN §7)."""
    serve = commands.add_parser("serve", help="real-time scoring over HTTP (FastAPI, uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.set_defaults(func=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    """The ``churn-assets`` command line, one subcommand per ``_add_*`` step in help order."""
    parser = argparse.ArgumentParser(prog="churn-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_simulate(commands)
    _add_replay(commands)
    _add_demo(commands)
    _add_promote(commands)
    _add_rollback(commands)
    _add_retract(commands)
    _add_serve(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Dagster's notes on its own beta APIs say nothing to a user of this command (set again
    # here: a caller's warning filters may have been reset since the package was imported).
    quiet_dagster_notes()
    INTERRUPTED.clear()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run_command(args)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_command(args: argparse.Namespace) -> int:
    """The command, with every way it can end told in one line and an exit code (DESIGN §4)."""
    try:
        # Before anything starts (and before Dagster says a word): a bad setting is a refusal.
        check_environment()
        return args.func(args)
    except HomeBusyError as exc:
        print(f"churn-assets {args.command}: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except KeyboardInterrupt:
        print(
            f"churn-assets {args.command}: interrupted; the run under way was marked failed and "
            "the next replay retries it",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"churn-assets {args.command}: {exc}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
