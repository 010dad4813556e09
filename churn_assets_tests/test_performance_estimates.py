"""Performance estimated before labels land, and held to the labels once they do.

Labels are drawn from known probabilities, so the truth of every cohort is known: scores equal
to the truth are calibrated, and the estimate must cover what the labels then realise; a score
moved off the truth (miscalibrated) or labels that follow another truth (a concept shift) must
leave the realised metric outside the estimate.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn_assets.features.assets import features
from churn_assets.modeling.frame import as_matrix, informative_columns
from churn_assets.modeling.metrics import classification_metrics
from churn_assets.performance.assets import model_performance
from churn_assets.performance.estimate_judging import (
    compare_with_realised,
    judge_estimate,
    per_metric_confidence,
)
from churn_assets.performance.estimates import performance_estimate
from churn_assets.performance.estimation import (
    Estimate,
    estimate_performance,
    expected_confusion,
    realised_metrics,
)
from churn_assets.performance.judging import ExpectedLevel
from churn_assets.raw.assets import labels, members, transactions, user_logs
from churn_assets.resources import default_resources
from churn_assets.scoring.assets import predictions
from churn_assets.scoring.buckets import assign_buckets
from churn_assets.simulator import simulate
from churn_assets_tests.helpers import RANGE_END, RANGE_START, materialize, register_booster

CHECKED = ("auc", "log_loss", "churn_rate", "lift_top_decile", "bucket_a_precision")


def _truth(rng: np.random.Generator, n: int, intercept: float = -2.4) -> np.ndarray:
    return 1 / (1 + np.exp(-(intercept + 1.6 * rng.normal(size=n))))


def _buckets(p: np.ndarray) -> np.ndarray:
    return assign_buckets(p, 0.3, 0.1)


def _estimate(p: np.ndarray, confidence: float = 0.95, seed: int = 0) -> dict[str, Estimate]:
    return estimate_performance(p, _buckets(p), confidence=confidence, draws=200, seed=seed)


def test_a_draw_computes_each_metric_as_the_shipped_metrics_do():
    rng = np.random.default_rng(1)
    p = np.round(_truth(rng, 3000), 2)  # rounded: many tied scores
    y = (rng.random(len(p)) < p).astype(int)
    mine = realised_metrics(y, p, _buckets(p))
    shipped = classification_metrics(y, p, 0.3)
    for metric in ("auc", "log_loss", "lift_top_decile", "bucket_a_precision", "bucket_a_recall"):
        assert mine[metric] == pytest.approx(shipped[metric], rel=1e-9), metric
    assert mine["churn_rate"] == pytest.approx(y.mean())


def test_closed_forms_are_the_mean_of_many_label_draws():
    rng = np.random.default_rng(2)
    p = np.round(_truth(rng, 2000), 3)
    estimates = _estimate(p)
    draws = [realised_metrics(rng.random(len(p)) < p, p, _buckets(p)) for _ in range(400)]
    for metric in CHECKED:
        mean = np.mean([d[metric] for d in draws])
        # Ratios of expectations are off the expected ratio by O(1/n) only.
        assert estimates[metric].estimate == pytest.approx(mean, rel=0.01), metric
    assert estimates["churn_rate"].estimate == pytest.approx(p.mean())


def test_calibrated_scores_cover_what_the_labels_realise():
    """Coverage over many cohorts: each of a new population draw, with labels from its truth."""
    rng = np.random.default_rng(3)
    covered = {m: 0 for m in CHECKED}
    cohorts = 60
    for seed in range(cohorts):
        p = _truth(rng, 1500)
        estimates = _estimate(p, seed=seed)
        y = (rng.random(len(p)) < p).astype(int)
        realised = realised_metrics(y, p, _buckets(p))
        for metric in CHECKED:
            e = estimates[metric]
            covered[metric] += e.low <= realised[metric] <= e.high
    # 95 % intervals (users resampled too: on the cohort's own users they are conservative).
    assert all(count >= 0.88 * cohorts for count in covered.values()), covered


def test_a_miscalibrated_score_or_a_concept_shift_leaves_the_realised_metric_outside():
    rng = np.random.default_rng(4)
    outside = {"churn_rate": 0, "log_loss": 0, "auc": 0}
    cohorts = 20
    for seed in range(cohorts):
        truth = _truth(rng, 3000)
        # Miscalibrated: the score doubles the odds of churn, ranking untouched.
        odds = 2 * truth / (1 - truth)
        estimates = _estimate(odds / (1 + odds), seed=seed)
        y = (rng.random(len(truth)) < truth).astype(int)
        realised = realised_metrics(y, truth, _buckets(truth))
        outside["churn_rate"] += realised["churn_rate"] < estimates["churn_rate"].low
        outside["log_loss"] += realised["log_loss"] < estimates["log_loss"].low
        # Concept shift: the scores are the old truth, churn now follows another signal half.
        shifted = 1 / (1 + np.exp(-(np.log(odds / 2) * 0.5 + 0.8 * rng.normal(size=3000))))
        y_new = (rng.random(len(truth)) < shifted).astype(int)
        estimated = _estimate(truth, seed=seed)["auc"]
        outside["auc"] += realised_metrics(y_new, truth, _buckets(truth))["auc"] < estimated.low
    assert all(count >= 0.9 * cohorts for count in outside.values()), outside


def test_the_expected_confusion_matrix_adds_up():
    p = np.array([0.9, 0.5, 0.2, 0.15, 0.05, 0.01])
    rows = {r["flagged"]: r for r in expected_confusion(p, _buckets(p))}
    assert rows["A"]["users"] == 2 and rows["A+B"]["users"] == 4
    assert rows["A"]["churners_flagged"] == pytest.approx(1.4)
    for row in rows.values():
        churners = row["churners_flagged"] + row["churners_missed"]
        assert churners == pytest.approx(p.sum())
        total = churners + row["stayers_flagged"] + row["stayers_passed"]
        assert total == pytest.approx(len(p))


# -- the monitors -------------------------------------------------------------------------------


def _level(auc: float, lift: float) -> ExpectedLevel:
    months = ("2016-03", "2016-04")
    return ExpectedLevel(
        {"auc": auc, "lift_top_decile": lift}, {"auc": months, "lift_top_decile": months}
    )


ESTIMATES = {
    "auc": Estimate("auc", 0.80, 0.77, 0.83),
    "lift_top_decile": Estimate("lift_top_decile", 4.0, 3.5, 4.5),
}


def test_the_estimate_is_judged_against_an_out_of_time_level_only():
    assert per_metric_confidence(0.99, 2) == pytest.approx(0.995)
    verdict, judged = judge_estimate("3", ESTIMATES, None, 0.99)
    assert verdict.severity == "n/a" and judged == []
    assert "before labels" in verdict.detail
    verdict, _ = judge_estimate("3", ESTIMATES, _level(0.82, 4.2), 0.99)
    assert verdict.severity == "pass"
    # A level below the interval is good news, not a warning; above it is.
    assert judge_estimate("3", ESTIMATES, _level(0.70, 3.0), 0.99)[0].severity == "pass"
    verdict, judged = judge_estimate("3", ESTIMATES, _level(0.86, 4.2), 0.99)
    assert verdict.severity == "warn"
    assert [j.metric for j in judged if j.failed] == ["auc"]
    assert "99.50% each (Bonferroni)" in verdict.detail and "before labels" in verdict.detail
    # Just above the interval, but within the level's own noise (two cohorts of it): a dip is
    # information, as a realised one is.
    verdict, judged = judge_estimate("3", ESTIMATES, _level(0.84, 4.2), 0.99)
    assert [j.metric for j in judged if j.failed] == ["auc"]
    assert verdict.severity == "pass" and verdict.detail.startswith("information:")


def _stored() -> pd.DataFrame:
    return pd.DataFrame(
        [(e.metric, e.estimate, e.low, e.high) for e in ESTIMATES.values()],
        columns=["metric", "estimate", "low", "high"],
    )


def test_estimated_against_realised_names_the_kind_of_shift():
    stable = compare_with_realised("3", _stored(), {"auc": 0.81, "lift_top_decile": 4.1}, None)
    assert stable.verdict.severity == "pass"
    assert stable.table.set_index("metric").loc["auc", "error"] == pytest.approx(0.01)
    # The estimate stayed at the level, the labels fell: a concept shift.
    concept = compare_with_realised(
        "3", _stored(), {"auc": 0.70, "lift_top_decile": 4.1}, _level(0.80, 4.0)
    )
    assert concept.verdict.severity == "pass" and "concept shift" in concept.verdict.detail
    assert concept.verdict.detail.startswith("information:")
    # The estimate fell from the level and the labels followed: foreseen.
    foreseen = compare_with_realised(
        "3", _stored(), {"auc": 0.79, "lift_top_decile": 4.0}, _level(0.88, 4.0)
    )
    assert foreseen.verdict.severity == "pass"
    assert "covariate shift the estimate saw first" in foreseen.verdict.detail
    # The estimate fell, the labels did not.
    unfollowed = compare_with_realised(
        "3", _stored(), {"auc": 0.87, "lift_top_decile": 4.0}, _level(0.88, 4.0)
    )
    assert unfollowed.verdict.severity == "pass"
    assert "did not follow" in unfollowed.verdict.detail
    missing = compare_with_realised("3", _stored().iloc[0:0], {"auc": 0.8}, None)
    assert missing.verdict.severity == "n/a"


def test_an_empty_cohort_estimates_nothing():
    empty = estimate_performance(np.array([]), np.array([]), confidence=0.95)
    assert all(np.isnan(e.estimate) for e in empty.values())
    # No one in bucket A: its precision is undefined, the rest is estimated.
    low = np.full(500, 0.05)
    estimates = _estimate(low)
    assert np.isnan(estimates["bucket_a_precision"].estimate)
    assert estimates["churn_rate"].estimate == pytest.approx(0.05)
    assert estimates["auc"].estimate == pytest.approx(0.5)  # all tied: no ranking at all


# -- through the assets, on a simulated world -----------------------------------------------------

LABELLED = ["2016-02-01", "2016-03-01", "2016-04-01", "2016-05-01", "2016-06-01"]


def _run(assets: list, **kwargs) -> dg.ExecuteInProcessResult:
    return materialize(assets, resources=default_resources(), **kwargs)


def _champion(home: Path, tracking_uri: str) -> None:
    """A seeded LightGBM learnt on 2016-02..03 and validated on 2016-04, registered champion.

    Fitted directly, not searched: FLAML's budget is wall-clock time, and on a loaded machine
    a tiny budget may end on a first, near-constant configuration."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        frame = conn.execute(
            "SELECT f.*, l.is_churn FROM features f JOIN labels l USING (msno, cohort_month) "
            "WHERE f.cohort_month IN ('2016-02-01', '2016-03-01') ORDER BY msno"
        ).df()
    columns = informative_columns(
        frame, [c for c in frame.columns if c not in ("msno", "cohort_month", "is_churn")]
    )
    # Few rounds of small trees: a model that does not overfit stays calibrated out of time.
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7, "min_data_in_leaf": 100}
    booster = lgb.train(
        {**params, "learning_rate": 0.05, "seed": 0, "n_jobs": 1, "deterministic": True},
        lgb.Dataset(as_matrix(frame, columns), frame["is_churn"].to_numpy()),
        num_boost_round=40,
    )
    tags = {"validation_cohort": "2016-04-01", "feature_columns": json.dumps(columns)}
    register_booster(tracking_uri, home / "mlartifacts", booster, tags, champion=True)


@pytest.fixture
def world(churn_env) -> dict:
    """A seven-month world loaded, its cohorts built, and a champion learnt on 02..03.

    3,000 users make cohorts of about 1,300: a model learnt from a few hundred users gives a
    handful of distinct scores, whose estimate says little of anything."""
    home = Path(churn_env["CHURN_HOME"])
    summary = simulate(home, users=3000, months=7, seed=23)
    assert _run([members]).success
    for asset, first in ((transactions, "2015-01-01"), (user_logs, "2016-01-01")):
        tags = {RANGE_START: first, RANGE_END: "2016-07-01"}
        assert _run([asset], tags=tags).success
    for cohort in LABELLED:
        assert _run([labels], partition_key=cohort).success
        assert _run([features], partition_key=cohort).success
    _champion(home, default_resources()["registry"].tracking_uri)
    return {"home": home, "truth": summary.truth_dir / "churn_probability.csv"}


def _materialized(result: dg.ExecuteInProcessResult, key: str) -> dict:
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _score_and_estimate(cohort: str) -> dg.ExecuteInProcessResult:
    result = _run([predictions, performance_estimate], partition_key=cohort)
    assert result.success
    return result


def _query(home: Path, sql: str, *params) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql, list(params)).df()


def test_the_estimate_made_at_scoring_holds_when_the_labels_land(world):
    home = world["home"]
    # 2016-05: scored before any out-of-time backtest of the model exists, nothing to expect.
    first = _score_and_estimate("2016-05-01")
    [check] = first.get_asset_check_evaluations()
    assert check.check_name == "estimated_performance" and check.passed
    assert _materialized(first, "performance_estimate")["verdict"].startswith("n/a")
    # Its labels land: the backtest sets the model's out-of-time level, and holds the estimate.
    assert _run([model_performance], partition_key="2016-05-01").success

    # 2016-06 is scored against that level; its estimate goes to the table.
    second = _score_and_estimate("2016-06-01")
    [check] = second.get_asset_check_evaluations()
    assert check.passed, check.description  # nothing shifted in this world
    estimated = _materialized(second, "performance_estimate")
    assert estimated["verdict"].startswith("pass")
    assert "out-of-time 2016-05" in estimated["expected_level_from"]
    rows = _query(
        home, "SELECT * FROM performance_estimates WHERE cohort_month = ?", "2016-06-01"
    ).set_index("metric")
    assert {"auc", "log_loss", "lift_top_decile", "bucket_a_precision", "churn_rate"} <= set(
        rows.index
    )
    defined = rows.dropna(subset=["estimate"])
    assert (defined["low"] <= defined["estimate"]).all()
    assert (defined["estimate"] <= defined["high"]).all()
    assert rows["confidence"].iloc[0] == pytest.approx(0.995)

    # What the world really meant: the cohort's true churn probabilities.
    truth = pd.read_csv(world["truth"])
    truth = truth[truth["cohort_month"] == "2016-06-01"]
    churn = rows.loc["churn_rate"]
    assert churn["low"] <= truth["churn_probability"].mean() <= churn["high"]

    # Its labels land: the realised AUC is close to the estimate, within its interval.
    backtest = _run([model_performance], partition_key="2016-06-01")
    assert backtest.success
    realised = _materialized(backtest, "model_performance")
    assert realised["realised_auc"] == pytest.approx(realised["champion_auc"])
    assert abs(realised["estimate_error_auc"]) < 0.05
    assert rows.loc["auc", "low"] <= realised["realised_auc"] <= rows.loc["auc", "high"]
    assert realised["calibration_ece"] >= 0 and "reliability" in realised
    verdicts = _query(
        home,
        "SELECT cohort_month, monitor, severity, detail FROM monitor_verdicts "
        "WHERE monitor IN ('estimated_performance', 'realised_vs_estimated_performance', "
        "'calibration') ORDER BY evaluated_at",
    )
    by_month = verdicts.groupby([verdicts["cohort_month"].astype(str), "monitor"]).last()
    assert by_month.loc[("2016-05-01", "estimated_performance"), "severity"] == "n/a"
    assert "before labels" in by_month.loc[("2016-06-01", "estimated_performance"), "detail"]
    assert by_month.loc[("2016-06-01", "realised_vs_estimated_performance"), "severity"] == "pass"
    assert by_month.loc[("2016-06-01", "calibration"), "severity"] == "pass"
