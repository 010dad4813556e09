"""How fast does ``churn-assets serve`` answer? Latency and throughput over loopback, in one run.

A cohort of ``--users`` fabricated users with the real feature names is scored by a LightGBM
champion of a typical size (``--rounds`` trees of 31 leaves over 30 features) through the real
``predictions`` and ``online_features`` assets; then ``churn-assets serve`` runs as a user starts
it, and a load generator posts ``{"msno": ...}`` for ``--seconds`` at each concurrency, for the
embedded store and, when a Redis answers at 127.0.0.1:6379, for Redis (database 15, its keys
removed afterwards); then one bounded ``--soak-seconds`` load at the highest concurrency counts
the requests that did not answer 200. ``mlflow models serve --env-manager local`` serves the same
registered version on another port, loaded the same way with one row in its ``dataframe_split``
format. The reference is the bare booster in this process: one ``predict`` of one row, one
thread, no HTTP. The load generator is ``wrk`` when installed (C, one thread, keep-alive
connections), otherwise threads with one keep-alive ``httpx`` client each; the report names it.
Load generator and servers share the machine's cores, as they would on one host.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

from churn_assets.resources import default_resources
from churn_assets.scoring.reasons import FEATURE_WORDS, explain_rows
from churn_assets.settings import REGISTERED_MODEL_NAME
from churn_assets.training.registration import register_booster

SECTION = "## Serving"
LEVELS = (1, 8, 32)
SMOKE = {
    # Plain literals: the suite reads SMOKE from the source (ast.literal_eval).
    "args": [
        "--users",
        "500",
        "--seconds",
        "1",
        "--rounds",
        "20",
        "--stores",
        "embedded",
        "--soak-seconds",
        "1",
    ],
    "rows": [
        "bare booster, in process",
        "bare booster + TreeSHAP reasons, in process",
        "API, embedded store",
        "mlflow models serve",
    ],
}
REDIS_URL = "redis://127.0.0.1:6379/15"
COHORT = date(2016, 6, 1)
FEATURES = list(FEATURE_WORDS)[:30]
GENERATOR = "wrk" if shutil.which("wrk") else "httpx"
# wrk's Lua script: a random body of the table per request; the figures as JSON when done.
WRK_SCRIPT = """
local bodies = {%s}
request = function()
  return wrk.format("POST", "%s", {["Content-Type"] = "application/json"},
                    bodies[math.random(#bodies)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, ' ..
    '"p99_us": %%d, "errors": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def build_home(home: Path, users: int, rounds: int) -> tuple[lgb.Booster, str]:
    """A scored, published cohort and its champion under ``home``; the booster, for reference,
    and its registered version."""
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
    version = register_booster(
        f"sqlite:///{home / 'mlflow.db'}",
        home / "mlartifacts",
        booster,
        {"promoted": "true"},
        champion=True,
    )
    return booster, version


def publish(home: Path, environ: dict[str, str], with_predictions: bool) -> dict:
    """Score (once) and publish the cohort with the real assets; what ``online_features`` says
    of the reasons it computed at publication."""
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
    (published,) = result.asset_materializations_for_node("online_features")
    return {
        name: published.metadata[name].value
        for name in (
            "explained_at_publication",
            "reasons_at_publication",
            "explained_at_publication_seconds",
        )
    }


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


def bare_booster(booster: lgb.Booster, seconds: float, explain: bool = False) -> dict:
    """One row, one thread, no HTTP: the floor an answer cannot go under; with ``explain``, the
    row's TreeSHAP reasons too, as the API computes them where batch scoring left them out."""
    rows = np.random.default_rng(1).normal(size=(1000, len(FEATURES)))
    latencies, i = [], 0
    deadline = time.perf_counter() + seconds
    while (start := time.perf_counter()) < deadline:
        row = rows[i % 1000 : i % 1000 + 1]
        booster.predict(row, num_threads=1)
        if explain:
            explain_rows(booster, row, FEATURES, num_threads=1)
        latencies.append(time.perf_counter() - start)
        i += 1
    return _stats(latencies, seconds)


def unexplained_share(home: Path) -> float:
    """The share of the cohort batch scoring left without reasons (the API explains them)."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT avg((top_reasons IS NULL)::INT) FROM predictions").fetchone()[0]


def load(url: str, path: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """POST a random one of ``bodies`` to ``path`` from ``concurrency`` keep-alive connections
    for ``seconds``; requests that did not answer 200 counted as errors."""
    if GENERATOR == "wrk":
        return wrk_load(url, path, bodies, concurrency, seconds)
    return httpx_load(url, path, bodies, concurrency, seconds)


def wrk_load(url: str, path: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """wrk, one thread (the server needs the cores more), its latency percentiles."""
    table = ",".join(f"[==[{b.decode()}]==]" for b in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (table, path))
    try:
        done = subprocess.run(
            [
                *("wrk", "-t", "1", "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s"),
                *("--timeout", "10s", "-s", script.name, url),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    line = next(li for li in done.stdout.splitlines() if li.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    elapsed = r["duration_us"] / 1e6
    return {
        "p50": r["p50_us"] / 1000,
        "p99": r["p99_us"] / 1000,
        "rps": r["requests"] / elapsed,
        "requests": r["requests"],
        "errors": r["errors"],
        "seconds": elapsed,
    }


def httpx_load(url: str, path: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """Threads with one keep-alive ``httpx`` client each, when wrk is not installed."""
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    headers = {"content-type": "application/json"}

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=10) as client:
            # At least one request each: on a busy machine a thread may start after the deadline.
            while True:
                start = time.perf_counter()
                body = bodies[int(rng.integers(len(bodies)))]
                answer = client.post(path, content=body, headers=headers)
                mine.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    with lock:
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
    return {**_stats(latencies, elapsed), "errors": errors[0], "seconds": elapsed}


def group_cpu_s(pgid: int) -> float:
    """CPU seconds the processes of group ``pgid`` have used (Linux /proc; 0 elsewhere): what a
    server spends per answer, which other work on a shared machine does not stretch."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def load_server(
    pgid: int, url: str, path: str, bodies: list[bytes], concurrency: int, seconds: float
) -> dict:
    """:func:`load`, and the server's CPU milliseconds per request meanwhile."""
    before = group_cpu_s(pgid)
    result = load(url, path, bodies, concurrency, seconds)
    spent = group_cpu_s(pgid) - before
    return {**result, "cpu_ms": 1000 * spent / max(1, result["requests"])}


def msno_bodies(users: int, count: int = 1000) -> list[bytes]:
    """Score requests for random users of the published cohort."""
    picks = np.random.default_rng(2).integers(users, size=min(count, users))
    return [json.dumps({"msno": f"user{int(i):07d}"}).encode() for i in picks]


def _print(name: str, level: int, r: dict) -> None:
    print(
        f"{name} c={level}: p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
        f"{r['rps']:.0f} req/s, {r['errors']} errors, server CPU {r['cpu_ms']:.2f} ms/request",
        flush=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _started(
    command: list[str], env: dict[str, str], log: Path, health: str
) -> tuple[subprocess.Popen, str]:
    """``command`` (which takes the port as its last argument) on a free loopback port, in its own
    process group, once ``health`` answers 200."""
    port = _free_port()
    process = subprocess.Popen(
        [*command, str(port)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[1:3]} exited {process.returncode}: see {log}")
        try:
            if httpx.get(f"{url}{health}", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"{command[1:3]} did not answer {health}: see {log}")


def start_server(home: Path, environ: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """``churn-assets serve`` on a free loopback port, once it says it is healthy."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME")}
    env.pop("CHURN_API_TOKEN", None)
    env.update(CHURN_HOME=str(home), **environ)
    command = [sys.executable, "-m", "churn_assets.cli", "serve", "--port"]
    return _started(command, env, log, "/healthz")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure_store(home: Path, store: str, args: argparse.Namespace) -> dict:
    """Publish to ``store``, serve it, and load it at every concurrency level; the embedded store
    then takes the bounded soak (``"soak"``)."""
    environ = {"CHURN_REDIS_URL": REDIS_URL} if store == "redis" else {}
    publish(home, environ, with_predictions=False)
    process, url = start_server(home, environ, home / f"serve-{store}.log")
    bodies = msno_bodies(args.users)
    try:
        load(url, "/v1/score", bodies, 4, min(2.0, args.seconds))  # warm up: connections, caches
        results: dict = {}
        for level in LEVELS:
            results[level] = load_server(process.pid, url, "/v1/score", bodies, level, args.seconds)
            _print(store, level, results[level])
        if store == "embedded":
            results["soak"] = load(url, "/v1/score", bodies, LEVELS[-1], args.soak_seconds)
            soak = results["soak"]
            print(f"soak: {soak['requests']} requests, {soak['errors']} errors", flush=True)
        return results
    finally:
        stop_server(process)


def start_mlflow(home: Path, version: str, log: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow models serve --env-manager local`` of ``version`` on a free loopback port, once
    ``/ping`` answers; in its own process group (it starts a worker process)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [
        *(str(mlflow), "models", "serve", "-m", f"models:/{REGISTERED_MODEL_NAME}/{version}"),
        *("--env-manager", "local", "-h", "127.0.0.1", "-p"),
    ]
    return _started(command, env, log, "/ping")


def measure_mlflow(home: Path, version: str, booster: lgb.Booster, args) -> dict:
    """The same version behind ``mlflow models serve``: one row per request, every level."""
    rows = np.random.default_rng(3).normal(size=(200, len(FEATURES)))
    bodies = [
        json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row.tolist()]}}).encode()
        for row in rows
    ]
    process, url = start_mlflow(home, version, home / "mlflow-serve.log")
    try:
        answer = httpx.post(
            f"{url}/invocations",
            content=bodies[0],
            timeout=30,
            headers={"content-type": "application/json"},
        )
        answer.raise_for_status()
        served = float(np.ravel(answer.json()["predictions"])[0])
        expected = float(booster.predict(rows[:1], num_threads=1)[0])
        assert abs(served - expected) <= 1e-9, (served, expected)  # the same model
        load(url, "/invocations", bodies, 4, min(2.0, args.seconds))
        results = {}
        for level in LEVELS:
            results[level] = load_server(
                process.pid, url, "/invocations", bodies, level, args.seconds
            )
            _print("mlflow models serve", level, results[level])
        return results
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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
    return f"{r['p50']:.2f} / {r['p99']:.2f} ms, {r['rps']:,.0f}/s, {r['cpu_ms']:.2f} ms CPU"


def _findings(stores: dict[str, dict | None], mlflow: dict | None, args) -> list[str]:
    """The targets (p99 at concurrency 8, throughput against mlflow's) and the soak."""
    lines = []
    for store, result in stores.items():
        if result is None:
            continue
        ratios = ", ".join(
            f"{result[lv]['rps'] / mlflow[lv]['rps']:.1f}x at {lv}"
            for lv in LEVELS
            if mlflow and mlflow[lv]["rps"]
        )
        lines.append(
            f"- {store} store: p99 at concurrency 8 {result[8]['p99']:.2f} ms (target <= 10 ms)"
            + (
                f"; throughput against `mlflow models serve`: {ratios} (target >= 5x)."
                if ratios
                else "."
            )
        )
    soak = (stores.get("embedded") or {}).get("soak")
    if soak:
        lines.append(
            f"- Bounded load: {soak['seconds']:.0f} s at concurrency {LEVELS[-1]} on the embedded "
            f"store, {soak['requests']:,} requests, {soak['errors']} that did not answer 200."
        )
    errors = sum(r[lv]["errors"] for r in [*stores.values(), mlflow] if r for lv in LEVELS)
    lines.append(f"- Requests that did not answer 200 in the timed levels: {errors}.")
    return lines


def report(
    args: argparse.Namespace, bare: dict, stores: dict, mlflow: dict | None, load_avg: tuple
) -> str:
    """The table and what it shows; ``bare`` holds the in-process floors and the cohort's share
    of users batch left unexplained; ``load_avg`` the machine's 1-minute load average when the
    run started and when it ended (other work on the same cores stretches latency)."""
    generator = (
        "`wrk` (one thread, keep-alive connections)"
        if GENERATOR == "wrk"
        else "Python threads with one keep-alive `httpx` client each (`wrk` not installed)"
    )
    lines = [
        SECTION,
        f"One cohort of {args.users:,} users, a champion of {args.rounds} trees (31 leaves, "
        f"{len(FEATURES)} features), `POST /v1/score` by msno over loopback, {args.seconds:g} s "
        f"per level after a warm-up; `mlflow models serve --env-manager local` serves the same "
        f"registered version, one row per `POST /invocations`. Load generator: {generator}, "
        f"sharing the machine's cores with the server ({os.cpu_count()} here). Cells: p50 / p99 "
        "latency, requests per second, the server's CPU time per request (all its processes; what "
        "other work on a shared machine does not stretch). The machine's 1-minute load average: "
        f"{load_avg[0]:.1f} when the run started, {load_avg[1]:.1f} when it ended.",
        "",
        "| path | concurrency 1 | concurrency 8 | concurrency 32 |",
        "|---|---|---|---|",
        *(
            f"| {name}, in process | {b['p50']:.3f} / {b['p99']:.3f} ms, {b['rps']:,.0f}/s "
            "| - | - |"
            for name, b in (
                ("bare booster", bare["predict"]),
                ("bare booster + TreeSHAP reasons", bare["explain"]),
            )
        ),
    ]
    for store, result in stores.items():
        lines.append(
            f"| API, {store} store | " + " | ".join(_cell(result, lv) for lv in LEVELS) + " |"
        )
    lines.append("| mlflow models serve | " + " | ".join(_cell(mlflow, lv) for lv in LEVELS) + " |")
    published = bare["publication"]
    unexplained = (
        f"{bare['unexplained']:.0%} of the cohort is in bucket C, which batch scoring leaves "
        f"unexplained: `online_features` explained those {published['explained_at_publication']:,}"
        f" users when it published the cohort ({published['explained_at_publication_seconds']:g} "
        f"s, {published['reasons_at_publication']}), so every answer above serves stored reasons "
        "and bucket. On-demand TreeSHAP, for posted features and for a champion newer than the "
        f"cohort's scorer, costs {bare['explain']['p50']:.2f} ms (in process, p50) an answer: "
        f"{bare['unexplained'] * bare['explain']['p50']:.2f} ms per answer on average had the "
        "API explained bucket C itself."
    )
    return "\n".join([*lines, "", unexplained, "", *_findings(stores, mlflow, args)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=200, help="trees in the champion")
    parser.add_argument("--seconds", type=float, default=15.0, help="load per level")
    parser.add_argument(
        "--soak-seconds", type=float, default=60.0, help="the bounded load that counts errors"
    )
    parser.add_argument("--stores", nargs="+", default=["embedded", "redis"])
    args = parse_args(parser, SMOKE["args"])
    load_at_start = os.getloadavg()[0]
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp(prefix="churn_serving_dagster_"))
    home = Path(tempfile.mkdtemp(prefix="churn_serving_bench_")) / "home"
    booster, version = build_home(home, args.users, args.rounds)
    publication = publish(home, {}, with_predictions=True)
    bare = {
        "publication": publication,
        "predict": bare_booster(booster, args.seconds),
        "explain": bare_booster(booster, args.seconds, explain=True),
        "unexplained": unexplained_share(home),
    }
    for name in ("predict", "explain"):
        b = bare[name]
        print(f"bare booster ({name}): p50 {b['p50']:.3f} ms, {b['rps']:.0f}/s", flush=True)
    print(f"load generator: {GENERATOR}", flush=True)
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
    mlflow = measure_mlflow(home, version, booster, args)
    load_avg = (load_at_start, os.getloadavg()[0])
    print(write_section(args.output, SECTION, report(args, bare, stores, mlflow, load_avg)))


if __name__ == "__main__":
    main()
