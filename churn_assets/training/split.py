"""Training rows from earlier cohorts, validation rows from a later one: never a random split."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from churn_assets.modeling.frame import LABEL


@dataclass(frozen=True)
class LabelledSplit:
    """Training rows from earlier cohorts, validation rows from the newest labelled cohort.

    ``held_out`` are users of the validation cohort kept from the search altogether (see
    :func:`held_out_users`): neither fitted nor tuned on, they are where the candidate and the
    champion can be compared fairly. ``validation`` is then the rest of that cohort.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    feature_columns: list[str]
    training_cohorts: list[date]
    validation_cohort: date
    held_out: pd.DataFrame = field(default_factory=pd.DataFrame)
    held_out_share: float = 0.0


# Users are split by a hash of msno into this many slots; a share holds out the lowest slots.
_HASH_SLOTS = 10_000


def held_out_users(msno: pd.Series, share: float) -> np.ndarray:
    """True for the users held out of tuning: a fixed hash of msno, not a random draw.

    Every training that validates on a cohort holds out the same users (and a larger share holds
    out a superset), so two versions tuned on one cohort were both blind to the smaller share's
    users, and are compared there on equal terms.
    """
    if share <= 0:
        return np.zeros(len(msno), dtype=bool)
    slots = pd.util.hash_pandas_object(msno.astype(str), index=False).to_numpy() % _HASH_SLOTS
    return slots < round(share * _HASH_SLOTS)


def split_by_time(
    frame: pd.DataFrame, feature_columns: list[str], held_out_share: float = 0.0
) -> LabelledSplit:
    """Validate on the newest cohort that has both churners and stayers, train on the earlier
    ones: never a random split across time. Later single-class cohorts are left out (no AUC or
    log loss can be judged on them, and training on them would leak past the validation).

    With ``held_out_share``, that share of the validation cohort's users is kept out of the
    search (``held_out``), unless either part would then lack churners or stayers: the cohort
    is then validated on whole and nothing is held out."""
    months = pd.to_datetime(frame["cohort_month"]).dt.date
    cohorts = sorted(months.unique())
    if len(cohorts) < 2:
        raise ValueError(
            f"training needs at least 2 labelled cohorts (one to validate on), found {len(cohorts)}"
        )
    classes = frame.groupby(months)[LABEL].nunique()
    judged = [c for c in cohorts[1:] if classes.get(c, 0) == 2]
    if not judged:
        raise ValueError(
            "no labelled cohort after the first has both churners and stayers to validate on"
        )
    newest = judged[-1]
    train = frame[months < newest]
    if train[LABEL].nunique() < 2:
        raise ValueError(
            f"the cohorts before {newest:%Y-%m} hold a single class: nothing to learn from"
        )
    validation = frame[months == newest]
    held = (
        held_out_users(validation["msno"], held_out_share)
        if held_out_share > 0
        else np.zeros(len(validation), dtype=bool)
    )
    if (
        held.any()
        and validation[LABEL][held].nunique() == 2
        and validation[LABEL][~held].nunique() == 2
    ):
        held_out, validation = validation[held], validation[~held]
    else:
        held_out, held_out_share = validation.iloc[:0], 0.0
    return LabelledSplit(
        train=train,
        validation=validation,
        feature_columns=feature_columns,
        training_cohorts=[c for c in cohorts if c < newest],
        validation_cohort=newest,
        held_out=held_out,
        held_out_share=held_out_share,
    )
