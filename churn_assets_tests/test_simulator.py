"""The seeded KKBox-format world: file contract, the label rule, learnability and drifts."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn_assets.simulator import (
    Drift,
    SimulationSummary,
    kkbox_churn_labels,
    parse_drift,
    simulate,
)

CONTRACT = {
    "members": ["msno", "city", "bd", "gender", "registered_via", "registration_init_time"],
    "transactions": [
        "msno", "payment_method_id", "payment_plan_days", "plan_list_price",
        "actual_amount_paid", "is_auto_renew", "transaction_date", "membership_expire_date",
        "is_cancel",
    ],
    "user_logs": [
        "msno", "date", "num_25", "num_50", "num_75", "num_985", "num_100", "num_unq",
        "total_secs",
    ],
    "train": ["msno", "is_churn"],
}  # fmt: skip
DATE_COLUMNS = {
    "members": ["registration_init_time"],
    "transactions": ["transaction_date", "membership_expire_date"],
    "user_logs": ["date"],
}
MSNO = re.compile(r"^[A-Za-z0-9+/]{43}=$")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate(tmp_path_factory.mktemp("small"), users=300, months=6, seed=3)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate(tmp_path_factory.mktemp("large"), users=2000, months=8, seed=7)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


def _table(landing: Path, prefix: str) -> pd.DataFrame:
    return pd.concat([_read(p) for p in sorted(landing.glob(f"{prefix}*.csv"))], ignore_index=True)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.csv"))} | {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.json"))
    }


def _day(value: int) -> date:
    return datetime.strptime(str(value), "%Y%m%d").date()


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def reference_labels(transactions: pd.DataFrame, cohort: date) -> dict[str, int]:
    """The KKBox rule written out plainly, user by user, independent of the package's code."""
    first, following = cohort, _next_month(cohort)
    by_user: dict[str, list[tuple[date, date, int]]] = defaultdict(list)
    for row in transactions.itertuples(index=False):
        by_user[row.msno].append(
            (_day(row.transaction_date), _day(row.membership_expire_date), int(row.is_cancel))
        )
    labels = {}
    for msno, rows in by_user.items():
        prior = [r for r in rows if r[0] < first]
        if not prior:
            continue
        latest = max(day for day, _, _ in prior)
        expiry = max(exp for day, exp, _ in prior if day == latest)
        if not first <= expiry < following:
            continue
        deadline = expiry + timedelta(days=30)
        renewed = any(
            cancel == 0 and first <= day <= deadline and exp > expiry for day, exp, cancel in rows
        )
        labels[msno] = 0 if renewed else 1
    return labels


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    ranks = pd.Series(scores).rank().to_numpy()
    positive = labels == 1
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(small: SimulationSummary, tmp_path: Path) -> None:
    again = simulate(tmp_path / "again", users=300, months=6, seed=3)
    other = simulate(tmp_path / "other", users=300, months=6, seed=4)
    first = _files(small.landing_dir.parent)
    assert first == _files(again.landing_dir.parent)
    different = _files(other.landing_dir.parent)
    assert first.keys() == different.keys()
    assert all(first[k] != different[k] for k in first if "transactions_" in k)


# --- landing contract -------------------------------------------------------------------------


def test_landing_files_follow_the_contract(small: SimulationSummary) -> None:
    landing = small.landing_dir
    tags = [f"{m:%Y%m}" for m in small.months]
    expected = {"members.csv"} | {
        f"{prefix}_{tag}.csv" for tag in tags for prefix in ("members", "transactions", "user_logs")
    }
    expected |= {f"train_{c:%Y%m}.csv" for c in small.labelled_cohorts}
    expected |= {f"transactions_{m:%Y%m}.csv" for m in small.history_months}
    assert {p.name for p in landing.iterdir()} == expected
    assert len(small.history_months) == 12
    assert small.history_months[-1] == date(2015, 12, 1)
    assert small.labelled_cohorts == small.months[1:-1]

    counts = dict.fromkeys(("members", "transactions", "user_logs", "labels"), 0)
    for path in sorted(landing.iterdir()):
        table = path.name.split("_")[0].removesuffix(".csv")
        table = "user_logs" if table == "user" else table
        header = path.read_text().splitlines()[0].split(",")
        assert header == CONTRACT[table], path.name
        frame = _read(path)
        counts["labels" if table == "train" else table] += len(frame)
        assert frame["msno"].map(lambda s: bool(MSNO.match(s))).all(), path.name
        for column in DATE_COLUMNS.get(table, []):
            parsed = pd.to_datetime(frame[column].astype(str), format="%Y%m%d")
            assert parsed.notna().all()
        tag = path.stem.split("_")[-1]
        if table == "transactions":
            assert (frame["transaction_date"] // 100 == int(tag)).all()
        if table == "user_logs":
            assert (frame["date"] // 100 == int(tag)).all()
            assert frame["total_secs"].dtype == float
        if path.name.startswith("members_"):
            assert (frame["registration_init_time"] // 100 == int(tag)).all()
    assert counts == small.rows

    start = int(f"{small.months[0]:%Y%m%d}")
    assert (_read(landing / "members.csv")["registration_init_time"] < start).all()
    secs = [line.rsplit(",", 1)[1] for line in (landing / "user_logs_201601.csv").open()][1:]
    assert all(re.fullmatch(r"-?\d+\.\d{3}\n", s) for s in secs)


def test_marginals_and_quirks_look_like_kkbox(large: SimulationSummary) -> None:
    landing = large.landing_dir
    members = _table(landing, "members")
    txns = _table(landing, "transactions_")
    logs = _table(landing, "user_logs_")

    assert 0.62 < (members["city"] == 1).mean() < 0.80
    assert not (members["city"] == 2).any()
    assert set(members["city"]) <= {1, *range(3, 23)}
    assert 0.45 < (members["registered_via"] == 7).mean() < 0.62
    assert 0.55 < (members["gender"] == "").mean() < 0.75
    assert set(members["gender"]) == {"", "male", "female"}
    invalid_bd = (members["bd"] <= 0) | (members["bd"] > 100)
    assert 0.58 < invalid_bd.mean() < 0.76
    assert (members["bd"] < 0).any() and (members["bd"] > 100).any()
    valid_ages = members.loc[~invalid_bd, "bd"]
    assert 20 <= valid_ages.mode().iloc[0] <= 27

    assert 0.45 < (txns["payment_method_id"] == 41).mean() < 0.65
    assert 0.80 < (txns["payment_plan_days"] == 30).mean() < 0.94
    assert 0.02 < (txns["payment_plan_days"] == 0).mean() < 0.07
    assert (txns["payment_plan_days"] >= 90).any()
    assert (txns["actual_amount_paid"] == txns["plan_list_price"]).mean() > 0.92
    assert (txns["actual_amount_paid"] == 0).any()
    assert 0.78 < txns["is_auto_renew"].mean() < 0.92
    assert 0.02 < txns["is_cancel"].mean() < 0.07
    assert txns.duplicated().any()
    assert (txns["membership_expire_date"] < txns["transaction_date"]).any()
    cancels = txns[txns["is_cancel"] == 1]
    assert (cancels["is_auto_renew"] == 0).all()

    assert 12 <= logs["num_100"].median() <= 22
    assert 13 <= logs["num_unq"].median() <= 23
    assert 3500 <= logs["total_secs"].median() <= 5800
    assert logs["total_secs"].quantile(0.99) > 5 * logs["total_secs"].median()
    assert (logs["total_secs"] < 0).any() and (logs["total_secs"] > 86_400).any()
    secs_per_full_play = logs["total_secs"].clip(0, 86_400).sum() / logs["num_100"].sum()
    assert 220 < secs_per_full_play < 320  # full plays of ~230 s plus the partial plays

    missing = set(txns["msno"]) - set(members["msno"])
    assert 0.005 < len(missing) / large.users < 0.03


# --- labels -----------------------------------------------------------------------------------


def test_label_rule_edge_cases() -> None:
    rows = [
        # msno, transaction_date, membership_expire_date, is_cancel
        ("renew_at_deadline", 20160110, 20160310, 0),
        ("renew_at_deadline", 20160409, 20160509, 0),  # 30 days after expiry: renewal
        ("late_by_a_day", 20160110, 20160310, 0),
        ("late_by_a_day", 20160410, 20160510, 0),  # 31 days: churn
        ("cancel_only", 20160201, 20160305, 0),
        ("cancel_only", 20160215, 20160305, 1),
        ("cancel_only", 20160302, 20160405, 1),  # a cancel row never renews
        ("same_expiry", 20160201, 20160305, 0),
        ("same_expiry", 20160303, 20160305, 0),  # does not extend the membership
        ("tie_larger_wins", 20160201, 20160120, 0),
        ("tie_larger_wins", 20160201, 20160302, 0),
        ("tie_larger_wins", 20160302, 20160402, 0),
        ("expired_before", 20160101, 20160220, 0),
        ("expires_next_month", 20160215, 20160401, 0),
        ("only_after", 20160305, 20160405, 0),
    ]
    frame = pd.DataFrame(
        rows, columns=["msno", "transaction_date", "membership_expire_date", "is_cancel"]
    )
    labels = kkbox_churn_labels(frame, date(2016, 3, 1))
    assert list(labels.columns) == ["msno", "is_churn"]
    got = dict(zip(labels["msno"], labels["is_churn"], strict=True))
    assert got == {
        "renew_at_deadline": 0,
        "late_by_a_day": 1,
        "cancel_only": 1,
        "same_expiry": 1,
        "tie_larger_wins": 0,
    }
    assert got == reference_labels(frame, date(2016, 3, 1))
    assert kkbox_churn_labels(frame, date(2015, 1, 1)).empty


@pytest.mark.parametrize("world", ["small", "large"])
def test_label_files_follow_the_kkbox_definition(
    world: str, request: pytest.FixtureRequest
) -> None:
    summary: SimulationSummary = request.getfixturevalue(world)
    txns = _table(summary.landing_dir, "transactions_")
    for cohort in summary.labelled_cohorts:
        written = _read(summary.landing_dir / f"train_{cohort:%Y%m}.csv")
        assert not written["msno"].duplicated().any()
        expected = reference_labels(txns, cohort)
        assert dict(zip(written["msno"], written["is_churn"], strict=True)) == expected
        assert len(expected) > 0


def test_labels_equal_the_world_decisions(large: SimulationSummary) -> None:
    truth = _read(large.truth_dir / "churn_probability.csv")
    assert list(truth.columns) == [
        "msno",
        "cohort_month",
        "churn_probability",
        "churn_probability_without_latent",
        "is_churn",
    ]
    labels = pd.concat(
        [
            _read(large.landing_dir / f"train_{c:%Y%m}.csv").assign(cohort_month=f"{c:%Y-%m-01}")
            for c in large.labelled_cohorts
        ]
    )
    joined = truth.merge(
        labels, on=["msno", "cohort_month"], how="outer", suffixes=("_truth", "_label")
    )
    assert len(joined) == len(truth) == len(labels)
    assert (joined["is_churn_truth"] == joined["is_churn_label"]).all()
    assert truth["churn_probability"].between(0, 1).all()
    assert truth["churn_probability_without_latent"].between(0, 1).all()


def test_churn_is_learnable_but_not_perfect(large: SimulationSummary) -> None:
    truth = _read(large.truth_dir / "churn_probability.csv")
    rates = truth.groupby("cohort_month")["is_churn"].mean()
    assert len(rates) == len(large.labelled_cohorts) == 6
    assert rates.between(0.03, 0.15).all(), rates
    score = auc(truth["churn_probability"].to_numpy(), truth["is_churn"].to_numpy())
    assert 0.75 < score < 0.99
    # The latent term is a small part of the signal: averaged out, the truth still ranks nearly
    # as well, so a model of the observable inputs can come close to it.
    labels = truth["is_churn"].to_numpy()
    without = auc(truth["churn_probability_without_latent"].to_numpy(), labels)
    assert 0.95 * score < without < score


# --- drift ------------------------------------------------------------------------------------


def test_parse_drift() -> None:
    assert parse_drift("covariate@2016-06") == Drift("covariate", date(2016, 6, 1))
    assert parse_drift("schema@2016-04") == Drift("schema", date(2016, 4, 1))
    assert parse_drift("outage@2016-03") == Drift("outage", date(2016, 3, 1))
    assert parse_drift(" Concept@2017-01 ") == Drift("concept", date(2017, 1, 1))
    assert str(parse_drift("concept@2016-11")) == "concept@2016-11"
    assert parse_drift("segment@2016-05") == Drift("segment", date(2016, 5, 1))
    assert parse_drift("price@2016-05") == Drift("price", date(2016, 5, 1))
    assert parse_drift("City_Decline@2016-05") == Drift("city_decline", date(2016, 5, 1))
    with pytest.raises(ValueError, match="unknown drift kind 'seasonal'"):
        parse_drift("seasonal@2016-06")
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_drift("covariate@2016-13")
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_drift("covariate@June")
    with pytest.raises(ValueError, match="KIND@YYYY-MM"):
        parse_drift("covariate")
    with pytest.raises(ValueError, match="first day"):
        Drift("concept", date(2016, 6, 15))


def test_covariate_drift_lowers_listening(tmp_path: Path) -> None:
    drift = parse_drift("covariate@2016-04")
    shifted = simulate(tmp_path / "shifted", users=400, months=6, seed=5, drifts=[drift])
    plain = simulate(tmp_path / "plain", users=400, months=6, seed=5)

    def mean_secs(summary: SimulationSummary) -> tuple[float, float]:
        logs = _table(summary.landing_dir, "user_logs_")
        secs = logs["total_secs"].clip(0, 86_400)
        after = logs["date"] >= 20160401
        return secs[~after].mean(), secs[after].mean()

    before, after = mean_secs(shifted)
    assert after < 0.8 * before
    plain_before, plain_after = mean_secs(plain)
    assert after < 0.8 * plain_after
    assert plain_after > 0.85 * plain_before

    joined = {m.name: len(_read(m)) for m in sorted(shifted.landing_dir.glob("members_2016*.csv"))}
    assert sum(joined[f"members_20160{k}.csv"] for k in (4, 5, 6)) > 1.5 * sum(
        joined[f"members_20160{k}.csv"] for k in (1, 2, 3)
    )
    assert shifted.users > plain.users
    schedule = json.loads((shifted.truth_dir / "drift_schedule.json").read_text())
    assert schedule["drifts"] == [{"kind": "covariate", "month": "2016-04-01"}]
    assert schedule["arguments"] == {
        "users": 400,
        "start": "2016-01",
        "months": 6,
        "seed": 5,
        "drifts": ["covariate@2016-04"],
    }


def test_concept_drift_changes_only_later_decisions(tmp_path: Path) -> None:
    drift = parse_drift("concept@2016-04")
    changed = simulate(tmp_path / "changed", users=300, months=6, seed=3, drifts=[drift])
    plain = simulate(tmp_path / "plain", users=300, months=6, seed=3)
    for name in (
        "members.csv", "members_201605.csv", "transactions_201601.csv",
        "transactions_201603.csv", "user_logs_201603.csv", "train_201602.csv",
    ):  # fmt: skip
        assert (changed.landing_dir / name).read_bytes() == (plain.landing_dir / name).read_bytes()
    truth_changed = _read(changed.truth_dir / "churn_probability.csv")
    truth_plain = _read(plain.truth_dir / "churn_probability.csv")
    early = truth_plain["cohort_month"] < "2016-04-01"
    assert truth_plain[early].equals(truth_changed[truth_changed["cohort_month"] < "2016-04-01"])
    late = truth_changed[truth_changed["cohort_month"] >= "2016-04-01"]
    late_plain = truth_plain[~early]
    merged = late.merge(late_plain, on=["msno", "cohort_month"])
    assert not np.allclose(merged["churn_probability_x"], merged["churn_probability_y"])


# --- arguments and folders --------------------------------------------------------------------


def test_existing_landing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "members.csv").write_text("msno\n")
    with pytest.raises(FileExistsError, match=re.escape(str(tmp_path / "landing"))):
        simulate(tmp_path, users=50, months=2)
    assert sorted(p.name for p in (tmp_path / "landing").iterdir()) == ["members.csv"]


def test_empty_landing_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    summary = simulate(tmp_path, users=50, months=2, seed=1)
    assert summary.labelled_cohorts == []
    assert summary.rows["labels"] == 0
    assert (summary.truth_dir / "churn_probability.csv").read_text().startswith("msno,")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"users": 0}, ValueError, "users"),
        ({"months": 0}, ValueError, "months"),
        ({"start": "2016/01"}, ValueError, "YYYY-MM"),
        ({"drifts": ["concept@2016-03"]}, TypeError, "parse_drift"),
        (
            {"drifts": [Drift("concept", date(2016, 2, 1)), Drift("concept", date(2016, 3, 1))]},
            ValueError,
            "at most one concept",
        ),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        simulate(tmp_path, **{"users": 50, "months": 2, **kwargs})
    assert not (tmp_path / "landing").exists()


# --- subscription history ---------------------------------------------------------------------


def test_earlier_users_come_with_a_year_of_history(large: SimulationSummary) -> None:
    txns = _table(large.landing_dir, "transactions_")
    members = _read(large.landing_dir / "members.csv")
    start = int(f"{large.months[0]:%Y%m%d}")
    history = txns[txns["transaction_date"] < start]
    assert history["transaction_date"].min() >= 20150101
    assert set(history["msno"]) <= set(txns["msno"])
    # Most earlier users have paid before the window; history has cancels and lapses too.
    assert history["msno"].nunique() > 0.8 * len(members)
    assert 0.02 < history["is_cancel"].mean() < 0.07
    paid = history[history["is_cancel"] == 0].sort_values(["msno", "transaction_date"])
    bought = pd.to_datetime(paid["transaction_date"].astype(str), format="%Y%m%d")
    expired = pd.to_datetime(paid["membership_expire_date"].astype(str), format="%Y%m%d")
    gap = bought - expired.groupby(paid["msno"]).shift()
    assert (gap > pd.Timedelta(days=30)).sum() > 10  # earlier lapses and comebacks

    # Early and late cohorts see the same history: a year of transactions for both.
    first_month, last_month = large.labelled_cohorts[0], large.labelled_cohorts[-1]

    def yearly_count(cohort: date) -> float:
        cutoff = int(f"{cohort:%Y%m%d}")
        year_before = int(f"{cohort.year - 1}{cohort.month:02d}01")
        labels = _read(large.landing_dir / f"train_{cohort:%Y%m}.csv")
        window = txns[
            (txns["transaction_date"] < cutoff) & (txns["transaction_date"] >= year_before)
        ]
        per_user = window.groupby("msno").size().reindex(labels["msno"]).fillna(0)
        return float(per_user.mean())

    assert yearly_count(first_month) > 0.85 * yearly_count(last_month)


def test_history_reaches_back_before_the_kkbox_start(tmp_path: Path) -> None:
    summary = simulate(tmp_path, users=50, months=2, start="2015-04", seed=2)
    assert summary.history_months == [date(2014, m, 1) for m in range(4, 13)] + [
        date(2015, m, 1) for m in (1, 2, 3)
    ]


# --- delivery faults --------------------------------------------------------------------------


def test_schema_and_outage_drifts_break_only_the_user_logs(tmp_path: Path) -> None:
    drifts = [parse_drift("schema@2016-04"), parse_drift("outage@2016-03")]
    broken = simulate(tmp_path / "broken", users=300, months=6, seed=3, drifts=drifts)
    plain = simulate(tmp_path / "plain", users=300, months=6, seed=3)
    for path in sorted(plain.landing_dir.iterdir()):
        if not path.name.startswith("user_logs_"):
            assert (broken.landing_dir / path.name).read_bytes() == path.read_bytes(), path.name
    for month in ("201601", "201602"):
        name = f"user_logs_{month}.csv"
        assert (broken.landing_dir / name).read_bytes() == (plain.landing_dir / name).read_bytes()

    outage = _read(broken.landing_dir / "user_logs_201603.csv")
    full = _read(plain.landing_dir / "user_logs_201603.csv")
    assert 0.45 < len(outage) / len(full) < 0.75

    schedule = json.loads((broken.truth_dir / "drift_schedule.json").read_text())
    change = next(d for d in schedule["drifts"] if d["kind"] == "schema")
    assert change["month"] == "2016-04-01" and change["table"] == "user_logs"
    for month in ("201604", "201605", "201606"):
        header = _read(broken.landing_dir / f"user_logs_{month}.csv").columns.tolist()
        if change["change"] == "rename":
            assert change["new_column"] in header and change["column"] not in header
        elif change["change"] == "drop":
            assert change["column"] not in header
        else:
            assert header == [*CONTRACT["user_logs"], change["column"]]
    variants = set()
    for seed in range(8):
        other = simulate(tmp_path / f"seed{seed}", users=30, months=1, seed=seed,
                         drifts=[parse_drift("schema@2016-01")])  # fmt: skip
        variants.add(
            json.loads((other.truth_dir / "drift_schedule.json").read_text())["drifts"][0]["change"]
        )
    assert variants == {"rename", "add", "drop"}


# --- drifts that move few columns -------------------------------------------------------------

FEW_WORLD = {"users": 400, "months": 6, "seed": 5}  # 2016-01 .. 2016-06, drifts from 2016-04
BEFORE_DRIFT = ("201601", "201602", "201603")


@pytest.fixture(scope="module")
def few_plain(tmp_path_factory: pytest.TempPathFactory) -> SimulationSummary:
    return simulate(tmp_path_factory.mktemp("few_plain"), **FEW_WORLD)


def _few_drift(tmp_path: Path, kind: str) -> tuple[SimulationSummary, dict]:
    summary = simulate(tmp_path, drifts=[parse_drift(f"{kind}@2016-04")], **FEW_WORLD)
    schedule = json.loads((summary.truth_dir / "drift_schedule.json").read_text())
    (entry,) = schedule["drifts"]
    assert entry["kind"] == kind and entry["month"] == "2016-04-01"
    return summary, entry


def _same_before_the_drift(plain: SimulationSummary, drifted: SimulationSummary) -> None:
    for path in sorted(plain.landing_dir.iterdir()):
        tag = path.stem.rsplit("_", 1)[-1]
        if tag in BEFORE_DRIFT or tag.startswith("2015") or path.name == "members.csv":
            assert (drifted.landing_dir / path.name).read_bytes() == path.read_bytes(), path.name
    early = _read(plain.truth_dir / "churn_probability.csv")
    late = _read(drifted.truth_dir / "churn_probability.csv")
    assert early[early["cohort_month"] < "2016-04-01"].equals(
        late[late["cohort_month"] < "2016-04-01"]
    )


def test_segment_drift_ends_auto_renewal_in_one_channel_only(
    few_plain: SimulationSummary, tmp_path: Path
) -> None:
    drifted, entry = _few_drift(tmp_path, "segment")
    _same_before_the_drift(few_plain, drifted)
    assert entry["columns"] == ["transactions.is_auto_renew"]
    channel = entry["registered_via"]
    assert channel in (3, 4)
    members = _table(few_plain.landing_dir, "members")[["msno", "registered_via"]]

    def auto_share(summary: SimulationSummary) -> pd.Series:
        txns = _table(summary.landing_dir, "transactions_").merge(members, on="msno")
        txns = txns[txns["transaction_date"] >= 20160401]
        in_channel = (txns["registered_via"] == channel).rename("in_channel")
        return txns["is_auto_renew"].groupby(in_channel).mean()

    plain, ended = auto_share(few_plain), auto_share(drifted)
    assert plain[True] > 0.4  # the channel renewed automatically, mostly
    assert ended[True] == 0.0
    assert ended[False] == pytest.approx(plain[False], abs=0.05)


def test_price_drift_raises_one_plan_and_nothing_else(
    few_plain: SimulationSummary, tmp_path: Path
) -> None:
    drifted, entry = _few_drift(tmp_path, "price")
    old, new = entry["plan_list_price"], entry["new_plan_list_price"]
    assert entry["payment_plan_days"] == 30 and new == round(old * 1.3)
    for path in sorted(few_plain.landing_dir.iterdir()):
        if not path.name.startswith("transactions_2016") or path.stem[-6:] in BEFORE_DRIFT:
            assert (drifted.landing_dir / path.name).read_bytes() == path.read_bytes(), path.name
    name = "churn_probability.csv"
    assert (drifted.truth_dir / name).read_bytes() == (few_plain.truth_dir / name).read_bytes()

    raised = _table(drifted.landing_dir, "transactions_")
    plain = _table(few_plain.landing_dir, "transactions_")
    moved = [c for c in plain.columns if not plain[c].equals(raised[c])]
    assert moved == ["plan_list_price", "actual_amount_paid"]
    changed = plain["plan_list_price"] != raised["plan_list_price"]
    assert changed.sum() > 50
    assert (plain.loc[changed, "plan_list_price"] == old).all()
    assert (raised.loc[changed, "plan_list_price"] == new).all()
    assert plain.loc[changed, "payment_plan_days"].isin((0, 30)).all()
    assert (plain.loc[changed, "transaction_date"] >= 20160401).all()
    the_plan = (plain["plan_list_price"] == old) & plain["payment_plan_days"].isin((0, 30))
    assert changed.sum() == (the_plan & (plain["transaction_date"] >= 20160401)).sum()
    paid = raised.loc[changed, "actual_amount_paid"] / plain.loc[changed, "actual_amount_paid"]
    assert paid.dropna().between(1.25, 1.35).all()


def test_city_decline_lowers_one_city_listening(
    few_plain: SimulationSummary, tmp_path: Path
) -> None:
    drifted, entry = _few_drift(tmp_path, "city_decline")
    _same_before_the_drift(few_plain, drifted)
    assert entry["volume_factor"] == 0.6 and "user_logs.total_secs" in entry["columns"]
    cities = _table(few_plain.landing_dir, "members")[["msno", "city"]]

    def mean_secs(summary: SimulationSummary) -> pd.Series:
        logs = _table(summary.landing_dir, "user_logs_").merge(cities, on="msno")
        logs = logs[logs["date"] >= 20160401]
        in_city = (logs["city"] == entry["city"]).rename("in_city")
        return logs["total_secs"].clip(0, 86_400).groupby(in_city).mean()

    ratio = mean_secs(drifted) / mean_secs(few_plain)
    assert 0.5 < ratio[True] < 0.72
    assert 0.9 < ratio[False] < 1.1
