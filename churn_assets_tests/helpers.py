"""Test helpers: resources pointed at a temporary CHURN_HOME."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from churn_assets.resources import default_resources


def resources_for(home: Path, landing: Path | None = None) -> dict[str, Any]:
    env = {"CHURN_HOME": str(home)}
    if landing is not None:
        env["CHURN_LANDING_DIR"] = str(landing)
    return default_resources(env)


def materialize(assets: list, **kwargs: Any) -> dg.ExecuteInProcessResult:
    """``dg.materialize`` on an instance that is closed afterwards.

    Left to itself, ``materialize`` makes an ephemeral instance it never closes; that instance
    stays registered as the current definitions-state storage after it is garbage collected, and
    the next Definitions load fails on it.
    """
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(assets, instance=instance, **kwargs)
