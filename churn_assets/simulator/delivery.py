"""Delivery faults: the world stays the same, the files that describe it arrive broken.

A ``schema`` drift changes the user_logs files from its month on (one column renamed, added or
dropped; which one is drawn from the seed), an ``outage`` drift loses a share of one month's
listening rows. Both draw from their own random streams, so the world's own rows and every other
file are byte-identical to a run without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from .drift import OUTAGE, SCHEMA, Drift

OUTAGE_MISSING_SHARE = 0.4  # listening rows of the outage month that never arrive
_SCHEMA_STREAM, _OUTAGE_STREAM = 101, 102


@dataclass(frozen=True)
class SchemaChange:
    """One user_logs column renamed (to ``new_column``), added or dropped."""

    change: str  # "rename", "add" or "drop"
    column: str
    new_column: str | None = None

    def apply(self, frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        if self.change == "rename":
            return frame.rename(columns={self.column: self.new_column})
        if self.change == "drop":
            return frame.drop(columns=[self.column])
        return frame.assign(**{self.column: rng.poisson(2.0, len(frame))})

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"change": self.change, "column": self.column}
        if self.new_column:
            out["new_column"] = self.new_column
        return out


SCHEMA_VARIANTS = (
    SchemaChange("rename", "total_secs", "total_seconds"),
    SchemaChange("add", "num_skip"),
    SchemaChange("drop", "num_unq"),
)


class Delivery:
    """Applies the delivery drifts of one seeded run to the user_logs frames as they are written."""

    def __init__(self, seed: int, drifts: list[Drift]) -> None:
        self.seed = seed
        self.schema_from = next((d.month for d in drifts if d.kind == SCHEMA), None)
        self.outage_in = next((d.month for d in drifts if d.kind == OUTAGE), None)
        variant = np.random.default_rng([seed, _SCHEMA_STREAM]).integers(len(SCHEMA_VARIANTS))
        self.schema_change = SCHEMA_VARIANTS[int(variant)]

    def user_logs(self, frame: pd.DataFrame, month: date) -> pd.DataFrame:
        """The month's listening rows as delivered."""
        stream = np.random.default_rng([self.seed, _OUTAGE_STREAM, month.year, month.month])
        if self.outage_in == month:
            frame = frame[stream.random(len(frame)) >= OUTAGE_MISSING_SHARE]
        if self.schema_from is not None and month >= self.schema_from:
            frame = self.schema_change.apply(frame, stream)
        return frame

    def describe(self, drift: Drift) -> dict[str, Any]:
        """The drift as recorded in truth/drift_schedule.json."""
        entry: dict[str, Any] = {"kind": drift.kind, "month": f"{drift.month:%Y-%m-%d}"}
        if drift.kind == SCHEMA:
            entry |= {"table": "user_logs", **self.schema_change.describe()}
        elif drift.kind == OUTAGE:
            entry |= {"table": "user_logs", "missing_share": OUTAGE_MISSING_SHARE}
        return entry
