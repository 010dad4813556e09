"""The churn decision: what a feature table could know at an expiry, and the true probability.

At each expiry the user renews or churns with a probability computed from what a feature table
could know on the first day of the expiry's month (current transaction, listening of the last
30 days, tenure) plus a latent term nobody observes.
"""

from __future__ import annotations

import numpy as np

from . import marginals as mg
from .listening import HISTORY_DAYS
from .population import Population
from .subscriptions import TransactionStore

# Gauss-Hermite nodes and weights for expectations over the standard-normal latent term.
_LATENT_NODES, _LATENT_WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_LATENT_WEIGHTS = _LATENT_WEIGHTS / _LATENT_WEIGHTS.sum()


class ChurnModel:
    """Steps of :class:`~.world.World` that price the churn at an expiry."""

    pop: Population
    txns: TransactionStore
    history: np.ndarray
    last_listen: np.ndarray
    concept_from: int | None

    def _churn_inputs(self, month_start: int) -> dict[str, np.ndarray]:
        """What a feature table could know on ``month_start``: nothing dated on or after it."""
        size = len(self.pop)
        txns = self.txns.arrays()
        before = txns["transaction_date"] < month_start
        rows = {name: values[before] for name, values in txns.items()}
        order = np.lexsort(
            (rows["is_cancel"], rows["membership_expire_date"], rows["transaction_date"],
             rows["user"])
        )  # fmt: skip
        users = rows["user"][order]
        last = order[np.r_[users[1:] != users[:-1], True]] if users.size else order
        current = {name: values[last] for name, values in rows.items()}
        who = current["user"]

        def per_user(values: np.ndarray) -> np.ndarray:
            out = np.zeros(size)
            out[who] = values.astype(float)
            return out

        has_history = per_user(np.ones(who.size)) > 0
        paid = current["actual_amount_paid"]
        listed = current["plan_list_price"]
        recent = self.history[:, -14:].sum(axis=1)
        earlier = self.history[:, -28:-14].sum(axis=1)
        trend = np.clip(np.log((recent + 3600.0) / (earlier + 3600.0)), -3.0, 3.0)
        idle = np.clip(month_start - 1 - self.last_listen, 0, 30) / 30.0
        active_share = (self.history > 0).sum(axis=1) / HISTORY_DAYS
        tenure_years = np.maximum(month_start - self.pop.reg_day, 0) / 365.0
        return {
            "not_auto_renew": np.where(has_history, 1.0 - per_user(current["is_auto_renew"]), 0),
            "cancelled": per_user(current["is_cancel"]),
            "discounted": per_user((paid > 0) & (paid < listed)),
            "free": per_user((paid == 0) & (listed > 0)),
            "listening_trend": np.where(has_history, trend, 0.0),
            "recency": np.where(has_history, idle, 0.0),
            "active_share": np.where(has_history, active_share, 0.5),
            "tenure": np.log1p(tenure_years),
            "long_plan": per_user(current["payment_plan_days"] >= mg.LONG_PLAN_DAYS),
            "no_history": (~has_history).astype(float),
            "latent": self.pop.latent,
        }

    def _churn_probability(self, month_start: int, month: int) -> tuple[np.ndarray, np.ndarray]:
        """The true churn probability, and the same averaged over the latent term.

        The second is what a model of every observable input, told nothing of the latent term,
        would predict; the truth's edge over it is the information no feature table has (the
        latent term also moves cancellations, so part of it can still be learnt).
        """
        concept = self.concept_from is not None and month >= self.concept_from
        coef = mg.CHURN_CONCEPT if concept else mg.CHURN_BASE
        inputs = self._churn_inputs(month_start)
        observable = np.full(len(self.pop), coef["intercept"])
        for name in mg.FEATURES:
            if name != "latent":
                observable += coef[name] * inputs[name]
        weight = coef["latent"]
        truth = mg.sigmoid(observable + weight * inputs["latent"])
        averaged = (
            mg.sigmoid(observable[:, None] + weight * _LATENT_NODES[None, :]) @ _LATENT_WEIGHTS
        )
        return truth, averaged
