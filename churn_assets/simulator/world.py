"""The simulated subscription world, stepped one calendar month at a time.

Every user holds at most one live subscription. At each expiry the user renews or churns with a
probability computed from what a feature table could know on the first day of the expiry's month
(current transaction, listening of the last 30 days, tenure) plus a latent term nobody observes.
Whole months are simulated as numpy arrays; Python only loops over months and over the few
rounds of expiries that short plans create inside one month.

Users who exist before the window get a written subscription history: the same month loop runs
over ``history_months`` months before it (:data:`~.marginals.HISTORY_MONTHS` unless told),
landing transactions (renewals, cancels, lapses and comebacks with the window's own marginals)
but no listening rows, so early cohorts see the same tenure and yearly counts as later ones
(unless the landed history thins toward the start on purpose, see :mod:`.thinning`).

:class:`World` holds the state and steps the months; the steps themselves live by what they
draw: :mod:`.population` (who exists), :mod:`.subscriptions` (purchases, renewals and the
landed transactions), :mod:`.churn` (the decision at an expiry) and :mod:`.listening` (daily
plays).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from . import marginals as mg
from .churn import ChurnModel
from .dates import add_months, months_between, to_day
from .drift import CONCEPT, COVARIATE, Drift
from .listening import HISTORY_DAYS, Listening
from .population import Population, PopulationDraws
from .subscriptions import (
    ACTIVE,
    LAPSED,
    NEVER,
    TXN_COLUMNS,
    UNREGISTERED,
    Subscriptions,
    TransactionStore,
)
from .targeted import TargetedDrifts


@dataclass
class WorldHistory:
    """Everything a run produced, with day numbers; formatting is left to the writer."""

    population: Population
    month_starts: np.ndarray  # day numbers of the simulated months' first days, plus the end
    history_starts: np.ndarray  # first days of the history months before the window (may be empty)
    transactions: dict[str, np.ndarray]  # landed rows (history and window, quirks included)
    logs: list[dict[str, np.ndarray]]  # landed daily rows, one dict per simulated month
    # user, expiry, month, probability, probability_without_latent, churn
    decisions: dict[str, np.ndarray]


class World(PopulationDraws, Subscriptions, ChurnModel, Listening):
    """One seeded world: build it, then :meth:`run` it once."""

    def __init__(
        self,
        users: int,
        start: date,
        months: int,
        seed: int,
        drifts: Sequence[Drift] = (),
        *,
        history_months: int = mg.HISTORY_MONTHS,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.start = start
        self.months = months
        self.month_starts = np.array(
            [to_day(add_months(start, k)) for k in range(months + 1)], dtype="int64"
        )
        self.history_starts = np.array(
            [to_day(add_months(start, k)) for k in range(-history_months, 0)], dtype="int64"
        )
        self.covariate_from = self._drift_index(drifts, COVARIATE)
        self.concept_from = self._drift_index(drifts, CONCEPT)
        self.targeted = TargetedDrifts.plan(seed, list(drifts), start)
        self.price_day = self._window_day(self.targeted.price_from)
        self.city_day = self._window_day(self.targeted.city_from)
        self.txn_plans = mg.probabilities(mg.TXN_PLAN)
        self.methods = mg.probabilities(mg.PAYMENT_METHOD)
        self.pop = self._populate(users)

        size = len(self.pop)
        self.status = np.full(size, UNREGISTERED, dtype="int8")
        self.expiry = np.full(size, NEVER, dtype="int64")
        self.chain_auto = np.zeros(size, dtype=bool)
        self.cancel_day = np.full(size, NEVER, dtype="int64")
        self.comeback_day = np.full(size, NEVER, dtype="int64")
        self.pref_auto = self.pop.pref_auto.copy()
        self.level = self.pop.level0.copy()
        self.trend = self.pop.trend.copy()
        for _ in range(mg.LEVEL_BURN_IN_MONTHS):
            self._evolve_levels()
        self.history = np.zeros((size, HISTORY_DAYS))
        self.last_listen = np.full(size, NEVER, dtype="int64")
        self.txns = TransactionStore()
        self._decisions: list[tuple[np.ndarray, ...]] = []

    def _drift_index(self, drifts: Sequence[Drift], kind: str) -> int | None:
        months = [d.month for d in drifts if d.kind == kind]
        if not months:
            return None
        return max(0, months_between(self.start, min(months)))

    def _window_day(self, month: int | None) -> int | None:
        """First day of window month ``month``; None when there is none (or it is past the end)."""
        if month is None or month >= self.months:
            return None
        return int(self.month_starts[month])

    # --- the month loop -----------------------------------------------------------------------

    def _month(
        self, month: int, first: int, end: int, *, landed_logs: bool = True
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Decide every expiry of the month, then let everyone listen; return the landed rows.

        ``month`` indexes the window (negative in the history before it); history months land
        transactions only, their listening just moves the churn inputs on.
        """
        rng = self.rng
        if self.targeted.billing_ended(month):
            self.pref_auto[self.pop.registered_via == self.targeted.channel] = False
        probability, without_latent = self._churn_probability(first, month)

        joining = np.flatnonzero((self.status == UNREGISTERED) & (self.pop.reg_day < end))
        reg = self.pop.reg_day[joining]
        self._purchase(joining, reg, reg, first=True, manual=np.zeros(joining.size, bool))

        back = np.flatnonzero(
            (self.status == LAPSED) & (self.comeback_day >= first) & (self.comeback_day < end)
        )
        day = self.comeback_day[back]
        by_hand = rng.random(back.size) < mg.COMEBACK_MANUAL
        self._purchase(back, day, day, first=False, manual=by_hand)
        self.comeback_day[back] = NEVER

        while True:
            due = np.flatnonzero((self.status == ACTIVE) & (self.expiry < end))
            if due.size == 0:
                break
            expiry = self.expiry[due]
            if (expiry < first).any():
                raise RuntimeError("an expiry was skipped; month bookkeeping is broken")
            churn = rng.random(due.size) < probability[due]
            month_of = np.full(due.size, month)
            self._decisions.append(
                (due, expiry, month_of, probability[due], without_latent[due], churn)
            )
            gone = due[churn]
            self.status[gone] = LAPSED
            returns = rng.random(gone.size) < mg.COMEBACK_SHARE
            gap = mg.COMEBACK_GAP_DAYS + rng.exponential(
                mg.COMEBACK_MEAN_EXTRA_DAYS, gone.size
            ).astype("int64")
            self.comeback_day[gone] = np.where(returns, expiry[churn] + gap, NEVER)
            self._renew(due[~churn], first)

        logs = self._listen(first, end, landed=landed_logs)
        return self._land_transactions(first, end), logs

    def run(self, on_month: Callable[[str], None] = lambda month: None) -> WorldHistory:
        """Open the history, warm listening up for a month, step the history then the window;
        ``on_month`` hears of each month stepped (progress)."""
        starts = np.concatenate([self.history_starts, self.month_starts])
        opening = int(starts[0])
        self._open_window(opening)
        warm_up = to_day(add_months(self.start, -1 - self.history_starts.size))
        self._listen(warm_up, opening, landed=False)
        back = self.history_starts.size
        past = []
        for k in range(back):
            past.append(
                self._month(k - back, int(starts[k]), int(starts[k + 1]), landed_logs=False)[0]
            )
            on_month(f"{add_months(self.start, k - back):%Y-%m}")
        landed = []
        for k in range(self.months):
            landed.append(self._month(k, int(self.month_starts[k]), int(self.month_starts[k + 1])))
            on_month(f"{add_months(self.start, k):%Y-%m}")
        transactions = {
            name: np.concatenate([txns[name] for txns in past] + [t[name] for t, _ in landed])
            for name in TXN_COLUMNS
        }
        names = ("user", "expiry", "month", "probability", "probability_without_latent", "churn")
        parts = list(zip(*self._decisions, strict=True)) or [[] for _ in names]
        decisions = {
            name: np.concatenate(part) if len(part) else np.zeros(0)
            for name, part in zip(names, parts, strict=True)
        }
        return WorldHistory(
            population=self.pop,
            month_starts=self.month_starts,
            history_starts=self.history_starts,
            transactions=transactions,
            logs=[logs for _, logs in landed],
            decisions=decisions,
        )
