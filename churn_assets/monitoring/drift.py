"""The drift report people read: Evidently's HTML on a bounded sample, kept per cohort and model
version, and logged to MLflow as a short run of its own.

The verdicts do not come from here (see :mod:`churn_assets.monitoring.psi`): Evidently's own
per-column tests, on a sample, are for the eye. Its cost grows with rows and columns, so it sees
at most a few thousand rows of each side and the columns that matter most.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient

from churn_assets.keys import RUN_KIND_TAG
from churn_assets.resources import ensure_experiment
from churn_assets.settings import EXPERIMENT_NAME

# The tag dagster-mlflow gives its runs: the reaper ends a RUNNING run whose Dagster run is over.


def html_report_path(folder: Path, cohort: date, model_version: str) -> Path:
    """``drift/drift_YYYY-MM_vN.html``: one file per cohort and reference model version."""
    return folder / "drift" / f"drift_{cohort:%Y-%m}_v{model_version}.html"


def save_html_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    html_path: Path,
    note: str = "",
) -> Path:
    """Evidently's DataDriftPreset over the given columns of two (small) frames, as HTML, with
    ``note`` (HTML) at the top of the page."""
    # Imported here, not with the module: Evidently is a large share of loading the
    # definitions, which every run, sensor tick and CLI command pays; only this page needs it.
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    columns = numerical + categorical
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))
    if note:
        with_note(html_path, note)
    return html_path


def with_note(html_path: Path, note: str) -> None:
    """Put ``note`` at the top of a saved page, in a box of its own."""
    box = (
        '<div style="font-family:system-ui,sans-serif;margin:1em;padding:0.8em 1em;'
        'border:1px solid #ccc;background:#fffbe6;max-width:60em">' + note + "</div>"
    )
    page = html_path.read_text(encoding="utf-8")
    body = re.search(r"<body[^>]*>", page, flags=re.IGNORECASE)
    at = body.end() if body else 0
    html_path.write_text(page[:at] + box + page[at:], encoding="utf-8")


def log_drift_run(
    tracking_uri: str,
    artifact_root: Path | None,
    cohort: date,
    model_version: str,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, Path],
    texts: Mapping[str, str] | None = None,
) -> str:
    """A short MLflow run ``drift-YYYY-MM`` in the ``churn`` experiment; its run id.

    The tracking client is used directly, never MLflow's process-wide active run, which a
    training step in the same process may hold. ``artifacts`` maps artifact folders to files.
    """
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(tracking_uri, artifact_root, EXPERIMENT_NAME)
    run = client.create_run(
        experiment_id,
        run_name=f"drift-{cohort:%Y-%m}",
        tags={
            RUN_KIND_TAG: "drift",
            "cohort_month": cohort.isoformat(),
            "model_version": str(model_version),
            **tags,
        },
    )
    run_id = run.info.run_id
    try:
        now_ms = int(time.time() * 1000)
        client.log_batch(
            run_id, metrics=[Metric(k, float(v), now_ms, 0) for k, v in metrics.items()]
        )
        for folder, path in artifacts.items():
            client.log_artifact(run_id, str(path), artifact_path=folder)
        for name, text in (texts or {}).items():
            client.log_text(run_id, text, name)
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run_id
