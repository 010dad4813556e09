"""Every landing file is either read or reported: names and extensions match whatever their case,
and a file no table reads is named in the members load's schema check, never skipped in silence."""

from __future__ import annotations

import gzip
import os
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from churn_assets.keys import SCHEMA_CHECK
from churn_assets.landing.catalog import LandingCatalog
from churn_assets.raw.assets import labels, members, transactions, user_logs
from churn_assets_tests.helpers import materialize, resources_for

MEMBERS = "msno,city,bd,gender,registered_via,registration_init_time\nu1,1,30,male,7,20150101\n"
TRANSACTIONS = (
    "msno,payment_method_id,payment_plan_days,plan_list_price,actual_amount_paid,is_auto_renew,"
    "transaction_date,membership_expire_date,is_cancel\n"
    "u1,41,30,149,149,1,20160405,20160505,0\n"
)
USER_LOGS = (
    "msno,date,num_25,num_50,num_75,num_985,num_100,num_unq,total_secs\n"
    "u1,20160410,1,0,0,0,3,4,900.5\n"
)
LABELS = "msno,is_churn\nu1,0\n"


def _landing(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "Members_V3.CSV").write_text(MEMBERS)
    (folder / "transactions_201604.CSV").write_text(TRANSACTIONS)
    (folder / "USER_LOGS_201604.Csv.GZ").write_bytes(gzip.compress(USER_LOGS.encode()))
    (folder / "TRAIN_201605.CSV").write_text(LABELS)
    return folder


def _stored(home: Path, table: str) -> int:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_upper_case_names_and_extensions_are_read(tmp_path: Path) -> None:
    landing = _landing(tmp_path / "landing")
    catalog = LandingCatalog(landing).refresh()
    april = [date(2016, 4, 1)]
    assert [p.name for p in catalog.files_for("transactions", april)] == ["transactions_201604.CSV"]
    assert catalog.months("user_logs") == ["2016-04-01"]
    assert catalog.unclaimed() == []

    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        resources = resources_for(home, landing)
        assert materialize([members], resources=resources, instance=instance).success
        for asset in (transactions, user_logs):
            run = materialize(
                [asset], partition_key="2016-04-01", resources=resources, instance=instance
            )
            assert run.success
        assert materialize(
            [labels], partition_key="2016-05-01", resources=resources, instance=instance
        ).success
    assert [_stored(home, t) for t in ("members", "transactions", "user_logs", "labels")] == [
        1,
        1,
        1,
        1,
    ]


def test_a_file_no_table_reads_is_named_in_a_warning(tmp_path: Path) -> None:
    landing = _landing(tmp_path / "landing")
    (landing / "transactions_201605.csv.zip").write_bytes(b"PK\x03\x04")
    (landing / "notes.txt").write_text("delivered by the billing team")
    (landing / ".DS_Store").write_bytes(b"\0")  # hidden: left alone
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        run = materialize([members], resources=resources_for(home, landing), instance=instance)
    assert run.success  # a warning: the files that are read still load
    [check] = [c for c in run.get_asset_check_evaluations() if c.check_name == SCHEMA_CHECK]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "notes.txt, transactions_201605.csv.zip" in check.description
    assert ".DS_Store" not in check.description
    assert check.metadata["unclaimed_landing_files"].value == (
        "notes.txt, transactions_201605.csv.zip"
    )
    assert _stored(home, "members") == 1


def _labels_file(landing: Path, rows: list[tuple[str, object]]) -> None:
    (landing / "TRAIN_201605.CSV").unlink(missing_ok=True)
    lines = ["msno,is_churn", *(f"{user},{label}" for user, label in rows)]
    (landing / "train_201605.csv").write_text("\n".join(lines) + "\n")


def _load_labels(home: Path, landing: Path, instance: dg.DagsterInstance):
    return materialize(
        [labels],
        partition_key="2016-05-01",
        resources=resources_for(home, landing),
        instance=instance,
        raise_on_error=False,
    )


def _stored_labels(home: Path) -> dict[str, int]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return dict(conn.execute("SELECT msno, is_churn FROM labels").fetchall())


def test_labels_that_say_two_things_are_named_and_never_stored(tmp_path: Path) -> None:
    landing, home = _landing(tmp_path / "landing"), tmp_path / "home"
    good = [(f"u{i}", i % 2) for i in range(300)]
    _labels_file(landing, good)
    with dg.instance_for_test() as instance:
        assert _load_labels(home, landing, instance).success
        before = _stored_labels(home)
        assert before == dict(good)

        # Five users listed with both labels, two with a label that is not one: past the
        # tolerance, the cohort's labels are refused whole and the stored ones stay.
        conflicting = [(f"u{i}", 1 - i % 2) for i in range(5)]
        _labels_file(landing, [*good, *conflicting, ("u10", 2), ("u11", 2)])
        refused = _load_labels(home, landing, instance)
    assert not refused.success
    [check] = [c for c in refused.get_asset_check_evaluations() if c.check_name == SCHEMA_CHECK]
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert "5 users listed with conflicting labels (0 and 1)" in check.description
    assert "2 users with an is_churn other than 0 or 1" in check.description
    assert "nothing of it was stored" in check.description
    assert _stored_labels(home) == before


def test_a_few_unusable_labels_are_left_out_and_counted(tmp_path: Path) -> None:
    landing, home = _landing(tmp_path / "landing"), tmp_path / "home"
    rows = [(f"u{i}", i % 2) for i in range(300)] + [("u3", 0)]  # u3 says 1 and 0
    _labels_file(landing, rows)
    with dg.instance_for_test() as instance:
        loaded = _load_labels(home, landing, instance)
    assert loaded.success
    stored = _stored_labels(home)
    assert "u3" not in stored and len(stored) == 299
    assert set(stored.values()) == {0, 1}
    [check] = [c for c in loaded.get_asset_check_evaluations() if c.check_name == SCHEMA_CHECK]
    assert check.passed and "1 users listed with conflicting labels" in check.description


def _members(home: Path) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT msno, city, known_from, source_file FROM members ORDER BY ALL"
        ).fetchall()


def test_members_are_kept_when_their_file_leaves_and_replaced_when_it_is_replaced(tmp_path):
    """Shops archive delivered files: the warehouse does not forget what a file held."""
    landing, home = tmp_path / "landing", tmp_path / "home"
    landing.mkdir()
    header = "msno,city,bd,gender,registered_via,registration_init_time\n"
    (landing / "members_v3.csv").write_text(header + "u1,1,30,male,7,20150101\n")
    (landing / "members_201604.csv").write_text(header + "u2,4,25,female,9,20160301\n")
    with dg.instance_for_test() as instance:

        def load() -> None:
            run = materialize([members], resources=resources_for(home, landing), instance=instance)
            assert run.success

        load()
        both = _members(home)
        assert [row[0] for row in both] == ["u1", "u2"]

        (landing / "members_v3.csv").rename(tmp_path / "members_v3.csv")  # archived
        load()
        assert _members(home) == both

        # A file that replaces one (same name, new content) changes its rows, and only those.
        (landing / "members_201604.csv").write_text(header + "u2,5,25,female,9,20160301\n")
        load()
    assert _members(home) == [
        both[0],
        ("u2", 5, date(2016, 5, 1), "members_201604.csv"),
    ]


def test_a_name_that_is_not_utf8_is_reported_and_blocks_nothing(tmp_path: Path) -> None:
    landing = _landing(tmp_path / "landing")
    broken = os.fsencode(landing) + b"/transactions_2016\xff.csv"
    Path(os.fsdecode(broken)).write_text("msno\n")
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        resources = resources_for(home, landing)
        loaded = materialize([members], resources=resources, instance=instance)
        april = materialize(
            [transactions], partition_key="2016-04-01", resources=resources, instance=instance
        )
    assert loaded.success and april.success  # the other files load as before
    [check] = [c for c in loaded.get_asset_check_evaluations() if c.check_name == SCHEMA_CHECK]
    assert "transactions_2016\ufffd.csv (its name is not valid UTF-8)" in check.description
