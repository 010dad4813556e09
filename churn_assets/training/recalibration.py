"""Recalibrating the champion instead of replacing it.

A champion whose scores no longer mean the churn they announce (the ``champion_calibration``
check) may rank churners as well as ever: its booster is sound, its map from raw score to
probability is stale. When the retraining policy launched a training for that reason
(``"calibration"`` in ``champion_in_question``) and the retrained candidate does not take the
champion's place, the champion's booster gets a new map, chosen exactly as a candidate's is
(:mod:`churn_assets.training.calibration`) on the same validation users: a cohort later than
anything the champion learnt from, so out of time for it.

The recalibrated champion becomes a version of its own (the same booster, a new ``calibration``
tag, ``recalibrated_from`` the champion: scores already served keep the map they were made with)
and the champion only when it beats the current map on the users held out of the search, which
neither map was fitted on: the paired bootstrap's interval of the log-loss difference lies wholly
below zero. Log loss is the measure because a monotone map leaves the ranking, and so the AUC,
as it was; a retrained candidate that ranks better is preferred, since it is judged first.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date

import dagster as dg
import numpy as np
from mlflow.entities.model_registry import ModelVersion

from churn_assets.keys import CALIBRATION_TAG, HELD_OUT_TAG, PROMOTED_TAG, RECALIBRATED_FROM_TAG
from churn_assets.modeling.bootstrap import paired_differences
from churn_assets.modeling.calibration import ChurnModel, load_churn_model
from churn_assets.modeling.frame import LABEL
from churn_assets.modeling.metrics import classification_metrics
from churn_assets.resources import ModelRegistryResource, ModelUnavailableError, version_facts
from churn_assets.settings import REGISTERED_MODEL_NAME
from churn_assets.training.calibration import CalibrationChoice, choose_calibration, log_loss
from churn_assets.training.config import TrainingConfig
from churn_assets.training.lifecycle import change_champion
from churn_assets.training.registration import PERSON_TAGS, register_booster
from churn_assets.training.split import LabelledSplit

# The trigger after which the champion's calibration is refitted when it keeps its place.
RECALIBRATION_TRIGGER = "calibration"


@dataclass(frozen=True)
class Recalibration:
    """The champion's booster with a new map, and how both maps did on the held-out users."""

    champion_version: str
    model: ChurnModel  # the champion's booster and the new map
    choice: CalibrationChoice  # how the map was chosen, on the validation users
    cohort: date
    users: int  # held out of the search: where the two maps are compared
    log_loss_before: float  # the champion's current map
    log_loss_after: float  # the new one
    interval: tuple[float, float]  # after - before, paired bootstrap
    confidence: float
    val_auc: float  # the recalibrated scores' AUC on the validation users it was fitted on

    @property
    def better(self) -> bool:
        return not math.isnan(self.interval[1]) and self.interval[1] < 0

    @property
    def promotes(self) -> bool:
        """A new map (not the raw scores) that beats the current one beyond doubt."""
        return self.choice.method != "none" and self.better

    @property
    def reason(self) -> str:
        low, high = self.interval
        shown = (
            f"champion v{self.champion_version} recalibrated on {self.cohort:%Y-%m} "
            f"({self.choice.method}): log loss {self.log_loss_after:.4f} against "
            f"{self.log_loss_before:.4f} with its current map on {self.users} users held out of "
            f"the search, difference {self.confidence:.0%} interval [{low:+.4f}, {high:+.4f}]"
        )
        if self.choice.method == "none":
            return f"{shown}: no map beat the raw scores, nothing to recalibrate"
        verdict = "better beyond doubt" if self.better else "not better beyond doubt, it stays"
        return f"{shown}: {verdict}"

    def metadata(self) -> dict[str, object]:
        return {
            "recalibration": self.reason,
            "recalibration_method": self.choice.method,
            "recalibration_log_loss_before": self.log_loss_before,
            "recalibration_log_loss_after": self.log_loss_after,
        }


def recalibration_wanted(config: TrainingConfig, champion: ModelVersion | None) -> bool:
    """Only a failing calibration check puts the champion's map in question; a configuration
    that turns calibration off is obeyed."""
    return (
        champion is not None
        and RECALIBRATION_TRIGGER in config.champion_in_question
        and config.calibration != "none"
    )


def recalibrate(
    registry: ModelRegistryResource,
    champion: ModelVersion,
    split: LabelledSplit,
    config: TrainingConfig,
) -> Recalibration | None:
    """A new map for the champion's booster from the validation users, compared with its
    current one on the held-out users; None when there are no held-out users to compare on or
    the champion cannot score the cohort."""
    if split.held_out.empty:
        return None
    try:
        current = load_churn_model(registry, champion)
        raw = ChurnModel(current.version, current.booster)
        y_val = split.validation[LABEL].to_numpy()
        choice = choose_calibration(config, y_val, raw.probability(split.validation))
        refitted = ChurnModel(current.version, current.booster, choice.calibration)
        val_auc = classification_metrics(y_val, refitted.probability(split.validation))["auc"]
        y = split.held_out[LABEL].to_numpy()
        before = current.probability(split.held_out)
        after = refitted.probability(split.held_out)
    except (KeyError, ModelUnavailableError):
        return None
    interval = paired_differences(
        y,
        after,
        before,
        ("log_loss",),
        resamples=config.promotion_resamples,
        confidence=config.promotion_confidence,
        seed=config.seed,
    )["log_loss"]
    return Recalibration(
        str(champion.version),
        refitted,
        choice,
        split.validation_cohort,
        len(y),
        log_loss(y, np.asarray(before)),
        log_loss(y, np.asarray(after)),
        interval,
        config.promotion_confidence,
        val_auc,
    )


def recalibrated_details(
    champion_facts: dict[str, str],
    recalibration: Recalibration,
    as_of: date,
    split: LabelledSplit,
) -> dict[str, str]:
    """The champion's own details with what changed: the map, where it was fitted, and why."""
    details = {k: v for k, v in champion_facts.items() if k != PROMOTED_TAG}
    details.pop("champion_since", None)
    details.pop("champion_until", None)
    return {
        **details,
        "as_of_month": f"{as_of:%Y-%m}",
        # Its map was fitted on this cohort's validation users: what it was last tested on.
        "validation_cohort": f"{split.validation_cohort:%Y-%m-01}",
        "val_auc": f"{recalibration.val_auc:.6f}",
        HELD_OUT_TAG: f"{split.held_out_share:g}",
        CALIBRATION_TAG: recalibration.model.calibration.to_tag(),
        RECALIBRATED_FROM_TAG: recalibration.champion_version,
        "compared_with_champion": recalibration.champion_version,
        "comparison": recalibration.reason,
        "beats_champion": "true",
        "recalibration_log_loss_before": f"{recalibration.log_loss_before:.6f}",
        "recalibration_log_loss_after": f"{recalibration.log_loss_after:.6f}",
        # Last, always: its presence says every tag above was written.
        PROMOTED_TAG: "false",
    }


def register_recalibrated(
    context: dg.AssetExecutionContext,
    recalibration: Recalibration,
    champion: ModelVersion,
    as_of: date,
    split: LabelledSplit,
) -> str:
    """Register the recalibrated champion as a new version and make it champion; all or
    nothing (a version left half-registered is deleted again). Its version."""
    registry: ModelRegistryResource = context.resources.registry
    client = registry.client
    details = recalibrated_details(version_facts(client, champion), recalibration, as_of, split)
    version = register_booster(
        registry.tracking_uri,
        registry.artifact_folder,
        recalibration.model.booster,
        {k: v for k, v in details.items() if k in PERSON_TAGS},
        details=details,
        run_name=(
            f"recalibrate v{recalibration.champion_version} labels {split.validation_cohort:%Y-%m}"
        ),
    )
    try:
        run_id = client.get_model_version(REGISTERED_MODEL_NAME, version).run_id
        client.log_param(run_id, RECALIBRATED_FROM_TAG, recalibration.champion_version)
        client.log_text(
            run_id, json.dumps(recalibration.metadata(), indent=2), "recalibration.json"
        )
        change_champion(
            registry,
            context.resources.warehouse,
            version,
            "auto_promote",
            f"recalibrates champion v{recalibration.champion_version}: {recalibration.reason}",
        )
    except Exception:
        client.delete_model_version(REGISTERED_MODEL_NAME, version)
        raise
    return version
