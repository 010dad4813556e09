"""The weekly at-risk list through the project's Definitions: the schedule's request, the run it
launches, the files it writes, what changed since last week, and the mail it sends.

The warehouse holds ``predictions`` rows written here, so each test says exactly who is in which
bucket; the scoring itself is tested in ``test_buckets`` and ``test_batch_reasons``.
"""

from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from churn_assets.alerts import AlertsResource
from churn_assets.definitions import build_definitions
from churn_assets.replay import schedule_ticks
from churn_assets.resources import default_resources
from churn_assets.scoring.assets import SQL as PREDICTIONS_SQL
from churn_assets.warehouse import run_sql_file
from churn_assets_tests.test_alerts import smtp_inbox  # noqa: F401  (a fixture)

MAY, JUNE = date(2016, 5, 1), date(2016, 6, 1)
POLICY = "capacity: A the 2 riskiest outside the control group, B from 0.1"
REASONS = "auto-renew on the current plan: no (raises risk); a; b"


def _users(*rows: tuple[str, float, str, bool]) -> pd.DataFrame:
    """(msno, probability, bucket, control) rows; A and B explained, C not."""
    frame = pd.DataFrame(rows, columns=["msno", "churn_probability", "bucket", "control_group"])
    frame["top_reasons"] = frame["bucket"].map({"A": REASONS, "B": REASONS})
    return frame


FIRST = _users(
    ("ann", 0.9, "A", False),
    ("bob", 0.8, "A", False),
    ("cid", 0.85, "A", True),  # held out: never listed
    ("dan", 0.2, "B", False),
    ("eve", 0.15, "B", False),
    ("fay", 0.05, "C", False),
)


def _score(cohort: date, users: pd.DataFrame) -> None:
    """Write ``users`` as the cohort's predictions, as the predictions asset would."""
    scored = users.assign(
        cohort_month=cohort, model_version="3", scored_at=datetime.now(), bucket_policy=POLICY
    )
    with duckdb.connect(default_resources()["warehouse"].database) as conn:
        conn.register("scored", scored)
        run_sql_file(conn, PREDICTIONS_SQL, {"cohort": cohort})


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, day: datetime):
    """Evaluate the weekly schedule at ``day`` and run what it asks for."""
    repository = defs.get_repository_def()
    schedule = repository.get_schedule_def("weekly_schedule")
    resources = repository.get_top_level_resources()
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=day,
        resources={k: resources[k] for k in schedule.required_resource_keys},
        repository_def=repository,
    ) as context:
        data = schedule.evaluate_tick(context)
    if not data.run_requests:
        return data.skip_message, None
    [request] = data.run_requests
    result = defs.resolve_job_def(schedule.job_name).execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags
    )
    assert result.success
    [event] = result.get_asset_materialization_events()
    return request, event.materialization.metadata


def _listed(metadata) -> pd.DataFrame:
    return pd.read_csv(metadata["path"].value, keep_default_na=False).set_index("msno")


@pytest.fixture
def defs(churn_env) -> dg.Definitions:
    return build_definitions()


def test_every_bucket_a_user_outside_the_control_group_is_listed_with_reasons(defs) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        skipped, _ = _tick(defs, instance, datetime(2016, 5, 4, 6))
        assert "no cohort scored" in skipped
        _score(MAY, FIRST)
        request, metadata = _tick(defs, instance, datetime(2016, 5, 4, 6))
    assert request.run_config["ops"]["at_risk_list"]["config"]["week"] == "2016-05-02"
    listed = _listed(metadata)
    assert list(listed.index) == ["ann", "bob", "dan", "eve"], "A then B, riskiest first"
    assert list(listed["action"]) == ["call", "call", "offer", "offer"]
    assert (listed["top_reasons"] == REASONS).all()
    assert set(listed["change"]) == {"new"}, "the first list: everyone is new"
    assert metadata["bucket_policy"].value == POLICY
    assert metadata["week"].value == "2016-05-02" and metadata["cohort_month"].value == "2016-05-01"
    csv_path, html_path = Path(metadata["path"].value), Path(metadata["html_path"].value)
    assert csv_path.parent == Path(default_resources()["reports"].path) / "at_risk"
    assert csv_path.name == "at_risk_2016-05-02.csv" and html_path.name == "at_risk_2016-05-02.html"
    reports_url = "http://127.0.0.1:8000/reports/at_risk"
    assert metadata["list_url"].value == f"{reports_url}/at_risk_2016-05-02.html"
    assert metadata["csv_url"].value == f"{reports_url}/at_risk_2016-05-02.csv"
    page = html_path.read_text()
    assert "ann" in page and "cid" not in page and "fay" not in page and POLICY in page
    assert metadata["mail"].value == "not configured"


def test_changes_since_last_week(defs) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        _score(MAY, FIRST)
        _tick(defs, instance, datetime(2016, 5, 2, 6))
        # The cohort re-scored by a new champion: bob down to B, eve out to C, fay up to A.
        _score(
            MAY,
            _users(
                ("ann", 0.9, "A", False),
                ("bob", 0.25, "B", False),
                ("cid", 0.85, "A", True),
                ("dan", 0.35, "A", False),
                ("eve", 0.05, "C", False),
                ("fay", 0.7, "A", False),
            ),
        )
        _, metadata = _tick(defs, instance, datetime(2016, 5, 9, 6))
        second = _listed(metadata)
        assert second["change"].to_dict() == {
            "ann": "unchanged",
            "fay": "new",
            "dan": "moved B to A",
            "bob": "moved A to B",
            "eve": "left",
        }
        assert second.loc["eve", "bucket"] == "C" and second.loc["eve", "action"] == "thank-you"
        assert metadata["compared_with_week"].value == "2016-05-02"
        assert metadata["changes"].value == {"new": 1, "moved": 2, "left": 1, "unchanged": 1}
        assert metadata["dagster/row_count"].value == 4

        # A new month's cohort: last month's users leave, this month's arrive.
        _score(JUNE, _users(("gus", 0.6, "A", False), ("ann", 0.12, "B", False)))
        _, metadata = _tick(defs, instance, datetime(2016, 6, 6, 6))
        third = _listed(metadata)
        assert third["change"].to_dict() == {
            "gus": "new",
            "ann": "moved A to B",
            "fay": "left",
            "dan": "left",
            "bob": "left",
        }
        assert third.loc["fay", "bucket"] == "", "not in the new cohort: no bucket now"
        # The first week's list is kept as it was.
        assert _listed({"path": dg.MetadataValue.path(metadata["path"].value)}).shape[0] == 5
        assert Path(metadata["path"].value).with_name("at_risk_2016-05-02.csv").exists()


def test_the_list_is_mailed_to_the_alert_recipients(churn_env, request) -> None:
    port, inbox = request.getfixturevalue("smtp_inbox")
    alerts = AlertsResource(
        log_path=str(Path(churn_env["CHURN_HOME"]) / "alerts.log"),
        smtp_host="127.0.0.1",
        smtp_port=port,
        email_to=["retention@example.com"],
    )
    defs = build_definitions({**default_resources(), "alerts": alerts})
    _score(MAY, FIRST)
    with dg.DagsterInstance.ephemeral() as instance:
        _, metadata = _tick(defs, instance, datetime(2016, 5, 2, 6))
    assert metadata["mail"].value == "sent to retention@example.com"
    [message] = inbox.messages
    subject = message["Subject"].replace("\r\n", "")  # unfolded
    assert "at-risk list, week of 2016-05-02: 2 to call, 2 to make an offer" in subject
    files = {part.get_filename(): part for part in message.walk() if part.get_filename()}
    assert set(files) == {"at_risk_2016-05-02.csv", "at_risk_2016-05-02.html"}
    assert "ann" in files["at_risk_2016-05-02.csv"].get_payload(decode=True).decode()


def test_a_mail_server_that_does_not_answer_loses_no_list(churn_env) -> None:
    home = Path(churn_env["CHURN_HOME"])
    alerts = AlertsResource(
        log_path=str(home / "alerts.log"), smtp_host="127.0.0.1", smtp_port=9, email_to=["x@y.z"]
    )
    defs = build_definitions({**default_resources(), "alerts": alerts})
    _score(MAY, FIRST)
    with dg.DagsterInstance.ephemeral() as instance:
        _, metadata = _tick(defs, instance, datetime(2016, 5, 2, 6))
    assert metadata["mail"].value.startswith("failed:")
    assert Path(metadata["path"].value).exists()
    assert "channel_failed" in (home / "alerts.log").read_text()


def test_replay_evaluates_the_weekly_schedule_once_a_month_after_the_monthly_one(defs) -> None:
    repository = defs.get_repository_def()
    weekly = schedule_ticks(repository.get_schedule_def("weekly_schedule"), MAY)
    monthly = schedule_ticks(repository.get_schedule_def("monthly_schedule"), MAY)
    assert monthly == [datetime(2016, 5, 1, 3, 0)]
    assert [t.day for t in weekly] == [2, 9, 16, 23, 30] and weekly[0].weekday() == 0
    # Weekly is evaluated at its first tick, after the month's loads and sensors.
    assert weekly[0] > monthly[0]
