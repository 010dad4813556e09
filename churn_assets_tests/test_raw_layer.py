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
    assert _load(home, landing, user_logs).success
    assert _rows(home, "SELECT count(*) FROM user_logs") == before


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


def test_wrong_type_names_file_line_and_column_and_keeps_stored_month(tmp_path, landing):
    home = tmp_path / "home"
    assert _load(home, landing, transactions).success
    before = _month_fingerprint(home)
    bad = landing / "transactions_bad.csv"
    header = (landing / "transactions_201602.csv").read_text().splitlines()[0]
    bad.write_text(
        f"{header}\n"
        "u1,41,30,149,149,1,20160205,20160306,0\n"
        "u2,41,30,lots,149,1,20160206,20160307,0\n"
    )
    with pytest.raises(dg.Failure) as failure:
        _load(home, landing, transactions)
    message = failure.value.description
    assert str(bad) in message and "line 3" in message and "plan_list_price" in message
    assert _month_fingerprint(home) == before


def test_empty_file_is_named(tmp_path, landing):
    home = tmp_path / "home"
    empty = landing / "members_empty.csv"
    empty.write_text("")
    with pytest.raises(dg.Failure) as failure:
        _load(home, landing, members, partition=None)
    assert str(empty) in failure.value.description and "empty" in failure.value.description


def test_month_without_data_fails_the_blocking_schema_check(tmp_path, landing):
    home = tmp_path / "home"
    result = _load(home, landing, transactions, partition="2017-06-01", raise_on_error=False)
    # A failed blocking check fails the step, so nothing downstream runs on an empty month.
    assert not result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["schema"].passed
    assert checks["schema"].severity == dg.AssetCheckSeverity.ERROR
    assert "no transactions rows" in checks["schema"].description


def test_labels_load_one_cohort(tmp_path, landing, world):
    home = tmp_path / "home"
    cohort = world.labeled_cohorts[0]
    result = _load(home, landing, labels, partition=cohort.strftime("%Y-%m-01"))
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["schema"].passed
    expected = len((landing / f"train_{cohort:%Y%m}.csv").read_text().splitlines()) - 1
    assert _rows(home, "SELECT count(*), count(DISTINCT msno) FROM labels") == [
        (expected, expected)
    ]
