"""Raw loads through `dg.materialize`: idempotent partitions, and bad files named, nothing lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from churn_assets.raw.assets import labels, members, transactions, user_logs
from churn_assets.simulator import simulate
from churn_assets_tests.helpers import materialize, resources_for

MONTH = "2016-02-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return simulate(tmp_path_factory.mktemp("raw_world"), users=300, months=4, seed=5)


@pytest.fixture
def landing(world, tmp_path: Path) -> Path:
    """A private copy of the landing folder that a test may spoil."""
    folder = tmp_path / "landing"
    shutil.copytree(world.landing_dir, folder)
    return folder


def _load(home: Path, landing: Path, asset, partition: str | None = MONTH, **kwargs):
    return materialize(
        [asset], partition_key=partition, resources=resources_for(home, landing), **kwargs
    )


def _rows(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _transactions_file(landing: Path, name: str, rows: str) -> Path:
    """A transactions file with the landed files' header and the given rows."""
    header = (landing / "transactions_201602.csv").read_text().splitlines()[0]
    path = landing / name
    path.write_text(f"{header}\n{rows}")
    return path


def _month_fingerprint(home: Path) -> list[tuple]:
    return _rows(
        home,
        "SELECT count(*), sum(hash(msno, transaction_date, actual_amount_paid)) FROM transactions "
        f"WHERE date_trunc('month', transaction_date) = DATE '{MONTH}'",
    )


def test_month_partition_loads_only_its_month_and_reloads_idempotently(tmp_path, landing):
    home = tmp_path / "home"
    first = _load(home, landing, transactions)
    assert first.success
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert checks["schema"].passed and checks["nulls"].passed
    months = _rows(home, "SELECT DISTINCT date_trunc('month', transaction_date) FROM transactions")
    assert [m[0].strftime("%Y-%m-%d") for m in months] == [MONTH]
    before = _month_fingerprint(home)
    assert before[0][0] > 0
    assert _load(home, landing, transactions).success
    assert _month_fingerprint(home) == before
    # Exact duplicate rows in the files (a KKBox quirk) are stored once.
    duplicates = _rows(
        home,
        "SELECT count(*) FROM (SELECT *, count(*) c FROM transactions GROUP BY ALL HAVING c > 1)",
    )
    assert duplicates == [(0,)]


def test_v1_and_v2_files_are_unioned_without_duplicates(tmp_path, landing):
    home = tmp_path / "home"
    assert _load(home, landing, user_logs).success
    before = _rows(home, "SELECT count(*) FROM user_logs")
    source = landing / "user_logs_201602.csv"
    shutil.copy(source, landing / "user_logs_v2.csv")  # a second file repeating every row
    result = _load(home, landing, user_logs)
    assert result.success
    assert _rows(home, "SELECT count(*) FROM user_logs") == before
    # Every copy is counted as an exact duplicate; none of them is mistaken for a key duplicate.
    duplicates = _metadata(_checks(result)["duplicates"])
    assert duplicates["exact_duplicates_dropped"] == before[0][0]
    assert duplicates["key_duplicates"] == 0


def test_missing_column_is_named_and_stored_month_kept(tmp_path, landing):
    home = tmp_path / "home"
    assert _load(home, landing, transactions).success
    before = _month_fingerprint(home)
    bad = landing / "transactions_extra.csv"
    bad.write_text("msno,payment_method_id,transaction_date\nabc,41,20160210\n")
    with pytest.raises(dg.Failure) as failure:
        _load(home, landing, transactions)
    message = failure.value.description
    assert str(bad) in message
    assert "is_cancel" in message and "membership_expire_date" in message
    assert _month_fingerprint(home) == before


@pytest.mark.parametrize(
    ("name", "rows", "named"),
    [
        pytest.param(
            "transactions_bad.csv",
            "u1,41,30,149,149,1,20160205,20160306,0\nu2,41,30,lots,149,1,20160206,20160307,0\n",
            ("line 3", "plan_list_price"),
            id="wrong-type",
        ),
        pytest.param(
            "transactions_malformed.csv",
            "u1,41,30,149,149,1,20160205,20160306,0\nu2,41,30,149,149,1,20160206\n",
            ("line 3",),
            id="malformed-row",
        ),
    ],
)
def test_bad_row_is_named_and_stored_month_kept(tmp_path, landing, name, rows, named):
    home = tmp_path / "home"
    assert _load(home, landing, transactions).success
    before = _month_fingerprint(home)
    bad = _transactions_file(landing, name, rows)
    with pytest.raises(dg.Failure) as failure:
        _load(home, landing, transactions)
    message = failure.value.description
    assert str(bad) in message and all(word in message for word in named)
    assert _month_fingerprint(home) == before


def test_empty_file_is_named(tmp_path, landing):
    home = tmp_path / "home"
    empty = landing / "members_empty.csv"
    empty.write_text("")
    with pytest.raises(dg.Failure) as failure:
        _load(home, landing, members, partition=None)
    assert str(empty) in failure.value.description and "empty" in failure.value.description


def test_month_without_data_fails_naming_the_month_and_the_folder(tmp_path, landing):
    home = tmp_path / "home"
    result = _load(home, landing, transactions, partition="2017-06-01", raise_on_error=False)
    # No file covers the month: the delivery has not happened, so the load fails (and is loaded
    # once a file lands) rather than storing an empty month.
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.user_failure_data.description
    assert "no transactions file" in message and "2017-06" in message and str(landing) in message


def test_labels_load_one_cohort(tmp_path, landing, world):
    home = tmp_path / "home"
    cohort = world.labelled_cohorts[0]
    result = _load(home, landing, labels, partition=cohort.strftime("%Y-%m-01"))
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["schema"].passed
    expected = len((landing / f"train_{cohort:%Y%m}.csv").read_text().splitlines()) - 1
    assert _rows(home, "SELECT count(*), count(DISTINCT msno) FROM labels") == [
        (expected, expected)
    ]


# --- data-quality checks ----------------------------------------------------------------------


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def _metadata(check: dg.AssetCheckEvaluation) -> dict:
    return {k: v.value for k, v in check.metadata.items()}


def test_every_check_reports_its_numbers(tmp_path, landing):
    home = tmp_path / "home"
    assert _load(home, landing, members, partition=None).success
    result = _load(home, landing, user_logs)
    assert result.success
    checks = _checks(result)
    assert set(checks) == {"schema", "nulls", "ranges", "duplicates", "referential", "volume"}
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}
    ranges = _metadata(checks["ranges"])
    # The simulator writes KKBox's odd seconds at low rates: flagged with shares, not failed.
    assert 0 < ranges["negative_total_secs_share"] < ranges["negative_total_secs_limit"]
    assert ranges["absurd_total_secs_rows"] > 0
    referential = _metadata(checks["referential"])
    assert 0 < referential["unknown_user_share"] < 0.10  # users without a members row
    assert "no earlier month" in checks["volume"].description
    assert _metadata(checks["duplicates"])["key_duplicates"] == 0

    txns = _checks(_load(home, landing, transactions))
    assert _metadata(txns["duplicates"])["exact_duplicates_dropped"] > 0  # KKBox repeats rows
    assert _metadata(txns["ranges"])["zero_day_plans_rows"] > 0
    assert txns["ranges"].passed

    member_checks = _checks(_load(home, landing, members, partition=None))
    assert set(member_checks) == {"schema", "nulls", "ranges", "duplicates"}
    assert 0.5 < _metadata(member_checks["ranges"])["invalid_bd_share"] < 0.8


def test_referential_check_waits_for_members(tmp_path, landing):
    checks = _checks(_load(tmp_path / "home", landing, transactions))
    assert checks["referential"].passed
    assert "members not loaded" in checks["referential"].description


def test_out_of_range_values_and_key_duplicates_fail_their_checks(tmp_path, landing):
    home = tmp_path / "home"
    source = landing / "user_logs_201602.csv"
    lines = source.read_text().splitlines()
    # Rewrite 5% of rows with negative seconds; repeat another 5% with one count changed.
    broken, repeated = [lines[0]], []
    for i, line in enumerate(lines[1:]):
        fields = line.split(",")
        if i % 20 == 0:
            fields[-1] = "-12.5"
        if i % 20 == 1:
            repeated.append(",".join([*fields[:2], str(int(fields[2]) + 1), *fields[3:]]))
        broken.append(",".join(fields))
    source.write_text("\n".join(broken + repeated) + "\n")
    result = _load(home, landing, user_logs)
    assert result.success  # warnings, not blocking
    checks = _checks(result)
    assert checks["schema"].passed
    assert not checks["ranges"].passed
    assert "negative_total_secs" in checks["ranges"].description
    assert not checks["duplicates"].passed
    assert _metadata(checks["duplicates"])["key_duplicates"] == len(repeated)


def test_volume_is_compared_with_the_trailing_months(tmp_path, landing):
    home = tmp_path / "home"
    for month in ("2016-01-01", "2016-02-01"):
        checks = _checks(_load(home, landing, user_logs, partition=month))
    assert checks["volume"].passed
    assert _metadata(checks["volume"])["trailing_months"] == 1
    # An outage: most of March's rows never arrive.
    source = landing / "user_logs_201603.csv"
    lines = source.read_text().splitlines()
    source.write_text("\n".join(lines[: len(lines) // 3]) + "\n")
    checks = _checks(_load(home, landing, user_logs, partition="2016-03-01"))
    assert not checks["volume"].passed
    volume = _metadata(checks["volume"])
    assert volume["trailing_months"] == 2 and volume["ratio"] < 0.5
    # The band is configurable per run.
    config = {"ops": {"user_logs": {"config": {"volume_min_ratio": 0.1}}}}
    checks = _checks(_load(home, landing, user_logs, partition="2016-03-01", run_config=config))
    assert checks["volume"].passed


def test_extra_column_is_ignored_and_reported(tmp_path, landing):
    home = tmp_path / "home"
    source = landing / "user_logs_201602.csv"
    lines = source.read_text().splitlines()
    source.write_text(
        "\n".join([lines[0] + ",num_skip"] + [line + ",3" for line in lines[1:]]) + "\n"
    )
    result = _load(home, landing, user_logs)
    assert result.success
    schema = _checks(result)["schema"]
    # Loaded without it; the producer changed its format, which a person should hear of.
    assert not schema.passed and schema.severity == dg.AssetCheckSeverity.WARN
    assert "not in the contract, ignored: num_skip" in schema.description
    assert _metadata(schema)["extra_columns_ignored"] == "num_skip"


def test_header_only_files_leave_the_month_unloaded(tmp_path, landing):
    home = tmp_path / "home"
    for path in landing.glob("user_logs_*.csv"):
        path.write_text(path.read_text().splitlines()[0] + "\n")
    result = _load(home, landing, user_logs, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert (
        "hold no valid rows of that month"
        in failure.step_failure_data.user_failure_data.description
    )


# --- partition ranges in one run --------------------------------------------------------------


def _load_range(home: Path, landing: Path, asset, first: str, last: str, **kwargs):
    tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
    return materialize([asset], tags=tags, resources=resources_for(home, landing), **kwargs)


def test_a_partition_range_loads_in_one_run_with_checks_per_month(tmp_path, landing, world):
    home = tmp_path / "home"
    first, last = world.history_months[0], world.months[-1]
    result = _load_range(home, landing, transactions, f"{first:%Y-%m-01}", f"{last:%Y-%m-01}")
    assert result.success
    materialized = {
        e.partition for e in result.get_asset_materialization_events() if e.partition
    } or {m.partition for m in result.asset_materializations_for_node("transactions")}
    months = world.history_months + world.months
    assert materialized == {f"{m:%Y-%m-01}" for m in months}
    evaluations = result.get_asset_check_evaluations()
    by_month = {(e.partition, e.check_name): e for e in evaluations}
    assert len(by_month) == len(months) * 6
    assert all(by_month[(f"{m:%Y-%m-01}", "schema")].passed for m in months)
    assert "no earlier month" in by_month[(f"{first:%Y-%m-01}", "volume")].description
    assert by_month[(f"{last:%Y-%m-01}", "volume")].metadata["trailing_months"].value == 3
    stored = _rows(
        home, "SELECT DISTINCT date_trunc('month', transaction_date)::DATE FROM transactions"
    )
    assert sorted(r[0] for r in stored) == months

    # The same months loaded one by one store the same rows.
    single = tmp_path / "single"
    for month in months:
        assert _load(single, landing, transactions, partition=f"{month:%Y-%m-01}").success
    fingerprint = "SELECT count(*), sum(hash(msno, transaction_date, is_cancel)) FROM transactions"
    assert _rows(home, fingerprint) == _rows(single, fingerprint)


def test_a_failing_month_in_a_range_blocks_and_keeps_what_was_stored(tmp_path, landing, world):
    home = tmp_path / "home"
    months = world.months
    assert _load_range(home, landing, user_logs, f"{months[0]:%Y-%m-01}", "2016-02-01").success
    before = _rows(home, "SELECT count(*), sum(hash(msno, date)) FROM user_logs")
    (landing / "user_logs_bad.csv").write_text(
        (landing / "user_logs_201602.csv").read_text().splitlines()[0]
        + "\nu1,20160203,1,1,1,1,many,1,10.0\n"
    )
    with pytest.raises(dg.Failure) as failure:
        _load_range(home, landing, user_logs, f"{months[0]:%Y-%m-01}", f"{months[-1]:%Y-%m-01}")
    assert "user_logs_bad.csv" in failure.value.description
    assert "num_100" in failure.value.description
    assert _rows(home, "SELECT count(*), sum(hash(msno, date)) FROM user_logs") == before
