"""Seeded simulator of raw subscription logs in the KKBox "WSDM churn" landing format."""

from .arrivals import stage_arrivals
from .drift import Drift, parse_drift
from .fuzz import describe_world, draw_world
from .knobs import DEGENERATE_KINDS, parse_late, parse_missing
from .labels import kkbox_churn_labels
from .runner import SimulationSummary, simulate

__all__ = [
    "DEGENERATE_KINDS",
    "Drift",
    "SimulationSummary",
    "describe_world",
    "draw_world",
    "kkbox_churn_labels",
    "parse_drift",
    "parse_late",
    "parse_missing",
    "simulate",
    "stage_arrivals",
]
