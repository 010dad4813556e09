"""Which calibration a candidate's scores go through, fitted on its out-of-time validation cohort.

A booster tuned on small cohorts ranks well and still announces the wrong churn: the buckets,
the estimate before labels and the calibration monitor read its scores as probabilities. On the
validation cohort (later than every training row: the drift a model meets in service), each
method is fitted on k - 1 folds and scored on the last, and the out-of-fold log loss decides:

* ``none``, the raw scores, needs no fit: its log loss is the cohort's own;
* ``platt`` (two parameters on the log-odds) whenever every fold holds churners and stayers;
* ``isotonic`` only with ``isotonic_min_positives`` churners: with fewer its steps follow the
  noise of a few churners, which the cross-validation sees too late on a small cohort.

The raw scores are kept unless a method beats them out of fold (by default any gain: a Platt fit
on calibrated scores stays near the identity, while a cohort of a few dozen churners rarely shows
a real miscalibration beyond doubt; ``calibration_confidence`` asks for a paired one-sided test on
the users' log loss instead). The chosen one is refitted on the whole
cohort and stored with the version (:mod:`churn_assets.modeling.calibration` applies it).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from churn_assets.modeling.calibration import Calibration, CalibrationMethod, logit
from churn_assets.training.config import TrainingConfig

_CLIP = 1e-7  # as classification_metrics clips scores for log loss
_KNOT_DIGITS = 6  # isotonic knots are stored rounded: the tag stays short, the map the same


def user_log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, _CLIP, 1 - _CLIP)
    return -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(user_log_loss(y, p)))


def beats_raw(y: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, confidence: float) -> bool:
    """The calibrated scores lose less than the raw: the users' paired log-loss gain is above
    zero at one-sided ``confidence`` (0.5: any gain at all)."""
    gain = user_log_loss(y, raw) - user_log_loss(y, calibrated)
    if len(gain) < 2:
        return False
    spread = float(gain.std(ddof=1)) / np.sqrt(len(gain))
    return float(gain.mean()) > NormalDist().inv_cdf(confidence) * spread


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibration chosen, the figures it was chosen on, and why."""

    calibration: Calibration
    cross_validated: dict[str, float]  # out-of-fold log loss of each method tried
    log_loss_before: float  # raw scores on the validation cohort
    log_loss_after: float  # the chosen method, out of fold (the raw log loss for none)
    brier_before: float
    brier_after: float
    churners: int
    reason: str

    @property
    def method(self) -> CalibrationMethod:
        return self.calibration.method

    def params(self) -> dict[str, object]:
        return {"calibration": self.method, "calibration_churners": self.churners}

    def metrics(self) -> dict[str, float]:
        return {
            "calibration_log_loss_before": self.log_loss_before,
            "calibration_log_loss_after": self.log_loss_after,
            "calibration_brier_before": self.brier_before,
            "calibration_brier_after": self.brier_after,
        } | {f"calibration_cv_log_loss_{m}": v for m, v in self.cross_validated.items()}

    def metadata(self) -> dict[str, object]:
        return {
            "calibration": self.method,
            "calibration_reason": self.reason,
            "calibration_log_loss_before": self.log_loss_before,
            "calibration_log_loss_after": self.log_loss_after,
            "calibration_brier_before": self.brier_before,
            "calibration_brier_after": self.brier_after,
        }


def fit_calibration(method: CalibrationMethod, y: np.ndarray, raw: np.ndarray) -> Calibration:
    """One method fitted on labels ``y`` and raw scores ``raw``."""
    if method == "platt":
        model = LogisticRegression(C=1e6, max_iter=1000)
        model.fit(logit(raw)[:, None], y)
        return Calibration("platt", slope=float(model.coef_[0, 0]),
                           intercept=float(model.intercept_[0]))  # fmt: skip
    if method == "isotonic":
        # Kept half a user from 0 and 1: a step with no churner in the fitting rows is not a
        # promise that nobody there churns, and log loss punishes that promise without limit.
        edge = 0.5 / len(y)
        model = IsotonicRegression(y_min=edge, y_max=1 - edge, out_of_bounds="clip").fit(raw, y)
        x = np.round(model.X_thresholds_, _KNOT_DIGITS)
        keep = np.r_[True, np.diff(x) > 0]  # rounding may merge neighbouring knots
        y_knots = np.round(model.y_thresholds_[keep], _KNOT_DIGITS)
        return Calibration("isotonic", x=tuple(map(float, x[keep])), y=tuple(map(float, y_knots)))
    return Calibration()


def _out_of_fold(
    method: CalibrationMethod, y: np.ndarray, raw: np.ndarray, folds: StratifiedKFold
) -> np.ndarray:
    predicted = np.empty(len(y))
    for fit_rows, score_rows in folds.split(raw, y):
        calibration = fit_calibration(method, y[fit_rows], raw[fit_rows])
        predicted[score_rows] = calibration.apply(raw[score_rows])
    return predicted


def _methods(config: TrainingConfig, churners: int, stayers: int) -> list[CalibrationMethod]:
    """The methods worth trying on a cohort with this many churners and stayers."""
    if min(churners, stayers) < config.calibration_folds:
        return []  # some fold would lack a class: nothing can be fitted and judged
    if config.calibration != "auto":
        return [] if config.calibration == "none" else [config.calibration]
    if churners >= config.isotonic_min_positives:
        return ["platt", "isotonic"]
    return ["platt"]


def choose_calibration(config: TrainingConfig, y: np.ndarray, raw: np.ndarray) -> CalibrationChoice:
    """The calibration of the lowest out-of-fold log loss on the validation cohort (raw scores
    unless a method beats them; a method named in ``config`` is kept whatever it scores)."""
    y, raw = np.asarray(y, dtype="float64"), np.asarray(raw, dtype="float64")
    churners = int(y.sum())
    before, brier_before = log_loss(y, raw), brier(y, raw)
    scores, predicted = {"none": before}, {"none": raw}
    folds = StratifiedKFold(config.calibration_folds, shuffle=True, random_state=config.seed)
    for method in _methods(config, churners, len(y) - churners):
        predicted[method] = _out_of_fold(method, y, raw, folds)
        scores[method] = log_loss(y, predicted[method])
    best = min(scores, key=scores.__getitem__)
    if config.calibration not in ("auto", "none") and config.calibration in scores:
        best, reason = config.calibration, f"{config.calibration} as configured"
    elif len(scores) == 1:
        reason = (
            f"raw scores kept: {churners} churners cannot fill {config.calibration_folds} folds"
        )
    elif best == "none" or not beats_raw(y, raw, predicted[best], config.calibration_confidence):
        best, reason = (
            "none",
            (
                f"raw scores kept: no method beat their log loss {before:.4f} out of fold beyond "
                f"noise (best {min(scores.values()):.4f})"
            ),
        )
    else:
        reason = f"{best}: out-of-fold log loss {scores[best]:.4f} against {before:.4f} raw"
    return CalibrationChoice(
        calibration=fit_calibration(best, y, raw),
        cross_validated={m: v for m, v in scores.items() if m != "none"},
        log_loss_before=before,
        log_loss_after=scores[best],
        brier_before=brier_before,
        brier_after=brier(y, predicted[best]),
        churners=churners,
        reason=reason,
    )
