"""What a retrain after a persistent performance failure learns from: a choice among windows.

After a concept shift the default window still mixes the old relationship with the new, and a
model fitted on it recovers only part of the way. When the training was launched because the
champion's performance failed persistently (``"performance"`` in ``champion_in_question``),
three windows are weighed out of time:

* ``full``: every training cohort, unweighted (what every other training learns from);
* ``recent_<n>``: only the newest ``recent_window_cohorts`` training cohorts;
* ``recency_weighted``: every training cohort, each row weighted ``0.5 ** (age / half-life)``
  with its cohort's age in months counted from the newest training cohort.

FLAML searches once, on the full window, as every training does; its configuration is then
refitted on the other windows, exactly as FLAML fits its final model (on the full window the
refit is the search's own booster). Splitting the budget three ways would give each search a
third of the trials and make the default worse in the common case; one search and two refits
cost little more than the search alone and keep the choice fair in the one direction that
matters: the configuration was chosen for the full window, on these validation users, so any
bias favours the default.

Every window is scored on the same validation users, of the cohort the split holds out of every
fit. They are the users the search is scored on: the window is one more tuning choice, so the
held-out share of the cohort stays neutral for the comparison with the champion. The best
alternative by the search metric replaces the full window only when better beyond doubt: the
paired bootstrap interval of its difference from the full window (same users resampled for
both) lies wholly on the better side of zero. Otherwise the default stays.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import date

import dagster as dg
import lightgbm as lgb
import numpy as np
import pandas as pd
from flaml.automl.model import LGBMEstimator

from churn_assets.modeling.bootstrap import HIGHER_IS_BETTER, paired_differences
from churn_assets.modeling.frame import LABEL, as_matrix, predict_probability
from churn_assets.modeling.metrics import classification_metrics
from churn_assets.training.config import TrainingConfig
from churn_assets.training.search import ClassWeight, TunedModel, class_weights
from churn_assets.training.split import LabelledSplit

# The trigger after which the window is chosen rather than taken as it is.
CHOICE_TRIGGER = "performance"
FULL = "full"
WEIGHTED = "recency_weighted"
_NAN = (float("nan"), float("nan"))


@dataclass(frozen=True)
class WindowCandidate:
    """One window: what it learns from, the booster fitted on it, and its validation score."""

    name: str
    split: LabelledSplit  # its training rows and cohorts; validation shared by all
    booster: lgb.Booster
    metrics: dict[str, float]  # on the validation users
    half_life: float | None = None  # recency weights' half-life in cohorts, when weighted
    # Paired bootstrap interval of this window's metric minus the full window's.
    difference: tuple[float, float] = _NAN


@dataclass(frozen=True)
class WindowChoice:
    chosen: WindowCandidate
    candidates: list[WindowCandidate]  # the full window first
    metric: str  # what the choice was made on: "log_loss" or "auc"
    reason: str

    def summary(self) -> dict[str, dict[str, object]]:
        """Every window's cohorts, rows and validation figures, by name."""
        return {
            c.name: {
                "training_cohorts": [f"{m:%Y-%m}" for m in c.split.training_cohorts],
                "half_life_cohorts": c.half_life,
                "train_rows": len(c.split.train),
                "val_log_loss": round(c.metrics["log_loss"], 6),
                "val_auc": round(c.metrics["auc"], 6),
                f"{self.metric}_diff_interval": [
                    None if math.isnan(v) else round(v, 6) for v in c.difference
                ],
            }
            for c in self.candidates
        }

    def params(self) -> dict[str, str]:
        """The MLflow parameters of the training run."""
        return {
            "window_choice": self.chosen.name,
            "window_candidates": json.dumps(self.summary()),
        }

    def run_metrics(self) -> dict[str, float]:
        return {
            f"window_{c.name}_val_{k}": c.metrics[k]
            for c in self.candidates
            for k in ("log_loss", "auc")
            if not math.isnan(c.metrics[k])
        }

    def tags(self) -> dict[str, str]:
        """What the run and the registered version say of the choice."""
        return {
            "window_choice": self.chosen.name,
            "window_choice_reason": self.reason,
        }

    def table(self) -> str:
        """The windows side by side, for the materialization."""
        rows = {
            c.name: {
                "cohorts": _cohorts_text(c.split.training_cohorts, c.half_life),
                "train rows": len(c.split.train),
                "val log loss": round(c.metrics["log_loss"], 4),
                "val AUC": round(c.metrics["auc"], 4),
                f"{self.metric} vs full": _interval_text(c.difference),
                "chosen": "yes" if c is self.chosen else "",
            }
            for c in self.candidates
        }
        return pd.DataFrame(rows).T.to_markdown()

    def metadata(self) -> dict[str, object]:
        return {
            "window_choice": self.chosen.name,
            "window_choice_reason": self.reason,
            "window_candidates": dg.MetadataValue.md(self.table()),
        }


def _cohorts_text(cohorts: list[date], half_life: float | None) -> str:
    text = f"{cohorts[0]:%Y-%m}..{cohorts[-1]:%Y-%m}" if cohorts else ""
    return text + (f", half-life {half_life:g}" if half_life else "")


def _interval_text(interval: tuple[float, float]) -> str:
    return "" if math.isnan(interval[0]) else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"


def window_choice_wanted(config: TrainingConfig) -> bool:
    """Only a persistent performance failure says the window itself may be what went wrong."""
    return CHOICE_TRIGGER in config.champion_in_question


def cohort_ages(months: pd.Series) -> np.ndarray:
    """Each row's cohort age in months, counted from the newest cohort among the rows."""
    stamps = pd.to_datetime(months)
    index = stamps.dt.year * 12 + stamps.dt.month
    return (index.max() - index).to_numpy(dtype=np.float64)


def recency_weights(months: pd.Series, half_life: float) -> np.ndarray:
    """Row weights halving every ``half_life`` cohorts of age; the newest cohort weighs 1."""
    return 0.5 ** (cohort_ages(months) / half_life)


def recent_split(split: LabelledSplit, cohorts: int) -> LabelledSplit | None:
    """The split with only the newest ``cohorts`` training cohorts, or None when that is the
    whole window or leaves a single class to learn from."""
    if len(split.training_cohorts) <= cohorts:
        return None
    kept = split.training_cohorts[-cohorts:]
    train = split.train[pd.to_datetime(split.train["cohort_month"]).dt.date.isin(kept)]
    if train[LABEL].nunique() < 2:
        return None
    return replace(split, train=train, training_cohorts=kept)


def refit(
    best_config: dict,
    split: LabelledSplit,
    class_weight: ClassWeight,
    recency: np.ndarray | None = None,
) -> lgb.Booster:
    """The search's configuration fitted on a window, as FLAML fits its final model."""
    y = split.train[LABEL].to_numpy()
    weights = class_weights(y, class_weight)
    if recency is not None:
        weights = recency if weights is None else weights * recency
    estimator = LGBMEstimator(task="classification", n_jobs=2, **best_config)
    kwargs = {} if weights is None else {"sample_weight": weights}
    estimator.fit(as_matrix(split.train, split.feature_columns), y, **kwargs)
    return estimator.model.booster_


def _scored(
    name: str, split: LabelledSplit, booster: lgb.Booster, half_life: float | None = None
) -> WindowCandidate:
    y = split.validation[LABEL].to_numpy()
    metrics = classification_metrics(y, predict_probability(booster, split.validation))
    return WindowCandidate(name, split, booster, metrics, half_life)


def window_candidates(
    config: TrainingConfig, split: LabelledSplit, tuned: TunedModel
) -> list[WindowCandidate]:
    """The full window (the search's own booster), and the alternatives the window allows."""
    found = [_scored(FULL, split, tuned.booster)]
    recent = recent_split(split, config.recent_window_cohorts)
    if recent is not None:
        booster = refit(tuned.best_config, recent, config.class_weight)
        found.append(_scored(f"recent_{len(recent.training_cohorts)}", recent, booster))
    if len(split.training_cohorts) > 1:
        half_life = config.recency_half_life_cohorts
        weights = recency_weights(split.train["cohort_month"], half_life)
        booster = refit(tuned.best_config, split, config.class_weight, weights)
        found.append(_scored(WEIGHTED, split, booster, half_life))
    return found


def choice_metric(config: TrainingConfig) -> str:
    """The bootstrap's name of the metric in force for the search."""
    return "auc" if config.search_metric == "roc_auc" else "log_loss"


def with_differences(
    candidates: list[WindowCandidate], metric: str, config: TrainingConfig
) -> list[WindowCandidate]:
    """Each alternative with the paired interval of its metric minus the full window's."""
    full = candidates[0]
    y = full.split.validation[LABEL].to_numpy()
    reference = predict_probability(full.booster, full.split.validation)
    return [full] + [
        replace(
            c,
            difference=paired_differences(
                y,
                predict_probability(c.booster, c.split.validation),
                reference,
                (metric,),
                resamples=config.promotion_resamples,
                confidence=config.promotion_confidence,
                seed=config.seed,
            )[metric],
        )
        for c in candidates[1:]
    ]


def pick_window(candidates: list[WindowCandidate], metric: str) -> tuple[WindowCandidate, str]:
    """The best alternative when better than the full window beyond doubt, else the full one."""
    full, alternatives = candidates[0], candidates[1:]
    if not alternatives:
        return full, "no alternative window: too few training cohorts"
    higher = HIGHER_IS_BETTER[metric]
    best = max(alternatives, key=lambda c: c.metrics[metric] if higher else -c.metrics[metric])
    low, high = best.difference
    better = (low > 0) if higher else (high < 0)
    verdict = (
        f"{best.name} val {metric} {best.metrics[metric]:.4f} vs full "
        f"{full.metrics[metric]:.4f}, difference interval {_interval_text(best.difference)}"
    )
    if better:
        return best, f"{verdict}: better beyond doubt"
    return full, f"{verdict}: not better beyond doubt, the full window stays"


def choose_window(config: TrainingConfig, split: LabelledSplit, tuned: TunedModel) -> WindowChoice:
    """Fit the search's configuration on each window, score all out of time, and pick one."""
    metric = choice_metric(config)
    candidates = with_differences(window_candidates(config, split, tuned), metric, config)
    chosen, reason = pick_window(candidates, metric)
    return WindowChoice(chosen, candidates, metric, reason)
