"""Numbers as a person reads them in the Dagster UI: ``weighted_psi 0.178``, not
``0.17846585896841483``. Only the metadata is rounded; the warehouse tables keep full precision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Significant digits of a number below 1 (a PSI, an AUC, a p-value keeps its leading zeros).
SIGNIFICANT = 3
# Decimals of a number of 1 or more (a duration, a lift).
DECIMALS = 3


def rounded(value: float) -> float:
    """A float to three significant digits below 1, three decimals above; nan and inf as is."""
    if not math.isfinite(value) or value == 0:
        return value
    if abs(value) >= 1:
        return round(value, DECIMALS)
    return float(f"{value:.{SIGNIFICANT}g}")


def readable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` with its plain floats (and float metadata values) rounded for reading."""
    return {key: _readable_value(value) for key, value in metadata.items()}


def _readable_value(value: Any) -> Any:
    # bool is an int, never a float; numpy floats are floats.
    if isinstance(value, float):
        return rounded(float(value))
    if hasattr(value, "dtype") and getattr(value, "shape", None) == () and value.dtype.kind == "f":
        return rounded(float(value))
    if type(value).__name__ == "FloatMetadataValue":
        return type(value)(rounded(value.value)) if value.value is not None else value
    return value
