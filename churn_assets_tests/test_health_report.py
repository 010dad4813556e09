"""The monthly health page and every report link, through Dagster and the reports route.

The replayed tiny world (conftest) already ran the loop, health pages included; here a month is
materialized again with ``dg.materialize`` and each link the materialization carries is opened
through ``churn-assets serve``'s /reports route (FastAPI's TestClient), as a click would.
"""

from __future__ import annotations

import io
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import dagster as dg
import duckdb
import matplotlib.image
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from churn_assets.partitions import partition_key
from churn_assets.reports.health import model_health_report
from churn_assets.resources import default_resources
from churn_assets.scoring.assets import SQL as PREDICTIONS_SQL
from churn_assets.serving.app import create_app
from churn_assets.serving.reports import reports_router
from churn_assets.warehouse import run_sql_file
from churn_assets_tests.helpers import materialize

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _client(folder: Path) -> TestClient:
    app = FastAPI()
    app.include_router(reports_router(folder))
    return TestClient(app)


def _route(url: str) -> str:
    """The route a link opens: the public base URL (the default, ``serve``'s) replaced by /."""
    base = default_resources()["reports"].public_url
    assert url.startswith(base + "/"), url
    return "/reports/" + url.removeprefix(base + "/")


# --- the route -----------------------------------------------------------------------------


@pytest.fixture
def reports_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    (folder / "health" / "2016-05").mkdir(parents=True)
    (folder / "health" / "2016-05" / "health_2016-05.html").write_text("<p>page</p>")
    (folder / "health" / "2016-05" / "drift.png").write_bytes(PNG_SIGNATURE + b"rest")
    (folder / "at_risk").mkdir()
    (folder / "at_risk" / "at_risk_2016-05-02.csv").write_text("msno\nann\n")
    (folder / "notes.txt").write_text("not a report kind")
    (folder / ".hidden.html").write_text("hidden")
    (tmp_path / "warehouse.html").write_text("outside the reports folder")
    (folder / "escape.html").symlink_to(tmp_path / "warehouse.html")
    return folder


def test_the_route_serves_reports_by_kind_and_lists_them(reports_folder: Path) -> None:
    client = _client(reports_folder)
    page = client.get("/reports/health/2016-05/health_2016-05.html")
    assert page.status_code == 200 and page.text == "<p>page</p>"
    assert page.headers["content-type"].startswith("text/html")
    picture = client.get("/reports/health/2016-05/drift.png")
    assert picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(PNG_SIGNATURE)
    assert client.get("/reports/at_risk/at_risk_2016-05-02.csv").text == "msno\nann\n"
    index = client.get("/reports/")
    assert index.status_code == 200
    assert 'href="/reports/health/2016-05/health_2016-05.html"' in index.text
    assert 'href="/reports/at_risk/at_risk_2016-05-02.csv"' in index.text
    assert "notes.txt" not in index.text and "hidden" not in index.text
    assert "escape.html" not in index.text


@pytest.mark.parametrize(
    "path",
    [
        "/reports/..%2Fwarehouse.html",
        "/reports/%2e%2e/warehouse.html",
        "/reports/health/..%2F..%2F..%2Fwarehouse.html",
        "/reports/%2Fetc%2Fpasswd.html",
        "/reports/health%5C..%5C..%5Cwarehouse.html",
        "/reports/escape.html",  # a link inside that leads outside
        "/reports/.hidden.html",
        "/reports/notes.txt",  # not a kind of report
        "/reports/health/2016-05",  # a folder
        "/reports/health/2016-06/health_2016-06.html",  # absent
    ],
)
def test_the_route_refuses_paths_outside_or_of_other_kinds(reports_folder: Path, path: str) -> None:
    answer = _client(reports_folder).get(path)
    assert answer.status_code == 404, path
    assert "outside" not in answer.text and "hidden" not in answer.text


def test_the_scoring_api_serves_the_reports_route(churn_env: dict[str, str]) -> None:
    page = Path(churn_env["CHURN_HOME"]) / "reports" / "health" / "2016-05" / "health_2016-05.html"
    page.parent.mkdir(parents=True)
    page.write_text("<p>page</p>")
    # Not entered as a context: the app is never started, no model or store is needed.
    client = TestClient(create_app(cast(Any, None), cast(Any, None), token="secret"))
    answer = client.get("/reports/health/2016-05/health_2016-05.html")
    assert answer.status_code == 200 and answer.text == "<p>page</p>", "open: a browser's click"
    assert client.get("/reports/..%2Fwarehouse.duckdb").status_code == 404


# --- the asset -----------------------------------------------------------------------------


def test_a_month_with_only_scores_still_draws_every_picture(churn_env: dict[str, str]) -> None:
    """The first model's month: scored, but nothing backtested, estimated or measured yet, and
    the version that scored it no longer in the registry."""
    cohort = date(2016, 5, 1)
    scored = pd.DataFrame(
        {
            "msno": ["ann", "bob", "cid", "dan"],
            "cohort_month": cohort,
            "churn_probability": [0.9, 0.2, 0.05, 0.01],
            "bucket": ["A", "B", "C", "C"],
            "model_version": "3",
            "top_reasons": None,
            "scored_at": datetime(2016, 5, 1),
            "control_group": False,
            "bucket_policy": "cut-offs",
        }
    )
    with duckdb.connect(default_resources()["warehouse"].database) as conn:
        conn.register("scored", scored)
        run_sql_file(conn, PREDICTIONS_SQL, {"cohort": cohort})
    result = materialize(
        [model_health_report], partition_key=partition_key(cohort), resources=default_resources()
    )
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    folder = Path(churn_env["CHURN_HOME"]) / "reports" / "health" / "2016-05"
    assert len([p for p in folder.glob("*.png") if p.read_bytes().startswith(PNG_SIGNATURE)]) == 6
    assert [metadata[f"bucket_{b}_users"].value for b in "abc"] == [1, 1, 2]
    assert math.isnan(metadata["estimated_auc"].value) and metadata["judged_columns"].value == 0
    assert metadata["champion_version"].value == "3" and "model_card" not in metadata
    page = _client(folder.parent.parent).get(_route(metadata["health_page"].value))
    assert page.status_code == 200 and "v3" in page.text


def _scored_months(home: Path) -> list:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return [
            m for (m,) in conn.execute("SELECT DISTINCT cohort_month FROM predictions").fetchall()
        ]


def test_replay_writes_a_health_page_for_every_scored_month(replayed_world) -> None:
    home = replayed_world["home"]
    months = sorted(_scored_months(home))
    assert months, "the tiny world scores cohorts"
    for month in months:
        page = home / "reports" / "health" / f"{month:%Y-%m}" / f"health_{month:%Y-%m}.html"
        assert page.exists(), page
    cards = sorted((home / "reports" / "models").glob("model_v*.html"))
    assert cards, "a card per registered version"


def test_the_materialization_carries_pictures_numbers_and_links_that_open(replayed_world):
    home = replayed_world["home"]
    month = max(_scored_months(home))
    result = materialize(
        [model_health_report], partition_key=partition_key(month), resources=default_resources()
    )
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    folder = home / "reports" / "health" / f"{month:%Y-%m}"
    pictures = sorted(folder.glob("*.png"))
    assert {p.stem for p in pictures} == {
        "performance", "calibration", "drift", "importance", "buckets", "timeline"
    }  # fmt: skip
    for picture in pictures:
        assert picture.read_bytes().startswith(PNG_SIGNATURE)
        assert matplotlib.image.imread(io.BytesIO(picture.read_bytes()), format="png").ndim == 3
    # Inline pictures render without a server; numbers are plain, for the Plots tab.
    assert metadata["performance_picture"].value.startswith("![performance](data:image/png;base64,")
    for name in ("bucket_a_users", "bucket_b_users", "bucket_c_users", "judged_columns"):
        assert isinstance(metadata[name], dg.IntMetadataValue), name
    for name in ("estimated_auc", "realised_auc", "weighted_psi", "calibration_error"):
        assert isinstance(metadata[name], dg.FloatMetadataValue), name
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        [(scored,)] = conn.execute(
            "SELECT count(*) FROM predictions WHERE cohort_month = ?", [month]
        ).fetchall()
    buckets = [metadata[f"bucket_{b}_users"].value for b in "abc"]
    assert sum(buckets) == scored
    # Every http link to a report opens through the route; MLflow links name the version.
    client = _client(home / "reports")
    page = client.get(_route(metadata["health_page"].value))
    assert page.status_code == 200 and 'src="performance.png"' in page.text
    beside = _route(metadata["health_page"].value).rsplit("/", 1)[0]
    for picture in pictures:
        assert client.get(f"{beside}/{picture.name}").content == picture.read_bytes()
    card = client.get(_route(metadata["model_card"].value))
    champion = metadata["champion_version"].value
    assert card.status_code == 200 and f"churn-model v{champion}" in card.text
    assert "learnt from cohorts" in card.text and "Promotion story" in card.text
    assert metadata["mlflow_model_version"].value.endswith(f"/versions/{champion}")
    assert "/runs/" in metadata["mlflow_training_run"].value
    index = client.get(_route(metadata["all_reports"].value))
    assert f"health_{month:%Y-%m}.html" in index.text and f"model_v{champion}.html" in index.text
