"""The Dagster UI over a replayed world, and Debian's chromium to look at it.

``dagster-webserver`` serves the project's definitions on loopback over a copy of the world's
Dagster home, with the instance configuration the CLI writes; playwright drives the system's
chromium (``apt-get install -y chromium``), since its own browser download is not reachable here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from churn_assets.cli import DAGSTER_YAML
from churn_assets_tests.serving_world import free_port

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent
# Without the background-networking flags, chromium in a container with no way out refuses
# connections or stalls on its own fetches.
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


def require_chromium() -> None:
    """Skip without chromium on a workstation; in CI (which installs it) its absence fails."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); CI runs these")


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


@contextlib.contextmanager
def serve_ui(churn_home: Path, root: Path) -> Iterator[str]:
    """``dagster-webserver`` over a copy of ``churn_home``'s Dagster home; yields its URL."""
    dagster_home = root / "dagster"
    shutil.copytree(churn_home / "dagster", dagster_home)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {
        **os.environ,
        "CHURN_HOME": str(churn_home),
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


@contextlib.contextmanager
def browser_tab(base_url: str) -> Iterator:
    """One chromium tab on ``base_url``, waiting generously for what it is told to expect."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(base_url=base_url, viewport={"width": 1440, "height": 900})
            tab.set_default_timeout(PAGE_WAIT_MS)
            expect.set_options(timeout=PAGE_WAIT_MS)
            yield tab
        finally:
            browser.close()


def screenshot_folder(fallback: Path) -> Path:
    """CHURN_SCREENSHOT_DIR (docs/screenshots, for the README) or ``fallback``."""
    chosen = os.environ.get("CHURN_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else fallback
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def serve_reports(folder: Path) -> Iterator[str]:
    """The reports route of ``churn-assets serve`` over ``folder``, on a free loopback port in a
    thread (the whole API would need the champion loaded); yields its base URL, ``.../reports``."""
    import uvicorn
    from fastapi import FastAPI

    from churn_assets.serving.reports import PREFIX, reports_router

    app = FastAPI()
    app.include_router(reports_router(folder))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the reports server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
