"""Dagster's notes on its own beta, preview and superseded APIs, silenced once for every entry
point: the ``churn-assets`` command and the code server ``dagster dev`` starts both import this
package before any asset is defined.

Only those three categories are silenced: every other warning, and every error, still shows.
MLflow's bars for artifacts it downloads (a model, a version's details: a few kilobytes read
locally) are off unless the environment turns them on.
"""

import os
import warnings

import dagster as dg

# The notes Dagster attaches to APIs this project uses on purpose (partitioned check specs,
# backfill policies, dagster-mlflow's hook): they say nothing a user of the project can act on.
KNOWN_DAGSTER_NOTES: tuple[type[Warning], ...] = (
    dg.BetaWarning,
    dg.PreviewWarning,
    dg.SupersessionWarning,
)


def quiet_dagster_notes() -> None:
    """Ignore the known Dagster notes in this process (idempotent)."""
    for category in KNOWN_DAGSTER_NOTES:
        warnings.filterwarnings("ignore", category=category)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
