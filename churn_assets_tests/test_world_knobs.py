"""Worlds of any shape: history length, start month, degenerate columns, late and missing files,
changing members, a payment history thinning toward the start, and seeded draws of all of them."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from churn_assets.cli import main
from churn_assets.simulator import (
    DEGENERATE_KINDS,
    SimulationSummary,
    draw_world,
    parse_late,
    parse_missing,
    simulate,
    stage_arrivals,
)
from churn_assets_tests.test_simulator import reference_labels

WORLD = {"users": 300, "months": 6, "seed": 13}  # 2016-01 .. 2016-06
LATE = [("user_logs", date(2016, 3, 1), 2), ("members", date(2016, 2, 1), 1)]
MISSING = [("transactions", date(2016, 4, 1)), ("user_logs", date(2016, 5, 1))]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


def _table(landing: Path, prefix: str) -> pd.DataFrame:
    return pd.concat([_read(p) for p in sorted(landing.glob(f"{prefix}*.csv"))], ignore_index=True)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _month_files(landing: Path, prefix: str) -> list[str]:
    return sorted(p.stem.rsplit("_", 1)[1] for p in landing.glob(f"{prefix}_*.csv"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate(tmp_path_factory.mktemp("plain"), **WORLD)


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate(tmp_path_factory.mktemp("degenerate"), degenerate=DEGENERATE_KINDS, **WORLD)


@pytest.fixture(scope="module")
def delayed(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate(tmp_path_factory.mktemp("delayed"), late=LATE, missing=MISSING, **WORLD)


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate(tmp_path_factory.mktemp("changed"), member_changes=0.1, **WORLD)


# --- history and start ------------------------------------------------------------------------


@pytest.mark.parametrize("history", [0, 5, 18, 24])
def test_history_months_give_that_many_months_of_transactions(tmp_path: Path, history: int) -> None:
    summary = simulate(tmp_path, users=250, months=3, seed=4, history_months=history)
    start = date(2016, 1, 1)
    assert len(summary.history_months) == history
    assert summary.history_months == sorted(summary.history_months)
    assert all(m < start for m in summary.history_months)
    landing = summary.landing_dir
    expected = [f"{m:%Y%m}" for m in summary.history_months + summary.months]
    assert _month_files(landing, "transactions") == expected
    assert _month_files(landing, "user_logs") == ["201601", "201602", "201603"]
    txns = _table(landing, "transactions_")
    first = summary.history_months[0] if history else start
    assert txns["transaction_date"].min() // 100 == int(f"{first:%Y%m}")
    assert len(_read(landing / "train_201602.csv")) > 0

    arrivals = _json(summary.truth_dir / "arrivals.json")["files"]
    for month in summary.history_months:
        assert arrivals[f"transactions_{month:%Y%m}.csv"] == "2016-01-01"
    schedule = _json(summary.truth_dir / "drift_schedule.json")
    assert len(schedule["history_months"]) == history
    assert schedule["arguments"]["history_months"] == history


@pytest.mark.parametrize("start", ["2014-11", "2015-07", "2017-03"])
def test_any_start_month(tmp_path: Path, start: str) -> None:
    summary = simulate(tmp_path, users=250, months=4, start=start, seed=6)
    year, month = map(int, start.split("-"))
    first = date(year, month, 1)
    assert summary.months[0] == first and summary.history_months[-1] < first
    tags = [f"{m:%Y%m}" for m in summary.months]
    landing = summary.landing_dir
    assert _month_files(landing, "user_logs") == tags
    assert _month_files(landing, "members") == tags
    assert _month_files(landing, "train") == tags[1:-1]
    for tag in tags:
        logs = _read(landing / f"user_logs_{tag}.csv")
        assert (logs["date"] // 100 == int(tag)).all() and len(logs) > 0
    assert (_read(landing / "members.csv")["registration_init_time"] < int(f"{first:%Y%m%d}")).all()
    txns = _table(landing, "transactions_")
    for cohort in summary.labelled_cohorts:
        written = _read(landing / f"train_{cohort:%Y%m}.csv")
        assert dict(zip(written["msno"], written["is_churn"], strict=True)) == reference_labels(
            txns, cohort
        )
    assert _json(summary.truth_dir / "drift_schedule.json")["arguments"]["start"] == start


# --- degenerate columns -----------------------------------------------------------------------


def test_degenerate_columns_are_constant_and_the_world_is_the_same(
    plain: SimulationSummary, degenerate: SimulationSummary
) -> None:
    members = _table(degenerate.landing_dir, "members")
    assert set(members["city"]) == {1}
    assert set(members["bd"]) == {0}
    assert set(members["gender"]) == {""}
    txns = _table(degenerate.landing_dir, "transactions_")
    assert set(txns["is_cancel"]) == {0}
    assert set(txns["is_auto_renew"]) == {0}
    assert txns["payment_method_id"].nunique() == 1

    full = _table(plain.landing_dir, "transactions_")
    assert full["is_cancel"].any() and full["is_auto_renew"].any()
    shipped = full[full["is_cancel"] == 0].reset_index(drop=True)
    kept = ["msno", "payment_plan_days", "transaction_date", "membership_expire_date"]
    assert shipped[kept].equals(txns[kept])
    assert _table(plain.landing_dir, "members")["msno"].equals(members["msno"])
    for name in ("churn_probability.csv",):
        assert (plain.truth_dir / name).read_bytes() == (degenerate.truth_dir / name).read_bytes()
    for path in sorted(plain.landing_dir.iterdir()):
        if path.name.startswith(("train_", "user_logs_")):
            assert (degenerate.landing_dir / path.name).read_bytes() == path.read_bytes()
    schedule = _json(degenerate.truth_dir / "drift_schedule.json")
    assert schedule["arguments"]["degenerate"] == list(DEGENERATE_KINDS)


COLUMN_OF = {
    "no_cancels": ("transactions_", "is_cancel"),
    "no_gender": ("members", "gender"),
    "no_age": ("members", "bd"),
    "single_city": ("members", "city"),
    "single_payment_method": ("transactions_", "payment_method_id"),
    "no_auto_renew": ("transactions_", "is_auto_renew"),
}


@pytest.mark.parametrize("kind", DEGENERATE_KINDS)
def test_each_degenerate_kind_flattens_only_its_column(tmp_path: Path, kind: str) -> None:
    summary = simulate(tmp_path, users=200, months=3, seed=8, degenerate=[kind])
    for other, (prefix, column) in COLUMN_OF.items():
        values = _table(summary.landing_dir, prefix)[column]
        assert (values.nunique() == 1) == (other == kind), (other, column)


def test_unknown_degenerate_kinds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown degenerate kind.*'no_city'.*no_cancels"):
        simulate(tmp_path, users=50, months=2, degenerate=["no_age", "no_city"])
    with pytest.raises(ValueError, match="list of kinds"):
        simulate(tmp_path, users=50, months=2, degenerate="no_age")
    assert not (tmp_path / "landing").exists()


# --- late and missing files -------------------------------------------------------------------


def test_late_and_missing_files(plain: SimulationSummary, delayed: SimulationSummary) -> None:
    landing = delayed.landing_dir
    names = {p.name for p in landing.iterdir()}
    assert {"transactions_201604.csv", "user_logs_201605.csv"}.isdisjoint(names)
    assert names | {"transactions_201604.csv", "user_logs_201605.csv"} == {
        p.name for p in plain.landing_dir.iterdir()
    }
    for name in names:  # the files that land are the same files, labels included
        assert (landing / name).read_bytes() == (plain.landing_dir / name).read_bytes(), name
    assert delayed.missing_files == ["transactions_201604.csv", "user_logs_201605.csv"]
    assert delayed.rows["labels"] == plain.rows["labels"]
    assert delayed.rows["user_logs"] < plain.rows["user_logs"]

    arrivals = _json(delayed.truth_dir / "arrivals.json")
    files = arrivals["files"]
    assert set(files) == names
    assert files["members.csv"] == "2016-01-01"
    assert files["transactions_201512.csv"] == files["transactions_201501.csv"] == "2016-01-01"
    assert files["transactions_201601.csv"] == "2016-02-01"
    assert files["user_logs_201602.csv"] == "2016-03-01"
    assert files["user_logs_201603.csv"] == "2016-06-01"  # two months late
    assert files["members_201602.csv"] == "2016-04-01"  # one month late
    assert files["train_201602.csv"] == "2016-04-01"
    assert files["train_201605.csv"] == "2016-07-01"
    assert arrivals["late"] == [
        {"arrives": "2016-04-01", "delay_months": 1, "file": "members_201602.csv",
         "month": "2016-02-01", "table": "members"},
        {"arrives": "2016-06-01", "delay_months": 2, "file": "user_logs_201603.csv",
         "month": "2016-03-01", "table": "user_logs"},
    ]  # fmt: skip
    assert arrivals["missing"] == [
        {"file": "transactions_201604.csv", "month": "2016-04-01", "table": "transactions"},
        {"file": "user_logs_201605.csv", "month": "2016-05-01", "table": "user_logs"},
    ]
    assert {k: v.isoformat() for k, v in delayed.arrivals.items()} == files
    arguments = _json(delayed.truth_dir / "drift_schedule.json")["arguments"]
    assert arguments["late"] == ["user_logs@2016-03+2", "members@2016-02+1"]
    assert arguments["missing"] == ["transactions@2016-04", "user_logs@2016-05"]
    assert "late" not in _json(plain.truth_dir / "drift_schedule.json")["arguments"]


def test_stage_arrivals_lets_files_arrive_month_by_month(
    delayed: SimulationSummary, tmp_path: Path
) -> None:
    arrivals = delayed.truth_dir / "arrivals.json"
    staged = tmp_path / "staged"
    assert stage_arrivals(delayed.landing_dir, arrivals, staged, date(2015, 12, 31)) == []
    seen: dict[str, date] = {}
    for k in range(9):
        day = date(2016 + k // 12, k % 12 + 1, 1)
        for name in stage_arrivals(delayed.landing_dir, arrivals, staged, day):
            seen[name] = day
        assert stage_arrivals(delayed.landing_dir, arrivals, staged, day) == []
        mid_month = day.replace(day=15)
        assert stage_arrivals(delayed.landing_dir, arrivals, staged, mid_month) == []
    assert seen == delayed.arrivals
    assert seen["user_logs_201603.csv"] == date(2016, 6, 1)
    assert "user_logs_201604.csv" in stage_names(seen, date(2016, 5, 1))
    assert "user_logs_201603.csv" not in stage_names(seen, date(2016, 5, 1))
    for path in staged.iterdir():
        assert path.read_bytes() == (delayed.landing_dir / path.name).read_bytes()
    assert not (staged / "transactions_201604.csv").exists()


def stage_names(seen: dict[str, date], day: date) -> set[str]:
    return {name for name, arrived in seen.items() if arrived <= day}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"late": [("users", date(2016, 2, 1), 1)]}, "unknown table 'users'"),
        ({"late": [("user_logs", date(2016, 9, 1), 1)]}, "2016-09 is not a simulated month"),
        ({"late": [("user_logs", date(2016, 2, 1), 0)]}, "delay must be a whole number"),
        ({"late": [("user_logs", date(2016, 2, 15), 1)]}, "first day of a month"),
        ({"late": [("user_logs", date(2016, 2, 1))]}, "expected \\(table, month, delay"),
        (
            {"late": [("members", date(2016, 2, 1), 1)], "missing": [("members", "2016-02")]},
            "members_201602.csv is named more than once",
        ),
        ({"missing": [("transactions", date(2015, 12, 1))]}, "not a simulated month"),
        ({"history_months": -1}, "history_months"),
        ({"history_months": 2.0}, "history_months"),
        ({"member_changes": 1.5}, "member_changes"),
        ({"member_changes": True}, "member_changes"),
        ({"thin_history": 0.5}, "thin_history"),
        ({"thin_history": -3}, "thin_history"),
        ({"thin_history": True}, "thin_history"),
        ({"thin_history": float("nan")}, "thin_history"),
    ],
)
def test_bad_shape_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        simulate(tmp_path, **{"users": 50, "months": 3, **kwargs})
    assert not (tmp_path / "landing").exists()


def test_parse_late_and_missing() -> None:
    assert parse_late("user_logs@2016-03+2") == ("user_logs", date(2016, 3, 1), 2)
    assert parse_late(" members@2017-12+1 ") == ("members", date(2017, 12, 1), 1)
    assert parse_missing("transactions@2016-04") == ("transactions", date(2016, 4, 1))
    for bad, match in [
        ("user_logs@2016-03", "TABLE@YYYY-MM\\+K"),
        ("user_logs@2016-03+x", "TABLE@YYYY-MM\\+K"),
        ("user_logs@2016-03+0", "delay"),
        ("logs@2016-03+1", "unknown table 'logs'"),
        ("user_logs@2016-3+1", "YYYY-MM"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_late(bad)
    for bad, match in [("transactions", "TABLE@YYYY-MM"), ("train@2016-03", "unknown table")]:
        with pytest.raises(ValueError, match=match):
            parse_missing(bad)


# --- changing members -------------------------------------------------------------------------


def test_changed_members_appear_again_with_the_new_values(
    plain: SimulationSummary, changed: SimulationSummary
) -> None:
    record = _read(changed.truth_dir / "member_changes.csv")
    assert list(record.columns) == ["msno", "month", "column", "old", "new"]
    assert set(record["column"]) == {"city", "bd", "registered_via"}
    assert (record["old"] != record["new"]).all()
    users = record["msno"].nunique()
    assert users == changed.member_changes and 0.07 * 300 < users < 0.11 * 300
    assert set(record.loc[record["column"] == "city", "msno"]) == set(record["msno"])

    landing = changed.landing_dir
    rows = {p.name: _read(p) for p in sorted(landing.glob("members*.csv"))}
    for change in record[record["column"] == "city"].itertuples(index=False):
        month_file = f"members_{change.month[:4]}{change.month[5:7]}.csv"
        seen = [(name, frame[frame["msno"] == change.msno]) for name, frame in rows.items()]
        seen = [(name, row) for name, row in seen if len(row)]
        assert len(seen) == 2, change.msno
        (first_name, first), (second_name, second) = seen
        assert first_name < second_name == month_file
        assert int(first["city"].iloc[0]) == change.old
        assert int(second["city"].iloc[0]) == change.new
        assert first["registration_init_time"].iloc[0] == second["registration_init_time"].iloc[0]
        assert first["gender"].iloc[0] == second["gender"].iloc[0]

    # The world and its other files are those of the same world without changes; the changed
    # rows follow the month's registrations.
    for path in sorted(plain.landing_dir.iterdir()):
        again = (landing / path.name).read_bytes()
        if path.name.startswith("members_"):
            assert again.startswith(path.read_bytes())
        else:
            assert again == path.read_bytes(), path.name
    assert _read(plain.truth_dir / "member_changes.csv").empty
    assert _json(changed.truth_dir / "drift_schedule.json")["arguments"]["member_changes"] == 0.1


def test_member_changes_respect_degenerate_columns(tmp_path: Path) -> None:
    summary = simulate(
        tmp_path, users=250, months=4, seed=2, member_changes=0.1,
        degenerate=["single_city", "no_age"],
    )  # fmt: skip
    record = _read(summary.truth_dir / "member_changes.csv")
    assert len(record) > 0 and set(record["column"]) == {"registered_via"}
    members = _table(summary.landing_dir, "members")
    assert members["msno"].duplicated().sum() == summary.member_changes
    assert set(members["city"]) == {1} and set(members["bd"]) == {0}


# --- a payment history thinning toward the start of the data ---------------------------------

# Every file of a small world without thinning, as drawn before the knob existed: the knob draws
# on a stream of its own, so a world without it stays the world of its seed.
UNTHINNED = {"users": 120, "months": 3, "seed": 2, "degenerate": ["no_cancels"],
             "member_changes": 0.1}  # fmt: skip
UNTHINNED_SHA256 = "d95948edb5cca89f08e2c7cdf118a33e6b4edef496c06ac7d2bb2ceda5cf641d"


@pytest.fixture(scope="module")
def thinned(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate(tmp_path_factory.mktemp("thinned"), thin_history=3, **WORLD)


def _months_back(day: pd.Series) -> pd.Series:
    """Whole months from a YYYYMMDD day's month to 2016-01, the first simulated month."""
    return 2016 * 12 - (day // 10000 * 12 + day // 100 % 100 - 1)


def test_a_thinned_history_lands_each_users_rows_from_its_drawn_start(
    plain: SimulationSummary, thinned: SimulationSummary
) -> None:
    starts = _read(thinned.truth_dir / "history_starts.csv")
    assert list(starts.columns) == ["msno", "months_back", "landed_from"]
    assert set(_read(plain.landing_dir / "members.csv")["msno"]) <= set(starts["msno"])
    assert starts["months_back"].between(1, 12).all()
    assert (_months_back(starts["landed_from"]) == starts["months_back"]).all()
    assert 2.5 < starts["months_back"].mean() < 3.5
    assert (starts["months_back"] == 12).mean() < 0.05  # few land the whole history

    full = _table(plain.landing_dir, "transactions_")
    landed = _table(thinned.landing_dir, "transactions_")
    start_of = dict(zip(starts["msno"], starts["landed_from"], strict=True))
    kept = full["transaction_date"] >= full["msno"].map(start_of).fillna(0)
    assert landed.equals(full[kept].reset_index(drop=True))
    assert len(landed) < 0.75 * len(full)
    assert thinned.rows == {**plain.rows, "transactions": len(landed)}

    # Only the history's transactions change: labels, listening, members and truth stay.
    for path in sorted(plain.landing_dir.iterdir()):
        if not path.name.startswith("transactions_2015"):
            assert (thinned.landing_dir / path.name).read_bytes() == path.read_bytes(), path.name
    for name in ("churn_probability.csv", "member_changes.csv"):
        assert (thinned.truth_dir / name).read_bytes() == (plain.truth_dir / name).read_bytes()
    assert not (plain.truth_dir / "history_starts.csv").exists()
    arguments = _json(plain.truth_dir / "drift_schedule.json")["arguments"]
    thinned_arguments = _json(thinned.truth_dir / "drift_schedule.json")["arguments"]
    assert thinned_arguments == {**arguments, "thin_history": 3.0}


def test_thinned_first_payments_lie_a_few_months_before_the_data(
    plain: SimulationSummary, thinned: SimulationSummary
) -> None:
    """Of the users who paid before the window, most first paid within six months of it."""

    def recent(summary: SimulationSummary) -> float:
        first = _table(summary.landing_dir, "transactions_").groupby("msno")["transaction_date"]
        before = first.min()[lambda days: days < 20160101]
        return float((_months_back(before) <= 6).mean())

    assert recent(thinned) > 0.8
    assert recent(plain) < 0.3


def test_thinning_is_capped_by_the_history(tmp_path: Path) -> None:
    summary = simulate(tmp_path, users=150, months=3, seed=4, history_months=2, thin_history=6)
    back = _read(summary.truth_dir / "history_starts.csv")["months_back"]
    assert set(back) == {1, 2} and (back == 2).mean() > 0.6


def test_a_world_without_thinning_is_the_world_drawn_before_the_knob(tmp_path: Path) -> None:
    """A changed digest changes every world of a seed (benchmarks included): only on purpose."""
    simulate(tmp_path, thin_history=0, **UNTHINNED)
    digest = hashlib.sha256()
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(tmp_path)).encode() + b"\0" + path.read_bytes())
    assert digest.hexdigest() == UNTHINNED_SHA256


# --- drawn worlds -----------------------------------------------------------------------------


def _check_spec(spec: dict, small: bool) -> None:
    low, high = (300, 900) if small else (1_500, 20_000)
    assert low <= spec["users"] <= high
    assert "2014-06" <= spec["start"] <= "2018-06"
    assert 8 <= spec["months"] <= 12 and 0 <= spec["history_months"] <= 18
    assert set(spec["degenerate"]) <= set(DEGENERATE_KINDS)
    assert 0.0 <= spec["member_changes"] <= 0.1
    assert spec["thin_history"] == 0.0 or 1.5 <= spec["thin_history"] <= 6.0
    year, month = map(int, spec["start"].split("-"))
    months = [date(year + (month - 1 + k) // 12, (month - 1 + k) % 12 + 1, 1)
              for k in range(spec["months"])]  # fmt: skip
    assert len(spec["late"]) <= 2 and len(spec["missing"]) <= 1
    for table, when, delay in spec["late"]:
        assert table in ("transactions", "user_logs", "members") and when in months
        assert delay in (1, 2)
    for table, when in spec["missing"]:
        assert table in ("transactions", "user_logs") and when in months[2:-2]
    assert len(spec["drifts"]) <= 1
    assert all(months[1] <= d.month <= months[-1] for d in spec["drifts"])


def test_drawn_worlds_vary_and_always_simulate(tmp_path: Path) -> None:
    specs = [draw_world(seed) for seed in range(30)]
    assert specs == [draw_world(seed) for seed in range(30)]
    for spec in specs:
        _check_spec(spec, small=True)
    for seed in range(30):
        _check_spec(draw_world(seed, small=False), small=False)
    assert len({s["start"] for s in specs}) > 15
    assert len({s["history_months"] for s in specs}) > 8
    assert sum(bool(s["degenerate"]) for s in specs) > 10
    assert sum(bool(s["late"]) for s in specs) > 10
    assert sum(bool(s["missing"]) for s in specs) > 5
    assert sum(bool(s["drifts"]) for s in specs) > 5
    assert sum(bool(s["thin_history"]) for s in specs) > 5

    # Every drawn shape simulates (at 150 users, for speed); three also at their drawn size.
    for seed, spec in enumerate(specs):
        users = spec["users"] if seed < 3 else 150
        summary = simulate(tmp_path / str(seed), **{**spec, "users": users})
        assert summary.labelled_cohorts and summary.rows["labels"] > 0
        missing = {f"{t}_{m:%Y%m}.csv" for t, m in spec["missing"]}
        assert set(summary.missing_files) == missing
        assert missing.isdisjoint(p.name for p in summary.landing_dir.iterdir())
    with pytest.raises(ValueError, match="non-negative"):
        draw_world(-1)


# --- command line -----------------------------------------------------------------------------


def test_cli_shapes_a_world(tmp_path: Path) -> None:
    code = main(
        ["simulate", "--out", str(tmp_path), "--users", "200", "--months", "5", "--seed", "3",
         "--history-months", "2", "--degenerate", "no_age", "--degenerate", "single_city",
         "--late", "user_logs@2016-02+1", "--missing", "transactions@2016-03",
         "--member-changes", "0.05", "--thin-history", "2.5"]
    )  # fmt: skip
    assert code == 0
    arguments = _json(tmp_path / "truth" / "drift_schedule.json")["arguments"]
    assert arguments == {
        "users": 200, "start": "2016-01", "months": 5, "seed": 3, "drifts": [],
        "history_months": 2, "degenerate": ["no_age", "single_city"],
        "late": ["user_logs@2016-02+1"], "missing": ["transactions@2016-03"],
        "member_changes": 0.05, "thin_history": 2.5,
    }  # fmt: skip
    assert not (tmp_path / "landing" / "transactions_201603.csv").exists()


def test_cli_fuzz_draws_the_world(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["simulate", "--out", str(tmp_path), "--fuzz", "4", "--users", "99"]) == 0
    spec = draw_world(4)
    arguments = _json(tmp_path / "truth" / "drift_schedule.json")["arguments"]
    assert arguments["users"] == spec["users"] != 99
    assert arguments["start"] == spec["start"] and arguments["seed"] == 4
    assert arguments.get("thin_history", 0.0) == spec["thin_history"]
    assert "world 4:" in capsys.readouterr().out


def test_cli_thin_history_alone_thins_by_the_default_mean(tmp_path: Path) -> None:
    flags = ["--users", "60", "--months", "3", "--thin-history"]
    assert main(["simulate", "--out", str(tmp_path), *flags]) == 0
    assert _json(tmp_path / "truth" / "drift_schedule.json")["arguments"]["thin_history"] == 3.0
    assert (tmp_path / "truth" / "history_starts.csv").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--late", "user_logs@2016-02"], "TABLE@YYYY-MM+K"),
        (["--late", "user_logs@2030-02+1"], "not a simulated month"),
        (["--missing", "train@2016-02"], "unknown table 'train'"),
        (["--degenerate", "no_city"], "unknown degenerate kind"),
        (["--history-months", "-1"], "history_months"),
        (["--member-changes", "2"], "member_changes"),
        (["--thin-history", "0.5"], "thin_history"),
    ],
)
def test_cli_bad_shape_flags_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], message: str
) -> None:
    assert main(["simulate", "--out", str(tmp_path), "--users", "50", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "landing").exists()
