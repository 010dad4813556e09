"""Training, hurdle, champion/challenger, backtests, schema change and retention.

A small synthetic warehouse (features and labels written straight into DuckDB) keeps these tests
independent of the simulator and fast; every step runs through Dagster entry points.
"""

from __future__ import annotations

import itertools
import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churn_assets import cli
from churn_assets.partitions import register_months
from churn_assets.performance.assets import model_performance
from churn_assets.resources import (
    ModelRegistryResource,
    ModelUnavailableError,
    default_resources,
    version_facts,
)
from churn_assets.scoring.assets import predictions
from churn_assets.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from churn_assets.training import candidate as training_candidate
from churn_assets.training import lifecycle
from churn_assets.training import registration as training_registration
from churn_assets.training.assets import churn_model
from churn_assets.training.search import TunedModel
from churn_assets_tests.helpers import materialize

COHORTS = [date(2016, m, 1) for m in range(1, 6)]
USERS_PER_COHORT = 300
# Labels of 2016-04 are known from 2016-06 on: train on 01..03, validate on 04.
AS_OF = "2016-06"


def _synthetic_cohort(cohort: date, rng: np.random.Generator) -> pd.DataFrame:
    n = USERS_PER_COHORT
    frame = pd.DataFrame(
        {
            "msno": [f"u{cohort:%Y%m}_{i:04d}" for i in range(n)],
            "cohort_month": cohort,
            "last_is_auto_renew": rng.integers(0, 2, n).astype(float),
            "last_is_cancel": (rng.random(n) < 0.1).astype(float),
            "plays_30d": rng.gamma(2.0, 50.0, n),
            "days_since_last_listen": rng.integers(0, 60, n).astype(float),
            "plays_7d": rng.gamma(2.0, 10.0, n),
            "noise": rng.normal(size=n),
        }
    )
    logit = (
        -2.0
        + 1.8 * (1 - frame["last_is_auto_renew"])
        + 1.5 * frame["last_is_cancel"]
        + 2.0 * ((frame["days_since_last_listen"] > 30) & (frame["plays_30d"] < 80))
        - 0.01 * frame["plays_7d"]
    )
    frame["is_churn"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture
def lifecycle_home(churn_env) -> Path:
    home = Path(churn_env["CHURN_HOME"])
    rng = np.random.default_rng(5)
    frame = pd.concat([_synthetic_cohort(c, rng) for c in COHORTS], ignore_index=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.register("frame", frame)
        conn.execute("CREATE TABLE features AS SELECT * EXCLUDE (is_churn) FROM frame")
        conn.execute("CREATE TABLE labels AS SELECT msno, cohort_month, is_churn FROM frame")
    return home


def _train(*, raise_on_error: bool = True, **config) -> dg.ExecuteInProcessResult:
    run_config = {
        "ops": {
            "churn_model": {
                "config": {"as_of_month": AS_OF, "time_budget_s": 1.0, "hurdle_margin": -1.0}
                | config
            }
        }
    }
    return dg.materialize(
        [churn_model],
        resources=default_resources(),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def _backtest(partition: str) -> dg.ExecuteInProcessResult:
    """model_performance of one month, in an instance that knows the month."""
    with dg.DagsterInstance.ephemeral() as instance:
        register_months(instance, [partition])
        return dg.materialize(
            [model_performance],
            resources=default_resources(),
            partition_key=partition,
            instance=instance,
        )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _client(home: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{home / 'mlflow.db'}")


def _alias(home: Path, alias: str) -> str:
    return str(_client(home).get_model_version_by_alias(REGISTERED_MODEL_NAME, alias).version)


def _lifecycle_job(name: str, config: dict) -> dg.ExecuteInProcessResult:
    from churn_assets.definitions import build_definitions

    job = build_definitions(default_resources()).resolve_job_def(name)
    op = {"promotion_job": "change_champion_op", "retention_job": "delete_old_versions_op"}[name]
    with dg.DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(
            run_config={"ops": {op: {"config": config}}}, instance=instance, raise_on_error=False
        )


def _cli_says(capsys: pytest.CaptureFixture) -> str:
    """What the command itself printed to stderr (Dagster's run log goes there too)."""
    err = capsys.readouterr().err
    return "\n".join(line for line in err.splitlines() if line.startswith("churn-assets"))


def _promotions(home: Path) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT model_version, previous_version, action FROM model_promotions "
            "ORDER BY changed_at"
        ).fetchall()


def test_training_registers_first_champion_warm_starts_and_backtests(lifecycle_home):
    # Budgets with room for a trial on a loaded machine: the search history is checked below.
    result = _train(time_budget_s=2.0)
    assert result.success
    meta = _metadata(result)
    assert meta["registered"] is True and meta["model_version"] == "1"
    assert meta["validation_cohort"] == "2016-04"
    assert meta["training_cohorts"] == "2016-01, 2016-02, 2016-03"
    assert meta["search_trials"] >= 1 and meta["warm_started"] is False
    assert meta["search_budget_s"] == 2.0
    assert 0.5 < meta["val_auc"] <= 1.0
    assert 0.5 <= meta["baseline_rule_auc"] < 1.0
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == _alias(lifecycle_home, CHALLENGER_ALIAS) == "1"
    client = _client(lifecycle_home)
    version = client.get_model_version(REGISTERED_MODEL_NAME, "1")
    run = client.get_run(version.run_id)
    for key in ("val_auc", "baseline_rule_auc", "baseline_logistic_regression_auc"):
        assert key in run.data.metrics
    # The search minimises log loss; its best-so-far curve never goes up.
    history = client.get_metric_history(run.info.run_id, "search_best_val_log_loss")
    best = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert best and all(later <= earlier for earlier, later in itertools.pairwise(best))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"flaml_search_history.csv", "feature_importance_gain.json"} <= artifacts
    # Every fact of the version in its run's version_details.json; the tags keep what one reads.
    facts = version_facts(client, version)
    assert json.loads(facts["best_config"]) and "best_config" not in version.tags
    assert _promotions(lifecycle_home) == [("1", None, "initial")]

    # A retrain starts from the champion's best configuration.
    again = _train(auto_promote=False, time_budget_s=2.0)
    meta = _metadata(again)
    assert meta["warm_started"] is True and meta["model_version"] == "2"
    assert meta["search_budget_s"] == 1.0, "a warm retrain searches half the budget"
    assert _alias(lifecycle_home, CHALLENGER_ALIAS) == "2"
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "1", "manual mode: no automatic promotion"

    # The monthly backtest scores both versions on a newer labelled cohort.
    result = _backtest("2016-05-01")
    assert result.success
    meta = _metadata(result)
    assert meta["versions_evaluated"] == 2 and meta["champion_version"] == "1"
    assert "v1 AUC" in meta["auc_history"] and "2016-05" in meta["auc_history"]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["champion_beats_rule"].passed
    # Its first out-of-time cohort: no out-of-time level yet, and the optimistic validation
    # metrics are no level, so there is nothing to judge it against.
    first = checks["champion_performance"]
    assert first.passed and first.description.startswith("n/a"), first.description
    assert "out-of-time" in first.description
    with duckdb.connect(str(lifecycle_home / "warehouse.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            "SELECT model_version, auc, log_loss, f2, ks, lift_top_decile, brier, lift_top_1pct, "
            "churn_rate_top_decile, bucket_a_recall, is_champion, out_of_time "
            "FROM model_performance ORDER BY model_version"
        ).fetchall()
        verdicts = conn.execute(
            "SELECT cohort_month, severity FROM monitor_verdicts WHERE monitor = 'performance'"
        ).fetchall()
    assert [r[0] for r in rows] == ["1", "2"]
    assert all(0.5 < r[1] <= 1 and r[-1] is True for r in rows)
    assert [r[-2] for r in rows] == [True, False]
    # How far a 300-user cohort strays from validation is noise here, not the point: no error.
    [(cohort, severity)] = verdicts
    assert cohort == date(2016, 5, 1) and severity in ("pass", "warn")


def test_a_search_that_runs_out_of_time_before_any_trial_still_trains(lifecycle_home):
    """A loaded machine can end FLAML's budget before its first trial: that is no failed run."""
    first = _train(time_budget_s=1e-6)
    assert first.success
    meta = _metadata(first)
    assert meta["search_out_of_time"] is True and meta["registered"] is True
    # No trial was scored by the search: one configuration was fitted directly.
    assert meta["search_trials"] == 0 and 0.5 < meta["val_auc"] <= 1.0
    # Warm-started from the champion, the one unclocked trial is the champion's configuration.
    client = _client(lifecycle_home)
    champion_config = json.loads(
        version_facts(client, client.get_model_version(REGISTERED_MODEL_NAME, "1"))["best_config"]
    )
    again = _metadata(_train(time_budget_s=1e-6, auto_promote=False))
    assert again["search_out_of_time"] is True and again["warm_started"] is True
    assert again["best_config"]["n_estimators"] == champion_config["n_estimators"]
    # With a budget that fits a trial, nothing is out of time.
    assert _metadata(_train(auto_promote=False, time_budget_s=4.0))["search_out_of_time"] is False


def test_candidate_below_the_hurdle_is_recorded_but_not_registered(lifecycle_home):
    # Nothing beats the best baseline's AUC by 1.0.
    result = _train(hurdle_margin=1.0, first_model_skips_hurdle=False)
    assert result.success
    meta = _metadata(result)
    assert meta["registered"] is False and meta["model_version"] == ""
    client = _client(lifecycle_home)
    assert client.search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'") == []
    run = client.get_run(meta["mlflow_run_id"])
    assert run.data.tags["candidate_status"] == "rejected"
    # One click to the run in the MLflow UI; a rejected candidate has no version, nor card.
    assert meta["mlflow_run"].endswith(
        f"/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    )
    assert "model_card" not in meta and "mlflow_model_version" not in meta
    assert "baseline" in run.data.tags["rejection_reason"]
    assert "val_auc" in run.data.metrics

    # With no champion at all, the first candidate is registered anyway (and says so)...
    first = _metadata(_train(hurdle_margin=1.0))
    assert first["registered"] is True and first["cleared_hurdle"] is False
    assert first["mlflow_model_version"].endswith("/#/models/churn-model/versions/1")
    assert first["model_card"] == "http://127.0.0.1:8000/reports/models/model_v1.html"
    tags = client.get_model_version(REGISTERED_MODEL_NAME, "1").tags
    assert tags["cleared_hurdle"] == "false"
    # ...but once a champion exists, a candidate below the hurdle never becomes challenger.
    later = _metadata(_train(hurdle_margin=1.0))
    assert later["registered"] is False
    assert _alias(lifecycle_home, CHALLENGER_ALIAS) == "1"


def test_a_tie_with_the_baseline_replaces_only_a_champion_in_question(lifecycle_home, monkeypatch):
    """Below the best baseline but not beyond doubt is a tie: enough to stand in for a champion
    that lost its footing, never enough to challenge a healthy one."""
    with duckdb.connect(str(lifecycle_home / "warehouse.duckdb")) as conn:
        # Complete windows, so that nothing is provisional for holes in them.
        conn.execute(
            "CREATE TABLE cohort_coverage AS SELECT DISTINCT cohort_month, true AS complete "
            "FROM features"
        )
        train = conn.execute(
            "SELECT * FROM features JOIN labels USING (msno, cohort_month) "
            "WHERE cohort_month < '2016-04-01'"
        ).df()
    columns = [c for c in train.columns if c not in ("msno", "cohort_month", "is_churn")]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4, "seed": 1},
        lgb.Dataset(train[columns].astype(float), train["is_churn"]),
        num_boost_round=30,
    )
    # One fixed candidate, so every run below judges the same scores against the same baselines.
    monkeypatch.setattr(
        training_candidate,
        "fit_lightgbm_automl",
        lambda *a, **k: TunedModel(booster, {}, SimpleNamespace(best_loss=0.5), False),
    )
    first = _metadata(_train(first_model_skips_hurdle=False))
    difference = first["val_auc"] - first[f"baseline_{first['hurdle_baseline']}_auc"]
    low, high = first["hurdle_auc_diff_low"], first["hurdle_auc_diff_high"]
    assert low < difference < high
    if first["hurdle_outcome"] != "cleared":  # a healthy champion to start from
        first = _metadata(_train(hurdle_margin=low - 0.01))
    assert first["registered"] is True and first["hurdle_outcome"] == "cleared"
    # A margin above the point estimate, but inside its interval: a tie.
    tie = (difference + high) / 2
    healthy = _metadata(_train(hurdle_margin=tie))
    assert healthy["hurdle_outcome"] == "tied" and healthy["registered"] is False
    in_question = _metadata(_train(hurdle_margin=tie, champion_in_question=["staleness"]))
    assert in_question["hurdle_outcome"] == "tied" and in_question["registered"] is True
    version = in_question["model_version"]
    tags = _client(lifecycle_home).get_model_version(REGISTERED_MODEL_NAME, version).tags
    assert tags["cleared_hurdle"] == "tied" and "tied" in tags["hurdle"]
    # A tie is not provisional: it does not keep the retraining sensor busy.
    assert not lifecycle.is_provisional(
        _client(lifecycle_home).get_model_version(REGISTERED_MODEL_NAME, version)
    )
    # Beyond doubt below the margin fails, in question or not.
    failed = _metadata(_train(hurdle_margin=high + 0.01, champion_in_question=["drift"]))
    assert failed["hurdle_outcome"] == "failed" and failed["registered"] is False


def _mean_score_on_validation(home: Path, version: str) -> tuple[float, float]:
    """Mean predicted probability of ``version`` on the validation cohort, and its churn rate."""
    import mlflow

    model = mlflow.lightgbm.load_model(f"models:/{REGISTERED_MODEL_NAME}/{version}")
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        frame = conn.execute(
            "SELECT * FROM features JOIN labels USING (msno, cohort_month) "
            "WHERE cohort_month = '2016-04-01'"
        ).df()
    return float(model.predict(frame[model.feature_name()]).mean()), frame["is_churn"].mean()


def test_auto_promotion_needs_the_margin_and_class_weights_apply(lifecycle_home):
    _train()
    # No candidate gains 1.0 AUC over the champion: it stays challenger.
    held = _metadata(_train(promotion_margin=1.0, class_weight="balanced"))
    assert held["promoted_to_champion"] is False
    # Balanced weights give the churners (39 % here) half the weight: scores move towards 0.5,
    # above the churn rate, which is why unweighted (calibrated) is the default. (With half the
    # validation users held out of the search for the challenger comparison, the shift measured
    # here is about 0.05; 0.03 still tells it from a calibrated model's noise.)
    unweighted, churn_rate = _mean_score_on_validation(lifecycle_home, "1")
    balanced, _ = _mean_score_on_validation(lifecycle_home, "2")
    assert abs(unweighted - churn_rate) < 0.1
    assert balanced > max(unweighted, churn_rate) + 0.03
    assert _alias(lifecycle_home, CHALLENGER_ALIAS) == "2"
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "1"
    # Any candidate clears a negative margin and, with auto_promote, replaces the champion.
    taken = _metadata(_train(promotion_margin=-1.0, window_cohorts=2))
    assert taken["promoted_to_champion"] is True
    assert taken["training_cohorts"] == "2016-03" and taken["validation_cohort"] == "2016-04"
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "3"
    assert _promotions(lifecycle_home)[-1] == ("3", "1", "auto_promote")
    tags = _client(lifecycle_home).get_model_version(REGISTERED_MODEL_NAME, "3").tags
    assert tags["compared_with_champion"] == "1" and tags["beats_champion"] == "true"


@pytest.mark.parametrize("broken", ["registry", "warehouse"])
def test_a_failed_promotion_changes_nothing(lifecycle_home, monkeypatch, broken):
    _train()
    _train(auto_promote=False)

    def unreachable(*args, **kwargs):
        raise RuntimeError(f"{broken} unreachable")

    if broken == "registry":
        monkeypatch.setattr(ModelRegistryResource, "set_alias", unreachable)
    else:  # the model_promotions insert fails
        monkeypatch.setattr(lifecycle, "run_sql_file", unreachable)
    failed = _lifecycle_job("promotion_job", {"action": "promote", "version": "2"})
    assert not failed.success
    monkeypatch.undo()
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "1"
    assert _promotions(lifecycle_home) == [("1", None, "initial")]
    tags = _client(lifecycle_home).get_model_version(REGISTERED_MODEL_NAME, "2").tags
    assert tags["promoted"] == "false"


def test_a_registration_that_cannot_finish_is_taken_back(lifecycle_home, monkeypatch):
    _train()
    _train(auto_promote=False)  # v2: challenger

    def warehouse_down(*args, **kwargs):
        raise RuntimeError("warehouse unreachable")

    monkeypatch.setattr(training_registration, "change_champion", warehouse_down)
    failed = _train(promotion_margin=-1.0, raise_on_error=False)
    assert not failed.success
    versions = _client(lifecycle_home).search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"], "v3 was taken back"
    assert _alias(lifecycle_home, CHALLENGER_ALIAS) == "2"
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "1"


def test_promote_rollback_and_retention_by_hand(lifecycle_home, capsys):
    _train()
    _train(auto_promote=False)
    promoted = _lifecycle_job("promotion_job", {"action": "promote", "version": "2"})
    assert promoted.success
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "2"
    # The command line runs the same job.
    assert cli.main(["rollback", "--reason", "v2 underperforms"]) == 0
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "1"
    assert _promotions(lifecycle_home) == [
        ("1", None, "initial"),
        ("2", "1", "promote"),
        ("1", "2", "rollback"),
    ]
    tags = _client(lifecycle_home).get_model_version(REGISTERED_MODEL_NAME, "1").tags
    assert tags["champion_action"] == "rollback" and tags["previous_champion"] == "2"

    # Rolling back again undoes nothing more: v1 was the first champion, and v2 (just rejected)
    # is not brought back.
    capsys.readouterr()
    assert cli.main(["rollback"]) == 2
    assert "no earlier champion" in _cli_says(capsys)
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "1"
    assert len(_promotions(lifecycle_home)) == 3

    unknown = _lifecycle_job("promotion_job", {"action": "promote", "version": "99"})
    assert not unknown.success
    assert cli.main(["promote", "99"]) == 2
    assert _cli_says(capsys) == "churn-assets: churn-model has no version '99'"
    assert len(_promotions(lifecycle_home)) == 3

    bad_date = _lifecycle_job("retention_job", {"created_before": "last spring"})
    assert not bad_date.success
    failure = next(
        e for e in bad_date.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    assert "created_before" in failure.step_failure_data.user_failure_data.description

    # v3 is promoted: it is champion and challenger, v1 is where a rollback would return.
    _train(auto_promote=False)
    assert _lifecycle_job("promotion_job", {"action": "promote", "version": "3"}).success
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    dry = _lifecycle_job("retention_job", {"created_before": tomorrow, "dry_run": True})
    assert dry.success and dry.output_for_node("delete_old_versions_op") == ["2"]
    done = _lifecycle_job("retention_job", {"created_before": tomorrow})
    assert done.success
    left = _client(lifecycle_home).search_model_versions(f"name = '{REGISTERED_MODEL_NAME}'")
    assert sorted(str(v.version) for v in left) == ["1", "3"]
    assert cli.main(["rollback"]) == 0
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "1"


def test_schema_change_retrains_and_old_version_names_the_missing_column(lifecycle_home):
    _train()
    with duckdb.connect(str(lifecycle_home / "warehouse.duckdb")) as conn:
        conn.execute("ALTER TABLE features DROP COLUMN plays_7d")
    retrained = _train(auto_promote=False)
    assert retrained.success
    client = _client(lifecycle_home)
    v2 = client.get_model_version(REGISTERED_MODEL_NAME, "2")
    assert "plays_7d" not in json.loads(version_facts(client, v2)["feature_columns"])
    signature = __import__("mlflow").models.get_model_info(v2.source).signature
    assert "plays_7d" not in signature.inputs.input_names()

    scored = materialize(
        [predictions],
        resources=default_resources(),
        partition_key="2016-05-01",
        raise_on_error=False,
    )
    assert not scored.success
    failure = next(e for e in scored.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "plays_7d" in failure.step_failure_data.error.message

    # The backtest of a cohort says which version cannot score it and why.
    backtest = _backtest("2016-04-01")
    meta = _metadata(backtest)
    assert "plays_7d" in meta["versions_unscorable"]["1"]
    assert meta["champion_version"] == "1"


def test_a_version_cut_off_mid_registration_is_never_champion_nor_backtested(
    lifecycle_home, capsys
):
    _train()  # v1, registered whole: champion
    client = _client(lifecycle_home)
    whole = client.get_model_version(REGISTERED_MODEL_NAME, "1")
    # A process killed between registering v2 and tagging it leaves a version with no tags.
    cut_off = client.create_model_version(REGISTERED_MODEL_NAME, whole.source, whole.run_id)
    assert str(cut_off.version) == "2" and not cut_off.tags

    assert cli.main(["promote", "2", "--reason", "try"]) == 2
    assert "v2 was cut off mid-registration" in _cli_says(capsys)
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "1"
    backtested = _metadata(_backtest("2016-05-01"))
    assert backtested["versions_evaluated"] == 1 and backtested["versions_unscorable"] == {}


def test_a_champion_whose_model_is_gone_is_named_and_a_retrain_replaces_it(lifecycle_home):
    _train()  # v1: champion
    [model_file] = list((lifecycle_home / "mlartifacts").rglob("MLmodel"))
    shutil.rmtree(model_file.parent)  # its artifacts deleted by hand

    with pytest.raises(ModelUnavailableError) as gone:
        default_resources()["registry"].load_model("1")
    assert f"{REGISTERED_MODEL_NAME} v1 cannot be loaded from " in str(gone.value)

    retrained = _metadata(_train())  # compared with a champion that cannot score: replaced
    assert retrained["promoted_to_champion"] is True
    assert "champion v1 cannot score" in retrained["comparison"]
    assert _alias(lifecycle_home, CHAMPION_ALIAS) == "2"


def test_mlflow_reads_well_a_named_run_few_tags_and_a_classic_experiment(lifecycle_home):
    """A retraining the sensor launched for drift, as MLflow's UI shows it: the run named by what
    it did, the version's tags few enough for the champion alias to stay in view, the rest of
    what it says in its run's version_details.json, and the experiment opened as classic ML."""
    from churn_assets.keys import LABELS_TAG, TRAINING_CAUSE_TAG
    from churn_assets.readable import rounded
    from churn_assets.resources import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, VERSION_DETAILS_FILE

    result = dg.materialize(
        [churn_model],
        resources=default_resources(),
        run_config={
            "ops": {"churn_model": {"config": {"as_of_month": AS_OF, "time_budget_s": 1.0}}}
        },
        tags={LABELS_TAG: "2016-04-01", TRAINING_CAUSE_TAG: "drift"},
    )
    meta = _metadata(result)
    client = _client(lifecycle_home)
    run = client.get_run(meta["mlflow_run_id"])
    assert run.info.run_name == "train labels 2016-04 (drift)"
    own_run_tags = {k for k in run.data.tags if not k.startswith("mlflow.")}
    assert len(own_run_tags) <= 8, sorted(own_run_tags)

    version = client.get_model_version(REGISTERED_MODEL_NAME, meta["model_version"])
    assert "champion" in version.aliases
    assert set(version.tags) <= {
        *training_registration.PERSON_TAGS,
        *("champion_since", "champion_action", "champion_reason", "previous_champion"),
    }, sorted(version.tags)
    assert len(version.tags) <= 16
    facts = version_facts(client, version)
    assert VERSION_DETAILS_FILE in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert json.loads(facts["feature_columns"]) and facts["baseline_rule_auc"]
    assert facts["as_of_month"] == version.tags["as_of_month"] == AS_OF

    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    # The materialization reads 0.873, not 0.8734...; MLflow keeps the full figure.
    assert meta["val_auc"] == rounded(run.data.metrics["val_auc"]) != run.data.metrics["val_auc"]


def test_a_training_launched_by_hand_is_named_by_its_month(lifecycle_home):
    from churn_assets.training.tracking import training_run_name

    meta = _metadata(_train())
    run = _client(lifecycle_home).get_run(meta["mlflow_run_id"])
    assert (
        run.info.run_name
        == training_run_name({}, date(2016, 6, 1))
        == "train as of 2016-06 (by hand)"
    )
