"""The online store: both implementations round-trip a cohort exactly, the newest cohort holding
a user answers, a half-written publish is never read, and the embedded store is readable while
another process holds the warehouse."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn_assets.online.embedded import EmbeddedOnlineStore
from churn_assets.online.store import OnlineStore, encode_payload
from churn_assets.resources import OnlineStoreResource, default_resources
from churn_assets.scoring.buckets import PublicationConfig
from churn_assets.scoring.online import online_features
from churn_assets.serving.app import create_app
from churn_assets.serving.model import ChampionFollower
from churn_assets_tests.helpers import materialize
from churn_assets_tests.serving_world import (
    COHORTS,
    batch_rows,
    build_world,
    publish,
    redis_answers,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
NO_REDIS = "no Redis answers at 127.0.0.1:6379 (start one to run the Redis store's tests)"
MAY, JUNE = date(2016, 5, 1), date(2016, 6, 1)


def _rows(users: dict[str, float]) -> list[tuple[str, str]]:
    return [(m, encode_payload([v, None, "7"], v / 10, "B", "1", "r")) for m, v in users.items()]


@pytest.fixture
def redis_store() -> Iterator[OnlineStore]:
    if not redis_answers(REDIS_URL):
        pytest.skip(NO_REDIS)
    from churn_assets.online.redis_store import RedisOnlineStore

    store = RedisOnlineStore(REDIS_URL, prefix=f"churn-test:{uuid.uuid4().hex}")
    yield store
    for key in store._redis.scan_iter(f"{store.prefix}:*"):
        store._redis.delete(key)
    store.close()


@pytest.fixture(params=["embedded", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> OnlineStore:
    if request.param == "embedded":
        return EmbeddedOnlineStore(tmp_path / "online")
    return request.getfixturevalue("redis_store")


def test_round_trip_and_the_newest_cohort_answers(store: OnlineStore) -> None:
    store.publish(MAY, ["a", "b", "c"], _rows({"u1": 1.0, "u2": 0.1 + 0.2}))
    store.publish(JUNE, ["a", "b", "c"], _rows({"u2": 5.0, "u3": 7.0}))
    assert store.lookup("nobody") is None
    first = store.lookup("u1")
    assert first.cohort_month == MAY and first.features == {"a": 1.0, "b": None, "c": "7"}
    second = store.lookup("u2")  # in both cohorts: June's answer
    assert second.cohort_month == JUNE and second.features["a"] == 5.0
    assert store.lookup("u1").churn_probability == 0.1
    assert set(store.published()) == {MAY, JUNE}
    # Floats come back to the last bit.
    store.publish(MAY, ["a", "b", "c"], _rows({"u1": 0.1 + 0.2}))
    assert store.lookup("u1").features["a"] == 0.1 + 0.2


def test_a_half_written_publish_is_never_read(store: OnlineStore) -> None:
    store.publish(MAY, ["a", "b", "c"], _rows({f"u{i}": 1.0 for i in range(10)}))
    before = store.published()
    seen_midway: list = []

    def dying_rows() -> Iterator[tuple[str, str]]:
        for i in range(12_000):  # more than one written chunk
            if i == 11_000:
                seen_midway.append(store.lookup("u1"))
                seen_midway.append(store.lookup("u10500"))
                raise RuntimeError("the publishing process died")
            yield from _rows({f"u{i}": 2.0})

    with pytest.raises(RuntimeError, match="died"):
        store.publish(MAY, ["a", "b", "c"], dying_rows())
    old, new_only = seen_midway
    assert old.features["a"] == 1.0 and new_only is None  # midway: the old version only
    assert store.published() == before
    assert store.lookup("u1").features["a"] == 1.0 and store.lookup("u10500") is None


def test_a_reader_sees_old_or_new_whole_while_a_publish_runs(store: OnlineStore) -> None:
    store.publish(MAY, ["a", "b", "c"], _rows({f"u{i}": 1.0 for i in range(3000)}))
    stop, answers = threading.Event(), set()

    def read() -> None:
        # The first user is written first, the last one last: a reader that finds the first
        # in a new version finds the last one there too, never an older value or nothing.
        while not stop.is_set():
            answers.add(tuple(store.lookup(f"u{i}").features["a"] for i in (0, 2999)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for value in (2.0, 3.0):
            store.publish(MAY, ["a", "b", "c"], _rows({f"u{i}": value for i in range(3000)}))
    finally:
        stop.set()
        reader.join()
    assert all(first <= last for first, last in answers), answers
    assert {v for pair in answers for v in pair} <= {1.0, 2.0, 3.0}
    assert store.lookup("u0").features["a"] == 3.0



def test_the_event_loop_lookup_answers_as_the_blocking_one(store: OnlineStore) -> None:
    """The API looks users up on its event loop (redis-py's asyncio client for Redis): the same
    records, the newest cohort first, and nobody where no cohort holds them."""
    store.publish(MAY, ["a", "b", "c"], _rows({"u1": 1.0, "u2": 0.1 + 0.2}))
    store.publish(JUNE, ["a", "b", "c"], _rows({"u2": 5.0}))
    users = ["u1", "u2", "nobody"]

    async def looked_up() -> list:
        try:
            return [await store.lookup_async(m) for m in users]
        finally:
            await store.close_async()

    assert asyncio.run(looked_up()) == [store.lookup(m) for m in users]
    assert store.lookup("u2").cohort_month == JUNE


def test_another_reader_follows_a_publish(redis_store: OnlineStore) -> None:
    """A reader in another process trusts the pointers it read for at most a second: it goes on
    finding the version it read whole, then the new one."""
    from churn_assets.online.redis_store import RedisOnlineStore

    redis_store.publish(MAY, ["a", "b", "c"], _rows({"u1": 1.0}))
    reader = RedisOnlineStore(REDIS_URL, prefix=redis_store.prefix)
    try:
        assert reader.lookup("u1").features["a"] == 1.0
        redis_store.publish(MAY, ["a", "b", "c"], _rows({"u1": 2.0}))
        deadline = time.monotonic() + 30
        while (seen := reader.lookup("u1").features["a"]) != 2.0:
            assert seen == 1.0 and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        reader.close()

def test_embedded_retires_old_versions_and_leaves_no_partial_file(tmp_path: Path) -> None:
    store = EmbeddedOnlineStore(tmp_path)
    for value in (1.0, 2.0, 3.0):
        store.publish(MAY, ["a", "b", "c"], _rows({"u1": value}))
    with pytest.raises(RuntimeError):
        store.publish(MAY, ["a", "b", "c"], (_ for _ in [1]).throw(RuntimeError("died")))
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".sqlite")
    assert len(files) == 2  # the current version and the one before, for readers in flight
    assert not list(tmp_path.glob("*.partial"))
    assert store.lookup("u1").features["a"] == 3.0


def test_only_the_current_and_previous_cohort_stay(store: OnlineStore) -> None:
    """Each cohort's users stay findable while it is current or the one before; an older cohort
    leaves the pointer, and a backfilled old cohort is never pointed at."""
    march, april = date(2016, 3, 1), date(2016, 4, 1)
    for cohort in (march, april):
        store.publish(cohort, ["a", "b", "c"], _rows({f"only-{cohort:%m}": 1.0, "all": 1.0}))
    assert store.lookup("only-03").cohort_month == march
    may = store.publish(MAY, ["a", "b", "c"], _rows({"only-05": 1.0, "all": 5.0}))
    assert may.retired_cohorts == (march,)
    assert set(store.published()) == {april, MAY}
    assert store.lookup("only-03") is None and store.lookup("only-04").cohort_month == april
    assert store.lookup("all").features["a"] == 5.0
    backfill = store.publish(march, ["a", "b", "c"], _rows({"only-03": 1.0}))
    assert backfill.retired_cohorts == (march,) and set(store.published()) == {april, MAY}
    assert store.lookup("only-03") is None


def test_embedded_deletes_a_file_once_no_pointer_a_reader_holds_names_it(tmp_path: Path) -> None:
    """A file leaves when neither the pointer nor the one it replaced names it: a reader that
    read the replaced pointer still opens what it named; one holding a file reads on."""
    store, reader = EmbeddedOnlineStore(tmp_path), EmbeddedOnlineStore(tmp_path)
    cohorts = [date(2016, month, 1) for month in (3, 4, 5, 6)]

    def files() -> set[str]:
        return {p.name for p in tmp_path.glob("*.sqlite")}

    def pointed() -> set[str]:
        return set(json.loads((tmp_path / "published.json").read_text()).values())

    store.publish(cohorts[0], ["a", "b", "c"], _rows({"u-03": 3.0}))
    assert reader.lookup("u-03").features["a"] == 3.0
    (march_file,) = tmp_path.glob("2016-03-01.*.sqlite")
    held = sqlite3.connect(f"file:{march_file}?mode=ro&immutable=1", uri=True)
    march = {march_file.name}
    store.publish(cohorts[1], ["a", "b", "c"], _rows({"u-04": 4.0}))
    store.publish(cohorts[2], ["a", "b", "c"], _rows({"u-05": 5.0}))
    assert march and march <= files() and not march & pointed()  # the replaced pointer named it
    assert pointed() <= files()
    store.publish(cohorts[3], ["a", "b", "c"], _rows({"u-06": 6.0}))
    assert not march & files() and pointed() <= files()
    assert len(files()) == 3  # two pointed at, one the replaced pointer named
    assert held.execute("SELECT msno FROM users").fetchall() == [("u-03",)]
    held.close()
    assert reader.lookup("u-03") is None and reader.lookup("u-06").features["a"] == 6.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_world(tmp_path_factory.mktemp("online") / "home")


HOLD_WAREHOUSE = textwrap.dedent(
    """
    import sys, time, duckdb
    conn = duckdb.connect(sys.argv[1])
    conn.execute("CREATE TABLE IF NOT EXISTS busy AS SELECT 1 AS x")
    print("holding", flush=True)
    time.sleep(60)
    """
)


def test_embedded_store_answers_while_another_process_writes_the_warehouse(world: dict) -> None:
    warehouse = world["home"] / "warehouse.duckdb"
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_WAREHOUSE, str(warehouse)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException):  # what serving from the warehouse would meet
            duckdb.connect(str(warehouse), read_only=True)
        store = world["resources"]["online_store"].open()
        record = store.lookup("u0200")
        assert record is not None and record.cohort_month == JUNE
    finally:
        writer.kill()
        writer.wait()


def test_the_asset_publishes_what_batch_scoring_read_and_wrote(world: dict) -> None:
    store = world["resources"]["online_store"].open()
    assert set(store.published()) == set(COHORTS)
    batch = batch_rows(world["home"])
    newest = batch.sort_values("cohort_month").groupby("msno").tail(1)
    for row in newest.sample(40, random_state=0).itertuples():
        record = store.lookup(row.msno)
        assert record.cohort_month == row.cohort_month.date()
        assert record.churn_probability == row.churn_probability
        assert record.bucket == row.bucket and record.bucket_policy == row.bucket_policy
        if pd.isna(row.top_reasons):  # batch left them out: published with the cohort
            assert record.reasons_from == "publication" and record.top_reasons
        else:
            assert (record.top_reasons, record.reasons_from) == (row.top_reasons, "batch")
        stored = record.features["secs_30d"]
        assert stored == row.secs_30d if stored is not None else np.isnan(row.secs_30d)


def test_the_asset_publishes_to_redis_when_a_url_is_set(world: dict) -> None:
    if not redis_answers(REDIS_URL):
        pytest.skip(NO_REDIS)
    resources = default_resources({"CHURN_HOME": str(world["home"]), "CHURN_REDIS_URL": REDIS_URL})
    assert resources["online_store"].redis_url == REDIS_URL
    prefix = f"churn-test:{uuid.uuid4().hex}"  # the tests' keys, apart from a real store's
    resources["online_store"] = OnlineStoreResource(
        folder="unused", redis_url=REDIS_URL, redis_prefix=prefix
    )
    store = resources["online_store"].open()
    try:
        for cohort in COHORTS:
            publish(resources, cohort)
        assert store.kind == "redis" and set(store.published()) == set(COHORTS)
        embedded = world["resources"]["online_store"].open()
        for msno in ("u0000", "u0200", "u0449"):
            assert store.lookup(msno) == embedded.lookup(msno)
        # The API over Redis (its asyncio client) answers as over the embedded store.
        answers = {}
        for name, source in (("redis", resources), ("embedded", world["resources"])):
            app = create_app(ChampionFollower(source["registry"]), source["online_store"].open())
            with TestClient(app) as client:
                answers[name] = [
                    client.post("/v1/score", json={"msno": m}).json()
                    for m in ("u0000", "u0200", "u0449", "nobody")
                ]
        assert answers["redis"] == answers["embedded"]
        assert answers["redis"][0]["msno"] == "u0000"
    finally:
        for key in store._redis.scan_iter(f"{prefix}:*"):
            store._redis.delete(key)
        store.close()


def test_without_reasons_at_publication_bucket_c_is_left_to_the_api(
    world: dict, tmp_path: Path
) -> None:
    """``explain_every_user`` off: the store keeps only the batch's reasons, and the API
    explains a bucket-C user on demand, in the same words."""
    resources = {**world["resources"], "online_store": OnlineStoreResource(folder=str(tmp_path))}
    result = materialize(
        [online_features],
        partition_key=f"{COHORTS[-1]:%Y-%m-01}",
        resources=resources,
        run_config=dg.RunConfig({"online_features": PublicationConfig(explain_every_user=False)}),
    )
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["explained_at_publication"].value == 0
    store = resources["online_store"].open()
    batch = batch_rows(world["home"])
    newest = batch[batch["cohort_month"].dt.date == COHORTS[-1]]
    unexplained = newest[newest["top_reasons"].isna()]
    assert len(unexplained)
    msno = unexplained["msno"].iloc[0]
    record = store.lookup(msno)
    assert record.top_reasons is None and record.reasons_from is None
    with TestClient(create_app(ChampionFollower(resources["registry"]), store)) as client:
        answer = client.post("/v1/score", json={"msno": msno}).json()
    published = world["resources"]["online_store"].open().lookup(msno)
    assert answer["reasons_from"] == "on_demand"
    assert answer["top_reasons"] == published.top_reasons  # what publication wrote
