"""World fuzz: drawn worlds replayed end to end, as ``churn-assets replay`` replays them.

For each seed, :func:`~churn_assets.simulator.draw_world` draws a world (start month, history
length, degenerate columns, late and missing files, changing members, a drift); the world is
simulated and replayed month by month through the project's Dagster definitions, its files
revealed as its ``truth/arrivals.json`` says. Per seed: the runs, the failed runs (with their
reasons below the table), the months replayed before the first model, the cohorts scored among
those built from the first model's cohort on, and the champion's AUC on the newest labelled
cohort against the simulator's true churn probability on the same users.

Writes the ``## World fuzz`` section of BENCHMARKS.md (other sections are left as they are).

    python benchmarks/world_fuzz.py [--seeds 10] [--first-seed 0] [--max-users N] [--budget 10]
        [--replay-months K] [--output BENCHMARKS.md] [--smoke]

``--smoke`` replays one tiny world (seed 5, 150 users, 1 s of FLAML) through its first model and
the cohort after it (``--replay-months 5``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from benchmarks_md import parse_args, write_section

SECTION = "## World fuzz"
SMOKE = {
    "args": [
        "--seeds",
        "1",
        "--first-seed",
        "5",
        "--max-users",
        "150",
        "--budget",
        "1",
        "--replay-months",
        "5",
    ],
    "rows": ["5"],
}


def _champion_auc(home: Path, truth_dir: Path) -> dict:
    """AUC of the champion and of the truth on the newest labelled cohort that has features."""
    import duckdb
    from mlflow.tracking import MlflowClient
    from sklearn.metrics import roc_auc_score

    from churn_assets.features.feature_sets import read_cohort_features
    from churn_assets.modeling.frame import predict_probability
    from churn_assets.resources import ModelRegistryResource
    from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME

    registry = ModelRegistryResource(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    try:
        champion = MlflowClient(registry.tracking_uri).get_model_version_by_alias(
            REGISTERED_MODEL_NAME, CHAMPION_ALIAS
        )
    except Exception:  # no model registered at all
        return {}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        newest = conn.execute(
            "SELECT max(cohort_month) FROM labels WHERE cohort_month IN "
            "(SELECT DISTINCT cohort_month FROM features)"
        ).fetchone()[0]
        if newest is None:
            return {}
        frame = read_cohort_features(conn, newest)
        labels = conn.execute(
            "SELECT msno, is_churn FROM labels WHERE cohort_month = ?", [newest]
        ).df()
    frame["champion"] = predict_probability(registry.load_model(champion.version), frame)
    truth = pd.read_csv(truth_dir / "churn_probability.csv", parse_dates=["cohort_month"])
    truth = truth[truth.cohort_month.dt.date == newest][["msno", "churn_probability"]]
    rows = frame[["msno", "champion"]].merge(labels, on="msno").merge(truth, on="msno")
    if rows.is_churn.nunique() < 2:
        return {"cohort": newest, "rows": len(rows), "version": champion.version}
    return {
        "cohort": newest,
        "rows": len(rows),
        "version": champion.version,
        "auc": float(roc_auc_score(rows.is_churn, rows.champion)),
        "truth_auc": float(roc_auc_score(rows.is_churn, rows.churn_probability)),
    }


def replay_world(
    seed: int, max_users: int | None, budget: float, folder: Path, months: int | None = None
) -> dict:
    """Draw, simulate and replay world ``seed`` in ``folder`` (its first ``months`` only, when
    given); what it came to."""
    import dagster as dg

    from churn_assets.definitions import build_definitions
    from churn_assets.partitions import add_months
    from churn_assets.replay import replay, replay_span, staged_arrivals
    from churn_assets.simulator import describe_world, draw_world, simulate

    started = time.monotonic()
    spec = draw_world(seed)
    if max_users is not None:
        spec["users"] = min(spec["users"], max_users)
    world = simulate(folder / "world", **spec)
    home = folder / "home"
    arrivals = staged_arrivals(world.landing_dir, home)
    os.environ.update(
        CHURN_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        CHURN_LANDING_DIR=str(arrivals.staged),
        CHURN_TRAINING_BUDGET_S=str(budget),
    )
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    first, last = replay_span(world.landing_dir, None)
    through = min(last, add_months(first, months - 1)) if months else None
    with dg.instance_for_test() as instance:
        summary = replay(
            build_definitions(),
            instance,
            world.landing_dir,
            through=through,
            log=lambda _: None,
            arrivals=arrivals,
            tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        )
    # The first model exists once a training run registered one, whatever its later steps did.
    trained = [r for r in summary.runs if r.job == "training_job" and "churn_model" in r.assets]
    first_model = min((r.partition for r in trained), default=None)
    first_month = min((r.month for r in trained), default=None)
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        built = {
            c for (c,) in conn.execute("SELECT DISTINCT cohort_month FROM features").fetchall()
        }
        scored = {
            c for (c,) in conn.execute("SELECT DISTINCT cohort_month FROM predictions").fetchall()
        }
    after = {c for c in built if first_model and f"{c:%Y-%m-01}" >= first_model}
    return {
        "seed": seed,
        "world": describe_world(spec),
        "months": len(summary.months),
        "runs": len(summary.runs),
        "failed": [f"{r.job}[{r.partition or '-'}]: {r.reason}" for r in summary.failed_runs],
        "unhealed": len(summary.unhealed_failures),
        "months_to_model": summary.months.index(first_month) + 1 if first_month else None,
        "scored_after": len(after & scored),
        "after": len(after),
        "model": _champion_auc(home, world.truth_dir),
        "seconds": time.monotonic() - started,
    }


def render(
    results: list[dict], max_users: int | None, budget: float, months: int | None = None
) -> str:
    size = f"users capped at {max_users}" if max_users else "users as drawn (300..900)"
    if months:
        size += f", only their first {months} months replayed"
    lines = [
        SECTION,
        "",
        f"Worlds drawn by `draw_world(seed)` ({size}), replayed month by month as "
        f"`churn-assets replay` replays them, files revealed as they arrive, {budget:g} s of "
        "FLAML per training. *Months to first model* counts replayed months up to the one that "
        "registered it (its run may have failed in a later step); *scored* counts cohorts with "
        "predictions among those built from the first model's cohort on. The champion's AUC is "
        "measured on the newest labelled cohort (one it may have been validated on), next to "
        "the AUC of the simulator's true churn probability on the same users.",
        "",
        "| seed | world | runs | failed runs (unhealed) | months to first model | scored / cohorts "
        "after first model | champion AUC (cohort, rows) | truth AUC | AUC / truth | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        model = r["model"]
        if "auc" in model:
            where = f"v{model['version']}, {model['cohort']:%Y-%m}, {model['rows']}"
            auc = f"{model['auc']:.4f} ({where})"
            truth, ratio = f"{model['truth_auc']:.4f}", f"{model['auc'] / model['truth_auc']:.3f}"
        else:
            auc = f"n/a ({len(model)} of 3 figures: no champion or a one-class cohort)"
            truth = ratio = "n/a (0)"
        to_model = (
            str(r["months_to_model"]) if r["months_to_model"] else f"none in {r['months']} months"
        )
        lines.append(
            f"| {r['seed']} | {r['world']} | {r['runs']} | {len(r['failed'])} ({r['unhealed']}) "
            f"| {to_model} | {r['scored_after']} / {r['after']} | {auc} | {truth} | {ratio} "
            f"| {r['seconds']:.0f} |"
        )
    ratios = [r["model"]["auc"] / r["model"]["truth_auc"] for r in results if "auc" in r["model"]]
    clean = [r for r in results if not r["failed"]]
    lines += [
        "",
        f"- Worlds with no failed run: **{len(clean)} of {len(results)}**; with every cohort "
        "after the first model scored: "
        f"**{sum(r['after'] and r['scored_after'] == r['after'] for r in results)} of "
        f"{len(results)}** (target: all, on every seed).",
    ]
    if ratios:
        lines.append(
            f"- Champion AUC / truth AUC: median {np.median(ratios):.3f}, worst "
            f"{min(ratios):.3f} over {len(ratios)} worlds."
        )
    lines.append(
        f"- Wall time per world: mean {np.mean([r['seconds'] for r in results]):.0f} s on "
        f"{os.cpu_count()} shared cores."
    )
    failures = [(r["seed"], reason) for r in results for reason in r["failed"]]
    if failures:
        lines += ["", "Failed runs:", ""]
        lines += [f"- seed {seed}: {reason}" for seed, reason in failures]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="how many worlds to draw")
    parser.add_argument("--first-seed", type=int, default=0, help="the first world's seed")
    parser.add_argument("--max-users", type=int, help="cap on each world's users (default: none)")
    parser.add_argument("--budget", type=float, default=10.0, help="FLAML seconds per training")
    parser.add_argument(
        "--replay-months", type=int, help="replay only each world's first K months (default: all)"
    )
    args = parse_args(parser, SMOKE["args"])
    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        with tempfile.TemporaryDirectory() as folder:
            result = replay_world(
                seed, args.max_users, args.budget, Path(folder), args.replay_months
            )
        model = result["model"]
        print(
            f"seed {seed}: {result['runs']} runs, {len(result['failed'])} failed, first model "
            f"after {result['months_to_model']} months, scored {result['scored_after']}/"
            f"{result['after']}, AUC {model.get('auc', float('nan')):.4f} vs truth "
            f"{model.get('truth_auc', float('nan')):.4f} ({result['seconds']:.0f} s)",
            flush=True,
        )
        results.append(result)
    section = render(results, args.max_users, args.budget, args.replay_months)
    print(write_section(args.output, SECTION, section))


if __name__ == "__main__":
    main()
