"""Alerts through Dagster's own entry points, delivered to a local SMTP server and HTTP receiver.

Both servers listen on 127.0.0.1 at free ports and are stopped by their fixtures. (No
``from __future__ import annotations``: Dagster reads the asset's config class from its
annotation.)
"""

import email
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from aiosmtpd.controller import Controller

from churn_assets.alerts import (
    CHANNEL_FAILED,
    CHECK_FAILED,
    RETRAINING_DID_NOT_HELP,
    RUN_FAILED,
    RUN_SLOW,
    AlertsResource,
    alert_retraining_did_not_help,
    alerts_resource,
)
from churn_assets.alerts.sensors import (
    ALERT_SENSORS,
    check_failure_alerts,
    run_failure_alerts,
    slow_run_alerts,
)
from churn_assets.resources import default_resources

COHORT = "2016-04-01"
SERVER_TIMEOUT_S = 5.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Inbox:
    """aiosmtpd handler keeping what it received."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=_free_port(), ready_timeout=SERVER_TIMEOUT_S
    )
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.timeout = SERVER_TIMEOUT_S
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(SERVER_TIMEOUT_S)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def _alerts(tmp_path: Path, **overrides) -> AlertsResource:
    fields = {"log_path": str(tmp_path / "logs" / "alerts.log"), "webhook_retries": 1}
    return AlertsResource(**{**fields, **overrides})


def _log_lines(alerts: AlertsResource) -> list[list[str]]:
    path = Path(alerts.log_path)
    if not path.exists():
        return []
    return [line.split("\t") for line in path.read_text().splitlines()]


cohorts = dg.StaticPartitionsDefinition([COHORT])


class TinyConfig(dg.Config):
    rows: int = 0


@dg.asset(
    partitions_def=cohorts,
    check_specs=[
        dg.AssetCheckSpec("not_empty", asset="tiny", partitions_def=cohorts),
        dg.AssetCheckSpec("few_rows", asset="tiny", partitions_def=cohorts),
    ],
)
def tiny(config: TinyConfig) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="not_empty",
                passed=config.rows > 0,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"{config.rows} rows in the cohort",
            ),
            dg.AssetCheckResult(
                check_name="few_rows",
                passed=config.rows > 10,
                severity=dg.AssetCheckSeverity.WARN,
                description="fewer than 10 rows",
            ),
        ]
    )


def _materialize_tiny(instance: dg.DagsterInstance, rows: int) -> None:
    result = dg.materialize(
        [tiny],
        instance=instance,
        partition_key=COHORT,
        run_config={"ops": {"tiny": {"config": {"rows": rows}}}},
    )
    assert result.success


def _tick(
    sensor: dg.SensorDefinition,
    instance: dg.DagsterInstance,
    alerts: AlertsResource,
    cursor: str | None = None,
) -> str | None:
    defs = dg.Definitions(assets=[tiny], sensors=ALERT_SENSORS, resources={"alerts": alerts})
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        sensor_name=sensor.name,
        resources={"alerts": alerts},
        definitions=defs,
    ) as context:
        return sensor.evaluate_tick(context).cursor


def test_failed_error_check_alerts_every_channel_once(tmp_path, smtp_inbox, webhook):
    port, inbox = smtp_inbox
    url, received = webhook
    alerts = _alerts(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="churn@example.org",
        email_to=["ops@example.org", "ml@example.org"],
        webhook_url=url,
    )
    with dg.instance_for_test() as instance:
        _materialize_tiny(instance, rows=0)
        cursor = _tick(check_failure_alerts, instance, alerts)

        lines = _log_lines(alerts)
        assert len(lines) == 1
        _, severity, event, subject, detail, link = lines[0]
        assert (severity, event, subject) == ("error", CHECK_FAILED, f"tiny:not_empty[{COHORT}]")
        assert detail.startswith("0 rows in the cohort (run ") and link.startswith("http")
        # The warning check failed too, but only ERROR checks alert.
        assert len(inbox.messages) == 1
        mail = inbox.messages[0]
        assert "tiny:not_empty" in mail["Subject"] and COHORT in mail["Subject"]
        assert mail["To"] == "ops@example.org, ml@example.org"
        assert "0 rows in the cohort" in mail.get_payload()
        assert len(received) == 1
        payload = received[0]
        assert set(payload) == {
            "event",
            "severity",
            "subject",
            "detail",
            "cohort",
            "run_id",
            "link",
            "at",
        }
        assert payload["event"] == CHECK_FAILED and payload["cohort"] == COHORT
        assert payload["run_id"] and payload["link"].endswith(payload["run_id"])

        # Ticking again, or failing again before passing: nothing is sent twice.
        cursor = _tick(check_failure_alerts, instance, alerts, cursor)
        _materialize_tiny(instance, rows=0)
        cursor = _tick(check_failure_alerts, instance, alerts, cursor)
        assert len(_log_lines(alerts)) == 1 and len(inbox.messages) == 1 and len(received) == 1

        # Once the check has passed, a new failure is a new alert.
        _materialize_tiny(instance, rows=50)
        cursor = _tick(check_failure_alerts, instance, alerts, cursor)
        assert len(received) == 1
        _materialize_tiny(instance, rows=0)
        _tick(check_failure_alerts, instance, alerts, cursor)
        assert len(received) == 2 and len(inbox.messages) == 2


def test_a_sensor_started_afresh_does_not_repeat_an_alert_the_log_holds(tmp_path):
    """Each replay ticks the sensor from no cursor: the failed execution it alerted on before is
    not alerted again, while a later failure of the same check (another run) is."""
    alerts = _alerts(tmp_path)
    with dg.instance_for_test() as instance:
        _materialize_tiny(instance, rows=0)
        _tick(check_failure_alerts, instance, alerts)
        _tick(check_failure_alerts, instance, alerts)  # a fresh cursor, as a new replay
        assert [line[2] for line in _log_lines(alerts)] == [CHECK_FAILED]
        _materialize_tiny(instance, rows=0)
        _tick(check_failure_alerts, instance, alerts)
        assert [line[2] for line in _log_lines(alerts)] == [CHECK_FAILED, CHECK_FAILED]


def test_smtp_down_webhook_still_alerted_and_failure_logged(tmp_path, webhook):
    url, received = webhook
    alerts = _alerts(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=_free_port(),  # nothing listens there
        email_to=["ops@example.org"],
        webhook_url=url,
    )
    with dg.instance_for_test() as instance:
        _materialize_tiny(instance, rows=0)
        _tick(check_failure_alerts, instance, alerts)
    assert [p["subject"] for p in received] == [f"tiny:not_empty[{COHORT}]"]
    lines = _log_lines(alerts)
    assert [line[2] for line in lines] == [CHECK_FAILED, CHANNEL_FAILED]
    assert lines[1][3] == "smtp" and "ConnectionRefusedError" in lines[1][4]
    assert f"tiny:not_empty[{COHORT}]" in lines[1][4]


def test_webhook_down_is_retried_then_logged(tmp_path):
    alerts = _alerts(tmp_path, webhook_url=f"http://127.0.0.1:{_free_port()}/alerts")
    assert alert_retraining_did_not_help(alerts, COHORT, "drift persists after retraining")
    lines = _log_lines(alerts)
    assert [(line[2], line[3]) for line in lines] == [
        (RETRAINING_DID_NOT_HELP, f"cohort {COHORT}"),
        (CHANNEL_FAILED, "webhook"),
    ]
    # Once per cohort.
    assert not alert_retraining_did_not_help(alerts, COHORT, "drift persists after retraining")
    assert len(_log_lines(alerts)) == 2


@dg.op
def load_month() -> None:
    raise ValueError("landing file members_201604.csv line 7: bad date\nsecond line")


@dg.job
def failing_job() -> None:
    load_month()


def test_failed_run_alerts_with_its_step_message(tmp_path, webhook):
    url, received = webhook
    alerts = _alerts(tmp_path, webhook_url=url)
    with dg.instance_for_test() as instance:
        result = failing_job.execute_in_process(
            instance=instance, raise_on_error=False, tags={"dagster/partition": COHORT}
        )
        assert not result.success
        for _ in range(2):  # the second evaluation of the same failure sends nothing
            with dg.build_run_status_sensor_context(
                sensor_name=run_failure_alerts.name,
                dagster_event=result.get_run_failure_event(),
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                resources={"alerts": alerts},
            ) as context:
                run_failure_alerts(context)
    assert len(received) == 1
    payload = received[0]
    assert payload["event"] == RUN_FAILED and payload["run_id"] == result.run_id
    assert (
        payload["detail"]
        == "load_month: ValueError: landing file members_201604.csv line 7: bad date second line"
    )
    assert payload["subject"] == f"failing_job[{COHORT}] run {result.run_id[:8]}"
    assert payload["cohort"] == COHORT
    assert [line[2] for line in _log_lines(alerts)] == [RUN_FAILED]


@dg.op(config_schema={"seconds": float})
def wait(context: dg.OpExecutionContext) -> None:
    time.sleep(context.op_config["seconds"])


@dg.job
def slow_job() -> None:
    wait()


released = threading.Event()


@dg.op
def wait_for_release() -> None:
    released.wait(timeout=120)  # released by the test; the timeout only bounds a broken one


@dg.job
def hanging_job() -> None:
    wait_for_release()


def test_slow_runs_alert_once_finished_or_still_running(tmp_path, webhook):
    url, received = webhook
    with dg.instance_for_test() as instance:
        quick = slow_job.execute_in_process(
            instance=instance, run_config={"ops": {"wait": {"config": {"seconds": 0.0}}}}
        )
        # The limit sits above what a run with nothing to do took on this machine right now.
        record = instance.get_run_record_by_id(quick.run_id)
        limit = record.end_time - record.start_time + 0.5
        alerts = _alerts(tmp_path, webhook_url=url, slow_run_s=limit)
        slow = slow_job.execute_in_process(
            instance=instance, run_config={"ops": {"wait": {"config": {"seconds": limit + 0.3}}}}
        )
        cursor = _tick(slow_run_alerts, instance, alerts)
        assert [p["run_id"] for p in received] == [slow.run_id]
        assert received[0]["event"] == RUN_SLOW and received[0]["severity"] == "warning"
        assert received[0]["detail"].startswith("took ") and "success" in received[0]["detail"]

        released.clear()
        outcome = {}
        runner = threading.Thread(
            target=lambda: outcome.update(result=hanging_job.execute_in_process(instance=instance))
        )
        runner.start()
        try:
            # Generous bounds: on a loaded machine a run takes seconds to start and to end; both
            # waits return as soon as their event happens.
            deadline = time.monotonic() + 60
            while len(received) < 2 and time.monotonic() < deadline:
                time.sleep(0.3)
                cursor = _tick(slow_run_alerts, instance, alerts, cursor)
        finally:
            released.set()
            runner.join(120)
        assert not runner.is_alive() and outcome["result"].success
        hanging = outcome["result"].run_id
        assert received[1]["run_id"] == hanging
        assert received[1]["detail"].startswith("still running after ")
        # Finished now, and slow: already alerted, so nothing more.
        _tick(slow_run_alerts, instance, alerts, cursor)
        assert len(received) == 2
        assert instance.get_run_by_id(hanging).tags.get("churn/alerted/run_slow")


def test_alerts_configured_from_the_environment(tmp_path):
    home = tmp_path / "home"
    env = {
        "CHURN_HOME": str(home),
        "CHURN_ALERT_SMTP_HOST": "127.0.0.1",
        "CHURN_ALERT_SMTP_FROM": "churn@example.org",
        "CHURN_ALERT_EMAIL_TO": "ops@example.org, ml@example.org",
        "CHURN_ALERT_SMTP_STARTTLS": "true",
        "CHURN_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "CHURN_ALERT_SLOW_RUN_S": "120",
    }
    alerts = default_resources(env)["alerts"]
    assert isinstance(alerts, AlertsResource)
    assert alerts.log_path == str(home.resolve() / "logs" / "alerts.log")
    assert (alerts.smtp_host, alerts.smtp_port, alerts.smtp_starttls) == ("127.0.0.1", 25, True)
    assert alerts.email_to == ["ops@example.org", "ml@example.org"]
    assert alerts.channels() == ["smtp", "webhook"] and alerts.slow_run_s == 120
    bare = alerts_resource({"CHURN_HOME": str(home)})
    assert bare.channels() == [] and bare.slow_run_s == 3600
