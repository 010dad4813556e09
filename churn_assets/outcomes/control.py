"""The control group: a stable, configurable share of users held out of every retention action.

Membership is a hash of the user id with a fixed salt, so a user is in the control group in every
cohort, whatever model scores them and whenever they are scored; no state is kept. Actions are
taken on the other users only; comparing both groups' churn once labels land measures what the
actions were worth (see :mod:`churn_assets.outcomes.assets`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Changing the salt reshuffles who is held out: keep it fixed for the life of a deployment.
CONTROL_SALT = "churn-assets-control"
HASH_RANGE = 10_000


def in_control_group(msno: pd.Series | np.ndarray, share: float) -> np.ndarray:
    """Whether each user is held out of actions (``share`` of users, stable per user).

    Ids are hashed as pandas hashes a column of text (an id that is not text, as its ``str``),
    each on its own: they are unique, so factorizing them first, pandas' default for hashing
    each distinct value once, would only cost.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"the control share must be in [0, 1), got {share}")
    ids = np.asarray(msno, dtype=object)
    hashed = pd.util.hash_array(ids, hash_key=CONTROL_SALT[:16].ljust(16, "0"), categorize=False)
    return (hashed % HASH_RANGE) < round(share * HASH_RANGE)
