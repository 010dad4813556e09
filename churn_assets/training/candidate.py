"""A candidate: FLAML's search on the window's informative columns, judged against the baselines.

After a persistent performance failure the cohorts it learns from are chosen too
(:mod:`churn_assets.training.window_choice`); otherwise it learns from the whole window.
Nothing here touches the registry's state: a candidate is everything known about a model before
it is logged, registered or compared with the champion.
"""

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import lightgbm as lgb
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from churn_assets.keys import BEST_CONFIG_TAG
from churn_assets.modeling.calibration import ChurnModel
from churn_assets.modeling.frame import LABEL, informative_columns, predict_probability
from churn_assets.modeling.metrics import classification_metrics
from churn_assets.resources import version_facts
from churn_assets.training.baselines import baseline_scores
from churn_assets.training.calibration import CalibrationChoice, choose_calibration
from churn_assets.training.config import TrainingConfig
from churn_assets.training.hurdle import Hurdle, judge_hurdle
from churn_assets.training.search import TunedModel, fit_lightgbm_automl, search_history
from churn_assets.training.split import LabelledSplit
from churn_assets.training.window import LabelledWindow
from churn_assets.training.window_choice import WindowChoice, choose_window, window_choice_wanted


@dataclass(frozen=True)
class Candidate:
    """A tuned candidate and everything judged about it before anything is registered."""

    split: LabelledSplit
    window: LabelledWindow
    dropped: list[str]  # columns left out as uninformative
    tuned: TunedModel
    history: pd.DataFrame  # FLAML's trials
    budget_s: float
    metrics: dict[str, float]  # on the validation cohort
    baselines: dict[str, dict[str, float]]
    hurdle: Hurdle
    # The map from raw score to probability, fitted on the validation cohort.
    calibration: CalibrationChoice
    # Set only after a persistent performance failure: the windows weighed and the one chosen.
    window_choice: WindowChoice | None = None

    @property
    def booster(self) -> lgb.Booster:
        return self.tuned.booster

    def model(self, version: str = "candidate") -> ChurnModel:
        """The candidate as it would be served: booster and calibration."""
        return ChurnModel(version, self.booster, self.calibration.calibration)

    def importance(self) -> pd.Series:
        return (
            pd.Series(self.booster.feature_importance("gain"), index=self.booster.feature_name())
            .sort_values(ascending=False)
            .round(1)
        )


def champion_starting_config(client: MlflowClient, champion: ModelVersion | None) -> dict | None:
    """FLAML's best configuration of the champion, if it logged one."""
    raw = version_facts(client, champion).get(BEST_CONFIG_TAG) if champion is not None else None
    return json.loads(raw) if raw else None


def tune_and_judge(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    window: LabelledWindow,
    split: LabelledSplit,
    champion: ModelVersion | None,
) -> Candidate:
    """FLAML's search on the informative columns, the window to learn from when the champion's
    performance failed, then the candidate against the baselines."""
    informative = informative_columns(
        pd.concat([split.train, split.validation]), split.feature_columns
    )
    dropped = sorted(set(split.feature_columns) - set(informative))
    split = replace(split, feature_columns=informative)
    tuned, history, budget_s = _search(context, config, split, champion)
    choice = None
    if window_choice_wanted(config):
        choice = choose_window(config, split, tuned)
        context.log.info(f"window {choice.chosen.name}: {choice.reason}")
        split, tuned = choice.chosen.split, replace(tuned, booster=choice.chosen.booster)
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
        calibration=choose_calibration(config, y_val, probability),
        window_choice=choice,
    )


def _search(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    split: LabelledSplit,
    champion: ModelVersion | None,
) -> tuple[TunedModel, pd.DataFrame, float]:
    """FLAML's search, warm from the champion's configuration, with its trial history and the
    budget it was given."""
    starting_config = (
        champion_starting_config(context.resources.registry.client, champion)
        if config.warm_start
        else None
    )
    budget_s = config.time_budget_s * (config.warm_budget_share if starting_config else 1.0)
    # The longest part of a training: say it has started, and for how long, in the run's log.
    context.log.info(
        f"searching LightGBM configurations for {budget_s:g} s on {len(split.train)} rows"
        + (" (warm from the champion's)" if starting_config else "")
    )
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
    context.log.info(f"search done: {len(history)} trials")
    if tuned.out_of_time:
        context.log.warning(
            f"no FLAML trial finished within {budget_s:g} s: fitted one configuration without a "
            "time limit instead (raise time_budget_s on a machine this loaded)"
        )
    return tuned, history, budget_s
