"""The whole loop on a tiny simulated world, replayed through the project's own definitions,
then seen as a person sees it: the Dagster UI in a real browser.

The UI tests save each page they visit; ``CHURN_SCREENSHOT_DIR=docs/screenshots pytest -n 0
churn_assets_tests/test_end_to_end.py -k ui`` retakes the README's pictures.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from mlflow.tracking import MlflowClient
from playwright.sync_api import Page, expect

from churn_assets import keys
from churn_assets.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets_tests.ui import (
    browser_tab,
    require_chromium,
    screenshot_folder,
    serve_reports,
    serve_ui,
)


def _warehouse(home) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)


def test_replay_runs_every_month_without_failure(replayed_world):
    summary = replayed_world["summary"]
    assert summary.failed_runs == []
    assert [m.strftime("%Y-%m") for m in summary.months] == [
        "2016-02",
        "2016-03",
        "2016-04",
        "2016-05",
        "2016-06",
        "2016-07",
    ]
    origins = {r.origin for r in summary.runs}
    # The simulated subscription history before the listening data is loaded first.
    assert origins == {
        "landing_sensor",
        "monthly_schedule",
        "cohort_sensor",
        "training_sensor",
        "weekly_schedule",
    }


def test_warehouse_tables_hold_every_stage(replayed_world):
    world = replayed_world["world"]
    with _warehouse(replayed_world["home"]) as conn:
        loaded_months = conn.execute(
            "SELECT DISTINCT date_trunc('month', transaction_date)::DATE FROM transactions "
            "ORDER BY 1"
        ).fetchall()
        assert [m[0] for m in loaded_months] == world.history_months + world.months
        feature_cohorts = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT cohort_month FROM features ORDER BY 1"
            ).fetchall()
        ]
        assert feature_cohorts[0].isoformat() == "2016-02-01"
        assert feature_cohorts[-1].isoformat() == "2016-07-01"
        # Labels arrive two months late: the last replayed month (2016-07) knows cohort 2016-05.
        label_cohorts = [
            r[0].isoformat()
            for r in conn.execute("SELECT DISTINCT cohort_month FROM labels ORDER BY 1").fetchall()
        ]
        assert label_cohorts == ["2016-02-01", "2016-03-01", "2016-04-01", "2016-05-01"]

        scored = conn.execute(
            "SELECT cohort_month, count(*), min(churn_probability), max(churn_probability), "
            "count(DISTINCT bucket) FROM predictions GROUP BY 1 ORDER BY 1"
        ).fetchall()
        # The first model exists from 2016-05 (two labelled cohorts: 02 trains, 03 validates).
        assert [r[0].isoformat() for r in scored] == ["2016-05-01", "2016-06-01", "2016-07-01"]
        for _, users, low, high, _ in scored:
            assert users > 50 and 0.0 <= low <= high <= 1.0
        # Every scored user is a cohort user with features, and every cohort user is scored.
        unscored = conn.execute(
            "SELECT count(*) FROM features f ANTI JOIN predictions p USING (msno, cohort_month) "
            "WHERE f.cohort_month >= '2016-05-01'"
        ).fetchone()[0]
        assert unscored == 0
        # Every score in A and B carries three reasons; where anything raises the risk, that comes
        # first. C is explained on demand only.
        assert (
            conn.execute(
                "SELECT count(*) FROM predictions WHERE (bucket = 'C') <> (top_reasons IS NULL)"
            ).fetchone()[0]
            == 0
        )
        reasons = conn.execute(
            "SELECT top_reasons, churn_probability FROM predictions WHERE bucket IN ('A', 'B') "
            "ORDER BY churn_probability"
        ).fetchall()
        assert reasons
        for text, _ in reasons:
            parts = text.split("; ")
            assert len(parts) == 3, text
            assert all(p.endswith(("(raises risk)", "(lowers risk)", "(no effect)")) for p in parts)
        assert reasons[-1][0].split("; ")[0].endswith("(raises risk)")
        # Every scored cohort's performance was estimated when it was scored, by its scorer.
        estimated = conn.execute(
            "SELECT DISTINCT e.cohort_month FROM performance_estimates e "
            "JOIN predictions p USING (cohort_month, model_version) WHERE e.metric = 'auc' "
            "ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in estimated] == [r[0] for r in scored]

        verdicts = conn.execute(
            "SELECT cohort_month, severity FROM monitor_verdicts WHERE monitor = 'data_drift' "
            "ORDER BY evaluated_at"
        ).fetchall()
        # The covariate drift is flagged, as a moderate or a major shift.
        assert any(severity in ("warn", "error") for _, severity in verdicts)
        drift_rows = conn.execute(
            "SELECT count(*), count(DISTINCT column_name) FROM drift_metrics"
        ).fetchone()
        assert drift_rows[0] > 0 and drift_rows[1] > 10


def test_a_failing_monitor_retrains_through_the_sensor(replayed_world):
    summary, instance = replayed_world["summary"], replayed_world["instance"]
    training_runs = [r for r in summary.runs if r.origin == "training_sensor"]
    assert len(training_runs) >= 2, "a first model, then a retrain when a monitor fails"
    first, retrain = training_runs[0], training_runs[1]
    assert "churn_model" in first.assets and "churn_model" in retrain.assets
    # The retrain run was asked for by the policy, naming its trigger and evidence.
    run = instance.get_run_by_id(retrain.run_id)
    assert run.tags["dagster/sensor_name"] == "training_sensor"
    # One retraining per newest labelled cohort, whatever triggered it.
    assert run.tags["dagster/run_key"].startswith(f"retrain-labels-{run.tags['churn/labels']}")
    assert run.tags["churn/trigger"].split(":")[0] in {
        "drift",
        "performance",
        "staleness",
        "provisional",
    }
    # The decision that asked for it is on record, with its trigger and evidence.
    with _warehouse(replayed_world["home"]) as conn:
        decided = conn.execute(
            "SELECT trigger, evidence FROM retraining_decisions WHERE run_key = ?",
            [run.tags["dagster/run_key"]],
        ).fetchall()
    assert decided and decided[0][0] == run.tags["churn/trigger"].split(":")[0] and decided[0][1]
    # ...and re-scored that cohort in the same run.
    assert {"predictions", "drift_report"} <= set(retrain.assets)


def test_registry_has_versions_with_aliases(replayed_world):
    client = MlflowClient(f"sqlite:///{replayed_world['home'] / 'mlflow.db'}")
    versions = client.search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'")
    assert len(versions) >= 2
    newest = max(int(v.version) for v in versions)
    challenger = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, CHALLENGER_ALIAS)
    assert int(challenger.version) == newest
    champion = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS)
    assert champion.tags["promoted"] == "true"
    training_cohorts = json.loads(champion.tags["training_cohorts"])
    assert training_cohorts and max(training_cohorts) < champion.tags["validation_cohort"]
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED"
    assert "val_auc" in run.data.metrics and 0.5 < run.data.metrics["val_auc"] <= 1.0
    assert run.data.params["validation_cohort"] == champion.tags["validation_cohort"][:7]
    # The model was logged with its signature and an input example.
    model_info = __import__("mlflow").models.get_model_info(champion.source)
    assert model_info.signature is not None
    assert model_info.saved_input_example_info is not None
    # Predictions of the newest cohort come from the champion.
    with _warehouse(replayed_world["home"]) as conn:
        versions_used = conn.execute(
            "SELECT DISTINCT model_version FROM predictions WHERE cohort_month = "
            "(SELECT max(cohort_month) FROM predictions)"
        ).fetchall()
    assert versions_used == [(str(champion.version),)]


def test_replaying_again_repeats_no_run_and_records_nothing(replayed_world):
    """A replay with nothing new to do leaves the decision history as it found it: walking the
    months again, the sensors see decisions taken already (or on newer labels) and add none."""
    from churn_assets.replay import replay

    def decisions() -> list[tuple]:
        with _warehouse(replayed_world["home"]) as conn:
            return conn.execute(
                "SELECT trigger, cohort_month, action, newest_labelled_cohort "
                "FROM retraining_decisions ORDER BY ALL"
            ).fetchall()

    before = decisions()
    assert before, "the first replay decided something"
    again = replay(
        replayed_world["defs"],
        replayed_world["instance"],
        replayed_world["world"].landing_dir,
        log=lambda _: None,
    )
    assert again.runs == []
    assert decisions() == before


def test_the_weekly_list_is_written_in_every_scored_month(replayed_world):
    home = replayed_world["home"]
    with _warehouse(home) as conn:
        weeks = conn.execute(
            "SELECT week, any_value(cohort_month), count(*) FILTER (change <> 'left') "
            "FROM at_risk_lists GROUP BY week ORDER BY week"
        ).fetchall()
        newest = conn.execute("SELECT max(cohort_month) FROM predictions").fetchall()[0][0]
    assert weeks, "replay evaluated the weekly schedule"
    for week, cohort, _ in weeks:
        # The month's first Monday, after the month's cohort was scored.
        assert week.weekday() == 0 and week.day <= 7 and cohort == week.replace(day=1)
        assert (home / "reports" / "at_risk" / f"at_risk_{week}.html").exists()
    assert weeks[-1][1] == newest


@pytest.fixture(scope="module")
def ui_page(replayed_world, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """A chromium tab on ``dagster-webserver`` serving the replayed world."""
    require_chromium()
    with (
        serve_ui(replayed_world["home"], tmp_path_factory.mktemp("webserver")) as url,
        browser_tab(url) as tab,
    ):
        yield tab


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_folder(tmp_path_factory.mktemp("screenshots"))


def _visit(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")


def _shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))


def _latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    event = instance.get_latest_materialization_event(key)
    assert event is not None and event.asset_materialization is not None, f"{key} never built"
    return dict(event.asset_materialization.metadata)


def test_ui_lineage_shows_the_loop_from_raw_files_to_the_at_risk_list(ui_page, screenshots):
    _visit(ui_page, "/assets/predictions?view=lineage&lineageScope=neighbors&lineageDepth=2")
    for asset in ("transactions", "features", "churn_model", "predictions", "at_risk_list"):
        expect(ui_page.get_by_text(asset, exact=True).first).to_be_visible()
    for group in ("raw", "features", "training", "scoring", "reports"):
        expect(ui_page.get_by_text(group, exact=True).first).to_be_visible()
    # The first-run community pop-up is off (``nux`` in the CLI's dagster.yaml).
    expect(ui_page.get_by_text("Join the Dagster community")).to_have_count(0)
    _shot(ui_page, screenshots, "lineage")


def test_ui_drift_check_history_shows_a_verdict_per_cohort(ui_page, screenshots, replayed_world):
    _visit(ui_page, f"/assets/drift_report?view=checks&checkDetail={keys.DRIFT_CHECK}")
    ui_page.get_by_text("Execution history", exact=True).click()
    history = ui_page.locator("table").last
    expect(history.get_by_text("Evaluation result")).to_be_visible()
    # Every scored cohort was judged, and the drifted world failed the check at least once.
    scored = [m for m in replayed_world["summary"].months if m.strftime("%Y-%m") >= "2016-05"]
    for month in scored:
        expect(history.get_by_text(f"{month:%Y-%m}-01").first).to_be_visible()
    expect(history.get_by_text("Failed", exact=True).first).to_be_visible()
    expect(history.get_by_text("weighted PSI").first).to_be_visible()
    _shot(ui_page, screenshots, "drift_check_history")


def test_ui_model_asset_shows_its_validation_and_hurdle(ui_page, screenshots, replayed_world):
    _visit(ui_page, "/assets/churn_model")
    metadata = _latest_metadata(replayed_world["instance"], keys.CHURN_MODEL)
    for label in ("val_auc", "hurdle", "training_cohorts"):
        assert label in metadata, sorted(metadata)
        expect(ui_page.get_by_text(label, exact=True).first).to_be_visible()
    expect(ui_page.get_by_text(str(metadata["training_cohorts"].value)).first).to_be_visible()
    _shot(ui_page, screenshots, "model")


def test_ui_report_linked_from_an_asset_opens(ui_page, screenshots, replayed_world):
    """The at-risk list's materialization links its page over http; the link, as the UI shows
    it, opens the page from the reports route (served here over the world's reports folder)."""
    instance = replayed_world["instance"]
    link = _latest_metadata(instance, keys.AT_RISK_LIST)["list_url"]
    assert isinstance(link, dg.UrlMetadataValue) and link.value.startswith("http"), link
    _visit(ui_page, "/assets/at_risk_list")
    expect(ui_page.get_by_text("list_url", exact=True).first).to_be_visible()
    base, _, page_path = link.value.partition("/reports/")
    assert base and page_path, link.value
    with serve_reports(replayed_world["home"] / "reports") as reports:
        answer = ui_page.goto(f"{reports}/{page_path}")
        assert answer is not None and answer.ok, link.value
        expect(ui_page.locator("h1")).to_contain_text("At-risk list")
        expect(ui_page.get_by_text("On the list", exact=True)).to_be_visible()
        _shot(ui_page, screenshots, "report")


def test_ui_automation_page_lists_the_sensors_and_schedules(ui_page, screenshots):
    _visit(ui_page, "/automation")
    for name in ("landing_sensor", "cohort_sensor", "training_sensor", "monthly_schedule"):
        expect(ui_page.get_by_text(name, exact=True).first).to_be_visible()
    expect(ui_page.get_by_text("Scheduled At 03:00 AM UTC, on day 1 of the month")).to_be_visible()
    _shot(ui_page, screenshots, "automation")
