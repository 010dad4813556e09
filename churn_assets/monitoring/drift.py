"""Evidently 0.7 data drift, reduced to one row per column and one verdict per cohort."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


@dataclass(frozen=True)
class DriftResult:
    columns: pd.DataFrame  # column_name, method, score, threshold, drifted
    drifted_share: float
    dataset_drift: bool


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    drift_share: float,
    html_path: Path,
) -> DriftResult:
    """Run Evidently's DataDriftPreset, save its HTML, return per-column scores and the verdict.

    Evidently picks the test per column (K-S or chi-square p-values on small samples, Wasserstein
    or Jensen-Shannon distances on large ones): a p-value drifts when below its threshold, a
    distance when at or above it.
    """
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    columns = numerical + categorical
    snapshot = Report([DataDriftPreset(drift_share=drift_share)]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))
    rows = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        method, threshold, score = config["method"], float(config["threshold"]), metric["value"]
        score = float(score)
        drifted = score < threshold if "p_value" in method else score >= threshold
        rows.append((config["column"], method, score, threshold, drifted))
    frame = pd.DataFrame(rows, columns=["column_name", "method", "score", "threshold", "drifted"])
    share = float(frame["drifted"].mean()) if len(frame) else 0.0
    return DriftResult(columns=frame, drifted_share=share, dataset_drift=share >= drift_share)
