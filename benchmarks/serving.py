"""How fast does ``churn-assets serve`` answer? Latency and throughput over loopback, in one run.

A cohort of ``--users`` fabricated users with the real feature names is scored by a LightGBM
champion of a typical size (``--rounds`` trees of 31 leaves over 30 features) through the real
``predictions`` and ``online_features`` assets; then ``churn-assets serve`` runs as a user starts
it, and a load generator (threads, one keep-alive ``httpx`` client each) posts
``{"msno": ...}`` for ``--seconds`` at each concurrency, for the embedded store and, when a Redis
answers at 127.0.0.1:6379, for Redis (database 15, its keys removed afterwards). The reference is
the bare booster in this process: one ``predict`` of one row, one thread, no HTTP. Load generator
and server share the machine's cores, as they would on one host.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import httpx
import lightgbm as lgb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import parse_args, write_section
from registry import register_champion

from churn_assets.resources import default_resources
from churn_assets.scoring.reasons import FEATURE_WORDS

SECTION = "## Serving"
LEVELS = (1, 8, 32)
SMOKE = {
    "args": ["--users", "500", "--seconds", "1", "--rounds", "20", "--stores", "embedded"],
    "rows": ["bare booster, in process", "API, embedded store"],
}
REDIS_URL = "redis://127.0.0.1:6379/15"
COHORT = date(2016, 6, 1)
FEATURES = list(FEATURE_WORDS)[:30]


def build_home(home: Path, users: int, rounds: int) -> lgb.Booster:
    """A scored, published cohort and its champion under ``home``; the booster, for reference."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(users, len(FEATURES))), columns=FEATURES)
    frame.insert(0, "msno", [f"user{i:07d}" for i in range(users)])
    frame.insert(1, "cohort_month", COHORT)
    logit = frame[FEATURES[0]] - 0.5 * frame[FEATURES[1]] + 0.3 * frame[FEATURES[2]] - 1.5
    label = (rng.random(users) < 1 / (1 + np.exp(-logit))).astype(int)
    home.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE OR REPLACE TABLE features AS SELECT * FROM frame")
    params = {"objective": "binary", "verbose": -1, "num_leaves": 31, "n_jobs": 1}
    booster = lgb.train(params, lgb.Dataset(frame[FEATURES], label), num_boost_round=rounds)
    register_champion(
        f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts", booster, {"promoted": "true"}
    )
    return booster


def publish(home: Path, environ: dict[str, str], with_predictions: bool) -> None:
    """Score (once) and publish the cohort with the real assets."""
    import dagster as dg

    from churn_assets.partitions import register_months
    from churn_assets.scoring.assets import predictions
    from churn_assets.scoring.online import online_features

    assets = [predictions, online_features] if with_predictions else [online_features]
    with dg.DagsterInstance.ephemeral() as instance:
        register_months(instance, [COHORT])
        result = dg.materialize(
            assets,
            partition_key=f"{COHORT:%Y-%m-01}",
            resources=default_resources({"CHURN_HOME": str(home), **environ}),
            instance=instance,
        )
    assert result.success


def _stats(latencies: list[float], seconds: float) -> dict[str, float]:
    ms = np.array(latencies) * 1000
    if not len(ms):
        return {"p50": float("nan"), "p99": float("nan"), "rps": 0.0, "requests": 0}
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "rps": len(ms) / seconds,
        "requests": len(ms),
    }


def bare_booster(booster: lgb.Booster, seconds: float) -> dict[str, float]:
    """One row, one thread, no HTTP: the floor an answer cannot go under."""
    rows = np.random.default_rng(1).normal(size=(1000, len(FEATURES)))
    latencies, i = [], 0
    deadline = time.perf_counter() + seconds
    while (start := time.perf_counter()) < deadline:
        booster.predict(rows[i % 1000 : i % 1000 + 1], num_threads=1)
        latencies.append(time.perf_counter() - start)
        i += 1
    return _stats(latencies, seconds)


def load(url: str, users: int, concurrency: int, seconds: float) -> dict[str, float]:
    """``concurrency`` threads posting random users' msno for ``seconds``; errors counted."""
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=10) as client:
            # At least one request each: on a busy machine a thread may start after the deadline.
            while True:
                start = time.perf_counter()
                msno = f"user{int(rng.integers(users)):07d}"
                answer = client.post("/v1/score", json={"msno": msno})
                mine.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    errors[0] += 1
                if time.perf_counter() >= deadline:
                    break
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(seconds, time.perf_counter() - (deadline - seconds))
    return {**_stats(latencies, elapsed), "errors": errors[0]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, environ: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """``churn-assets serve`` on a free loopback port, once it says it is healthy."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME")}
    env.pop("CHURN_API_TOKEN", None)
    env.update(CHURN_HOME=str(home), **environ)
    command = [sys.executable, "-m", "churn_assets.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"churn-assets serve exited {process.returncode}: see {log}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"churn-assets serve did not become healthy: see {log}")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_store(home: Path, store: str, args: argparse.Namespace) -> dict[int, dict]:
    """Publish to ``store``, serve it, and load it at every concurrency level."""
    environ = {"CHURN_REDIS_URL": REDIS_URL} if store == "redis" else {}
    publish(home, environ, with_predictions=False)
    process, url = start_server(home, environ, home / f"serve-{store}.log")
    try:
        load(url, args.users, 4, min(2.0, args.seconds))  # warm up: connections, caches
        results = {}
        for level in LEVELS:
            results[level] = load(url, args.users, level, args.seconds)
            r = results[level]
            print(
                f"{store} c={level}: p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
                f"{r['rps']:.0f} req/s, {r['errors']} errors",
                flush=True,
            )
        return results
    finally:
        stop_server(process)


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _clear_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter("churn:online:*"):
        client.delete(key)


def _cell(result: dict | None, level: int) -> str:
    if result is None:
        return "-"
    r = result[level]
    return f"{r['p50']:.2f} / {r['p99']:.2f} ms, {r['rps']:,.0f}/s"


def report(args: argparse.Namespace, bare: dict, stores: dict[str, dict | None]) -> str:
    lines = [
        SECTION,
        f"One cohort of {args.users:,} users, a champion of {args.rounds} trees (31 leaves, "
        f"{len(FEATURES)} features), `POST /v1/score` by msno over loopback, {args.seconds:g} s "
        "per level after a warm-up; the load generator shares the machine's cores with the "
        f"server ({os.cpu_count()} here). Cells: p50 / p99 latency, requests per second.",
        "",
        "| path | concurrency 1 | concurrency 8 | concurrency 32 |",
        "|---|---|---|---|",
        f"| bare booster, in process | {bare['p50']:.3f} / {bare['p99']:.3f} ms, "
        f"{bare['rps']:,.0f}/s | - | - |",
    ]
    for store, result in stores.items():
        lines.append(
            f"| API, {store} store | " + " | ".join(_cell(result, lv) for lv in LEVELS) + " |"
        )
    errors = sum(r[lv]["errors"] for r in stores.values() if r for lv in LEVELS)
    lines += ["", f"Requests that did not answer 200: {errors}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=200, help="trees in the champion")
    parser.add_argument("--seconds", type=float, default=15.0, help="load per level")
    parser.add_argument("--stores", nargs="+", default=["embedded", "redis"])
    args = parse_args(parser, SMOKE["args"])
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="churn_serving_dagster_"))
    home = Path(tempfile.mkdtemp(prefix="churn_serving_bench_")) / "home"
    booster = build_home(home, args.users, args.rounds)
    publish(home, {}, with_predictions=True)
    bare = bare_booster(booster, args.seconds)
    print(f"bare booster: p50 {bare['p50']:.3f} ms, {bare['rps']:.0f}/s", flush=True)
    stores: dict[str, dict | None] = {}
    for store in args.stores:
        if store == "redis" and not _redis_answers():
            print("no Redis at 127.0.0.1:6379: its row says so", flush=True)
            stores[store] = None
            continue
        try:
            stores[store] = measure_store(home, store, args)
        finally:
            if store == "redis":
                _clear_redis()
    print(write_section(args.output, SECTION, report(args, bare, stores)))


if __name__ == "__main__":
    main()
