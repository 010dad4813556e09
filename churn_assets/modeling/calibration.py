"""A registered version as every consumer scores with it: its booster and its calibration.

The booster ranks; the buckets, the estimate made before labels and the calibration monitor read
its scores as probabilities. Training fits a monotone map from the booster's raw score to the
churn observed on the out-of-time validation cohort (:mod:`churn_assets.training.calibration`)
and stores it in the version's ``calibration`` tag. :class:`ChurnModel` is the one place that
turns a registered version into probabilities: batch scoring, serving, the backtests, prediction
drift and the champion comparison all ask it, so a user's probability is the same number
wherever it is read. A version without the tag (registered before calibration existed) maps its
raw score as is.

* ``none``: the raw score.
* ``platt``: ``sigmoid(slope * logit(raw) + intercept)``, two parameters: what a cohort with few
  churners can support.
* ``isotonic``: the raw score interpolated linearly between fitted knots (``x`` rising, ``y``
  non-decreasing), clipped at the ends, as scikit-learn's ``IsotonicRegression`` predicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from churn_assets.keys import CALIBRATION_TAG
from churn_assets.modeling.frame import as_matrix
from churn_assets.resources import ModelRegistryResource

CalibrationMethod = Literal["none", "platt", "isotonic"]
_LOGIT_CLIP = 1e-7


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of a probability, clipped so 0 and 1 stay finite."""
    clipped = np.clip(np.asarray(p, dtype="float64"), _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.log(clipped) - np.log1p(-clipped)


@dataclass(frozen=True)
class Calibration:
    """A monotone map from the booster's raw score to a calibrated churn probability."""

    method: CalibrationMethod = "none"
    slope: float = 1.0
    intercept: float = 0.0
    x: tuple[float, ...] = field(default_factory=tuple)
    y: tuple[float, ...] = field(default_factory=tuple)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """The probability for each raw score."""
        raw = np.asarray(raw, dtype="float64")
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.slope * logit(raw) + self.intercept)))
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        return raw

    def to_tag(self) -> str:
        """The JSON the version's ``calibration`` tag holds."""
        body: dict[str, Any] = {"method": self.method}
        if self.method == "platt":
            body |= {"slope": self.slope, "intercept": self.intercept}
        elif self.method == "isotonic":
            body |= {"x": list(self.x), "y": list(self.y)}
        return json.dumps(body)

    @classmethod
    def from_tag(cls, text: str | None) -> Calibration:
        """The calibration a tag holds; none for a version without one."""
        if not text:
            return cls()
        body = json.loads(text)
        method = body.get("method", "none")
        if method == "platt":
            return cls("platt", slope=float(body["slope"]), intercept=float(body["intercept"]))
        if method == "isotonic":
            x, y = tuple(map(float, body["x"])), tuple(map(float, body["y"]))
            if not x or len(x) != len(y):
                raise ValueError(f"calibration tag: isotonic knots x and y differ: {text[:200]}")
            return cls("isotonic", x=x, y=y)
        if method != "none":
            raise ValueError(f"calibration tag: unknown method {method!r}")
        return cls()


@dataclass(frozen=True)
class ChurnModel:
    """A version's booster (ranks, explains) and the calibration its probabilities go through."""

    version: str
    booster: Any  # lgb.Booster, or a wrapper with its predict and feature_name
    calibration: Calibration = field(default_factory=Calibration)

    @property
    def features(self) -> list[str]:
        return list(self.booster.feature_name())

    def predict(self, values: Any, **kwargs: Any) -> np.ndarray:
        """Calibrated churn probability of each row of a matrix in :attr:`features` order;
        ``kwargs`` go to the booster (``num_threads``)."""
        return self.calibration.apply(self.booster.predict(values, **kwargs))

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability of each row of a feature frame (KeyError naming the
        missing columns when the frame lacks one the booster was trained on)."""
        return self.predict(as_matrix(frame, self.features))


def load_churn_model(registry: ModelRegistryResource, version: ModelVersion | str) -> ChurnModel:
    """A registered version, loaded whole: booster and calibration (from its tag)."""
    if not isinstance(version, ModelVersion):
        version = registry.client.get_model_version(registry.model_name, str(version))
    booster: lgb.Booster = registry.load_model(str(version.version))
    calibration = Calibration.from_tag(version.tags.get(CALIBRATION_TAG))
    return ChurnModel(str(version.version), booster, calibration)
