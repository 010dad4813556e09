"""The ``drift_report`` asset on a large cohort, against the ``features`` asset of the same cohort.

For each size (cohort users):

1. **features**: a KKBox-format landing folder with as many users (``features.py``'s generator,
   60 days of listening each), loaded through the raw assets and built through the ``features``
   asset, timed by ``features.py`` itself in a process of its own. Its stored cohort size is the
   size the drift run uses.
2. **drift**: in a fresh warehouse, a ``features`` table of 55 columns (20 continuous, 15 counts
   with ties, 10 with a tenth missing, 5 binary or ratio, the 4 categorical features, a
   registration age putting about 12 % in the new-member slice) holding a
   reference cohort and a current cohort of that many users each, a few columns shifted in the
   current one; a LightGBM champion (trained on 20,000 reference rows) registered in MLflow. Then,
   in a fresh process so that peak RSS is its own: the PSI statistics alone (the asset's SQL
   files, median of 3), a bare ``GROUP BY`` scan of the same rows and columns (the floor of one
   pass over both sides), and the whole ``drift_report`` asset through ``dg.materialize``
   (statistics over the cohort and its new members, scoring 200,000 rows a side, Evidently's
   HTML on about 5,000 rows a side, the tables, the MLflow run).

Prints the ratios and writes the ``## Drift report`` section of BENCHMARKS.md. Target: on a
1M-user cohort, the drift report costs no more than the features asset of the same cohort.

    python benchmarks/drift.py [--users 1M] [--output BENCHMARKS.md] [--smoke]
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
SECTION = "## Drift report"
SMOKE = {"args": ["--users", "2k"], "rows": ["2k"]}
REFERENCE = date(2017, 2, 1)
CURRENT = date(2017, 3, 1)
REPEATS = 3
ROWS_PER_USER = 60  # features.py's listening days per user
TRAIN_ROWS = 20_000
size_users = parse_size
_size = size_argument


def _run(args: list[str]) -> dict:
    """Run this script (or features.py) in a fresh process; its last stdout line, as JSON."""
    done = subprocess.run(
        [sys.executable, *args], check=False, capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise RuntimeError(f"{' '.join(args[:2])} failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def features_cost(folder: Path, users: int) -> dict:
    """features.py's own measurement on a landing folder of ``users`` users."""
    sys.path.insert(0, str(Path(__file__).parent))
    import features  # the feature benchmark's generator

    landing = folder / "landing"
    features.generate(landing, users * ROWS_PER_USER)
    return _run(
        [
            str(Path(__file__).parent / "features.py"),
            "--measure",
            str(landing),
            str(folder / "home"),
        ]
    )


def _columns() -> list[tuple[str, str]]:
    """(name, SQL of a reference value) for the 55 synthetic feature columns."""
    columns = []
    for i in range(20):
        columns.append((f"amount_{i:02d}", f"-ln(random()) * {10 * (i + 1)}"))
    for i in range(15):
        columns.append((f"count_{i:02d}", f"floor(-ln(random()) * {i + 2})::INTEGER"))
    for i in range(10):
        columns.append(
            (f"gappy_{i:02d}", f"CASE WHEN random() < 0.1 THEN NULL ELSE random() * {i + 1} END")
        )
    for i in range(5):
        columns.append((f"flag_{i:02d}", "(random() < 0.3)::INTEGER" if i < 3 else "random()"))
    columns += [
        ("city", "(floor(-ln(random()) * 4) % 21 + 1)::INTEGER"),
        ("gender_code", "(floor(random() * 3))::INTEGER"),
        ("registered_via", "([3, 4, 7, 9, 11, 13])[1 + floor(random() * 6)::INTEGER]"),
        ("last_payment_method_id", "(floor(-ln(random()) * 6) % 40 + 1)::INTEGER"),
        # About 12 % registered within 90 days: the new-member slice drift also compares.
        ("registration_age_days", "floor(-ln(random()) * 700)::INTEGER"),
    ]
    return columns


# Columns the current cohort shifts: a covariate shift of a few.
SHIFTS = {"amount_00": "* 1.3", "count_00": "+ 1", "gappy_00": "* 1.2"}


def build_drift_home(home: Path, users: int) -> dict:
    """A warehouse with a reference and a current cohort, and a registered champion."""
    import lightgbm as lgb

    from churn_assets.resources import default_resources
    from churn_assets.training.registration import register_booster

    os.environ["CHURN_HOME"] = str(home)
    resources = default_resources()
    columns = _columns()
    began = time.perf_counter()
    with resources["warehouse"].get_connection() as conn:
        for cohort, shifted in ((REFERENCE, False), (CURRENT, True)):
            values = ", ".join(
                f"({sql}){SHIFTS.get(name, '') if shifted else ''} AS {name}"
                for name, sql in columns
            )
            source = (
                f"SELECT 'u{cohort:%Y%m}_' || range AS msno, DATE '{cohort}' AS cohort_month, "
                f"{values} FROM range({users})"
            )
            if cohort == REFERENCE:
                conn.execute(f"CREATE TABLE features AS {source}")
            else:
                conn.execute(f"INSERT INTO features {source}")
        # Both cohorts' windows fully loaded, as the features asset would record it (a champion
        # learnt only from incomplete cohorts has no fair drift reference).
        conn.execute(
            "CREATE TABLE cohort_coverage AS SELECT DISTINCT cohort_month, true AS complete "
            "FROM features"
        )
        train = conn.execute(
            "SELECT * FROM (SELECT * EXCLUDE (msno, cohort_month) FROM features "
            f"WHERE cohort_month = ?) USING SAMPLE {min(TRAIN_ROWS, users)} ROWS",
            [REFERENCE],
        ).df()
    generated_s = time.perf_counter() - began
    names = [name for name, _ in columns]
    x = train[names].astype(float)
    rng = np.random.default_rng(1)
    logit = -2.5 + 0.02 * x["amount_00"] + 0.3 * x["count_00"] - 1.5 * x["flag_00"]
    label = rng.random(len(x)) < 1 / (1 + np.exp(-logit.fillna(0)))
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 15},
        lgb.Dataset(x, label.astype(int)),
        num_boost_round=100,
    )
    register_booster(
        resources["registry"].tracking_uri,
        home / "mlartifacts",
        booster,
        {
            "training_cohorts": json.dumps([f"{REFERENCE:%Y-%m-01}"]),
            "validation_cohort": f"{REFERENCE:%Y-%m-01}",
            "feature_columns": json.dumps(names),
        },
        champion=True,
    )
    return {"generated_s": generated_s, "columns": len(names)}


def measure_drift(home: Path) -> dict:
    """PSI SQL alone, a bare scan, and the whole asset (runs in its own process)."""

    from churn_assets.features.feature_sets import CATEGORICAL_FEATURES
    from churn_assets.monitoring import psi
    from churn_assets.monitoring.assets import drift_report
    from churn_assets.resources import default_resources

    os.environ["CHURN_HOME"] = str(home)
    resources = default_resources()
    out: dict[str, float] = {"load_average": os.getloadavg()[0]}
    timings: dict[str, list[float]] = {"psi_sql_s": [], "bare_s": []}
    with resources["warehouse"].get_connection() as conn:
        columns = psi.numeric_feature_columns(
            conn, [r[0] for r in conn.execute("DESCRIBE features").fetchall()][2:]
        )
        for _ in range(REPEATS):  # interleaved, so machine noise hits both alike
            began = time.perf_counter()
            stats = psi.feature_psi(conn, CURRENT, [REFERENCE], columns, CATEGORICAL_FEATURES)
            timings["psi_sql_s"].append(time.perf_counter() - began)
            began = time.perf_counter()
            conn.execute(
                "SELECT cohort_month, count(*), avg(COLUMNS(* EXCLUDE (msno, cohort_month))) "
                "FROM features WHERE cohort_month IN (?, ?) GROUP BY cohort_month",
                [REFERENCE, CURRENT],
            ).fetchall()
            timings["bare_s"].append(time.perf_counter() - began)
        out["current_rows"] = int(stats["current_rows"].max())
        out["reference_rows"] = int(stats["reference_rows"].max())
        out["columns"] = len(stats)
    out |= {name: float(np.median(values)) for name, values in timings.items()}

    out["drift_report_s"], result = timed_materialization(
        drift_report,
        CURRENT,
        resources,
        # The whole asset as it runs in production, Evidently's HTML included.
        run_config={"ops": {"drift_report": {"config": {"html_report": True}}}},
    )
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    out["weighted_psi"] = float(metadata["weighted_psi"].value)
    out["prediction_psi"] = float(metadata["prediction_psi"].value)
    out["data_drift"] = metadata["data_drift"].value
    out["passed"] = checks["feature_drift"].passed
    out["html_bytes"] = Path(metadata["report_path"].value).stat().st_size
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_average"] = max(out["load_average"], os.getloadavg()[0])
    return out


def render(results: dict[str, dict]) -> str:
    lines = [
        SECTION,
        "",
        f"{os.cpu_count()} cores, DuckDB memory limit "
        f"{os.environ.get('CHURN_DUCKDB_MEMORY_LIMIT', '3GB')}. *Features asset* is the "
        "`features` asset building the cohort from a KKBox-format landing folder with that many "
        "users (timed by `features.py`, loads not counted); the drift run then uses a cohort of "
        "the same size and a reference cohort as large, 55 columns. *PSI SQL* is the per-column "
        f"statistics alone (the asset's SQL files, median of {REPEATS}); *bare scan* one "
        "`GROUP BY` averaging every column of both cohorts, the floor of one pass over them; "
        "*drift_report* the whole asset through `dg.materialize` (statistics, the champion "
        "scoring 200,000 rows a side, Evidently's HTML on about 5,000 rows a side, tables, "
        "MLflow run). *Load avg* is the machine's 1-minute load average, the higher of start and "
        "end: above the core count, other work inflated every time.",
        "",
        "| users | cohort rows | columns | reference rows | features asset s | drift_report s "
        "| drift / features | PSI SQL s | bare scan s | PSI / bare | peak RSS MB "
        "| weighted PSI | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, r in results.items():
        lines.append(
            f"| {size} | {r['current_rows']:,} | {r['columns']} | {r['reference_rows']:,} "
            f"| {r['features_s']:.1f} | {r['drift_report_s']:.1f} "
            f"| {r['drift_report_s'] / r['features_s']:.2f} | {r['psi_sql_s']:.2f} "
            f"| {r['bare_s']:.2f} | {r['psi_sql_s'] / r['bare_s']:.1f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['weighted_psi']:.3f} | {r['load_average']:.1f} |"
        )
    largest_size, largest = max(results.items(), key=lambda item: item[1]["current_rows"])
    ratio = largest["drift_report_s"] / largest["features_s"]
    at_scale = largest["current_rows"] >= 900_000
    lines += [
        "",
        f"Target, on the largest run ({largest_size} users): drift_report / features asset "
        f"{ratio:.2f} (target ≤ 1 at 1M users: "
        + (("met" if ratio <= 1 else "not met") if at_scale else "not run at 1M")
        + ").",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", nargs="+", default=["1M"], type=_size)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--build", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parse_args(parser, SMOKE["args"])
    if args.build:
        print(json.dumps(build_drift_home(Path(args.build[0]), int(args.build[1]))))
        return
    if args.measure:
        print(json.dumps(measure_drift(args.measure)))
        return

    base = args.keep or Path(tempfile.mkdtemp(prefix="churn_drift_bench_"))
    results = {}
    try:
        for size in args.users:
            folder = base / size
            began = time.perf_counter()
            features = features_cost(folder / "features", size_users(size))
            cohort = int(features["stored_feature_rows"])
            print(
                f"{size}: features asset {features['features_s']:.1f} s for {cohort:,} users "
                f"({time.perf_counter() - began:.0f} s with generation and load)",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(folder / "features")
            home = folder / "drift_home"
            (home / "dagster").mkdir(parents=True, exist_ok=True)
            built = _run([__file__, "--build", str(home), str(cohort)])
            result = _run([__file__, "--measure", str(home)])
            result |= {"features_s": features["features_s"], "generated_s": built["generated_s"]}
            results[size] = result
            print(f"{size}: {json.dumps(result)}", flush=True)
            print(
                f"{size}: drift_report {result['drift_report_s']:.1f} s vs features asset "
                f"{result['features_s']:.1f} s (ratio "
                f"{result['drift_report_s'] / result['features_s']:.2f}); PSI SQL "
                f"{result['psi_sql_s']:.2f} s vs bare scan {result['bare_s']:.2f} s (ratio "
                f"{result['psi_sql_s'] / result['bare_s']:.1f})",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(folder)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(write_section(args.output, SECTION, render(results)))


if __name__ == "__main__":
    main()
