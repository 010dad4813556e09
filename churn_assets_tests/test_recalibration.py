"""Recalibration: training fits a map from raw score to probability on its out-of-time
validation cohort, and every consumer of a version's probability applies the same one.

A small synthetic warehouse (features and labels written straight into DuckDB); a booster
trained with ``class_weight="balanced"`` announces about twice the churn it sees, which is what
calibration has to undo.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churn_assets.keys import CALIBRATION_TAG
from churn_assets.modeling.calibration import Calibration, ChurnModel, load_churn_model
from churn_assets.modeling.frame import LABEL
from churn_assets.performance.estimates import performance_estimate
from churn_assets.resources import default_resources, version_facts
from churn_assets.scoring.assets import predictions
from churn_assets.settings import CHAMPION_ALIAS
from churn_assets.training.assets import churn_model
from churn_assets.training.calibration import choose_calibration, log_loss
from churn_assets.training.config import TrainingConfig
from churn_assets_tests.helpers import materialize, register_booster

COHORTS = [date(2016, m, 1) for m in range(1, 6)]
USERS_PER_COHORT = 800
# Labels of 2016-04 are known from 2016-06 on: train on 01..03, validate on 04; 05 is labelled
# too, later than anything training saw: the held-out cohort.
AS_OF = "2016-06"
HELD_OUT = "2016-05-01"


def _cohort(cohort: date, rng: np.random.Generator) -> pd.DataFrame:
    n = USERS_PER_COHORT
    frame = pd.DataFrame(
        {
            "msno": [f"u{cohort:%Y%m}_{i:04d}" for i in range(n)],
            "cohort_month": cohort,
            "last_is_auto_renew": rng.integers(0, 2, n).astype(float),
            "last_is_cancel": (rng.random(n) < 0.1).astype(float),
            "plays_30d": rng.gamma(2.0, 50.0, n),
            "days_since_last_listen": rng.integers(0, 60, n).astype(float),
        }
    )
    logit = (
        -2.2
        + 1.8 * (1 - frame["last_is_auto_renew"])
        + 1.5 * frame["last_is_cancel"]
        + 1.5 * ((frame["days_since_last_listen"] > 30) & (frame["plays_30d"] < 80))
    )
    frame[LABEL] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture
def home(churn_env) -> Path:
    home = Path(churn_env["CHURN_HOME"])
    rng = np.random.default_rng(7)
    frame = pd.concat([_cohort(c, rng) for c in COHORTS], ignore_index=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute(f"CREATE TABLE features AS SELECT * EXCLUDE ({LABEL}) FROM frame")
        conn.execute(f"CREATE TABLE labels AS SELECT msno, cohort_month, {LABEL} FROM frame")
    return home


def _train(**config) -> dict:
    run_config = {
        "ops": {
            "churn_model": {
                "config": {"as_of_month": AS_OF, "time_budget_s": 1.0, "hurdle_margin": -1.0}
                | config
            }
        }
    }
    result = dg.materialize([churn_model], resources=default_resources(), run_config=run_config)
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _labelled(home: Path, cohort: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT * FROM features JOIN labels USING (msno, cohort_month) "
            "WHERE cohort_month = ? ORDER BY msno",
            [cohort],
        ).df()


def _stored_scores(home: Path, cohort: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT msno, churn_probability FROM predictions WHERE cohort_month = ? ORDER BY msno",
            [cohort],
        ).df()


def _score(cohort: str, assets: list | None = None) -> dg.ExecuteInProcessResult:
    result = materialize(
        assets or [predictions], resources=default_resources(), partition_key=cohort
    )
    assert result.success
    return result


def test_a_miscalibrated_booster_is_recalibrated_and_scoring_applies_it(home: Path) -> None:
    trained = _train(class_weight="balanced")
    assert trained["calibration"] in ("platt", "isotonic"), trained["calibration_reason"]
    assert trained["calibration_log_loss_after"] < trained["calibration_log_loss_before"]

    registry = default_resources()["registry"]
    version = registry.champion()
    model = load_churn_model(registry, version)
    assert Calibration.from_tag(version.tags[CALIBRATION_TAG]) == model.calibration
    # On a later cohort than any it was fitted on, the calibrated scores lose less than the raw.
    held_out = _labelled(home, HELD_OUT)
    y = held_out[LABEL].to_numpy()
    raw = ChurnModel(model.version, model.booster).probability(held_out)
    calibrated = model.probability(held_out)
    assert log_loss(y, calibrated) < log_loss(y, raw)
    # The balanced booster announces about twice the churn; calibrated, it announces what is seen.
    assert abs(calibrated.mean() - y.mean()) < abs(raw.mean() - y.mean())

    # What was chosen, and its log loss before and after, is in the training run.
    run = MlflowClient(registry.tracking_uri).get_run(version.run_id)
    assert run.data.params["calibration"] == trained["calibration"]
    # Metadata is rounded for reading (three significant digits); the run keeps full precision.
    assert run.data.metrics["calibration_log_loss_after"] == pytest.approx(
        trained["calibration_log_loss_after"], rel=2e-3
    )
    assert "calibration_log_loss_before" in run.data.metrics

    # Batch scoring stores the calibrated probability, not the booster's raw score.
    _score(HELD_OUT)
    stored = _stored_scores(home, HELD_OUT)
    assert stored["msno"].tolist() == held_out["msno"].tolist()
    np.testing.assert_allclose(stored["churn_probability"], calibrated, rtol=0, atol=1e-12)
    assert np.abs(stored["churn_probability"] - raw).max() > 0.05


def test_raw_scores_are_kept_when_calibration_is_not_wanted(home: Path) -> None:
    trained = _train(calibration="none")
    assert trained["calibration"] == "none"
    assert trained["calibration_log_loss_after"] == trained["calibration_log_loss_before"]
    registry = default_resources()["registry"]
    model = load_churn_model(registry, registry.champion())
    assert model.calibration == Calibration()
    _score(HELD_OUT)
    held_out = _labelled(home, HELD_OUT)
    np.testing.assert_allclose(
        _stored_scores(home, HELD_OUT)["churn_probability"],
        model.booster.predict(held_out[model.features].astype(float)),
        rtol=0,
        atol=1e-12,
    )


def _scores(seed: int, n: int, distort) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-rng.normal(-1.5, 1.2, n)))
    return (rng.random(n) < truth).astype(float), distort(truth)


def test_auto_keeps_raw_scores_unless_a_method_beats_them_and_fixes_miscalibrated_ones() -> None:
    """Scores that are the churn probability mostly stay as they are (a method is kept only
    where it beats them out of fold, or beyond noise when asked); scores twice too high do not."""
    config = TrainingConfig()
    choices = [choose_calibration(config, *_scores(seed, 1500, lambda p: p)) for seed in range(4)]
    for choice in choices:
        beaten = min(choice.cross_validated.values()) < choice.log_loss_before
        assert (choice.method != "none") == beaten, choice.reason
    assert any(choice.method == "none" for choice in choices)
    strict = TrainingConfig(calibration_confidence=0.95)
    for seed in range(4):
        y, calibrated = _scores(seed, 1500, lambda p: p)
        kept = choose_calibration(strict, y, calibrated)
        assert kept.method == "none", kept.reason
        np.testing.assert_array_equal(kept.calibration.apply(calibrated), calibrated)

    y, inflated = _scores(2, 1500, lambda p: np.minimum(2 * p, 0.99))
    for confidence in (0.5, 0.95):
        fixed = choose_calibration(TrainingConfig(calibration_confidence=confidence), y, inflated)
        assert fixed.method != "none" and fixed.log_loss_after < fixed.log_loss_before
    fresh_y, fresh = _scores(3, 5000, lambda p: np.minimum(2 * p, 0.99))
    assert log_loss(fresh_y, fixed.calibration.apply(fresh)) < log_loss(fresh_y, fresh)


def test_isotonic_is_tried_only_with_enough_churners() -> None:
    y, inflated = _scores(4, 1500, lambda p: np.minimum(2 * p, 0.99))
    churners = int(y.sum())
    few = choose_calibration(TrainingConfig(isotonic_min_positives=churners + 1), y, inflated)
    assert set(few.cross_validated) == {"platt"}
    enough = choose_calibration(TrainingConfig(isotonic_min_positives=churners), y, inflated)
    assert set(enough.cross_validated) == {"platt", "isotonic"}
    # A tag round-trips to the same map.
    again = Calibration.from_tag(enough.calibration.to_tag())
    np.testing.assert_array_equal(again.apply(inflated), enough.calibration.apply(inflated))


def _set_champion(version: str) -> None:
    registry = default_resources()["registry"]
    registry.set_alias(CHAMPION_ALIAS, version)


def _estimate_error(home: Path, cohort: str, version: str) -> float:
    """|estimated - realised| churn rate of ``version`` on ``cohort``, estimated from its scores
    before labels and read against the labels. The churn rate (the mean announced probability)
    is the estimate that calibration moves most and cohort noise least, unlike AUC on a few
    hundred churners."""
    _score(cohort, [predictions, performance_estimate])
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        [(estimated,)] = conn.execute(
            "SELECT estimate FROM performance_estimates "
            "WHERE cohort_month = ? AND model_version = ? AND metric = 'churn_rate'",
            [cohort, version],
        ).fetchall()
    realised = _labelled(home, cohort)[LABEL].mean()
    return abs(estimated - realised)


def test_the_estimate_before_labels_is_closer_with_calibration(home: Path) -> None:
    """The same booster, served with its calibration and without: the AUC estimated from its
    scores on a later cohort is nearer the AUC its labels realise when calibrated."""
    trained = _train(class_weight="balanced")
    assert trained["calibration"] != "none"
    registry = default_resources()["registry"]
    calibrated = registry.champion()
    raw_tags = {k: v for k, v in calibrated.tags.items() if k != CALIBRATION_TAG}
    raw = register_booster(
        registry.tracking_uri,
        home / "mlartifacts",
        registry.load_model(calibrated.version),
        raw_tags | {CALIBRATION_TAG: Calibration().to_tag()},
    )
    with_calibration = _estimate_error(home, HELD_OUT, calibrated.version)
    _set_champion(raw)
    without = _estimate_error(home, HELD_OUT, raw)
    assert with_calibration < without


def test_a_miscalibrated_champion_the_retrain_keeps_is_recalibrated_not_replaced(
    home: Path,
) -> None:
    # Champion v1 announces about twice the churn it sees: raw scores of a balanced booster.
    _train(class_weight="balanced", calibration="none")
    registry = default_resources()["registry"]
    first = registry.champion()
    assert load_churn_model(registry, first).calibration.method == "none"

    # The calibration check failed; the retrained candidate cannot clear its hurdle, so the
    # champion keeps its place, and its booster gets a new map instead.
    trained = _train(hurdle_margin=1.0, champion_in_question=["calibration"])
    assert trained["registered"] is False and trained["promoted_to_champion"] is False
    assert trained["champion_recalibrated"] is True, trained["recalibration"]
    champion = registry.champion()
    assert str(champion.version) == trained["recalibrated_version"] != str(first.version)
    assert champion.tags["recalibrated_from"] == str(first.version)
    # Everything it says of itself is in its run's details, as for any registered version.
    facts = version_facts(registry.client, champion)
    assert facts["recalibrated_from"] == str(first.version)
    assert facts["validation_cohort"] == "2016-04-01" and "training_cohorts" in facts
    assert "better beyond doubt" in trained["recalibration"]

    old, new = load_churn_model(registry, first), load_churn_model(registry, champion)
    assert new.calibration.method in ("platt", "isotonic")
    held_out = _labelled(home, HELD_OUT)
    y = held_out[LABEL].to_numpy()
    # The same booster (ranks the same), a map that announces what is seen on a later cohort.
    np.testing.assert_allclose(
        ChurnModel("raw", new.booster).probability(held_out),
        ChurnModel("raw", old.booster).probability(held_out),
        rtol=0,
        atol=1e-12,
    )
    assert log_loss(y, new.probability(held_out)) < log_loss(y, old.probability(held_out))
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        action, reason = conn.execute(
            "SELECT action, reason FROM model_promotions WHERE model_version = ?",
            [str(champion.version)],
        ).fetchone()
    assert action == "auto_promote" and reason.startswith(f"recalibrates champion v{first.version}")

    # Scoring goes through the recalibrated version's map.
    _score(HELD_OUT)
    np.testing.assert_allclose(
        _stored_scores(home, HELD_OUT)["churn_probability"],
        new.probability(held_out),
        rtol=0,
        atol=1e-12,
    )

    # Calibrated now: the same retrain finds nothing better beyond doubt, and nothing changes.
    again = _train(hurdle_margin=1.0, champion_in_question=["calibration"])
    assert "champion_recalibrated" not in again, again.get("recalibration")
    assert registry.champion().version == champion.version
