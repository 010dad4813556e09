"""Performance monitoring that acts, and a fair challenger.

The champion is judged against its expected level (out of time) with a tolerance from the
cohort's bootstrap interval and a k-of-n persistence rule; a challenger replaces it only when a
paired bootstrap over the same, neutral users says it is better. Tiny fabricated tables and
LightGBM boosters fitted directly (no FLAML search) keep this fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churn_assets.keys import (
    CALIBRATION_CHECK,
    CHAMPION_PERFORMANCE_CHECK,
    HELD_OUT_TAG,
    RULE_CHECK,
)
from churn_assets.modeling.bootstrap import bootstrap_intervals
from churn_assets.modeling.metrics import classification_metrics
from churn_assets.partitions import register_months
from churn_assets.performance.assets import model_performance
from churn_assets.performance.champion import judge_against_rule
from churn_assets.performance.judging import (
    ExpectedLevel,
    MetricJudgement,
    judge_metrics,
    persistence,
    verdict_of,
    with_decile_ratio,
)
from churn_assets.resources import default_resources, version_facts
from churn_assets.settings import CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets.training import candidate as training_candidate
from churn_assets.training.assets import churn_model
from churn_assets.training.config import TrainingConfig
from churn_assets.training.promotion import (
    champion_saw,
    compare_scores,
    decide_promotion,
)
from churn_assets.training.search import TunedModel
from churn_assets_tests.helpers import register_booster

COHORTS = [date(2016, m, 1) for m in range(1, 8)]
SHIFT = date(2016, 5, 1)  # from this cohort on, churn follows another signal
USERS = 800
FEATURES = ["last_is_auto_renew", "last_is_cancel", "signal", "other"]


def _cohort(cohort: date, rng: np.random.Generator, shifted: bool) -> pd.DataFrame:
    n = USERS
    frame = pd.DataFrame(
        {
            "msno": [f"u{cohort:%Y%m}_{i:04d}" for i in range(n)],
            "cohort_month": cohort,
            "last_is_auto_renew": rng.integers(0, 2, n).astype(float),
            "last_is_cancel": (rng.random(n) < 0.1).astype(float),
            "signal": rng.normal(size=n),
            "other": rng.normal(size=n),
        }
    )
    rule = 1.2 * (1 - frame["last_is_auto_renew"]) + 1.0 * frame["last_is_cancel"]
    # The shift moves most of the churn signal to a column the model learnt to ignore.
    signal = 0.9 * frame["signal"] + 1.5 * frame["other"] if shifted else 1.8 * frame["signal"]
    logit = -1.8 + rule + signal
    frame["is_churn"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def _world(home: Path) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.concat([_cohort(c, rng, c >= SHIFT) for c in COHORTS], ignore_index=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE features AS SELECT * EXCLUDE (is_churn) FROM frame")
        conn.execute("CREATE TABLE labels AS SELECT msno, cohort_month, is_churn FROM frame")
    return frame


def _fit(frame: pd.DataFrame, columns: list[str], seed: int = 0) -> lgb.Booster:
    data = lgb.Dataset(frame[columns].astype(float), frame["is_churn"].to_numpy())
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": seed, "n_jobs": 1}
    return lgb.train(params, data, num_boost_round=40)


def _register(home: Path, booster: lgb.Booster, tags: dict[str, str], metrics: dict) -> str:
    """Log and register a booster as training would, with its validation metrics."""
    return register_booster(
        f"sqlite:///{home / 'mlflow.db'}",
        home / "mlartifacts",
        booster,
        tags,
        validation_metrics=metrics,
    )


def _months(frame: pd.DataFrame, *cohorts: date) -> pd.DataFrame:
    return frame[pd.to_datetime(frame["cohort_month"]).dt.date.isin(cohorts)]


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as instance:
        register_months(instance, COHORTS)
        yield instance


def _backtest(instance: dg.DagsterInstance, cohort: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [model_performance],
        resources=default_resources(),
        partition_key=f"{cohort:%Y-%m-01}",
        instance=instance,
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _meta(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


# -- bootstrap intervals and the persistence rule -------------------------------------------------


def _truth_cohort(rng: np.random.Generator, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    truth = 1 / (1 + np.exp(-(-1.5 + 2.0 * rng.normal(size=n))))
    return (rng.random(n) < truth).astype(int), truth


def test_a_cohort_scored_by_the_truth_passes_and_a_degraded_score_fails():
    rng = np.random.default_rng(7)
    # The expected level: what the true probabilities reach on an earlier cohort.
    y_before, truth_before = _truth_cohort(rng)
    expected = with_decile_ratio(classification_metrics(y_before, truth_before))
    y, truth = _truth_cohort(rng)
    intervals = bootstrap_intervals(y, truth, seed=1)
    point = with_decile_ratio(classification_metrics(y, truth))
    for metric, (low, high) in intervals.items():
        assert low < point[metric] < high, metric
    honest = judge_metrics(point, intervals, _level(expected))
    assert len(honest) == 5 and not any(j.failed for j in honest)

    # Half the truth, half noise: ranks and calibration both worse than expected.
    degraded = 0.5 * truth + 0.5 * rng.random(len(truth))
    bad = judge_metrics(
        with_decile_ratio(classification_metrics(y, degraded)),
        bootstrap_intervals(y, degraded, seed=1),
        _level(expected),
    )
    failed = {j.metric for j in bad if j.failed}
    assert {"auc", "normalized_log_loss"} <= failed
    # Seeded: the same cohort gives the same interval.
    assert bootstrap_intervals(y, truth, seed=1) == intervals


def test_a_higher_churn_rate_alone_fails_raw_log_loss_not_the_normalized_one():
    rng = np.random.default_rng(3)

    def cohort(intercept: float) -> tuple[np.ndarray, np.ndarray]:
        truth = 1 / (1 + np.exp(-(intercept + 1.5 * rng.normal(size=3000))))
        return (rng.random(3000) < truth).astype(int), truth

    y_before, truth_before = cohort(-3.2)  # about 8 % churn
    y, truth = cohort(-2.6)  # about 13 %: more churners, every one scored by the truth
    metrics = ["log_loss", "normalized_log_loss"]
    judged = judge_metrics(
        classification_metrics(y, truth),
        bootstrap_intervals(y, truth, metrics, seed=1, confidence=0.99),
        _level(classification_metrics(y_before, truth_before)),
        metrics,
    )
    assert {j.metric: j.failed for j in judged} == {
        "log_loss": True,
        "normalized_log_loss": False,
    }


def _level(values: dict[str, float], months: tuple[str, ...] = ("2016-02",)) -> ExpectedLevel:
    """An out-of-time expected level of every metric in ``values``, from ``months``."""
    finite = {m: v for m, v in values.items() if isinstance(v, float) and np.isfinite(v)}
    return ExpectedLevel(finite, dict.fromkeys(finite, months))


def _judged(metric: str, failed: bool, beyond_doubt: bool = False) -> MetricJudgement:
    z = 5.0 if beyond_doubt else (2.0 if failed else 0.0)
    return MetricJudgement(metric, 0.7, 0.68, 0.72, 0.8 if failed else 0.7, failed, z, beyond_doubt)


def test_one_dip_is_information_one_beyond_doubt_warns_two_of_the_last_three_are_an_error():
    expected = _level({"auc": 0.8})
    may, june, july = date(2016, 5, 1), date(2016, 6, 1), date(2016, 7, 1)
    dip = [_judged("auc", True), _judged("log_loss", False)]
    certain = [_judged("auc", True, beyond_doubt=True), _judged("log_loss", False)]

    def severity(history, now=dip):
        found = persistence(july, now, history)
        return verdict_of("3", now, expected, found).severity

    assert severity([]) == "pass"
    assert "information" in verdict_of("3", dip, expected, persistence(july, dip, [])).detail
    assert severity([], certain) == "warn"
    assert severity([(may, "auc", False), (june, "auc", False)]) == "pass"
    # Another metric's failure does not add up with this one.
    assert severity([(june, "log_loss", True)]) == "pass"
    # Out of the window of the last three cohorts judged: no longer counts.
    assert severity(
        [(date(2016, 3, 1), "auc", True), (may, "auc", False), (june, "auc", False)]
    ) == ("pass")
    assert severity([(may, "auc", True), (june, "auc", False)]) == "error"
    # A later cohort (a backfill judged after it) is not history for this one.
    assert severity([(date(2016, 8, 1), "auc", True)]) == "pass"
    assert verdict_of(
        "3", [_judged("auc", False)], expected, persistence(july, [], [])
    ).severity == ("pass")
    assert verdict_of("3", [], expected, persistence(july, [], [])).severity == "n/a"


def test_beyond_doubt_is_bonferroni_corrected_over_the_metrics_judged():
    level = _level({"auc": 0.80, "f2": 0.50})
    # A cohort interval of +-0.0258 at 99 %: a standard error of 0.01, times sqrt(2) with a
    # level from one cohort. A shortfall of 0.05 is z = 3.5; of 0.04, z = 2.8.
    intervals = {"auc": (0.7242, 0.7758), "f2": (0.4742, 0.5258)}
    far = judge_metrics({"auc": 0.75, "f2": 0.50}, intervals, level, ["auc", "f2"])
    near = judge_metrics({"auc": 0.76, "f2": 0.50}, intervals, level, ["auc", "f2"])
    assert far[0].failed and far[0].beyond_doubt and far[0].shortfall_z == pytest.approx(3.54, 0.01)
    assert near[0].failed and not near[0].beyond_doubt
    # With one metric only the doubt quantile is lower (3.09, not 3.29): the same shortfall
    # that is within doubt among two metrics is not among one.
    alone = judge_metrics({"auc": 0.7555}, intervals, _level({"auc": 0.80}), ["auc"])
    among_two = judge_metrics({"auc": 0.7555, "f2": 0.50}, intervals, level, ["auc", "f2"])
    assert alone[0].beyond_doubt and not among_two[0].beyond_doubt
    assert not far[1].failed and far[1].shortfall_z == 0.0


# -- the checks in Dagster ------------------------------------------------------------------------


def test_model_performance_says_na_then_warns_then_errors_on_a_persistent_shift(
    churn_env, instance
):
    home = Path(churn_env["CHURN_HOME"])
    frame = _world(home)

    # No champion yet: nothing to judge, which is not a warning.
    result = _backtest(instance, date(2016, 3, 1))
    checks = _checks(result)
    assert checks[CHAMPION_PERFORMANCE_CHECK].passed and checks[RULE_CHECK].passed
    assert checks[CHAMPION_PERFORMANCE_CHECK].description.startswith("n/a")
    assert checks[CALIBRATION_CHECK].passed
    assert checks[CALIBRATION_CHECK].description.startswith("n/a")

    # A champion trained on 2016-01..02 and validated on 2016-03.
    booster = _fit(_months(frame, *COHORTS[:2]), FEATURES)
    validation = _months(frame, COHORTS[2])
    metrics = classification_metrics(
        validation["is_churn"].to_numpy(), booster.predict(validation[FEATURES].astype(float))
    )
    version = _register(
        home,
        booster,
        {"validation_cohort": "2016-03-01", "val_auc": f"{metrics['auc']:.6f}"},
        metrics,
    )
    MlflowClient(f"sqlite:///{home / 'mlflow.db'}").set_registered_model_alias(
        REGISTERED_MODEL_NAME, CHAMPION_ALIAS, version
    )

    # Its first out-of-time cohort: no level yet but the optimistic validation metrics, so n/a.
    checks = _checks(_backtest(instance, date(2016, 4, 1)))
    first = checks[CHAMPION_PERFORMANCE_CHECK]
    assert first.passed, first.description
    assert first.description.startswith("n/a") and "out-of-time" in first.description
    assert checks[RULE_CHECK].passed
    # Its calibration is judged from the first labelled cohort on, with the test's figures.
    calibration = checks[CALIBRATION_CHECK]
    assert calibration.description.startswith(("champion v", "information: champion v"))
    assert _meta(calibration)["champion_version"] == version
    assert _meta(calibration)["calibration_degrees"] > 0

    # The shift: one bad cohort warns (against the out-of-time level of 2016-04)...
    checks = _checks(_backtest(instance, SHIFT))
    warned = checks[CHAMPION_PERFORMANCE_CHECK]
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert "out-of-time" in _meta(warned)["expected_level_from"]
    assert "2016-04" in _meta(warned)["expected_cohorts"]

    # ...and the second in a row is a persistent failure: ERROR, with its evidence.
    result = _backtest(instance, date(2016, 6, 1))
    error = _checks(result)[CHAMPION_PERFORMANCE_CHECK]
    assert not error.passed and error.severity == dg.AssetCheckSeverity.ERROR
    evidence = _meta(error)["failing_metrics"]["auc"]
    assert evidence["failed_cohorts"] == ["2016-05", "2016-06"]
    low, high = evidence["interval"]
    assert low <= evidence["value"] <= high < evidence["expected"]

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        verdicts = conn.execute(
            "SELECT strftime(cohort_month, '%Y-%m'), severity FROM monitor_verdicts "
            "WHERE monitor = 'performance' ORDER BY cohort_month"
        ).fetchall()
        judged = conn.execute(
            "SELECT count(DISTINCT metric) FROM performance_judgements "
            "WHERE cohort_month = '2016-06-01' AND model_version = ?",
            [version],
        ).fetchone()[0]
    assert verdicts == [
        ("2016-03", "n/a"),
        ("2016-04", "pass"),
        ("2016-05", "warn"),
        ("2016-06", "error"),
    ]
    assert judged == 5


def test_below_the_rule_is_an_error_only_beyond_doubt():
    champion = {"auc": 0.80, "model_version": "2"}
    beyond = judge_against_rule(champion, 0.86, None, (-0.11, -0.01))
    luck = judge_against_rule(champion, 0.82, None, (-0.09, 0.05))
    above = judge_against_rule(champion, 0.75, None, (0.01, 0.09))
    assert (beyond.severity, luck.severity, above.severity) == ("error", "pass", "pass")
    assert luck.detail.startswith("information:")
    assert "the rule ranks churners better" in beyond.detail
    assert "[-0.0900, +0.0500]" in luck.detail
    assert judge_against_rule(None, 0.8).severity == "n/a"
    assert judge_against_rule(champion, 0.8, "cannot score: x").severity == "error"


# -- a fair challenger ----------------------------------------------------------------------------


def _held_out_comparison(champion_version: str, cohort: date) -> dict:
    """What compare_scores is told of a comparison on users neither model was tuned on."""
    return {
        "champion_version": champion_version,
        "cohort": cohort,
        "basis": "held-out users",
        "seen_by_challenger": False,
        "seen_by_champion": "",
    }


def test_paired_bootstrap_promotes_a_clearly_better_challenger_never_an_identical_one():
    rng = np.random.default_rng(11)
    y, truth = _truth_cohort(rng, n=1500)
    noisy = np.clip(truth + rng.normal(0, 0.25, len(truth)), 0.001, 0.999)
    known = _held_out_comparison("1", date(2016, 4, 1))
    same = compare_scores(y, noisy, noisy.copy(), **known)
    assert same.intervals["auc"] == (0.0, 0.0)
    assert same.decide("auc", 0.0)[0] is False
    assert same.decide("log_loss", 0.0)[0] is False
    better = compare_scores(y, truth, noisy, **known)
    low, high = better.intervals["auc"]
    assert 0 < low <= better.difference("auc") <= high
    assert better.decide("auc", 0.0)[0] is True
    assert better.decide("log_loss", 0.0)[0] is True
    # A margin is a further gain required beyond the interval's lower bound.
    assert better.decide("auc", high)[0] is False
    # Users the challenger was tuned on tilt the comparison its way: recorded, not promoted.
    tilted = compare_scores(y, truth, noisy, **(known | {"seen_by_challenger": True}))
    assert tilted.decide("auc", 0.0)[0] is False


def test_a_champion_in_question_gives_way_to_a_challenger_at_least_as_good():
    rng = np.random.default_rng(12)
    y, truth = _truth_cohort(rng, n=300)
    champion_scores = np.clip(truth + rng.normal(0, 0.2, len(truth)), 0.001, 0.999)
    slightly = np.clip(champion_scores + rng.normal(0, 0.01, len(truth)), 0.001, 0.999)
    known = _held_out_comparison("3", date(2016, 6, 1))
    even = compare_scores(y, slightly, champion_scores, **known)
    worse = compare_scores(y, champion_scores * 0 + rng.random(len(y)), champion_scores, **known)
    assert not even.decide("auc", 0.0)[0]  # not better beyond doubt on 300 users
    champion = SimpleNamespace(version="3", tags={"cleared_hurdle": "true"})

    def promoted(comparison, *in_question, hurdle=True, incomplete=False, auto=True) -> bool:
        config = TrainingConfig(champion_in_question=list(in_question), auto_promote=auto)
        return decide_promotion(config, champion, comparison, hurdle, incomplete).promote

    assert 0 <= even.difference("auc") < 0.01  # as good, or a hair better, on these users
    # A healthy champion stays unless beaten beyond doubt; one in question gives way to a
    # challenger at least as good (by the point estimate), never to a worse one.
    assert not promoted(even)
    assert promoted(even, "staleness")
    assert promoted(even, "performance", "drift")
    assert not promoted(worse, "staleness")
    assert not promoted(even, "provisional")  # handled by its own rule, not this one
    assert not promoted(even, "staleness", hurdle=False)
    assert not promoted(even, "staleness", incomplete=True)
    assert not promoted(even, "staleness", auto=False)
    tilted = compare_scores(y, slightly, champion_scores, **(known | {"seen_by_challenger": True}))
    assert not promoted(tilted, "staleness")
    reason = decide_promotion(
        TrainingConfig(champion_in_question=["staleness"]), champion, even, True, False
    ).reason
    assert "in question (staleness)" in reason and "at least as good" in reason


def test_who_has_seen_the_comparison_users():
    april = date(2016, 4, 1)
    before = {"validation_cohort": "2016-03-01", "training_cohorts": '["2016-02-01"]'}
    assert champion_saw(before, april, 0.5, True) == ""
    same_users = {"validation_cohort": "2016-04-01", HELD_OUT_TAG: "0.5"}
    assert champion_saw(same_users, april, 0.5, True) == ""
    assert "tuned on" in champion_saw({"validation_cohort": "2016-04-01"}, april, 0.5, True)
    assert "trained on" in champion_saw({"validation_cohort": "2016-05-01"}, april, 0.5, True)


def test_churn_model_promotes_a_better_challenger_judged_on_held_out_users(churn_env, monkeypatch):
    home = Path(churn_env["CHURN_HOME"])
    frame = _world(home)
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    # A weak champion: it learnt from the column that carries no signal before the shift.
    weak = _fit(_months(frame, *COHORTS[:2]), ["other"])
    champion = _register(
        home,
        weak,
        {"validation_cohort": "2016-03-01", "training_cohorts": '["2016-01-01", "2016-02-01"]'},
        {},
    )
    client.set_registered_model_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS, champion)
    strong = _fit(_months(frame, *COHORTS[:3]), FEATURES)

    # The search is not the point here: the candidate is the strong booster. (One identical to
    # the champion gains exactly nothing and is not promoted: see the test above.)
    monkeypatch.setattr(
        training_candidate,
        "fit_lightgbm_automl",
        lambda *a, **k: TunedModel(strong, {}, SimpleNamespace(best_loss=0.5), False),
    )
    result = dg.materialize(
        [churn_model],
        resources=default_resources(),
        run_config={
            "ops": {"churn_model": {"config": {"as_of_month": "2016-06", "hurdle_margin": -1.0}}}
        },
    )
    [event] = result.get_asset_materialization_events()
    better = {k: v.value for k, v in event.materialization.metadata.items()}
    assert better["registered"] is True and better["promoted_to_champion"] is True
    # Compared on the half of 2016-04 held out of the search: neither model saw those users.
    assert better["comparison_cohort"] == "2016-04" and better["comparison_neutral"] is True
    assert better["comparison_users"] == better["held_out_rows"] > 0
    assert better["comparison_users"] + better["validation_rows"] == USERS
    assert 0 < better["auc_diff_low"] <= better["auc_diff"] <= better["auc_diff_high"]
    tags = version_facts(
        client, client.get_model_version(REGISTERED_MODEL_NAME, better["model_version"])
    )
    assert tags["compared_with_champion"] == champion and tags["beats_champion"] == "true"
    assert tags["comparison_cohort"] == "2016-04-01" and tags[HELD_OUT_TAG] == "0.5"
    assert float(tags["auc_diff_interval"].strip("[]").split(",")[0]) > 0
    assert "lower bound" in tags["comparison"]
    now = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS)
    assert str(now.version) == better["model_version"]


def test_a_provisional_champion_gives_way_to_the_first_candidate_that_clears_the_hurdle(
    churn_env, monkeypatch
):
    """An identical candidate never beats a champion; it replaces one that is provisional."""
    home = Path(churn_env["CHURN_HOME"])
    frame = _world(home)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        # Every cohort's windows fully loaded, as the features asset would have recorded.
        conn.execute(
            "CREATE TABLE cohort_coverage AS SELECT unnest(?::DATE[]) AS cohort_month, "
            "true AS complete",
            [[f"{c}" for c in COHORTS]],
        )
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    booster = _fit(_months(frame, *COHORTS[:3]), FEATURES)
    monkeypatch.setattr(
        training_candidate,
        "fit_lightgbm_automl",
        lambda *a, **k: TunedModel(booster, {}, SimpleNamespace(best_loss=0.5), False),
    )

    def train(provisional: str) -> dict:
        champion = _register(
            home,
            booster,
            {
                "validation_cohort": "2016-03-01",
                "training_cohorts": '["2016-01-01", "2016-02-01"]',
                "trained_on_incomplete_cohorts": provisional,
            },
            {},
        )
        client.set_registered_model_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS, champion)
        result = dg.materialize(
            [churn_model],
            resources=default_resources(),
            run_config={
                "ops": {
                    "churn_model": {"config": {"as_of_month": "2016-06", "hurdle_margin": -1.0}}
                }
            },
        )
        [event] = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.materialization.metadata.items()}

    assert train("false")["promoted_to_champion"] is False
    replaced = train("true")
    assert replaced["promoted_to_champion"] is True
    tags = client.get_model_version(REGISTERED_MODEL_NAME, replaced["model_version"]).tags
    assert tags["beats_champion"] == "false" and "provisional" in tags["comparison"]
