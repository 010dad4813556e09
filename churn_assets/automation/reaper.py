"""Runs left behind by a process that died: marked failed, so that they are retried.

A run executing in the replay process stays STARTED in Dagster, and its MLflow run RUNNING, when
that process is killed. Replay reaps its own orphans before it starts (it holds the home's lock,
so no other replay can still be running them); under the daemon, Dagster's run monitoring does
the same for launched runs (see the ``run_monitoring`` block the CLI writes to dagster.yaml) and
``mlflow_run_closer`` ends the MLflow run of any failed Dagster run.
"""

from __future__ import annotations

import dagster as dg
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from churn_assets.keys import DAGSTER_RUN_TAG, LAUNCHED_BY_TAG
from churn_assets.settings import EXPERIMENT_NAME

REPLAY = "replay"


def reap_orphaned_runs(instance: dg.DagsterInstance, launched_by: str = REPLAY) -> list[str]:
    """Mark unfinished runs of ``launched_by`` failed; their ids."""
    orphans = [
        run
        for run in instance.get_runs(filters=dg.RunsFilter(tags={LAUNCHED_BY_TAG: launched_by}))
        if not run.is_finished
    ]
    for run in orphans:
        instance.report_run_failed(
            run, f"its {launched_by} process ended before the run did; marked failed to retry"
        )
    return [run.run_id for run in orphans]


def end_orphaned_mlflow_runs(instance: dg.DagsterInstance, tracking_uri: str) -> list[str]:
    """End as FAILED every RUNNING MLflow run whose Dagster run has finished or is unknown."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        return []
    ended = []
    try:
        running = client.search_runs(
            [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
        )
    except MlflowException:
        return []
    for run in running:
        dagster_run = instance.get_run_by_id(run.data.tags.get(DAGSTER_RUN_TAG, ""))
        if dagster_run is None or dagster_run.is_finished:
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
            ended.append(run.info.run_id)
    return ended
