"""Landed data is kept until replaced: a monthly table's rows stay when their file leaves the
landing folder, a file that replaces one changes its rows and only those, and a month can be
retracted on purpose."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from churn_assets.automation.loads import stale_tables
from churn_assets.landing.catalog import LandingCatalog
from churn_assets.partitions import register_months
from churn_assets.raw.assets import transactions, user_logs
from churn_assets_tests.helpers import materialize, resources_for

APRIL = date(2016, 4, 1)
TRANSACTIONS_HEADER = (
    "msno,payment_method_id,payment_plan_days,plan_list_price,actual_amount_paid,is_auto_renew,"
    "transaction_date,membership_expire_date,is_cancel\n"
)
USER_LOGS_HEADER = "msno,date,num_25,num_50,num_75,num_985,num_100,num_unq,total_secs\n"


def _payments(*users: str, day: str = "20160405", price: int = 149) -> str:
    rows = "".join(f"{u},41,30,{price},{price},1,{day},20160505,0\n" for u in users)
    return TRANSACTIONS_HEADER + rows


def _listening(*rows: tuple[str, str]) -> str:
    return USER_LOGS_HEADER + "".join(f"{u},{d},1,0,0,0,3,4,900.5\n" for u, d in rows)


def _stored(home: Path, table: str = "transactions") -> list[tuple]:
    date_column = "transaction_date" if table == "transactions" else "date"
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            f"SELECT msno, {date_column}, source_file FROM {table} ORDER BY ALL"
        ).fetchall()


def _ledger(home: Path, table: str = "transactions") -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT l.month, l.rows, f.source_file, f.rows FROM raw_loads l "
            "LEFT JOIN raw_files f USING (table_name, month) WHERE table_name = ? ORDER BY ALL",
            [table],
        ).fetchall()


class Month:
    """One month of one monthly table loaded through ``materialize`` on one instance."""

    def __init__(self, tmp_path: Path, instance: dg.DagsterInstance, asset=transactions) -> None:
        self.landing, self.home = tmp_path / "landing", tmp_path / "home"
        self.landing.mkdir(exist_ok=True)
        self.instance, self.asset = instance, asset
        self.table = asset.key.path[-1]

    def load(self, retract: bool = False) -> dg.ExecuteInProcessResult:
        config = {"retract_departed_files": True} if retract else {}
        result = materialize(
            [self.asset],
            partition_key="2016-04-01",
            resources=resources_for(self.home, self.landing),
            instance=self.instance,
            run_config={"ops": {self.table: {"config": config}}},
        )
        assert result.success
        return result

    def due(self) -> bool:
        catalog = LandingCatalog(self.landing).refresh()
        return self.table in stale_tables(self.instance, catalog, APRIL)

    def metadata(self, result: dg.ExecuteInProcessResult) -> dict:
        [event] = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.materialization.metadata.items()}


def test_archiving_one_of_a_months_files_keeps_its_rows_and_asks_for_no_load(tmp_path):
    with dg.instance_for_test() as instance:
        month = Month(tmp_path, instance)
        (month.landing / "transactions_201604.csv").write_text(_payments("u1", "u2"))
        (month.landing / "transactions_201604_late.csv").write_text(_payments("u3"))
        month.load()
        both = _stored(month.home)
        assert [row[0] for row in both] == ["u1", "u2", "u3"]
        assert not month.due()

        archive = tmp_path / "archive"
        archive.mkdir()
        (month.landing / "transactions_201604.csv").rename(archive / "transactions_201604.csv")
        assert not month.due()  # a file leaving is not new data

        # Loaded again all the same (a run asked for by hand), the archived file's rows stay.
        kept = month.metadata(month.load())
        assert _stored(month.home) == both
        assert kept["departed_files_kept"] == ["transactions_201604.csv"]
        assert _ledger(month.home) == [
            (APRIL, 3, "transactions_201604.csv", 2),
            (APRIL, 3, "transactions_201604_late.csv", 1),
        ]

        # Put back as it was: still nothing to load.
        (archive / "transactions_201604.csv").rename(month.landing / "transactions_201604.csv")
        assert not month.due()


def test_a_file_that_replaces_one_changes_its_rows_and_only_those(tmp_path):
    with dg.instance_for_test() as instance:
        month = Month(tmp_path, instance)
        (month.landing / "transactions_201604.csv").write_text(_payments("u1", "u2"))
        (month.landing / "transactions_201604_late.csv").write_text(_payments("u3"))
        month.load()
        (month.landing / "transactions_201604_late.csv").rename(tmp_path / "archived.csv")

        (month.landing / "transactions_201604.csv").write_text(_payments("u1", "u9", price=99))
        assert month.due()
        month.load()
    assert _stored(month.home) == [
        ("u1", APRIL.replace(day=5), "transactions_201604.csv"),
        ("u3", APRIL.replace(day=5), "transactions_201604_late.csv"),
        ("u9", APRIL.replace(day=5), "transactions_201604.csv"),
    ]


def test_a_replaced_file_that_no_longer_holds_a_month_takes_its_old_rows_of_it_away(tmp_path):
    """A listening file delivered with April and a few May days, replaced by April alone: May's
    load is due, and May keeps no row of the old version."""
    with dg.instance_for_test() as instance:
        month = Month(tmp_path, instance, user_logs)
        landing = month.landing
        (landing / "user_logs_201604.csv").write_text(
            _listening(("u1", "20160410"), ("u2", "20160502"))
        )
        (landing / "user_logs_201605.csv").write_text(_listening(("u3", "20160503")))
        may = {"partition_key": "2016-05-01", "resources": resources_for(month.home, landing)}
        month.load()
        assert materialize([user_logs], instance=instance, **may).success
        assert [r[0] for r in _stored(month.home, "user_logs")] == ["u1", "u2", "u3"]

        (landing / "user_logs_201604.csv").write_text(_listening(("u1", "20160410")))
        catalog = LandingCatalog(landing).refresh()
        assert "user_logs" in stale_tables(instance, catalog, date(2016, 5, 1))
        assert materialize([user_logs], instance=instance, **may).success
        month.load()
    assert [r[0] for r in _stored(month.home, "user_logs")] == ["u1", "u3"]


def test_retracting_a_month_removes_the_rows_of_files_that_have_left(tmp_path):
    with dg.instance_for_test() as instance:
        month = Month(tmp_path, instance)
        (month.landing / "transactions_201604.csv").write_text(_payments("u1"))
        (month.landing / "transactions_201604_bad.csv").write_text(_payments("u666"))
        month.load()
        (month.landing / "transactions_201604_bad.csv").unlink()

        retracted = month.metadata(month.load(retract=True))
        assert retracted["retracted_files"] == ["transactions_201604_bad.csv"]
        assert [r[0] for r in _stored(month.home)] == ["u1"]
        assert not month.due()

        # Every file gone: retracting empties the month, and it leaves the ledger, so the
        # cohorts reading it are told it is missing.
        (month.landing / "transactions_201604.csv").unlink()
        month.load(retract=True)
        assert _stored(month.home) == []
        assert _ledger(month.home) == []


def test_retracting_members_removes_the_snapshots_of_files_that_have_left(tmp_path):
    from churn_assets.raw.assets import members

    landing, home = tmp_path / "landing", tmp_path / "home"
    landing.mkdir()
    header = "msno,city,bd,gender,registered_via,registration_init_time\n"
    (landing / "members_v3.csv").write_text(header + "u1,1,30,male,7,20150101\n")
    (landing / "members_201604.csv").write_text(header + "u2,4,25,female,9,20160301\n")
    with dg.instance_for_test() as instance:

        def load(**config: bool) -> dg.ExecuteInProcessResult:
            result = materialize(
                [members],
                resources=resources_for(home, landing),
                instance=instance,
                run_config={"ops": {"members": {"config": config}}},
            )
            assert result.success
            return result

        load()
        (landing / "members_201604.csv").unlink()
        kept = load().get_asset_materialization_events()[0].materialization.metadata
        assert kept["departed_files_kept"].value == ["members_201604.csv"]
        retracted = load(retract_departed_files=True).get_asset_materialization_events()
        assert retracted[0].materialization.metadata["retracted_files"].value == [
            "members_201604.csv"
        ]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT msno, source_file FROM members").fetchall() == [
            ("u1", "members_v3.csv")
        ]


def test_churn_assets_retract_takes_back_a_departed_files_rows_through_load_job(
    tmp_path, capsys, churn_env, monkeypatch
):
    """The command refuses a month never loaded (exit 2), then retracts one through a run of
    ``load_job`` on the project's instance, saying what went."""
    from churn_assets.cli import main
    from churn_assets.definitions import build_definitions

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "transactions_201604.csv").write_text(_payments("u1"))
    (landing / "transactions_201604_wrong.csv").write_text(_payments("u666"))
    assert main(["retract", "transactions", "2016-04", "--landing", str(landing)]) == 2
    assert "2016-04 was never loaded" in capsys.readouterr().err

    monkeypatch.setenv("CHURN_LANDING_DIR", str(landing))
    with dg.DagsterInstance.get() as instance:
        register_months(instance, [APRIL])
        loaded = build_definitions().resolve_job_def("load_job").execute_in_process(
            instance=instance,
            partition_key="2016-04-01",
            asset_selection=[dg.AssetKey("transactions")],
        )
        assert loaded.success
    (landing / "transactions_201604_wrong.csv").unlink()

    assert main(["retract", "transactions", "2016-04", "--landing", str(landing)]) == 0
    said = capsys.readouterr().out
    assert "retracted the rows of transactions_201604_wrong.csv; 1 rows remain" in said
    assert [r[0] for r in _stored(Path(churn_env["CHURN_HOME"]))] == ["u1"]
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs(limit=1)
    assert run.job_name == "load_job"
    assert run.tags["churn/trigger"] == "retract transactions 2016-04"
