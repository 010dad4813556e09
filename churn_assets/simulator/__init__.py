"""Seeded simulator of raw subscription logs in the KKBox "WSDM churn" landing format."""

from .drift import Drift, parse_drift
from .labels import kkbox_churn_labels
from .runner import SimulationSummary, simulate

__all__ = ["Drift", "SimulationSummary", "kkbox_churn_labels", "parse_drift", "simulate"]
