"""The model the API serves: the registry's champion, followed when the alias moves.

A background thread asks the registry every few seconds which version is champion. A new one is
loaded whole, off to the side, and only then swapped in as one reference, so every request is
answered by one complete model, and no restart is needed when the champion changes.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn_assets.modeling.calibration import ChurnModel, load_churn_model
from churn_assets.resources import ModelRegistryResource
from churn_assets.scoring.buckets import ScoringConfig, assign_buckets, cut_off_policy
from churn_assets.scoring.reasons import explain_rows
from churn_assets.settings import CHAMPION_ALIAS

log = logging.getLogger("churn_assets.serving")

# How often the server asks the registry which version is champion.
POLL_S = 5.0
# Scoring's default bucket cut-offs (A from, B from), as the predictions asset applies them.
BUCKET_THRESHOLDS = (
    ScoringConfig().bucket_a_min_probability,
    ScoringConfig().bucket_b_min_probability,
)
CUT_OFF_POLICY = cut_off_policy(*BUCKET_THRESHOLDS)


class OneThread:
    """A booster whose every prediction runs on one thread: a request is one row, and threads
    would only fight over the server's cores."""

    def __init__(self, booster: lgb.Booster) -> None:
        self._booster = booster

    def predict(self, data: Any, **kwargs: Any) -> np.ndarray:
        return self._booster.predict(data, **{**kwargs, "num_threads": 1})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._booster, name)


@dataclass(frozen=True)
class ServingModel:
    """One registered version, loaded whole, with what it says of itself."""

    version: str
    model: ChurnModel  # its booster on one thread, and its calibration
    features: tuple[str, ...]
    tags: dict[str, str]
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def booster(self) -> OneThread:
        return self.model.booster

    @property
    def training_cohorts(self) -> list[str]:
        return json.loads(self.tags.get("training_cohorts", "[]"))

    @property
    def validation_cohort(self) -> str | None:
        return self.tags.get("validation_cohort")


@dataclass(frozen=True)
class Score:
    churn_probability: float
    bucket: str
    top_reasons: str
    bucket_policy: str


@dataclass(frozen=True)
class BatchAnswer:
    """What batch scoring stored for a user, when the serving version is the one that scored."""

    bucket: str
    bucket_policy: str | None
    top_reasons: str | None
    reasons_from: str | None  # the record's: "batch" or "publication" where it has reasons


def score(model: ServingModel, values: dict[str, Any], batch: BatchAnswer | None = None) -> Score:
    """Probability as batch scoring gives it; the batch's bucket and reasons where it has them.

    A bucket drawn by capacity ranks the whole cohort, which one row cannot redo: the stored one
    is served. Without one (features posted, or another version scored), the cut-offs draw it.
    Values convert as :func:`churn_assets.modeling.frame.as_matrix` converts a cohort: numbers to
    float64, other values parsed as numbers, what does not parse (and null) as missing.
    """
    row = np.array([[_number(values[c]) for c in model.features]], dtype="float64")
    probability = model.model.predict(row)  # calibrated, as batch scoring's
    if batch is not None:
        bucket, policy = batch.bucket, batch.bucket_policy or "as batch scoring drew it"
    else:
        bucket, policy = str(assign_buckets(probability, *BUCKET_THRESHOLDS)[0]), CUT_OFF_POLICY
    reasons = batch.top_reasons if batch is not None else None
    if reasons is None:
        # Worded as batch scoring words them (scoring/assets.py), from the same numpy row: a
        # DataFrame would cost LightGBM a millisecond of checks for one row.
        reasons = str(explain_rows(model.booster, row, list(model.features))[0])
    return Score(float(probability[0]), bucket, reasons, policy)


def _number(value: Any) -> float:
    if value is None:
        return np.nan
    if isinstance(value, bool | int | float):
        return float(value)
    return float(pd.to_numeric(pd.Series([value], dtype=object), errors="coerce").iloc[0])


class ChampionFollower:
    """Holds the serving model and follows the champion alias from a background thread."""

    def __init__(self, registry: ModelRegistryResource, poll_s: float = POLL_S) -> None:
        self.registry = registry
        self.alias = CHAMPION_ALIAS
        self.poll_s = poll_s
        self._model: ServingModel | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()

    @property
    def model(self) -> ServingModel | None:
        """The model to answer with: read once per request, it never changes under it."""
        return self._model

    def refresh(self) -> bool:
        """Load the champion if the alias moved; True when the serving model changed."""
        with self._refresh_lock:
            champion = self.registry.champion()
            if champion is None or (
                self._model is not None and self._model.version == str(champion.version)
            ):
                return False
            model = load_churn_model(self.registry, champion)
            loaded = ServingModel(
                version=model.version,
                model=replace(model, booster=OneThread(model.booster)),
                features=tuple(model.features),
                tags=dict(champion.tags),
            )
            previous, self._model = self._model, loaded  # the swap: one reference
        log.info(
            "serving %s v%s (was %s)",
            self.registry.model_name,
            loaded.version,
            f"v{previous.version}" if previous else "none",
        )
        return True

    def start(self) -> None:
        """Load the champion now (if any), then keep following it."""
        self._safe_refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="champion-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_s + 5)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._safe_refresh()

    def _safe_refresh(self) -> None:
        """A registry that does not answer, or a version that does not load, leaves the model
        being served in place; the next poll tries again."""
        try:
            self.refresh()
        except Exception as exc:  # any failure keeps the current model
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("champion not refreshed: %s", reason)
