"""Test helpers: resources pointed at a temporary CHURN_HOME."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from churn_assets.resources import default_resources


def resources_for(home: Path, landing: Path | None = None) -> dict[str, Any]:
    env = {"CHURN_HOME": str(home)}
    if landing is not None:
        env["CHURN_LANDING_DIR"] = str(landing)
    return default_resources(env)
