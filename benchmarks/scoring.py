"""The ``predictions`` asset against a bare ``booster.predict`` of the same cohort and model.

For each model shape (trees x leaves: today's champions are about 200 x 4; 300 x 63 is a deep
model's cost) and cohort size:

1. **build**: a warehouse with one cohort of that many users and 54 features named as the
   product names them (counts, amounts, shares, yes/no flags, codes), 85 % on auto-renew and a
   churn rate near KKBox's (about 5 %), and a LightGBM champion of that shape trained on 20,000
   of its rows, registered in MLflow;
2. **bare**, in a fresh process: the cohort's matrix in memory, then ``booster.predict`` (median
   of 3) and TreeSHAP contributions (``pred_contrib``) on up to 20,000 of its rows, each with the
   threads scoring uses;
3. **asset**, in a fresh process so that peak RSS is its own: the whole ``predictions`` asset
   through ``dg.materialize`` (model load, feature read, scores, buckets, reasons for A and B in
   chunks, control group, one insert, metadata).

Prints the ratios and writes the ``## Scoring and reasons`` section of BENCHMARKS.md. Target: at
1M users, the asset costs at most 3x a bare predict for both shapes, with peak RSS under 3 GB.

    python benchmarks/scoring.py [--users 100k] [--large] [--shapes 200x4 300x63] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from benchmarks_md import (
    parse_args,
    parse_size,
    size_argument,
    timed_materialization,
    write_section,
)

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Scoring and reasons"
SMOKE = {"args": ["--users", "2k", "--shapes", "20x4", "30x15"], "rows": ["20x4", "30x15"]}
COHORT = date(2017, 3, 1)
TRAIN_ROWS = 20_000
CONTRIBUTION_ROWS = 5_000
REPEATS = 3
MAX_DEPTH = 8
TARGET_RATIO = 3.0
TARGET_PEAK_MB = 3 * 1024


def _run(args: list[str]) -> dict:
    """Run this script in a fresh process; its last stdout line, as JSON."""
    done = subprocess.run(
        [sys.executable, __file__, *args], check=False, capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"{args[0]} failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _column_sql(name: str) -> str:
    """A plausible value of feature ``name``, as SQL."""
    from churn_assets.scoring.reasons import YES_NO_FEATURES

    yes = {"last_is_auto_renew": 0.85, "last_is_cancel": 0.05}  # as in KKBox
    if name in YES_NO_FEATURES:
        return f"(random() < {yes.get(name, 0.4)})::INTEGER"
    codes = {"gender_code": 3, "city": 21, "registered_via": 13, "last_payment_method_id": 41}
    if name in codes:
        return f"floor(random() * {codes[name]})::INTEGER"
    if any(word in name for word in ("share", "ratio", "trend", "discount")):
        return "round(random(), 3)"
    if name == "age":
        return "CASE WHEN random() < 0.3 THEN NULL ELSE 15 + floor(random() * 45) END"
    return f"floor(-ln(random()) * {10 + 7 * (len(name) % 9)})::INTEGER"


def build_home(home: Path, users: int, trees: int, leaves: int) -> dict:
    """A warehouse holding one cohort of ``users``, and a registered champion of that shape."""
    import lightgbm as lgb

    from churn_assets.resources import default_resources
    from churn_assets.scoring.reasons import FEATURE_WORDS
    from churn_assets.training.registration import register_booster

    os.environ["CHURN_HOME"] = str(home)
    resources = default_resources()
    names = list(FEATURE_WORDS)
    values = ", ".join(f"{_column_sql(name)} AS {name}" for name in names)
    with resources["warehouse"].get_connection() as conn:
        conn.execute(
            f"CREATE TABLE features AS SELECT 'u' || lpad(range::VARCHAR, 9, '0') AS msno, "
            f"DATE '{COHORT}' AS cohort_month, {values} FROM range({users})"
        )
        conn.execute(
            "CREATE TABLE cohort_coverage AS SELECT ?::DATE AS cohort_month, true AS "
            "complete, '' AS missing_months",
            [COHORT],
        )
        train = conn.execute(
            f"SELECT * EXCLUDE (msno, cohort_month) FROM features "
            f"USING SAMPLE {min(TRAIN_ROWS, users)} ROWS (reservoir, 7)"
        ).df()
    x = train[names].astype(float)
    logit = (
        -5.0
        + 2.6 * (1 - x["last_is_auto_renew"])
        + 2.0 * x["last_is_cancel"]
        + 0.02 * x["days_since_last_listen"]
        - 0.01 * x["plays_30d"]
        + 0.8 * (x["last_discount"] - 0.5)
    )
    label = np.random.default_rng(1).random(len(x)) < 1 / (1 + np.exp(-logit))
    booster = lgb.train(
        {
            "objective": "binary",
            "verbose": -1,
            "num_leaves": leaves,
            # The shape the targets were set on: about 60 leaves at depth 8. Unbounded, a
            # 63-leaf tree grows 15 to 25 deep on these rows, and paths with more than ten
            # features are explained row by row (modeling/contributions.py).
            "max_depth": MAX_DEPTH,
            "seed": 1,
            "min_data_in_leaf": 5,
            "learning_rate": 0.03,
        },
        lgb.Dataset(x, label.astype(int)),
        num_boost_round=trees,
    )
    register_booster(
        resources["registry"].tracking_uri,
        home / "mlartifacts",
        booster,
        {"feature_columns": json.dumps(names)},
        champion=True,
    )
    return {"churn_rate": float(label.mean()), "trees": booster.num_trees()}


def measure_bare(home: Path) -> dict:
    """``booster.predict`` over the cohort's matrix, and contributions on a slice of it."""
    from churn_assets.features.feature_sets import read_cohort_features
    from churn_assets.modeling.contributions import compile_contributions
    from churn_assets.modeling.frame import as_matrix
    from churn_assets.resources import default_resources
    from churn_assets.scoring.assets import scoring_threads

    os.environ["CHURN_HOME"] = str(home)
    resources = default_resources()
    registry = resources["registry"]
    booster = registry.load_model(registry.champion().version)
    with resources["warehouse"].get_connection() as conn:
        frame = read_cohort_features(conn, COHORT)
    names = list(booster.feature_name())
    values = np.ascontiguousarray(as_matrix(frame, names).to_numpy())
    del frame
    threads = scoring_threads()
    timings = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        probability = booster.predict(values, num_threads=threads)
        timings.append(time.perf_counter() - began)
    sample = values[:CONTRIBUTION_ROWS]
    began = time.perf_counter()
    booster.predict(sample, pred_contrib=True, num_threads=threads)
    contribution_s = time.perf_counter() - began
    began = time.perf_counter()
    tables = compile_contributions(booster)
    build_s = time.perf_counter() - began
    began = time.perf_counter()
    tables(sample, num_threads=threads)
    tables_s = time.perf_counter() - began
    return {
        "users": len(values),
        "threads": threads,
        "predict_s": float(np.median(timings)),
        "contribution_rows_per_s": len(sample) / contribution_s,
        "tables_build_s": build_s,
        "tables_rows_per_s": len(sample) / tables_s,
        "a_or_b_share": float((probability >= 0.1).mean()),
        "load_average": os.getloadavg()[0],
    }


def measure_asset(home: Path) -> dict:
    """The whole ``predictions`` asset through Dagster, in its own process (its own peak RSS),
    as a run worker runs it: the code location loaded and the registry opened first (what a
    process pays once, timed apart), then the median of :data:`REPEATS` materializations."""

    os.environ["CHURN_HOME"] = str(home)
    began = time.perf_counter()
    import churn_assets.definitions  # noqa: F401 - what a run worker loads before any step
    from churn_assets.resources import default_resources
    from churn_assets.scoring.assets import predictions

    resources = default_resources()
    resources["registry"].champion()  # MLflow imports its SQL store on first use: 1-2 s
    setup_s = time.perf_counter() - began
    load = os.getloadavg()[0]
    timings = []
    for _ in range(REPEATS):
        seconds, result = timed_materialization(predictions, COHORT, resources)
        timings.append(seconds)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    return {
        "asset_s": float(np.median(timings)),
        "asset_runs_s": timings,
        "setup_s": setup_s,
        "explained_users": int(metadata["explained_users"].value),
        "rows": int(metadata["dagster/row_count"].value),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_average": max(load, os.getloadavg()[0]),
    }


def render(results: list[dict]) -> str:
    from churn_assets.scoring.buckets import TABULATE_FROM_ROWS

    lines = [
        SECTION,
        "",
        f"{os.cpu_count()} cores (LightGBM given the cores the process may use). Shapes are "
        f"trees x leaves, at most {MAX_DEPTH} deep. One cohort of "
        "54 features, KKBox-like (85 % on auto-renew, churn rate "
        f"{np.mean([r['churn_rate'] for r in results]):.1%} in the training sample), default "
        "cut-offs (A from 0.3, B from 0.1), control share 0.1. *Bare predict* is "
        "`booster.predict` over the cohort's matrix already in "
        f"memory (median of {REPEATS}); *contributions* TreeSHAP (`pred_contrib`) on up to "
        f"{CONTRIBUTION_ROWS:,} rows of it, and the same exact contributions from the trees "
        "tabulated once (`modeling/contributions.py`; build time shown apart); *asset* the "
        "whole `predictions` asset through `dg.materialize` (model load, feature read in blocks, "
        "scores, buckets, exact reasons for A and B in blocks, tabulated from "
        f"{TABULATE_FROM_ROWS:,} explained users, one insert, metadata), median of {REPEATS} "
        "runs in its own process, whose peak RSS is shown, after what a run worker does once "
        "(load the code location, open the MLflow registry: *setup s*, not in the ratio). "
        "*Load avg* is the machine's 1-minute load average, the higher of start and end: above "
        "the core count, other work inflated every time.",
        "",
        "| shape | users | explained (A+B) | bare predict s (rows/s) | contributions rows/s "
        "| contribution / predict, per row | tabulated rows/s (build s) "
        "| tabulated / predict, per row | asset s (rows/s) | asset / bare predict "
        "| setup s | peak RSS MB | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        per_row = (r["predict_s"] / r["users"]) * r["contribution_rows_per_s"]
        lines.append(
            f"| {r['shape']} | {r['size']} | {r['explained_users']:,} "
            f"({r['explained_users'] / r['rows']:.1%}) "
            f"| {r['predict_s']:.2f} ({r['users'] / r['predict_s']:,.0f}) "
            f"| {r['contribution_rows_per_s']:,.0f} | {1 / per_row:.0f} "
            f"| {r['tables_rows_per_s']:,.0f} ({r['tables_build_s']:.2f}) "
            f"| {r['users'] / r['predict_s'] / r['tables_rows_per_s']:.1f} "
            f"| {r['asset_s']:.1f} ({r['rows'] / r['asset_s']:,.0f}) "
            f"| {r['asset_s'] / r['predict_s']:.1f} | {r['setup_s']:.1f} "
            f"| {r['peak_rss_mb']:,.0f} "
            f"| {max(r['load_average'], r['asset_load_average']):.1f} |"
        )
    lines += ["", *_verdicts(results), ""]
    return "\n".join(lines)


def _verdicts(results: list[dict]) -> list[str]:
    """The target, per shape, on its largest run."""
    said = []
    for shape in dict.fromkeys(r["shape"] for r in results):
        largest = max((r for r in results if r["shape"] == shape), key=lambda r: r["users"])
        ratio = largest["asset_s"] / largest["predict_s"]
        at_scale = largest["users"] >= 1_000_000
        verdict = (
            (
                "met"
                if ratio <= TARGET_RATIO and largest["peak_rss_mb"] < TARGET_PEAK_MB
                else "not met"
            )
            if at_scale
            else "not run at 1M"
        )
        said.append(
            f"- {shape}, {largest['size']} users: asset / bare predict {ratio:.1f}, peak RSS "
            f"{largest['peak_rss_mb']:,.0f} MB (target ≤ {TARGET_RATIO:g} and < 3 GB at 1M "
            f"users: {verdict})."
        )
    return said


def _shape(text: str) -> tuple[int, int]:
    trees, _, leaves = text.partition("x")
    if not (trees.isdigit() and leaves.isdigit()):
        raise argparse.ArgumentTypeError(f"expected TREESxLEAVES such as 200x4, got {text!r}")
    return int(trees), int(leaves)


def measure(base: Path, size: str, shape: str) -> dict:
    """Build a home, then time bare predict and the asset, each in a fresh process."""
    trees, leaves = _shape(shape)
    home = base / f"{shape}_{size}"
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    built = _run(["--build", str(home), str(parse_size(size)), str(trees), str(leaves)])
    bare = _run(["--bare", str(home)])
    asset = _run(["--asset", str(home)])
    shutil.rmtree(home, ignore_errors=True)
    return {
        "shape": shape,
        "size": size,
        **built,
        **bare,
        **{("asset_load_average" if k == "load_average" else k): v for k, v in asset.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", nargs="+", default=["100k"], type=size_argument)
    parser.add_argument("--large", action="store_true", help="add a 1M-user run of each shape")
    parser.add_argument("--shapes", nargs="+", default=["200x4", "300x63"])
    parser.add_argument("--build", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--asset", type=Path, help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE["args"])
    if args.build:
        home, users, trees, leaves = args.build
        print(json.dumps(build_home(Path(home), int(users), int(trees), int(leaves))))
        return
    if args.bare or args.asset:
        print(json.dumps(measure_bare(args.bare) if args.bare else measure_asset(args.asset)))
        return
    sizes = [*args.users, *(["1M"] if args.large and "1M" not in args.users else [])]
    base = Path(tempfile.mkdtemp(prefix="churn_scoring_bench_"))
    results = []
    try:
        for shape in args.shapes:
            for size in sizes:
                result = measure(base, size, shape)
                results.append(result)
                print(f"{shape} {size}: {json.dumps(result)}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(write_section(args.output, SECTION, render(results)))


if __name__ == "__main__":
    main()
