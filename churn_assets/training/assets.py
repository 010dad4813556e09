"""The ``churn_model`` asset: train, judge against baselines, register, and decide the champion.

A candidate is registered only when it clears the hurdle: its validation AUC beats the best
baseline (the as-is rule, a logistic regression) by ``hurdle_margin``; or, when the champion is
provisional or in question, when it ties it (below, but not beyond doubt:
:mod:`churn_assets.training.hurdle`). A rejected candidate keeps its MLflow run (metrics, model,
reason) for the record. The one exception is the very first model
(``first_model_skips_hurdle``): with no champion nothing is scored at all, so it is registered,
tagged ``cleared_hurdle=false``, and the monthly backtests hold it against the rule from then on.

Every registered version becomes ``challenger``; it also becomes ``champion`` when there is none
yet, or, with ``auto_promote``, when it beats the current champion on users neither was tuned on:
half of the validation cohort's users are held out of the search, both models are scored there,
and a paired bootstrap must put the AUC gain's lower bound above ``promotion_margin``
(:mod:`churn_assets.performance.comparison` says why and what is recorded).
"""

import json
import math
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Literal

import dagster as dg
import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from mlflow.entities import Metric
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from pydantic import Field

from churn_assets.features.feature_sets import (
    complete_cohorts,
    feature_columns_of,
    keep_common_features,
)
from churn_assets.partitions import add_months, latest_labeled_cohort, month_start
from churn_assets.performance.bootstrap import DEFAULT_RESAMPLES
from churn_assets.performance.comparison import (
    DEFAULT_HELD_OUT_SHARE,
    DEFAULT_PROMOTION_CONFIDENCE,
    HELD_OUT_TAG,
    ChampionComparison,
    champion_saw,
    compare_scores,
)
from churn_assets.resources import ModelRegistryResource
from churn_assets.settings import CHALLENGER_ALIAS, REGISTERED_MODEL_NAME
from churn_assets.training.baselines import baseline_scores
from churn_assets.training.hurdle import Hurdle, judge_hurdle
from churn_assets.training.lifecycle import change_champion, is_provisional
from churn_assets.training.model import (
    LABEL,
    LabeledSplit,
    TunedModel,
    as_matrix,
    classification_metrics,
    fit_lightgbm_automl,
    informative_columns,
    predict_probability,
    search_history,
    split_by_time,
)
from churn_assets.warehouse import run_sql_file

SQL = Path(__file__).parent / "training_frame.sql"
# What a logged booster needs to be loaded and scored anywhere.
MODEL_REQUIREMENTS = [
    f"lightgbm=={lgb.__version__}",
    f"pandas=={pd.__version__}",
    f"numpy=={np.__version__}",
    f"mlflow=={mlflow.__version__}",
]
# Version tag holding FLAML's best configuration, the warm start of the next search.
BEST_CONFIG_TAG = "best_config"
# One cohort to train on and a later one to validate on.
MIN_COMPLETE_COHORTS = 2


class TrainingConfig(dg.Config):
    """Knobs of a training run; replay and the retraining sensor set ``as_of_month``."""

    as_of_month: str = Field(
        default="",
        description="Train as on the first day of this month (YYYY-MM); empty means today.",
    )
    window_cohorts: int = Field(default=6, description="Labelled cohorts used, newest validates.")
    time_budget_s: float = Field(default=30.0, description="FLAML search budget in seconds.")
    warm_budget_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Share of time_budget_s a warm-started retrain searches: it starts from the "
        "champion's configuration, so it needs less of the search a cold start does.",
    )
    seed: int = 42
    class_weight: Literal["none", "balanced"] = Field(
        default="none",
        description="'balanced' weights churners up to half the total weight; 'none' keeps "
        "the probabilities calibrated.",
    )
    search_metric: Literal["roc_auc", "log_loss"] = Field(
        default="log_loss",
        description="What FLAML optimises on the validation cohort. Log loss, a proper scoring "
        "rule, keeps the probabilities calibrated for the buckets' absolute cut-offs; on the "
        "simulated benchmark it also ranked as well as searching on AUC.",
    )
    warm_start: bool = Field(
        default=True, description="Start the search from the champion's best configuration."
    )
    hurdle_margin: float = Field(
        default=0.0,
        description="AUC a candidate must gain over the best baseline to be registered.",
    )
    first_model_skips_hurdle: bool = Field(
        default=True,
        description="With no champion yet, register the candidate even below the hurdle, so "
        "that cohorts get scored at all.",
    )
    auto_promote: bool = Field(
        default=True,
        description="Promote a challenger that beats the champion by promotion_margin; when "
        "false, champions change only through promotion_job (the first one excepted).",
    )
    promotion_margin: float = Field(
        default=0.0,
        description="Gain a challenger must show beyond doubt to replace the champion: the lower "
        "bound of its AUC gain's interval must exceed it (log loss: the upper bound of the "
        "difference must be below minus it).",
    )
    promotion_metric: Literal["auc", "log_loss"] = Field(
        default="auc",
        description="What promotion is decided on: AUC (ranking, what the retention list is cut "
        "from) or log loss (calibration). Both differences are recorded.",
    )
    promotion_confidence: float = Field(
        default=DEFAULT_PROMOTION_CONFIDENCE,
        gt=0.0,
        lt=1.0,
        description="Two-sided confidence of the paired bootstrap interval of the difference.",
    )
    promotion_resamples: int = Field(
        default=DEFAULT_RESAMPLES, ge=20, description="Paired bootstrap resamples of the users."
    )
    comparison_held_out_share: float = Field(
        default=DEFAULT_HELD_OUT_SHARE,
        ge=0.0,
        lt=1.0,
        description="Share of the validation cohort's users (by a fixed hash of msno) kept out "
        "of the search, where challenger and champion are compared; 0 compares on the whole "
        "validation cohort, which the challenger was tuned on, so it is never auto-promoted.",
    )
    champion_in_question: list[str] = Field(
        default_factory=list,
        description="The triggers in force when the retraining sensor launched this run (drift, "
        "performance, staleness): with any of them the champion is replaced by a candidate at "
        "least as good on the users neither was tuned on, not only by one better beyond doubt.",
    )
    include_incomplete_cohorts: bool = Field(
        default=False,
        description="Train on cohorts built with a hole in their windows too. By default they "
        "are used only while fewer than two complete labelled cohorts exist.",
    )


@dataclass(frozen=True)
class LabeledWindow:
    frame: pd.DataFrame
    incomplete_cohorts: list[date]  # left out, or (fallback) kept and named here
    used_incomplete: bool


def load_labeled_window(
    warehouse: DuckDBResource,
    as_of: date,
    window_cohorts: int,
    include_incomplete: bool = False,
) -> LabeledWindow:
    """Rows of the newest ``window_cohorts`` cohorts whose labels are known at ``as_of``.

    Cohorts built with a hole in their windows are left out, unless fewer than two complete ones
    remain: then all are used and the fact is recorded (a first model on what there is beats no
    model at all; it is replaced once complete cohorts have labels).
    """
    last = latest_labeled_cohort(as_of)
    first = add_months(last, -(window_cohorts - 1))
    with warehouse.get_connection() as conn:
        frame = run_sql_file(conn, SQL, {"first_cohort": first, "last_cohort": last}).df()
        if frame.empty:
            return LabeledWindow(frame, [], False)
        cohorts = sorted(pd.to_datetime(frame["cohort_month"]).dt.date.unique())
        complete = set(complete_cohorts(conn, cohorts))
        incomplete = [c for c in cohorts if c not in complete]
        use_all = include_incomplete or len(complete) < MIN_COMPLETE_COHORTS
        if not use_all:
            frame = frame[pd.to_datetime(frame["cohort_month"]).dt.date.isin(complete)]
        # A model learns only the features every cohort of its window has.
        frame = keep_common_features(conn, frame)
    return LabeledWindow(frame, incomplete, use_all and bool(incomplete))


def compare_with_champion(
    registry: ModelRegistryResource,
    champion: ModelVersion,
    booster: lgb.Booster,
    split: LabeledSplit,
    config: TrainingConfig,
) -> ChampionComparison:
    """Challenger and champion on the users held out of the search (paired bootstrap)."""
    held_out = not split.held_out.empty
    rows = split.held_out if held_out else split.validation
    basis = (
        f"users of {split.validation_cohort:%Y-%m} held out of the search "
        f"({split.held_out_share:.0%} by msno hash)"
        if held_out
        else f"users of {split.validation_cohort:%Y-%m} the challenger was tuned on"
    )
    known = {
        "champion_version": str(champion.version),
        "cohort": split.validation_cohort,
        "basis": basis,
        "seen_by_challenger": not held_out,
        "seen_by_champion": champion_saw(
            champion.tags, split.validation_cohort, split.held_out_share, held_out
        ),
    }
    try:
        champion_probability = predict_probability(registry.load_model(champion.version), rows)
    except KeyError as exc:  # the champion needs a feature the table no longer has
        return ChampionComparison(users=len(rows), champion_unscorable=str(exc), **known)
    return compare_scores(
        rows[LABEL].to_numpy(),
        predict_probability(booster, rows),
        champion_probability,
        resamples=config.promotion_resamples,
        confidence=config.promotion_confidence,
        seed=config.seed,
        **known,
    )


# Triggers that put the champion in question: with one in force, the burden of proof turns.
CHAMPION_IN_QUESTION = ("drift", "performance", "staleness")


def _in_question(config: TrainingConfig) -> list[str]:
    """The triggers in force for this run that put the champion in question."""
    return [t for t in config.champion_in_question if t in CHAMPION_IN_QUESTION]


@dataclass(frozen=True)
class Promotion:
    promote: bool
    beats_champion: bool
    reason: str


def decide_promotion(
    config: TrainingConfig,
    champion: ModelVersion | None,
    comparison: ChampionComparison | None,
    hurdle_ok: bool,
    used_incomplete: bool,
) -> Promotion:
    """Does a registered candidate become champion, and why.

    A healthy champion is replaced only by a challenger better beyond doubt (the paired
    bootstrap's bound). Two champions need less: a provisional one (registered below the hurdle
    or from cohorts with holes) gives way to the first candidate that clears or ties the hurdle
    (``hurdle_ok``, :mod:`churn_assets.training.hurdle`) on complete cohorts; one in question (the
    retraining was triggered by drift, a persistent performance failure or staleness) gives way
    to such a candidate that is at least as good on the users neither was tuned on: on a few
    hundred users "better beyond doubt" is rarely provable, and a champion that has lost its
    footing should not win on that.
    """
    if comparison is None:
        return Promotion(champion is None, False, "no champion to compare with")
    beats, reason = comparison.decide(config.promotion_metric, config.promotion_margin)
    version = comparison.champion_version
    provisional = champion is not None and is_provisional(champion)
    fit = hurdle_ok and not used_incomplete
    in_question = _in_question(config)
    holds_up, holds_reason = comparison.holds_up(config.promotion_metric)
    if beats:
        replaces = True
    elif provisional and fit:
        replaces = True
        reason = (
            f"replaces provisional champion v{version} (registered below the hurdle or from "
            f"incomplete cohorts); this candidate passed the hurdle on complete cohorts ({reason})"
        )
    elif in_question and fit and holds_up:
        replaces = True
        reason = (
            f"replaces champion v{version}, in question ({', '.join(in_question)}): this "
            f"candidate passed the hurdle and {holds_reason}"
        )
    else:
        replaces = False
    return Promotion(config.auto_promote and replaces, beats, reason)


def champion_starting_config(champion: ModelVersion | None) -> dict | None:
    """FLAML's best configuration of the champion, if it logged one."""
    raw = champion.tags.get(BEST_CONFIG_TAG) if champion is not None else None
    return json.loads(raw) if raw else None


def _log_search_history(mlf, history: pd.DataFrame, metric: str) -> None:
    """Each trial's validation score as a stepped metric, and the trial table as an artifact."""
    mlf.log_text(history.to_csv(index=False), "flaml_search_history.csv")
    run = mlf.active_run()
    if run is None or history.empty:
        return
    # FLAML minimises: log loss as is, AUC as 1 - AUC.
    name, score, better = (
        ("val_auc", lambda loss: 1.0 - loss, max)
        if metric == "roc_auc"
        else ("val_log_loss", lambda loss: loss, min)
    )
    now_ms = int(time.time() * 1000)
    best, metrics = None, []
    for step, loss in enumerate(history["validation_loss"]):
        if loss is None or pd.isna(loss):
            continue
        value = score(float(loss))
        best = value if best is None else better(best, value)
        metrics += [
            Metric(f"search_trial_{name}", value, now_ms, step),
            Metric(f"search_best_{name}", best, now_ms, step),
        ]
    # One batched write: a search easily runs hundreds of trials.
    for start in range(0, len(metrics), 1000):
        MlflowClient().log_batch(run.info.run_id, metrics=metrics[start : start + 1000])


def _markdown_metrics(rows: dict[str, dict[str, float]]) -> str:
    frame = pd.DataFrame(rows).T[["auc", "log_loss", "brier", "ks", "lift_top_decile"]]
    return frame.round(4).to_markdown()


@dg.asset(
    group_name="training",
    kinds={"mlflow", "lightgbm"},
    deps=["features", "labels"],
    # dagster-mlflow's tracking resource is old-style, so every resource is asked for by key.
    required_resource_keys={"mlflow", "warehouse", "registry"},
)
def churn_model(context: dg.AssetExecutionContext, config: TrainingConfig) -> dg.MaterializeResult:
    """A FLAML-tuned LightGBM churn classifier, registered in MLflow as ``churn-model``."""
    try:
        return _train_candidate(context, config)
    except BaseException:
        # dagster-mlflow leaves its run active when the step fails: end it as FAILED, or the
        # next training in this process would log into a run of a finished step.
        context.resources.mlflow.end_run(status="FAILED")
        raise


def _not_trained(context: dg.AssetExecutionContext, reason: str) -> dg.MaterializeResult:
    """No candidate can be fitted on this window (e.g. a single class): say so, change nothing."""
    context.log.warning(f"no candidate trained: {reason}")
    context.resources.mlflow.set_tags({"candidate_status": "not_trained", "reason": reason})
    context.resources.mlflow.end_run()
    return dg.MaterializeResult(
        metadata={"registered": False, "model_version": "", "not_trained_because": reason}
    )


@dataclass(frozen=True)
class Candidate:
    """A tuned candidate and everything judged about it before anything is registered."""

    split: LabeledSplit
    window: LabeledWindow
    dropped: list[str]  # columns left out as uninformative
    tuned: TunedModel
    history: pd.DataFrame  # FLAML's trials
    budget_s: float
    metrics: dict[str, float]  # on the validation cohort
    baselines: dict[str, dict[str, float]]
    hurdle: Hurdle

    @property
    def booster(self) -> lgb.Booster:
        return self.tuned.booster

    def importance(self) -> pd.Series:
        return (
            pd.Series(self.booster.feature_importance("gain"), index=self.booster.feature_name())
            .sort_values(ascending=False)
            .round(1)
        )


def _train_candidate(
    context: dg.AssetExecutionContext, config: TrainingConfig
) -> dg.MaterializeResult:
    """Train, judge against the baselines and the champion, log, and register if it clears."""
    registry: ModelRegistryResource = context.resources.registry
    as_of = month_start(config.as_of_month) if config.as_of_month else month_start(date.today())
    window = _labelled_window(context, config, as_of)
    try:
        split = split_by_time(
            window.frame,
            feature_columns_of([c for c in window.frame.columns if c != LABEL]),
            config.comparison_held_out_share,
        )
    except ValueError as exc:
        return _not_trained(context, str(exc))
    # One look at the registry: warm start, hurdle and comparison judge the same champion.
    champion = registry.champion()
    candidate = _tune_and_judge(context, config, window, split, champion)
    register = _registers(config, champion, candidate.hurdle)
    _log_candidate_run(context.resources.mlflow, config, as_of, candidate, register)
    # Compared before anything is registered, so a champion that cannot be loaded leaves no
    # half-registered version behind.
    comparison = (
        compare_with_champion(registry, champion, candidate.booster, candidate.split, config)
        if register and champion is not None
        else None
    )
    if comparison is not None and not comparison.champion_unscorable:
        context.resources.mlflow.log_metrics(
            {
                k: float(v)
                for k, v in comparison.metadata().items()
                if isinstance(v, float) and not math.isnan(v)
            }
        )
    model_info = _log_booster(candidate, register)
    common = _candidate_metadata(as_of, candidate, register, model_info.run_id)
    if not register:
        verdict = candidate.hurdle.verdict()
        context.log.warning(f"candidate not registered: it does not beat the baseline ({verdict})")
        context.resources.mlflow.end_run()
        return dg.MaterializeResult(
            metadata={
                **common,
                "model_version": "",
                "champion_version": str(champion.version) if champion else "",
                "promoted_to_champion": False,
            }
        )
    version = str(model_info.registered_model_version)
    decision = decide_promotion(
        config,
        champion,
        comparison,
        candidate.hurdle.good_enough_for_a_doubtful_champion,
        window.used_incomplete,
    )
    _tag_and_promote(context, as_of, candidate, version, comparison, decision)
    champion_version = comparison.champion_version if comparison is not None else None
    context.log.info(
        f"registered {REGISTERED_MODEL_NAME} v{version} (val AUC {candidate.metrics['auc']:.4f}); "
        f"champion is now v{version if decision.promote else champion_version}"
    )
    context.resources.mlflow.end_run()
    return dg.MaterializeResult(
        metadata={
            **common,
            "model_version": version,
            "champion_version": version if decision.promote else str(champion_version),
            "promoted_to_champion": decision.promote,
            "beats_champion": decision.beats_champion,
            "comparison": decision.reason,
            **(comparison.metadata() if comparison is not None else {}),
            "model_uri": f"models:/{REGISTERED_MODEL_NAME}/{version}",
        }
    )


def _labelled_window(
    context: dg.AssetExecutionContext, config: TrainingConfig, as_of: date
) -> LabeledWindow:
    window = load_labeled_window(
        context.resources.warehouse, as_of, config.window_cohorts, config.include_incomplete_cohorts
    )
    if window.frame.empty:
        raise dg.Failure(f"no labelled feature rows with labels known by {as_of:%Y-%m}")
    if window.used_incomplete:
        context.log.warning(
            "fewer than two complete labelled cohorts: training on incomplete ones too ("
            + ", ".join(f"{c:%Y-%m}" for c in window.incomplete_cohorts)
            + ")"
        )
    return window


def _tune_and_judge(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    window: LabeledWindow,
    split: LabeledSplit,
    champion: ModelVersion | None,
) -> Candidate:
    """FLAML's search on the informative columns, then the candidate against the baselines."""
    informative = informative_columns(
        pd.concat([split.train, split.validation]), split.feature_columns
    )
    dropped = sorted(set(split.feature_columns) - set(informative))
    split = replace(split, feature_columns=informative)
    starting_config = champion_starting_config(champion) if config.warm_start else None
    budget_s = config.time_budget_s * (config.warm_budget_share if starting_config else 1.0)
    with tempfile.TemporaryDirectory() as folder:
        log_file = Path(folder) / "flaml.log"
        tuned = fit_lightgbm_automl(
            split,
            budget_s,
            config.seed,
            starting_config=starting_config,
            class_weight=config.class_weight,
            log_file=log_file,
            metric=config.search_metric,
        )
        history = search_history(log_file)
    if tuned.out_of_time:
        context.log.warning(
            f"no FLAML trial finished within {budget_s:g} s: fitted one configuration without a "
            "time limit instead (raise time_budget_s on a machine this loaded)"
        )
    y_val = split.validation[LABEL].to_numpy()
    probability = predict_probability(tuned.booster, split.validation)
    metrics = classification_metrics(y_val, probability)
    scores = baseline_scores(split, config.seed)
    baselines = {name: classification_metrics(y_val, s) for name, s in scores.items()}
    hurdle = judge_hurdle(
        y_val,
        probability,
        scores,
        {"candidate": metrics["auc"]} | {name: m["auc"] for name, m in baselines.items()},
        config.hurdle_margin,
        resamples=config.promotion_resamples,
        confidence=config.promotion_confidence,
        seed=config.seed,
    )
    return Candidate(
        split=split,
        window=window,
        dropped=dropped,
        tuned=tuned,
        history=history,
        budget_s=budget_s,
        metrics=metrics,
        baselines=baselines,
        hurdle=hurdle,
    )


def _registers(config: TrainingConfig, champion: ModelVersion | None, hurdle: Hurdle) -> bool:
    """A cleared hurdle registers; a tie does when the champion is provisional or in question;
    the very first model is registered whatever its hurdle (``first_model_skips_hurdle``)."""
    if champion is None:
        return hurdle.cleared or config.first_model_skips_hurdle
    doubtful = is_provisional(champion) or bool(_in_question(config))
    return hurdle.cleared or (doubtful and hurdle.good_enough_for_a_doubtful_champion)


def _log_candidate_run(
    mlf, config: TrainingConfig, as_of: date, candidate: Candidate, register: bool
) -> None:
    """Parameters, metrics, the search and the hurdle on the candidate's MLflow run."""
    split, tuned, hurdle = candidate.split, candidate.tuned, candidate.hurdle
    mlf.log_params(
        {
            "as_of_month": f"{as_of:%Y-%m}",
            "training_cohorts": ",".join(f"{c:%Y-%m}" for c in split.training_cohorts),
            "validation_cohort": f"{split.validation_cohort:%Y-%m}",
            "time_budget_s": candidate.budget_s,
            "seed": config.seed,
            "class_weight": config.class_weight,
            "search_metric": config.search_metric,
            "warm_started": tuned.warm_started,
            "hurdle_margin": config.hurdle_margin,
            "train_rows": len(split.train),
            "validation_rows": len(split.validation),
            "held_out_rows": len(split.held_out),
            **{f"lgbm_{k}": v for k, v in tuned.best_config.items()},
        }
    )
    mlf.log_metrics(
        {f"val_{k}": v for k, v in candidate.metrics.items() if not math.isnan(v)}
        | {
            f"baseline_{name}_{k}": v
            for name, values in candidate.baselines.items()
            for k, v in values.items()
            if not math.isnan(v)
        }
        | {
            "flaml_best_loss": float(tuned.automl.best_loss),
            "flaml_trials": float(len(candidate.history)),
            "hurdle_auc_diff_low": hurdle.difference_low,
            "hurdle_auc_diff_high": hurdle.difference_high,
        }
    )
    _log_search_history(mlf, candidate.history, config.search_metric)
    mlf.log_dict(candidate.importance().to_dict(), "feature_importance_gain.json")
    mlf.log_dict(tuned.best_config, "flaml_best_config.json")
    verdict = hurdle.verdict()
    mlf.set_tags(
        {
            "candidate_status": "registered" if register else "rejected",
            "cleared_hurdle": hurdle.tag,
            "hurdle": verdict,
            **({} if register else {"rejection_reason": f"does not beat the baseline: {verdict}"}),
        }
    )


def _log_booster(candidate: Candidate, register: bool):
    """The booster as an MLflow model, registered as a new version when it is to be."""
    booster = candidate.booster
    # The booster's own feature list is what scoring, drift and reasons use.
    example = as_matrix(candidate.split.validation, list(booster.feature_name())).head(5)
    return mlflow.lightgbm.log_model(
        booster,
        name="model",
        signature=infer_signature(example, booster.predict(example)),
        input_example=example,
        registered_model_name=REGISTERED_MODEL_NAME if register else None,
        # Named rather than inferred: inference imports the model in a subprocess to see which
        # modules it touches, seconds per training for a list that is known.
        pip_requirements=MODEL_REQUIREMENTS,
    )


def _candidate_metadata(
    as_of: date, candidate: Candidate, register: bool, run_id: str
) -> dict[str, object]:
    """What the materialization shows of every candidate, registered or not."""
    split, window, tuned, metrics = (
        candidate.split,
        candidate.window,
        candidate.tuned,
        candidate.metrics,
    )
    return {
        "registered": register,
        "cleared_hurdle": candidate.hurdle.cleared,
        "hurdle_outcome": candidate.hurdle.outcome,
        "val_auc": metrics["auc"],
        "val_log_loss": metrics["log_loss"],
        "val_brier": metrics["brier"],
        "val_ks": metrics["ks"],
        "val_lift_top_decile": metrics["lift_top_decile"],
        "val_churn_rate": metrics["churn_rate"],
        "baseline_rule_auc": candidate.baselines["rule"]["auc"],
        "baseline_logistic_regression_auc": candidate.baselines["logistic_regression"]["auc"],
        "hurdle": candidate.hurdle.verdict(),
        "hurdle_baseline": candidate.hurdle.baseline,
        "hurdle_auc_diff_low": candidate.hurdle.difference_low,
        "hurdle_auc_diff_high": candidate.hurdle.difference_high,
        "as_of_month": f"{as_of:%Y-%m}",
        "training_cohorts": ", ".join(f"{c:%Y-%m}" for c in split.training_cohorts),
        "validation_cohort": f"{split.validation_cohort:%Y-%m}",
        "train_rows": len(split.train),
        "validation_rows": len(split.validation),
        "held_out_rows": len(split.held_out),
        "features_used": len(candidate.booster.feature_name()),
        "features_dropped_uninformative": dg.MetadataValue.json(candidate.dropped),
        "trained_on_incomplete_cohorts": window.used_incomplete,
        "incomplete_cohorts": ", ".join(f"{c:%Y-%m}" for c in window.incomplete_cohorts) or "none",
        "warm_started": tuned.warm_started,
        "search_budget_s": candidate.budget_s,
        "search_out_of_time": tuned.out_of_time,
        "search_trials": len(candidate.history),
        "mlflow_run_id": run_id,
        "best_config": dg.MetadataValue.json(tuned.best_config),
        "candidate_vs_baselines": dg.MetadataValue.md(
            _markdown_metrics({"candidate": metrics, **candidate.baselines})
        ),
        "feature_importance_gain": dg.MetadataValue.md(
            candidate.importance().head(15).to_frame("gain").to_markdown()
        ),
    }


def _tag_and_promote(
    context: dg.AssetExecutionContext,
    as_of: date,
    candidate: Candidate,
    version: str,
    comparison: ChampionComparison | None,
    decision: Promotion,
) -> None:
    """Tag the new version, make it challenger, and champion when decided; all or nothing."""
    registry: ModelRegistryResource = context.resources.registry
    split, hurdle = candidate.split, candidate.hurdle
    champion_version = comparison.champion_version if comparison is not None else None
    tags = {
        "as_of_month": f"{as_of:%Y-%m}",
        "training_cohorts": json.dumps([f"{c:%Y-%m-01}" for c in split.training_cohorts]),
        "validation_cohort": f"{split.validation_cohort:%Y-%m-01}",
        "val_auc": f"{candidate.metrics['auc']:.6f}",
        "baseline_rule_auc": f"{candidate.baselines['rule']['auc']:.6f}",
        "baseline_logistic_regression_auc": (
            f"{candidate.baselines['logistic_regression']['auc']:.6f}"
        ),
        "feature_columns": json.dumps(list(candidate.booster.feature_name())),
        "trained_on_incomplete_cohorts": str(candidate.window.used_incomplete).lower(),
        BEST_CONFIG_TAG: json.dumps(candidate.tuned.best_config),
        HELD_OUT_TAG: f"{split.held_out_share:g}",
        "compared_with_champion": str(champion_version or "none"),
        **(comparison.tags() if comparison is not None else {}),
        "comparison": decision.reason,
        "beats_champion": str(decision.beats_champion).lower(),
        "cleared_hurdle": hurdle.tag,
        "hurdle": hurdle.verdict(),
        "promoted": "false",
    }
    client = registry.client
    previous_challenger = registry.version_by_alias(CHALLENGER_ALIAS)
    try:
        for key, value in tags.items():
            client.set_model_version_tag(REGISTERED_MODEL_NAME, version, key, value)
        registry.set_alias(CHALLENGER_ALIAS, version)
        if decision.promote:
            change_champion(
                registry,
                context.resources.warehouse,
                version,
                "initial" if champion_version is None else "auto_promote",
                "first registered version"
                + ("" if hurdle.cleared else f" (hurdle {hurdle.outcome}: {hurdle.verdict()})")
                if champion_version is None
                else (
                    f"beats champion v{champion_version}: {decision.reason}"
                    if decision.beats_champion
                    else decision.reason  # says which champion it replaces, and why
                ),
            )
    except Exception:
        # A version without its tags, alias or champion record would mislead every later step:
        # take it out of the registry (the MLflow run stays, for the post-mortem) and give the
        # challenger alias back.
        client.delete_model_version(REGISTERED_MODEL_NAME, version)
        if previous_challenger is not None:
            registry.set_alias(CHALLENGER_ALIAS, str(previous_challenger.version))
        raise
