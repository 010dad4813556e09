"""Action buckets: which users the retention team calls (A), sends an offer (B) or thanks (C)."""

import dagster as dg
import numpy as np
from pydantic import Field

from churn_assets.settings import BUCKET_A_MIN_PROBABILITY, BUCKET_B_MIN_PROBABILITY


class ScoringConfig(dg.Config):
    bucket_a_min_probability: float = Field(
        default=BUCKET_A_MIN_PROBABILITY, description="Score from which bucket A."
    )
    bucket_b_min_probability: float = Field(
        default=BUCKET_B_MIN_PROBABILITY, description="Score from which bucket B."
    )


def assign_buckets(probability: np.ndarray, a_min: float, b_min: float) -> np.ndarray:
    """A from ``a_min`` up, B from ``b_min`` up to below ``a_min``, C below ``b_min``."""
    if not 0 <= b_min <= a_min <= 1:
        raise ValueError(f"bucket thresholds must satisfy 0 <= B ({b_min}) <= A ({a_min}) <= 1")
    return np.where(probability >= a_min, "A", np.where(probability >= b_min, "B", "C"))
