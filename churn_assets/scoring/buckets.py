"""Action buckets: which users the retention team calls (A), sends an offer (B) or thanks (C)."""

import dagster as dg
import numpy as np
from pydantic import Field

from churn_assets.settings import BUCKET_A_MIN_PROBABILITY, BUCKET_B_MIN_PROBABILITY

# The retention playbook: what each bucket gets.
ACTIONS = {"A": "call", "B": "offer", "C": "thank-you"}


# Tabulating a 300-tree x 63-leaf model takes seconds, which pred_contrib spends on a few hundred
# rows of it; a small model tabulates in a tenth of a second, the time of a couple of thousand.
TABULATE_FROM_ROWS = 5_000


class ScoringConfig(dg.Config):
    bucket_a_min_probability: float = Field(
        default=BUCKET_A_MIN_PROBABILITY, description="Score from which bucket A."
    )
    bucket_b_min_probability: float = Field(
        default=BUCKET_B_MIN_PROBABILITY, description="Score from which bucket B."
    )
    tabulate_contributions_from: int = Field(
        default=TABULATE_FROM_ROWS,
        ge=0,
        description="Users to explain from which the champion's trees are tabulated once "
        "(modeling/contributions.py: the same exact contributions, several to hundreds of "
        "times cheaper a row) instead of LightGBM's pred_contrib row by row; below it the "
        "one-off build would cost more than it saves.",
    )


class PublicationConfig(dg.Config):
    explain_every_user: bool = Field(
        default=True,
        description="Give the online store reasons for the scored users batch left unexplained "
        "(bucket C), computed when the cohort is published, by the version that scored it and in "
        "the same words: the API then answers every user of the cohort from the store, instead "
        "of running TreeSHAP for one row inside a request (milliseconds for a large model).",
    )
    tabulate_contributions_from: int = Field(
        default=TABULATE_FROM_ROWS,
        ge=0,
        description="Users to explain from which the scoring version's trees are tabulated once "
        "(as ScoringConfig's field of the same name).",
    )


def assign_buckets(probability: np.ndarray, a_min: float, b_min: float) -> np.ndarray:
    """A from ``a_min`` up, B from ``b_min`` up to below ``a_min``, C below ``b_min``."""
    if not 0 <= b_min <= a_min <= 1:
        raise ValueError(f"bucket thresholds must satisfy 0 <= B ({b_min}) <= A ({a_min}) <= 1")
    return np.where(probability >= a_min, "A", np.where(probability >= b_min, "B", "C"))


def cut_off_policy(a_min: float, b_min: float) -> str:
    """The policy as the list and the table name it."""
    return f"cut-offs: A from {a_min:g}, B from {b_min:g}"


def capacity_buckets(
    probability: np.ndarray,
    control: np.ndarray,
    calls: int,
    b_min: float,
    tie_break: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Bucket A holds exactly ``calls`` users outside the control group, the riskiest (equal
    scores by ``tie_break``, lowest first, else by position); control users scored as high are A
    too, so the control group still measures what a call achieves. B and C keep the B cut-off.
    """
    if not 0 <= b_min <= 1 or calls < 0:
        raise ValueError(f"bucket thresholds: B ({b_min}) must be in [0, 1], calls ({calls}) >= 0")
    buckets = np.where(probability >= b_min, "B", "C")
    callable_rows = np.flatnonzero(~control)
    if tie_break is None:
        order = np.argsort(-probability[callable_rows], kind="stable")
    else:
        order = np.lexsort((tie_break[callable_rows], -probability[callable_rows]))
    ranked = callable_rows[order]
    chosen = ranked[:calls]
    buckets[chosen] = "A"
    lowest = float(probability[chosen].min()) if len(chosen) else np.inf
    buckets[control & (probability >= lowest)] = "A"
    return buckets, f"capacity: A the {calls} riskiest outside the control group, B from {b_min:g}"
