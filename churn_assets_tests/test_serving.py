"""The HTTP API (DESIGN §7): batch's answer for the same user and version, the champion followed
without a restart and never half-loaded, errors that name their cause, and the real
``churn-assets serve`` process on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from mlflow.tracking import MlflowClient
from schemathesis.checks import not_a_server_error

from churn_assets.modeling.calibration import load_churn_model
from churn_assets.modeling.frame import as_matrix
from churn_assets.scoring.buckets import assign_buckets, cut_off_policy
from churn_assets.scoring.reasons import explain_rows
from churn_assets.serving.app import create_app
from churn_assets.serving.model import BUCKET_THRESHOLDS, ChampionFollower
from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets_tests.serving_world import FEATURES, batch_rows, build_world, free_port

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_world(tmp_path_factory.mktemp("serving") / "home")


@pytest.fixture(scope="module")
def batch(world: dict) -> pd.DataFrame:
    """Each user's newest cohort, as predictions scored it."""
    rows = batch_rows(world["home"])
    return rows.sort_values("cohort_month").groupby("msno").tail(1).set_index("msno")


def _client(world: dict, token: str | None = None, poll_s: float = 0.2) -> TestClient:
    follower = ChampionFollower(world["resources"]["registry"], poll_s=poll_s)
    store = world["resources"]["online_store"].open()
    return TestClient(create_app(follower, store, token=token))


@pytest.fixture(scope="module")
def client(world: dict) -> Iterator[TestClient]:
    with _client(world) as client:
        yield client


def _set_champion(world: dict, version: str) -> None:
    uri = world["resources"]["registry"].tracking_uri
    MlflowClient(uri).set_registered_model_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS, version)


@pytest.fixture(scope="module")
def exact(world: dict, batch: pd.DataFrame) -> pd.Series:
    """Every user's exact reasons, as batch scoring words them for the users it explains."""
    booster = world["resources"]["registry"].load_model("1")
    values = batch[FEATURES].astype("float64").to_numpy()
    return pd.Series(explain_rows(booster, values, FEATURES), index=batch.index)


def test_the_api_answers_as_batch_scoring_did(
    client: TestClient, batch: pd.DataFrame, exact: pd.Series
) -> None:
    """Same user, same version: probability to 1e-9, the same bucket and the same reasons;
    a user batch left unexplained (bucket C) was explained when the cohort was published, in
    the words the exact on-demand contributions give."""
    assert batch["top_reasons"].isna().any() and batch["top_reasons"].notna().any()
    for msno, row in batch.iterrows():
        answer = client.post("/v1/score", json={"msno": msno}).json()
        assert answer["cohort_month"] == f"{row.cohort_month:%Y-%m-%d}"
        assert answer["model_version"] == row.model_version == "1"
        assert abs(answer["churn_probability"] - row.churn_probability) <= 1e-9
        assert (answer["bucket"], answer["bucket_policy"]) == (row.bucket, row.bucket_policy)
        assert answer["top_reasons"] == exact[msno]
        if pd.isna(row.top_reasons):
            assert answer["reasons_from"] == "publication", msno
        else:
            assert answer["top_reasons"] == row.top_reasons
            assert answer["reasons_from"] == "batch"


def test_reasons_computed_on_demand_equal_batch_reasons(
    client: TestClient, batch: pd.DataFrame, exact: pd.Series
) -> None:
    """Features given directly are explained on demand (TreeSHAP for the one row): the same
    reasons batch wrote, so a user batch left unexplained reads as any other."""
    for msno, row in batch.sample(60, random_state=1).iterrows():
        features = {c: (None if pd.isna(row[c]) else float(row[c])) for c in FEATURES}
        answer = client.post("/v1/score", json={"features": features}).json()
        assert answer["reasons_from"] == "on_demand" and answer["msno"] is None
        assert abs(answer["churn_probability"] - row.churn_probability) <= 1e-9
        assert (answer["bucket"], answer["top_reasons"]) == (row.bucket, exact[msno]), msno
        if not pd.isna(row.top_reasons):
            assert answer["top_reasons"] == row.top_reasons, msno


def test_a_capacity_bucket_is_served_as_batch_drew_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Under a capacity policy a known user's bucket is the stored one (a rank in the whole
    cohort, which one row cannot redo), named by its policy; posted features have no stored
    bucket, so the cut-offs draw it and the answer says so."""
    home = tmp_path_factory.mktemp("capacity") / "home"
    world = build_world(home, {"CHURN_BUCKET_A_CAPACITY": "10"})
    rows = batch_rows(home).sort_values("cohort_month").groupby("msno").tail(1)
    cut = assign_buckets(rows["churn_probability"].to_numpy(), *BUCKET_THRESHOLDS)
    differ = rows[cut != rows["bucket"].to_numpy()]
    assert len(differ) and rows["bucket_policy"].str.startswith("capacity").all()
    with _client(world) as client:
        for row in rows.itertuples():
            answer = client.post("/v1/score", json={"msno": row.msno}).json()
            assert abs(answer["churn_probability"] - row.churn_probability) <= 1e-9
            assert (answer["bucket"], answer["bucket_policy"]) == (row.bucket, row.bucket_policy)
        for row in differ.head(10).itertuples():
            features = {
                c: (None if pd.isna(v) else float(v)) for c in FEATURES for v in [getattr(row, c)]
            }
            answer = client.post("/v1/score", json={"features": features}).json()
            expected = assign_buckets(np.array([row.churn_probability]), *BUCKET_THRESHOLDS)[0]
            assert answer["bucket"] == expected != row.bucket
            assert answer["bucket_policy"] == cut_off_policy(*BUCKET_THRESHOLDS)


def test_the_lean_path_answers_as_the_documented_route(
    client: TestClient, batch: pd.DataFrame
) -> None:
    """A plain ``{"msno": ...}`` is answered ahead of FastAPI (serving/lean.py); the same request
    spelled so that only the route takes it (``"features": null``) gets the same status and
    bytes: batch reasons, reasons on demand, and a user in no cohort."""
    users = [*batch.index[batch["top_reasons"].isna()][:5], *batch.index[:5], "nobody"]
    for msno in users:
        lean = client.post("/v1/score", json={"msno": msno})
        routed = client.post("/v1/score", json={"msno": msno, "features": None})
        assert (lean.status_code, lean.content) == (routed.status_code, routed.content), msno
        assert lean.headers["content-type"] == routed.headers["content-type"]


def test_model_health_and_openapi(client: TestClient) -> None:
    model = client.get("/v1/model").json()
    assert model["version"] == "1" and model["alias"] == "champion"
    assert model["training_cohorts"] == ["2016-02-01", "2016-03-01"]
    assert model["features"] == FEATURES
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["published_cohorts"] == ["2016-05-01", "2016-06-01"]
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/v1/model", "/v1/score"} <= set(paths)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_generated_requests_never_meet_a_server_error(
    world: dict, mode: schemathesis.GenerationMode
) -> None:
    """Schemathesis draws requests for every operation of /openapi.json (conforming ones, then
    ones that break the schema), with the token: each is answered, and never by a 5xx."""
    follower = ChampionFollower(world["resources"]["registry"], poll_s=3600)
    follower.refresh()  # these calls reach the app without its startup
    app = create_app(follower, world["resources"]["online_store"].open(), token=TOKEN)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    auth = {"authorization": f"Bearer {TOKEN}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/healthz", "/v1/model", "/v1/score"}
    if mode == schemathesis.GenerationMode.NEGATIVE:  # only a body can break the schema here
        operations = [op for op in operations if len(op.body)]
        assert [op.path for op in operations] == ["/v1/score"]
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def answered_without_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=auth, checks=[not_a_server_error])

        answered_without_server_error()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"msno": 5}, ["body", "msno"]),
        ({"features": {"plays_30d": "many"}}, ["body", "features", "plays_30d"]),
        ('{"features": {"age": Infinity}}', ["body", "features", "age"]),
        ('{"features": {"age": 1e400}}', ["body", "features", "age"]),
        ({"features": {c: 1.0 for c in FEATURES} | {"colour": 1}}, ["body", "features", "colour"]),
        ({"features": {c: 1.0 for c in FEATURES if c != "age"}}, ["body", "features", "age"]),
        ({"msno": "u0001", "extra": 1}, ["body", "extra"]),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, body: dict | str, field: list
) -> None:
    if isinstance(body, str):  # what a JSON encoder would refuse to write
        headers = {"content-type": "application/json"}
        answer = client.post("/v1/score", content=body.encode(), headers=headers)
    else:
        answer = client.post("/v1/score", json=body)
    assert answer.status_code == 422, answer.text
    assert field in [error["loc"] for error in answer.json()["detail"]], answer.json()


def test_unknown_user_malformed_json_and_oversized_bodies(client: TestClient) -> None:
    assert client.post("/v1/score", json={"msno": "nobody"}).status_code == 404
    assert client.post("/v1/score", json={}).status_code == 422
    assert client.post("/v1/score", json={"msno": "u1", "features": {}}).status_code == 422
    malformed = client.post(
        "/v1/score", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    huge = {"msno": "x" * 100_000}
    assert client.post("/v1/score", json=huge).status_code == 413

    def chunked() -> Iterator[bytes]:  # no content-length: counted as it arrives
        yield b'{"msno": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    streamed = client.post(
        "/v1/score", content=chunked(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_a_token_is_required_once_set(world: dict) -> None:
    with _client(world, token=TOKEN) as client:
        assert client.post("/v1/score", json={"msno": "u0001"}).status_code == 401
        wrong = {"authorization": "Bearer not-the-token"}
        answer = client.post("/v1/score", json={"msno": "u0001"}, headers=wrong)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/score", content=b"{bad", headers=wrong).status_code == 401
        right = {"authorization": f"Bearer {TOKEN}"}
        assert client.post("/v1/score", json={"msno": "u0001"}, headers=right).status_code == 200
        assert client.get("/v1/model", headers=right).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes need no token


def test_the_server_follows_the_champion_alias(world: dict, batch: pd.DataFrame) -> None:
    first, second = world["versions"]
    registry = world["resources"]["registry"]
    try:
        with _client(world, poll_s=0.2) as client:
            assert client.get("/v1/model").json()["version"] == first
            _set_champion(world, second)
            deadline = time.monotonic() + 30
            while client.get("/v1/model").json()["version"] != second:
                assert time.monotonic() < deadline, "the alias move was not followed"
                time.sleep(0.1)
            answer = client.post("/v1/score", json={"msno": "u0200"}).json()
    finally:
        _set_champion(world, first)
    expected = load_churn_model(registry, second).probability(batch.loc[["u0200"]])[0]
    assert answer["model_version"] == second and answer["reasons_from"] == "on_demand"
    assert abs(answer["churn_probability"] - expected) <= 1e-9


class SlowRegistry:
    """The registry, with loading a version held until the test lets it finish."""

    def __init__(self, registry) -> None:
        self.registry, self.model_name = registry, registry.model_name
        self.loading, self.release = threading.Event(), threading.Event()

    def champion(self):
        return self.registry.champion()

    def load_model(self, version: str):
        booster = self.registry.load_model(version)
        self.loading.set()
        assert self.release.wait(30)
        return booster


def test_a_half_loaded_model_is_never_served(world: dict) -> None:
    first, second = world["versions"]
    registry = SlowRegistry(world["resources"]["registry"])
    follower = ChampionFollower(registry, poll_s=3600)
    registry.release.set()
    follower.refresh()
    registry.release.clear()
    client = TestClient(create_app(follower, world["resources"]["online_store"].open()))
    try:
        _set_champion(world, second)
        loader = threading.Thread(target=follower.refresh)
        loader.start()
        assert registry.loading.wait(30)
        # Loading: every answer still comes from the whole previous model.
        for _ in range(5):
            assert client.post("/v1/score", json={"msno": "u0001"}).json()["model_version"] == first
        registry.release.set()
        loader.join()
        assert client.post("/v1/score", json={"msno": "u0001"}).json()["model_version"] == second
    finally:
        _set_champion(world, first)


def test_no_champion_yet_is_503(tmp_path: Path, world: dict) -> None:
    from churn_assets.resources import default_resources

    resources = default_resources({"CHURN_HOME": str(tmp_path)})
    follower = ChampionFollower(resources["registry"], poll_s=3600)
    with TestClient(create_app(follower, world["resources"]["online_store"].open())) as client:
        assert client.get("/healthz").status_code == 503
        assert client.post("/v1/score", json={"msno": "u0001"}).status_code == 503


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "churn-assets serve exited early"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"churn-assets serve did not become healthy in {timeout_s} s")


def test_churn_assets_serve_answers_on_loopback(world: dict, batch: pd.DataFrame) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DAGSTER_HOME")}
    env.update(CHURN_HOME=str(world["home"]), CHURN_API_TOKEN=TOKEN)
    env.pop("CHURN_REDIS_URL", None)
    command = [sys.executable, "-m", "churn_assets.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        auth = {"authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=auth, timeout=10) as http:
            for msno in ("u0000", "u0200", "u0449"):
                answer = http.post("/v1/score", json={"msno": msno}).json()
                assert abs(answer["churn_probability"] - batch.loc[msno].churn_probability) < 1e-9
            assert http.post("/v1/score", json={"msno": "nobody"}).status_code == 404
        assert httpx.post(f"{url}/v1/score", json={"msno": "u0000"}).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, process.stderr.read().decode()[-2000:]


def test_a_score_is_the_calibrated_booster(world: dict, batch: pd.DataFrame) -> None:
    """The in-process reference the benchmark compares against gives the batch's numbers: the
    booster's raw score through the version's calibration, not the raw score itself."""
    registry = world["resources"]["registry"]
    model = load_churn_model(registry, world["versions"][0])
    assert model.calibration.method != "none"
    matrix = as_matrix(batch, FEATURES)
    stored = batch["churn_probability"].to_numpy()
    np.testing.assert_allclose(model.predict(matrix), stored, rtol=0, atol=1e-12)
    assert np.abs(model.booster.predict(matrix) - stored).max() > 1e-3
