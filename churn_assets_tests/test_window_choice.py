"""Recovery after a concept shift: after a persistent performance failure the retrain chooses,
out of time, between the full window, the newest cohorts only and recency weights.

A fabricated labelled world whose churn function changes in the middle of the training window;
the search is replaced by one fixed configuration fitted on the full window, so the choice, not
FLAML's budget, is what is tested.
"""

from __future__ import annotations

import json
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

from churn_assets.modeling.bootstrap import paired_differences
from churn_assets.modeling.frame import predict_probability
from churn_assets.resources import default_resources
from churn_assets.settings import REGISTERED_MODEL_NAME
from churn_assets.training import candidate as training_candidate
from churn_assets.training.assets import churn_model
from churn_assets.training.search import TunedModel, fit_lightgbm_automl
from churn_assets.training.split import split_by_time
from churn_assets.training.window_choice import (
    FULL,
    WindowCandidate,
    pick_window,
    recency_weights,
    recent_split,
    refit,
)
from churn_assets_tests.helpers import register_booster

COHORTS = [date(2016, m, 1) for m in range(1, 9)]
# Labels of 2016-08 are known from 2016-10 on: the window is 03..08, validated on 08, and the
# churn function changes at 05, in the middle of the training cohorts 03..07.
SHIFT = date(2016, 5, 1)
AS_OF = "2016-10"
USERS = 800
FEATURES = ["last_is_auto_renew", "last_is_cancel", "signal", "other"]
CONFIG = {"n_estimators": 40, "num_leaves": 7, "learning_rate": 0.1, "min_child_samples": 20}


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
    # The shift turns the signal around and brings in a column that carried nothing before.
    signal = -1.8 * frame["signal"] + 1.2 * frame["other"] if shifted else 1.8 * frame["signal"]
    logit = -1.8 + rule + signal
    frame["is_churn"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture
def shifted_world(churn_env, monkeypatch) -> Path:
    """The world in DuckDB, a champion of the old relationship, and a fixed search."""
    home = Path(churn_env["CHURN_HOME"])
    rng = np.random.default_rng(8)
    frame = pd.concat([_cohort(c, rng, c >= SHIFT) for c in COHORTS], ignore_index=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE features AS SELECT * EXCLUDE (is_churn) FROM frame")
        conn.execute("CREATE TABLE labels AS SELECT msno, cohort_month, is_churn FROM frame")
    old = frame[pd.to_datetime(frame["cohort_month"]).dt.date < date(2016, 3, 1)]
    _register_champion(home, _fit(old))
    monkeypatch.setattr(
        training_candidate,
        "fit_lightgbm_automl",
        lambda split, *a, **k: TunedModel(
            refit(CONFIG, split, "none"), CONFIG, SimpleNamespace(best_loss=0.5), False
        ),
    )
    return home


def _fit(frame: pd.DataFrame) -> lgb.Booster:
    data = lgb.Dataset(frame[FEATURES].astype(float), frame["is_churn"].to_numpy())
    params = {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 0, "n_jobs": 1}
    return lgb.train(params, data, num_boost_round=40)


def _register_champion(home: Path, booster: lgb.Booster) -> None:
    tags = {
        "validation_cohort": "2016-03-01",
        "training_cohorts": '["2016-01-01", "2016-02-01"]',
    }
    register_booster(
        f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts", booster, tags, champion=True
    )


def _train(home: Path, *in_question: str) -> tuple[dict, MlflowClient]:
    config = {
        "as_of_month": AS_OF,
        "hurdle_margin": -1.0,
        "champion_in_question": list(in_question),
    }
    result = dg.materialize(
        [churn_model],
        resources=default_resources(),
        run_config={"ops": {"churn_model": {"config": config}}},
    )
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    return metadata, MlflowClient(f"sqlite:///{home / 'mlflow.db'}")


def test_after_a_performance_failure_a_recent_window_wins_over_the_mixed_full_one(shifted_world):
    meta, client = _train(shifted_world, "performance")
    assert meta["window_choice"] in ("recent_3", "recency_weighted"), meta["window_choice_reason"]
    assert "better beyond doubt" in meta["window_choice_reason"]
    table = meta["window_candidates"]
    assert all(name in table for name in ("full", "recent_3", "recency_weighted"))

    run = client.get_run(meta["mlflow_run_id"])
    assert run.data.params["window_choice"] == meta["window_choice"]
    candidates = json.loads(run.data.params["window_candidates"])
    assert set(candidates) == {"full", "recent_3", "recency_weighted"}
    # The chosen window ranks the shifted churners better than the full window on the same users.
    chosen_auc = candidates[meta["window_choice"]]["val_auc"]
    assert chosen_auc > run.data.metrics["window_full_val_auc"]
    # The metadata is rounded for reading (three significant digits).
    assert meta["val_auc"] == pytest.approx(chosen_auc, abs=5e-4)
    assert "window_choice_reason" in run.data.tags

    # The version names the cohorts it actually learnt from: drift references read them.
    chosen = candidates[meta["window_choice"]]["training_cohorts"]
    if meta["window_choice"] == "recent_3":
        assert chosen == ["2016-05", "2016-06", "2016-07"]
    assert meta["training_cohorts"] == ", ".join(chosen)
    tags = client.get_model_version(REGISTERED_MODEL_NAME, meta["model_version"]).tags
    assert json.loads(tags["training_cohorts"]) == [f"{c}-01" for c in chosen]
    assert tags["window_choice"] == meta["window_choice"]


def test_without_a_performance_failure_the_full_window_is_used_and_nothing_is_chosen(
    shifted_world, monkeypatch
):
    def never(*args, **kwargs):
        raise AssertionError("the window choice ran without a performance failure")

    monkeypatch.setattr(training_candidate, "choose_window", never)
    meta, client = _train(shifted_world, "drift")
    assert meta["registered"] is True
    assert meta["training_cohorts"] == "2016-03, 2016-04, 2016-05, 2016-06, 2016-07"
    assert not any(key.startswith("window_") for key in meta)
    run = client.get_run(meta["mlflow_run_id"])
    assert "window_choice" not in run.data.params and "window_choice" not in run.data.tags
    tags = client.get_model_version(REGISTERED_MODEL_NAME, meta["model_version"]).tags
    assert len(json.loads(tags["training_cohorts"])) == 5 and "window_choice" not in tags


# -- the weights, the recent window and the tie rule ---------------------------------------------


def test_recency_weights_halve_every_half_life_from_the_newest_cohort():
    months = pd.Series([date(2016, m, 1) for m in (7, 6, 5, 4, 3, 7)])
    weights = recency_weights(months, 2.0)
    assert weights == pytest.approx([1.0, 2**-0.5, 0.5, 2**-1.5, 0.25, 1.0])
    # A gap between cohorts (one left out, incomplete) still counts as time passed.
    assert recency_weights(pd.Series([date(2016, 7, 1), date(2016, 3, 1)]), 2.0)[1] == 0.25


def test_the_recent_window_keeps_the_newest_training_cohorts_and_the_validation():
    rng = np.random.default_rng(1)
    frame = pd.concat([_cohort(c, rng, False) for c in COHORTS[:6]], ignore_index=True)
    split = split_by_time(frame, FEATURES, held_out_share=0.5)
    recent = recent_split(split, 3)
    assert recent is not None
    assert recent.training_cohorts == [date(2016, m, 1) for m in (3, 4, 5)]
    assert set(pd.to_datetime(recent.train["cohort_month"]).dt.date) == set(recent.training_cohorts)
    assert recent.validation is split.validation and recent.held_out is split.held_out
    assert recent_split(split, 5) is None, "as many cohorts as the window: nothing else to try"


def _loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _window(name: str, y: np.ndarray, p: np.ndarray, full: np.ndarray | None) -> WindowCandidate:
    """A window known only by its validation log loss and its paired interval against full."""
    difference = (
        paired_differences(y, p, full, ("log_loss",), seed=0)["log_loss"]
        if full is not None
        else (float("nan"), float("nan"))
    )
    # Neither a split nor a booster: the rule reads only the figures.
    return WindowCandidate(name, None, None, {"log_loss": _loss(y, p)}, difference=difference)


def test_the_full_window_stays_unless_an_alternative_is_better_beyond_doubt():
    rng = np.random.default_rng(5)
    truth = 1 / (1 + np.exp(-(-1.5 + 2.0 * rng.normal(size=1500))))
    y = (rng.random(len(truth)) < truth).astype(float)

    def as_good() -> np.ndarray:
        return np.clip(truth + rng.normal(0, 0.2, len(truth)), 0.01, 0.99)

    noisy = as_good()
    full = _window(FULL, y, noisy, None)
    chosen, reason = pick_window([full, _window("same", y, noisy.copy(), noisy)], "log_loss")
    assert chosen is full and "the full window stays" in reason, reason
    # Windows as good as the full one: the best of them wins on the point estimate by luck, and
    # its interval, reaching both sides of zero, keeps the default.
    twins = [_window(f"twin{k}", y, as_good(), noisy) for k in range(4)]
    assert min(t.metrics["log_loss"] for t in twins) < full.metrics["log_loss"]
    chosen, reason = pick_window([full, *twins], "log_loss")
    assert chosen is full and "the full window stays" in reason, reason
    # The truth is better beyond doubt: it is chosen, even beside a worse alternative.
    worse = _window("worse", y, np.clip(noisy + 0.1, 0.01, 0.99), noisy)
    chosen, reason = pick_window([full, worse, _window("truth", y, truth, noisy)], "log_loss")
    assert chosen.name == "truth" and "better beyond doubt" in reason
    assert pick_window([full], "log_loss")[0] is full


def test_a_refit_of_the_found_configuration_is_the_search_s_own_fit():
    """What makes the windows comparable: refitted on the full window, the configuration gives
    the search's own booster, so the alternatives differ from it only by what they learn from."""
    rng = np.random.default_rng(2)
    frame = pd.concat([_cohort(c, rng, c >= SHIFT) for c in COHORTS[2:]], ignore_index=True)
    split = split_by_time(frame, FEATURES, held_out_share=0.5)
    tuned = fit_lightgbm_automl(split, 1.0, 42)
    again = refit(tuned.best_config, split, "none")
    assert np.array_equal(
        predict_probability(again, split.validation),
        predict_probability(tuned.booster, split.validation),
    )
