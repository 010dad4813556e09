"""What a person sees in the Dagster UI over a replayed world, in a real browser.

``dagster-webserver`` serves the project's definitions on loopback over the shared replayed world,
and Debian's chromium, driven by playwright, visits the lineage, a drift check's history, the model
asset, a report it links to and the automation page. Each page is saved as a screenshot:
``CHURN_SCREENSHOT_DIR=docs/screenshots pytest -n 0 churn_assets_tests/test_browser.py`` refreshes
the README's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from churn_assets import keys
from churn_assets.cli import DAGSTER_YAML
from churn_assets_tests.serving_world import free_port

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent
# Flags without which chromium, sandboxed in a container with no way out, refuses connections or
# stalls on its own background fetches.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Guards against a hang, not budgets: a loaded machine only waits longer.
SERVER_START_S = 600
PAGE_WAIT_MS = 120_000

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install -y chromium); CI installs it and runs this file",
        allow_module_level=True,
    )

if not os.environ.get("CI"):
    pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' installs playwright")
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages go: CHURN_SCREENSHOT_DIR (docs/screenshots, for the README) or tmp."""
    chosen = os.environ.get("CHURN_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


def _wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    """Until the webserver answers; a server that exits first fails the test with its log."""
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dagster-webserver exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"dagster-webserver never answered:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def webserver(replayed_world, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI over a copy of the replayed world's Dagster home, with the CLI's dagster.yaml."""
    root = tmp_path_factory.mktemp("webserver")
    dagster_home = root / "dagster"
    shutil.copytree(replayed_world["home"] / "dagster", dagster_home)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {
        **os.environ,
        "CHURN_HOME": str(replayed_world["home"]),
        "DAGSTER_HOME": str(dagster_home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    port = free_port()
    log = root / "webserver.log"
    command = [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port)]
    with log.open("w") as out:
        server = subprocess.Popen(
            [*command, "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def page(webserver: str) -> Iterator[Page]:
    """One chromium tab for the file's visits."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(base_url=webserver, viewport={"width": 1440, "height": 900})
            tab.set_default_timeout(PAGE_WAIT_MS)
            expect.set_options(timeout=PAGE_WAIT_MS)
            yield tab
        finally:
            browser.close()


def _visit(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")


def _shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))


def _latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    event = instance.get_latest_materialization_event(key)
    assert event is not None and event.asset_materialization is not None, f"{key} never built"
    return dict(event.asset_materialization.metadata)


def test_lineage_shows_the_loop_from_raw_files_to_the_at_risk_list(page, screenshots):
    _visit(page, "/assets/predictions?view=lineage&lineageScope=neighbors&lineageDepth=2")
    for asset in ("transactions", "features", "churn_model", "predictions", "at_risk_list"):
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()
    for group in ("raw", "features", "training", "scoring", "reports"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    # The first-run community pop-up is off (``nux`` in the CLI's dagster.yaml).
    expect(page.get_by_text("Join the Dagster community")).to_have_count(0)
    _shot(page, screenshots, "lineage")


def test_the_drift_check_history_shows_a_verdict_per_cohort(page, screenshots, replayed_world):
    _visit(page, f"/assets/drift_report?view=checks&checkDetail={keys.DRIFT_CHECK}")
    page.get_by_text("Execution history", exact=True).click()
    history = page.locator("table").last
    expect(history.get_by_text("Evaluation result")).to_be_visible()
    # Every scored cohort was judged, and the drifted world failed the check at least once.
    scored = [m for m in replayed_world["summary"].months if m.strftime("%Y-%m") >= "2016-05"]
    for month in scored:
        expect(history.get_by_text(f"{month:%Y-%m}-01").first).to_be_visible()
    expect(history.get_by_text("Failed", exact=True).first).to_be_visible()
    expect(history.get_by_text("weighted PSI").first).to_be_visible()
    _shot(page, screenshots, "drift_check_history")


def test_the_model_asset_shows_its_validation_and_hurdle(page, screenshots, replayed_world):
    _visit(page, "/assets/churn_model")
    metadata = _latest_metadata(replayed_world["instance"], keys.CHURN_MODEL)
    for label in ("val_auc", "hurdle", "training_cohorts"):
        assert label in metadata, sorted(metadata)
        expect(page.get_by_text(label, exact=True).first).to_be_visible()
    expect(page.get_by_text(str(metadata["training_cohorts"].value)).first).to_be_visible()
    _shot(page, screenshots, "model")


def test_a_report_linked_from_an_asset_opens(page, screenshots, replayed_world):
    """A URL in the metadata is followed; else the at-risk list's page, by its listed path."""
    instance = replayed_world["instance"]
    links = [
        value.value
        for key in (keys.DRIFT_REPORT, keys.AT_RISK_LIST)
        for value in _latest_metadata(instance, key).values()
        if isinstance(value, dg.UrlMetadataValue) and value.value.startswith("http")
    ]
    if links:
        answer = page.goto(links[0])
        assert answer is not None and answer.ok, links[0]
        expect(page.locator("body")).not_to_be_empty()
        _shot(page, screenshots, "report")
        return
    _visit(page, "/assets/at_risk_list")
    html_path = _latest_metadata(instance, keys.AT_RISK_LIST)["html_path"].value
    expect(page.get_by_text("html_path", exact=True).first).to_be_visible()
    expect(page.get_by_text(html_path, exact=True).first).to_be_visible()
    page.goto(Path(html_path).resolve().as_uri())
    expect(page.locator("h1")).to_contain_text("At-risk list")
    expect(page.get_by_text("On the list", exact=True)).to_be_visible()
    _shot(page, screenshots, "report")


def test_the_automation_page_lists_the_sensors_and_schedules(page, screenshots):
    _visit(page, "/automation")
    for name in ("landing_sensor", "cohort_sensor", "training_sensor", "monthly_schedule"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    expect(page.get_by_text("Scheduled At 03:00 AM UTC, on day 1 of the month")).to_be_visible()
    _shot(page, screenshots, "automation")
