"""Drift that flags what matters: PSI in DuckDB, sampling noise, importance, tiers, the report.

A small fabricated warehouse (features written straight into DuckDB) and a small LightGBM champion
registered in a temporary MLflow store keep these tests independent of the simulator; the asset
runs through ``dg.materialize``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churn_assets.keys import DRIFT_CHECK, PREDICTION_CHECK
from churn_assets.monitoring import psi
from churn_assets.monitoring.assets import drift_report
from churn_assets.monitoring.measure import share_truncated_columns
from churn_assets.monitoring.target import churn_rate_shift, target_drift
from churn_assets.resources import default_resources
from churn_assets.settings import EXPERIMENT_NAME
from churn_assets_tests.helpers import fit_and_register_champion, materialize

TRAINING = [date(2016, 1, 1), date(2016, 2, 1)]
VALIDATION = date(2016, 3, 1)
REFERENCE = [*TRAINING, VALIDATION]
USERS = 2000
NOISE_COLUMNS = [f"noise_{i}" for i in range(6)]
# The model leans on these two; the noise columns carry next to no gain.
DECISIVE = "days_since_last_listen"
MINOR = "noise_0"
UNDRIFTED, DECISIVE_SHIFT, MINOR_SHIFT = "2016-04-01", "2016-05-01", "2016-06-01"
NEW_MEMBER_SHIFT = "2016-07-01"


def _cohort(cohort: date, n: int, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "msno": [f"u{cohort:%Y%m}_{i:05d}" for i in range(n)],
            "cohort_month": cohort,
            "last_is_auto_renew": rng.integers(0, 2, n),
            DECISIVE: rng.integers(0, 60, n).astype(float),
            "plays_30d": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, 50.0, n)),
            "city": rng.choice([1, 4, 5, 13, 22], n, p=[0.4, 0.2, 0.2, 0.1, 0.1]),
            "registration_age_days": rng.integers(0, 2000, n).astype(float),
            **{c: rng.normal(size=n) for c in NOISE_COLUMNS},
        }
    )
    # Members from city 22 leave more: the model relies on city too, so a change in who joins
    # from there matters to it.
    logit = (
        -4.0
        + 2.0 * (1 - frame["last_is_auto_renew"])
        + 0.05 * frame[DECISIVE]
        + 1.5 * (frame["city"] == 22)
    )
    frame["is_churn"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def _resampled(reference: pd.DataFrame, cohort: date, n: int, seed: int) -> pd.DataFrame:
    """An undrifted cohort: ``n`` users drawn from the reference's rows."""
    rows = reference.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    return rows.assign(msno=[f"u{cohort:%Y%m}_{i:05d}" for i in range(n)], cohort_month=cohort)


def _register_champion(train: pd.DataFrame, tracking_uri: str, artifacts: Path) -> lgb.Booster:
    return fit_and_register_champion(
        train, tracking_uri, artifacts, TRAINING, VALIDATION, min_data_in_leaf=200
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Three reference cohorts, a champion trained on them, and three cohorts to judge."""
    home = tmp_path_factory.mktemp("drift") / "churn_home"
    (home / "dagster").mkdir(parents=True)
    rng = np.random.default_rng(7)
    reference = pd.concat([_cohort(c, USERS, rng) for c in REFERENCE], ignore_index=True)
    shifted = _cohort(date(2016, 5, 1), USERS, rng)
    shifted[DECISIVE] = (shifted[DECISIVE] + 25).clip(upper=59)  # silent for weeks longer
    minor = _cohort(date(2016, 6, 1), USERS, rng)
    minor[MINOR] = minor[MINOR] + 1.5  # the same size of shift, in a column of no consequence
    # Everyone who joined in the last 90 days (about 1 in 22) came from one city.
    joined = _cohort(date(2016, 7, 1), USERS, rng)
    joined.loc[joined["registration_age_days"] <= 90, "city"] = 22
    frame = pd.concat(
        [reference, _resampled(reference, date(2016, 4, 1), 300, seed=1), shifted, minor, joined],
        ignore_index=True,
    )
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE features AS SELECT * EXCLUDE (is_churn) FROM frame")
        conn.execute("CREATE TABLE labels AS SELECT msno, cohort_month, is_churn FROM frame")
        # Every cohort's windows fully loaded, as the features asset records it.
        conn.execute(
            "CREATE TABLE cohort_coverage AS SELECT DISTINCT cohort_month, true AS complete "
            "FROM frame"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHURN_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        resources = default_resources()
        tracking_uri = resources["registry"].tracking_uri
        booster = _register_champion(
            reference[reference["cohort_month"].isin(TRAINING)], tracking_uri, home / "mlartifacts"
        )
        yield {
            "home": home,
            "resources": resources,
            "booster": booster,
            "reference": reference,
            "tracking_uri": tracking_uri,
        }


def _drift(world: dict, cohort: str, **config) -> dg.ExecuteInProcessResult:
    return materialize(
        [drift_report],
        partition_key=cohort,
        resources=world["resources"],
        run_config={"ops": {"drift_report": {"config": config}}} if config else None,
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def _metrics(world: dict, cohort: str, new_members: bool = False) -> pd.DataFrame:
    """The cohort's drift_metrics rows: the whole cohort's, or the new-member slice's."""
    with duckdb.connect(str(world["home"] / "warehouse.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            "SELECT * FROM drift_metrics WHERE cohort_month = ? ORDER BY column_name", [cohort]
        ).df()
    sliced = rows["method"] == "psi_new_members"
    return rows[sliced if new_members else ~sliced].reset_index(drop=True)


# --- the statistics -------------------------------------------------------------------------


def _numpy_psi(reference: np.ndarray, current: np.ndarray, categorical: bool) -> float:
    """PSI as documented: reference deciles (inverted CDF), a value equal to an edge in the
    lower bin, categories as bins, missing values a bin, an empty bin half a row."""
    edges = np.quantile(
        reference[~np.isnan(reference)], np.arange(1, 10) / 10, method="inverted_cdf"
    )

    def bins(values: np.ndarray) -> np.ndarray:
        out = np.full(values.shape, -1.0)
        present = ~np.isnan(values)
        out[present] = (
            values[present] if categorical else np.searchsorted(edges, values[present], "left")
        )
        return out

    ref_bins, cur_bins = bins(reference), bins(current)
    total = 0.0
    for b in np.union1d(ref_bins, cur_bins):
        p = max((ref_bins == b).sum(), 0.5) / len(reference)
        q = max((cur_bins == b).sum(), 0.5) / len(current)
        total += (q - p) * np.log(q / p)
    return total


def test_duckdb_psi_matches_numpy_on_random_data():
    rng = np.random.default_rng(3)
    conn = duckdb.connect()

    def side(cohort: date, n: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "msno": [f"{cohort}_{i}" for i in range(n)],
                "cohort_month": cohort,
                "normal": rng.normal(shift, 1, n),
                "ties": rng.poisson(1 + shift, n),  # few distinct values: repeated edges
                "gappy": np.where(rng.random(n) < 0.2 + shift / 5, np.nan, rng.gamma(2, 3, n)),
                "city": rng.choice([1, 4, 13, 22, 99], n, p=[0.5, 0.2, 0.2, 0.08, 0.02]),
            }
        )

    reference = pd.concat([side(date(2016, 1, 1), 1500, 0), side(date(2016, 2, 1), 900, 0)])
    current = pd.concat([side(date(2016, 3, 1), 700, 0.4)])
    conn.register("frame", pd.concat([reference, current]))
    conn.execute("CREATE TABLE features AS SELECT * FROM frame")
    columns = psi.numeric_feature_columns(conn, ["normal", "ties", "gappy", "city"])
    stats = psi.feature_psi(
        conn, date(2016, 3, 1), [date(2016, 1, 1), date(2016, 2, 1)], columns, ["city"]
    ).set_index("column_name")
    for column in columns:
        expected = _numpy_psi(
            reference[column].to_numpy(float), current[column].to_numpy(float), column == "city"
        )
        assert stats.loc[column, "psi"] == pytest.approx(expected, rel=1e-9), column
        assert stats.loc[column, "reference_rows"] == 2400
        assert stats.loc[column, "current_rows"] == 700
    assert stats["psi"].min() > 0.01  # every column moved: the comparison is not trivial


def test_score_psi_matches_numpy():
    rng = np.random.default_rng(4)
    reference, current = rng.beta(2, 8, 3000), rng.beta(2.5, 8, 1000)
    scores = psi.score_psi(duckdb.connect(), reference, current)
    assert scores["psi"] == pytest.approx(_numpy_psi(reference, current, False), rel=1e-9)
    assert scores["bins"] == 10


def test_sampling_noise_is_taken_out_at_every_cohort_size():
    """Undrifted cohorts of 50 to 2,000 users: raw PSI grows as the cohort shrinks (0.2 at 50
    users), the adjusted score does not, and the weighted score passes."""
    rng = np.random.default_rng(5)
    conn = duckdb.connect()
    reference = pd.concat([_cohort(c, 3000, rng) for c in TRAINING], ignore_index=True).drop(
        columns="is_churn"
    )
    samples = [
        _resampled(reference, date(2017, 1 + i, 1), n, seed=i)
        for i, n in enumerate([50, 50, 50, 300, 300, 300, 2000, 2000])
    ]
    conn.register("frame", pd.concat([reference, *samples]))
    conn.execute("CREATE TABLE features AS SELECT * FROM frame")
    columns = psi.numeric_feature_columns(conn, [c for c in reference if c not in ("msno",)])
    weights = dict.fromkeys(columns, 1.0)
    raw_at_50 = []
    for sample in samples:
        cohort = sample["cohort_month"].iloc[0]
        stats = psi.feature_psi(conn, cohort, TRAINING, columns, ["city"])
        judged = psi.judge_columns(stats, weights)
        assert psi.tier_of(judged["weighted_contribution"].sum()) == "pass", cohort
        assert not judged["drifted"].any(), judged[judged["drifted"]]
        if len(sample) == 50:
            raw_at_50.append(stats["psi"].mean())
    # Uncorrected, a 50-user cohort of an undrifted world would have warned.
    assert np.mean(raw_at_50) > psi.MODERATE_PSI


def test_tiers_follow_the_psi_conventions():
    assert [psi.tier_of(s) for s in (0.0, 0.099, 0.1, 0.2499, 0.25, 3.0)] == [
        "pass",
        "pass",
        "warn",
        "warn",
        "error",
        "error",
    ]
    assert psi.tier_of(float("nan")) == "pass"


def test_churn_rate_shift_needs_size_and_significance():
    assert churn_rate_shift(10_000, 1_000, 5_000, 1_000)[0] == "error"  # 10 % -> 20 %
    assert churn_rate_shift(10_000, 1_000, 5_000, 650)[0] == "warn"  # 10 % -> 13 %
    assert churn_rate_shift(10_000, 1_000, 5_000, 550)[0] == "pass"  # 10 % -> 11 %
    assert churn_rate_shift(10_000, 1_000, 40, 8)[0] == "pass"  # 20 % of 40: not significant
    assert churn_rate_shift(10_000, 1_000, 5_000, 250)[0] == "error"  # halved


# --- the asset --------------------------------------------------------------------------------


def test_an_undrifted_small_cohort_passes(world):
    result = _drift(world, UNDRIFTED)
    assert result.success
    checks = _checks(result)
    assert checks[DRIFT_CHECK].passed and checks[PREDICTION_CHECK].passed
    assert checks[DRIFT_CHECK].metadata["tier"].value == "pass"
    rows = _metrics(world, UNDRIFTED)
    per_column = rows[rows["method"] == "psi"]
    assert len(per_column) == 11 and not per_column["drifted"].any()
    # Raw PSI is not zero on 300 users; what is judged is what exceeds the noise.
    assert (per_column["score"] > 0).all()
    noise = (per_column["bins"] - 1) * (1 / per_column["reference_rows"] + 1 / 300)
    assert np.allclose(per_column["expected_noise"], noise)
    assert (per_column["current_rows"] == 300).all()
    assert set(rows["method"]) == {"psi", "psi_segment", "weighted_psi", "prediction_psi"}
    assert len(_metrics(world, UNDRIFTED, new_members=True)) == 11
    assert not rows["stands_out"].fillna(False).any()


def test_a_shift_in_a_decisive_column_is_an_error_the_same_in_a_minor_one_is_information(world):
    booster = world["booster"]
    importance = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    shares = {k: v / sum(importance.values()) for k, v in importance.items()}
    assert shares[DECISIVE] > 0.3 and shares[MINOR] < 0.05, shares

    decisive = _drift(world, DECISIVE_SHIFT)
    minor = _drift(world, MINOR_SHIFT)
    decisive_rows = _metrics(world, DECISIVE_SHIFT).set_index("column_name")
    minor_rows = _metrics(world, MINOR_SHIFT).set_index("column_name")
    # Each shift is a major one in its own column...
    assert decisive_rows.loc[DECISIVE, "tier"] == "error"
    assert minor_rows.loc[MINOR, "tier"] == "error"
    assert minor_rows.loc[MINOR, "score"] > decisive_rows.loc[DECISIVE, "score"] / 3
    # ...but only the decisive one moves the weighted score and the model's scores.
    checks = _checks(decisive)
    assert not checks[DRIFT_CHECK].passed
    assert checks[DRIFT_CHECK].severity == dg.AssetCheckSeverity.ERROR
    assert checks[DRIFT_CHECK].metadata["tier"].value == "error"
    assert DECISIVE in checks[DRIFT_CHECK].description
    # Relied on, it stands out; it is not also listed as barely used.
    assert DECISIVE not in checks[DRIFT_CHECK].metadata["moving_not_relied_on"].value
    assert not checks[PREDICTION_CHECK].passed
    assert checks[PREDICTION_CHECK].metadata["psi"].value > psi.MODERATE_PSI
    # A major shift of a column the champion barely uses (under an even share of its gain) is
    # information, named as moving, not an alarm: the model's scores do not move either.
    minor_checks = _checks(minor)
    floor = minor_checks[DRIFT_CHECK].metadata["relied_on_from_weight"].value
    assert shares[MINOR] < floor == pytest.approx(1 / sum(v > 0 for v in importance.values()), 1e-3)
    assert minor_checks[DRIFT_CHECK].passed, minor_checks[DRIFT_CHECK].description
    assert "moving but barely used" in minor_checks[DRIFT_CHECK].description
    assert MINOR in minor_checks[DRIFT_CHECK].metadata["moving_not_relied_on"].value
    assert minor_checks[DRIFT_CHECK].metadata["standing_out"].value == "none"
    assert minor_checks[PREDICTION_CHECK].passed
    assert minor_rows.loc["*", "adjusted_score"] < psi.MODERATE_PSI
    assert minor_rows.loc[MINOR, "moves"] and not minor_rows.loc[MINOR, "stands_out"]

    with duckdb.connect(str(world["home"] / "warehouse.duckdb"), read_only=True) as conn:
        verdicts = dict(
            conn.execute(
                "SELECT monitor, severity FROM monitor_verdicts WHERE cohort_month = ? "
                "ORDER BY evaluated_at",
                [DECISIVE_SHIFT],
            ).fetchall()
        )
    assert verdicts["data_drift"] == "error" and verdicts["prediction_drift"] in ("warn", "error")
    assert verdicts["target_drift"] in ("pass", "warn", "error", "n/a")


def test_a_column_reaching_before_the_bulk_of_the_history_is_named_not_judged(world):
    """The decisive shift again, but in a cohort whose 90-day listening window reaches before
    the month from which the bulk of the listening history is loaded: that column differs by
    how much history was loaded, so it is left out of the verdict and named."""
    warehouse = str(world["home"] / "warehouse.duckdb")

    def listening_bulk_start(month: str | None) -> None:
        with duckdb.connect(warehouse) as conn:
            conn.execute(
                "ALTER TABLE cohort_coverage ADD COLUMN IF NOT EXISTS listening_bulk_start DATE"
            )
            conn.execute(
                "UPDATE cohort_coverage SET listening_bulk_start = ?::DATE WHERE cohort_month = ?",
                [month, DECISIVE_SHIFT],
            )

    listening_bulk_start("2016-03-01")  # the 90-day window of 2016-05 starts in February
    try:
        result = _drift(world, DECISIVE_SHIFT)
    finally:
        listening_bulk_start(None)
    check = _checks(result)[DRIFT_CHECK]
    assert check.passed, check.description
    assert check.metadata["truncated_not_judged"].value == DECISIVE
    assert "not judged: 1 column(s)" in check.description and DECISIVE in check.description
    judged = _metrics(world, DECISIVE_SHIFT)
    assert DECISIVE not in set(judged["column_name"])
    # plays_30d reads from 2016-04 on, after the bulk start: judged as before.
    assert "plays_30d" in set(judged["column_name"])
    # The champion's scores are compared with that column drawn from one pool for both sides:
    # its filling window moves no score, and nothing else changed here.
    prediction = _checks(result)[PREDICTION_CHECK]
    assert prediction.passed and "1 truncated feature(s) drawn from one pool" in (
        prediction.description
    )
    assert prediction.metadata["truncated_shared"].value == 1


def test_sharing_truncated_columns_leaves_the_others_and_gives_both_sides_one_pool():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"grows": rng.normal(0, 1, 4000), "steady": rng.normal(0, 1, 4000)})
    current = pd.DataFrame({"grows": rng.normal(3, 1, 4000), "steady": rng.normal(0, 1, 4000)})
    shared_reference, shared_current = share_truncated_columns(reference, current, ["grows"])
    assert shared_reference["steady"].equals(reference["steady"])
    assert shared_current["steady"].equals(current["steady"])
    # Both sides now draw "grows" from the same mixture: means within sampling noise of 1.5.
    for side in (shared_reference, shared_current):
        assert abs(side["grows"].mean() - 1.5) < 0.1
    assert share_truncated_columns(reference, current, []) == (reference, current)


def test_a_change_in_who_joins_stands_out_among_new_members_before_the_whole_cohort(world):
    result = _drift(world, NEW_MEMBER_SHIFT)
    whole = _metrics(world, NEW_MEMBER_SHIFT).set_index("column_name")
    new_members = _metrics(world, NEW_MEMBER_SHIFT, new_members=True).set_index("column_name")
    # Diluted in 2,000 users the move of ~90 is no shift at all...
    assert whole.loc["city", "tier"] == "pass" and not whole.loc["city", "stands_out"]
    # ...among the members of their first 90 days it is the whole story.
    assert 50 < new_members.loc["city", "current_rows"] < 150
    assert new_members.loc["city", "stands_out"] and new_members.loc["city", "tier"] == "error"
    assert not new_members.drop(index="city")["stands_out"].any()
    check = _checks(result)[DRIFT_CHECK]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "city among new members" in check.metadata["standing_out"].value
    # Without the slice nothing is seen.
    assert _checks(_drift(world, NEW_MEMBER_SHIFT, new_member_days=0))[DRIFT_CHECK].passed


def test_standing_out_allows_for_how_many_columns_are_tested():
    # One column over 10 bins, 60 users against 600: a PSI of 0.5 (0.33 beyond its noise mean
    # of 0.17) is beyond the 1 % noise limit of one test (0.40), within that of a hundred tests
    # (0.62, Bonferroni).
    stats = pd.DataFrame(
        {
            "psi": [0.5],
            "expected_psi": [9 * (1 / 600 + 1 / 60)],
            "bins": [10],
            "reference_rows": [600],
            "current_rows": [60],
        }
    )
    assert psi.standouts(stats, tested=1).iloc[0]
    assert not psi.standouts(stats, tested=100).iloc[0]
    # Too few rows for the chi-square law (Cochran: 5 a bin): nothing stands out.
    assert not psi.standouts(stats.assign(current_rows=40, psi=3.0), tested=1).iloc[0]


def test_a_moderate_tier_fails_the_check_with_severity_warn(world):
    # The same evidence judged with a major threshold out of reach: a moderate shift.
    result = _drift(world, DECISIVE_SHIFT, major_psi=100.0)
    check = _checks(result)[DRIFT_CHECK]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["tier"].value == "warn"


def test_the_report_is_kept_per_cohort_and_model_version_and_logged_to_mlflow(world):
    result = _drift(world, MINOR_SHIFT, html_report=True, html_rows=400)
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    path = Path(metadata["report_path"].value)
    assert path.name == "drift_2016-06_v1.html" and path.exists()
    assert path.parent == world["home"] / "reports" / "drift"
    assert metadata["report_url"].value == f"http://127.0.0.1:8000/reports/drift/{path.name}"
    run = MlflowClient(world["tracking_uri"]).get_run(metadata["mlflow_run_id"].value)
    assert run.info.run_name == "drift-2016-06" and run.info.status == "FINISHED"
    assert metadata["mlflow_run"].value == (
        f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    )
    assert metadata["mlflow_model_version"].value.endswith("/#/models/churn-model/versions/1")
    # The page says how Evidently's sample share relates to the project's verdict, in numbers.
    drifted = len(metadata["drifted_columns"].value)
    assert f"{drifted} of " in path.read_text() and "project's drift verdict" in path.read_text()
    assert run.data.tags["model_version"] == "1" and run.data.tags["cohort_month"] == "2016-06-01"
    experiment = MlflowClient(world["tracking_uri"]).get_experiment(run.info.experiment_id)
    assert experiment.name == EXPERIMENT_NAME
    artifacts = {
        a.path for a in MlflowClient(world["tracking_uri"]).list_artifacts(run.info.run_id, "drift")
    }
    assert "drift/drift_2016-06_v1.html" in artifacts


def test_an_evidently_failure_leaves_the_verdicts_standing(world, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("Evidently cannot read this sample")

    monkeypatch.setattr("churn_assets.monitoring.results.save_html_report", broken)
    result = _drift(world, UNDRIFTED, html_report=True, log_to_mlflow=False)
    assert result.success and _checks(result)[DRIFT_CHECK].passed
    [event] = result.get_asset_materialization_events()
    assert "report_path" not in event.materialization.metadata
    assert event.materialization.metadata["data_drift"].value == "pass"


def test_target_drift_compares_the_newest_labelled_cohort(world):
    with duckdb.connect(str(world["home"] / "warehouse.duckdb")) as conn:
        # Checked in 2016-06, labels are known up to 2016-04: the resampled, undrifted cohort.
        judged = target_drift(conn, date(2016, 6, 1), REFERENCE)
        assert judged.labelled_cohort == date(2016, 4, 1) and judged.severity == "pass"
        # Checked in 2016-05, labels up to 2016-03, which the champion learnt from: nothing new.
        assert target_drift(conn, date(2016, 5, 1), REFERENCE).severity == "n/a"
        # Churn up by half or more in a labelled cohort of 2,000 users.
        conn.execute("BEGIN TRANSACTION")
        conn.execute(
            "UPDATE labels SET is_churn = 1 WHERE cohort_month = '2016-05-01' "
            "AND hash(msno) % 5 = 0"
        )
        doubled = target_drift(conn, date(2016, 7, 1), REFERENCE)
        conn.execute("ROLLBACK")
    assert doubled.labelled_cohort == date(2016, 5, 1) and doubled.severity == "error"
    assert doubled.rate_ratio > 1.5


def test_a_champion_that_learnt_only_from_incomplete_cohorts_is_judged_through_a_stand_in(world):
    """Comparing with cohorts whose windows had holes would measure the holes, not drift; but a
    provisional champion must not leave drift blind: complete cohorts before stand in."""
    with duckdb.connect(str(world["home"] / "warehouse.duckdb")) as conn:
        conn.execute(
            "UPDATE cohort_coverage SET complete = false WHERE cohort_month < '2016-04-01'"
        )
    try:
        # 2016-04 has no complete cohort before it: nothing fair to compare with, and no alarm.
        first = _drift(world, UNDRIFTED, log_to_mlflow=False)
        check = _checks(first)[DRIFT_CHECK]
        assert first.success and check.passed and "no fair reference" in check.description
        # 2016-05 is compared with 2016-04, the complete cohort nearest the champion's own: the
        # decisive shift is caught as it is against the champion's training cohorts.
        shifted = _drift(world, DECISIVE_SHIFT, log_to_mlflow=False)
        check = _checks(shifted)[DRIFT_CHECK]
        [event] = shifted.get_asset_materialization_events()
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
        assert meta["reference_cohorts"] == "2016-04" and meta["reference_stands_in"] is True
        assert "standing in for model v1's training cohorts 2016-01, 2016-02, 2016-03" in (
            check.description
        )
        # The stand-in grows with the complete cohorts there are, up to as many as the champion
        # learnt from, nearest its own first; it never holds the cohort judged.
        later = _drift(world, MINOR_SHIFT, log_to_mlflow=False)
        [event] = later.get_asset_materialization_events()
        assert event.materialization.metadata["reference_cohorts"].value == "2016-04, 2016-05"
    finally:
        with duckdb.connect(str(world["home"] / "warehouse.duckdb")) as conn:
            conn.execute("UPDATE cohort_coverage SET complete = true")
