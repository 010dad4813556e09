"""The simulated subscription world, stepped one calendar month at a time.

Every user holds at most one live subscription. At each expiry the user renews or churns with a
probability computed from what a feature table could know on the first day of the expiry's month
(current transaction, listening of the last 30 days, tenure) plus a latent term nobody observes.
Whole months are simulated as numpy arrays; Python only loops over months and over the few
rounds of expiries that short plans create inside one month.

Users who exist before the window get a written subscription history: the same month loop runs
over ``history_months`` months before it (:data:`~.marginals.HISTORY_MONTHS` unless told),
landing transactions (renewals, cancels, lapses and comebacks with the window's own marginals)
but no listening rows, so early cohorts see the same tenure and yearly counts as later ones.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from . import marginals as mg
from .dates import add_months, months_between, to_day
from .drift import CONCEPT, COVARIATE, Drift
from .targeted import CITY_DECLINE_VOLUME, TargetedDrifts

UNREGISTERED, ACTIVE, LAPSED = 0, 1, 2
NEVER = -(10**6)  # a day number meaning "no such day"
HISTORY_DAYS = 30  # daily listening kept for the churn inputs
MSNO_BYTES = 32  # 32 random bytes encode to KKBox's 44-character ids
TXN_COLUMNS = (
    "user", "payment_method_id", "payment_plan_days", "plan_list_price", "actual_amount_paid",
    "is_auto_renew", "transaction_date", "membership_expire_date", "is_cancel",
)  # fmt: skip
LOG_COUNTS = ("num_25", "num_50", "num_75", "num_985", "num_100")
CODE_LOOKUP_SIZE = 64


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# Gauss-Hermite nodes and weights for expectations over the standard-normal latent term.
_LATENT_NODES, _LATENT_WEIGHTS = np.polynomial.hermite_e.hermegauss(24)
_LATENT_WEIGHTS = _LATENT_WEIGHTS / _LATENT_WEIGHTS.sum()


def _lookup(table: dict[int, float]) -> np.ndarray:
    """Dense array indexed by code, so a per-user mapping stays vectorised."""
    out = np.zeros(CODE_LOOKUP_SIZE)
    for code, value in table.items():
        out[code] = value
    return out


@dataclass
class Population:
    """Who exists: the members columns plus the hidden traits that drive behaviour."""

    msno: np.ndarray
    reg_day: np.ndarray
    reg_month: np.ndarray  # index of the simulated month of registration, -1 before the window
    has_member_row: np.ndarray
    city: np.ndarray
    bd: np.ndarray
    gender: np.ndarray
    registered_via: np.ndarray
    pref_auto: np.ndarray
    pay_method: np.ndarray
    price_tier: np.ndarray
    pref_plan: np.ndarray
    latent: np.ndarray
    level0: np.ndarray
    trend: np.ndarray
    activity_bias: np.ndarray

    def __len__(self) -> int:
        return len(self.msno)


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


class _TransactionStore:
    """Append-only column store of every transaction made so far, including pre-window ones."""

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = {c: [] for c in TXN_COLUMNS}
        self._cache: dict[str, np.ndarray] | None = None

    def add(self, **columns: np.ndarray | int) -> None:
        size = len(np.asarray(columns["user"]))
        if size == 0:
            return
        for name in TXN_COLUMNS:
            values = np.broadcast_to(np.asarray(columns[name], dtype="int64"), (size,))
            self._parts[name].append(values.copy())
        self._cache = None

    def arrays(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {
                name: np.concatenate(parts) if parts else np.zeros(0, dtype="int64")
                for name, parts in self._parts.items()
            }
        return self._cache


class World:
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
        self.txns = _TransactionStore()
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

    # --- population ---------------------------------------------------------------------------

    def _registrations(self, users: int) -> tuple[np.ndarray, np.ndarray]:
        """Registration day and month index (-1: before the window) of every user, in order."""
        rng = self.rng
        n_pre = round(users * mg.PRE_START_SHARE)
        per_month = rng.multinomial(users - n_pre, np.full(self.months, 1.0 / self.months))
        if self.covariate_from is not None:
            per_month[self.covariate_from :] *= mg.COVARIATE_REGISTRATIONS
        age = np.minimum(
            rng.exponential(mg.PRE_START_MEAN_AGE_DAYS, n_pre), mg.PRE_START_MAX_AGE_DAYS
        )
        pre_reg = self.month_starts[0] - mg.PRE_START_MIN_AGE_DAYS - age.astype("int64")
        new_month = np.repeat(np.arange(self.months), per_month)
        lengths = np.diff(self.month_starts)
        new_reg = self.month_starts[new_month] + (
            rng.random(new_month.size) * lengths[new_month]
        ).astype("int64")
        order = np.argsort(new_reg, kind="stable")
        return (
            np.concatenate([pre_reg, new_reg[order]]),
            np.concatenate([np.full(n_pre, -1), new_month[order]]),
        )

    def _populate(self, users: int) -> Population:
        rng = self.rng
        reg_day, reg_month = self._registrations(users)
        size = reg_day.size
        drift_month = self.months if self.covariate_from is None else self.covariate_from
        shifted = reg_month >= drift_month

        blank = rng.random(size) < mg.BLANK_PROFILE_SHARE
        city_codes, city_p = mg.probabilities(mg.CITY)
        others = city_codes != 1
        filled_city1 = (city_p[~others][0] - mg.BLANK_PROFILE_SHARE * mg.BLANK_PROFILE_CITY1) / (
            1 - mg.BLANK_PROFILE_SHARE
        )
        is_city1 = rng.random(size) < np.where(blank, mg.BLANK_PROFILE_CITY1, filled_city1)
        other_city = rng.choice(
            city_codes[others], size=size, p=city_p[others] / city_p[others].sum()
        )
        city = np.where(is_city1, 1, other_city)

        gender_draw = np.where(rng.random(size) < mg.MALE_SHARE, "male", "female")
        skipped = blank | (rng.random(size) < mg.GENDER_SKIPPED)
        gender = np.where(skipped, "", gender_draw).astype(object)

        offset, shape, scale = mg.AGE_GAMMA
        s_offset, s_shape, s_scale = mg.AGE_GAMMA_SHIFTED
        age_years = np.where(
            shifted,
            s_offset + rng.gamma(s_shape, s_scale, size),
            offset + rng.gamma(shape, scale, size),
        )
        bd = np.clip(np.round(age_years), 10, 90).astype("int64")
        bad = ~blank & (rng.random(size) < mg.BAD_BD_SHARE)
        bad_kind = rng.random(size)
        bad_value = np.where(
            bad_kind < 0.5,
            0,
            np.where(bad_kind < 0.75, -rng.integers(1, 50, size), rng.integers(101, 2017, size)),
        )
        bd = np.where(bad, bad_value, bd)
        bd[blank] = 0

        via_codes, via_p = mg.probabilities(mg.REGISTERED_VIA)
        shifted_codes, shifted_p = mg.probabilities(mg.REGISTERED_VIA_SHIFTED)
        via = np.where(
            shifted,
            rng.choice(shifted_codes, size=size, p=shifted_p),
            rng.choice(via_codes, size=size, p=via_p),
        )
        via, bd = self.targeted.segment(reg_month, via, bd, valid_bd=~blank & ~bad)
        pref_auto = rng.random(size) < _lookup(mg.AUTO_RENEW_BY_VIA)[via]

        codes, weights = self.methods
        not41 = codes != 41
        other_method = rng.choice(codes[not41], size=size, p=weights[not41] / weights[not41].sum())
        uses41 = rng.random(size) < np.where(pref_auto, mg.METHOD_41_AUTO, mg.METHOD_41_MANUAL)
        pay_method = np.where(uses41, 41, other_method)

        tier_codes, tier_p = mg.probabilities(mg.PRICE_TIER)
        plan_codes, plan_p = mg.probabilities(mg.USER_PLAN)
        low_volume = np.isin(via, (4, 13))

        has_member_row = np.ones(size, dtype=bool)
        missing = max(1, round(mg.MISSING_MEMBER_SHARE * size))
        has_member_row[rng.choice(size, size=min(missing, size), replace=False)] = False

        return Population(
            msno=self._msnos(size),
            reg_day=reg_day,
            reg_month=reg_month,
            has_member_row=has_member_row,
            city=city.astype("int64"),
            bd=bd.astype("int64"),
            gender=gender,
            registered_via=via.astype("int64"),
            pref_auto=pref_auto,
            pay_method=pay_method.astype("int64"),
            price_tier=rng.choice(tier_codes, size=size, p=tier_p),
            pref_plan=rng.choice(plan_codes, size=size, p=plan_p),
            latent=rng.normal(0.0, 1.0, size),
            level0=rng.normal(mg.LEVEL_REF, mg.LEVEL_SD, size)
            + np.where(low_volume, mg.LEVEL_LOW_VIA, 0.0),
            trend=rng.normal(0.0, mg.TREND_SD, size),
            activity_bias=rng.normal(0.0, mg.ACTIVITY_BIAS_SD, size),
        )

    def _msnos(self, size: int) -> np.ndarray:
        raw = self.rng.bytes(MSNO_BYTES * size)
        ids = [
            base64.b64encode(raw[i * MSNO_BYTES : (i + 1) * MSNO_BYTES]).decode("ascii")
            for i in range(size)
        ]
        if len(set(ids)) != size:  # astronomically unlikely, but ids must be unique
            raise RuntimeError("msno collision; choose another seed")
        return np.array(ids, dtype=object)

    # --- purchases ----------------------------------------------------------------------------

    def _list_price(self, plan: np.ndarray, tier: np.ndarray) -> np.ndarray:
        fixed = np.zeros(plan.size, dtype="int64")
        for days, price in mg.FIXED_PRICE.items():
            fixed[plan == days] = price
        return np.where(np.isin(plan, (0, 30, 31)), tier, fixed)

    def _purchase(
        self,
        users: np.ndarray,
        day: np.ndarray,
        base: np.ndarray,
        *,
        first: bool,
        manual: np.ndarray,
        plan: np.ndarray | None = None,
    ) -> None:
        """Buy a plan on ``day``; the membership runs ``plan`` days from max(day, base)."""
        size = users.size
        if size == 0:
            return
        rng = self.rng
        if plan is None:
            plan = self.pop.pref_plan[users].copy()
            redraw = rng.random(size) >= mg.PLAN_LOYALTY
            codes, weights = self.txn_plans
            plan[redraw] = rng.choice(codes, size=int(redraw.sum()), p=weights)
        plan_field = np.where((plan == 30) & (rng.random(size) < mg.ZERO_DAY_SHARE), 0, plan)
        list_price = self._list_price(plan, self.pop.price_tier[users])

        draw = rng.random(size)
        cut = rng.uniform(0.5, 0.9, size)
        if first:
            free = draw < mg.TRIAL_SHARE
            discounted = np.zeros(size, dtype=bool)
        else:
            discounted = draw < mg.DISCOUNT_SHARE
            free = (draw >= mg.DISCOUNT_SHARE) & (draw < mg.DISCOUNT_SHARE + mg.FREE_SHARE)
        paid = np.where(free, 0, list_price)
        paid = np.where(discounted, np.round(list_price * cut).astype("int64"), paid)
        list_price, paid = self.targeted.prices(day, plan, list_price, paid, self.price_day)

        long_by_hand = (plan >= mg.LONG_PLAN_DAYS) & (rng.random(size) < mg.LONG_PLAN_MANUAL)
        auto = self.pref_auto[users] & ~manual & (rng.random(size) >= mg.AUTO_SLIP) & ~long_by_hand
        method = self.pop.pay_method[users].copy()
        switch = rng.random(size) < mg.METHOD_SWITCH
        codes, weights = self.methods
        method[switch] = rng.choice(codes, size=int(switch.sum()), p=weights)
        expire = np.maximum(day, base) + plan
        self.txns.add(
            user=users,
            payment_method_id=method,
            payment_plan_days=plan_field,
            plan_list_price=list_price,
            actual_amount_paid=paid,
            is_auto_renew=auto.astype("int64"),
            transaction_date=day,
            membership_expire_date=expire,
            is_cancel=0,
        )

        # Some subscribers cancel before expiry: a row with is_cancel=1 and the same expiry.
        chance = _sigmoid(mg.CANCEL_INTERCEPT + mg.CANCEL_LATENT * self.pop.latent[users])
        chance = chance * np.where(auto, 1.0, mg.CANCEL_MANUAL_FACTOR)
        span = expire - day
        cancel = (rng.random(size) < chance) & (span >= 2)
        cancel_day = day + 1 + (rng.random(size) ** 1.5 * (span - 1)).astype("int64")
        self.txns.add(
            user=users[cancel],
            payment_method_id=method[cancel],
            payment_plan_days=plan_field[cancel],
            plan_list_price=list_price[cancel],
            actual_amount_paid=paid[cancel],
            is_auto_renew=0,
            transaction_date=cancel_day[cancel],
            membership_expire_date=expire[cancel],
            is_cancel=1,
        )
        gives_up_auto = cancel & (rng.random(size) < mg.CANCEL_DROPS_AUTO)
        self.pref_auto[users[gives_up_auto]] = False

        self.status[users] = ACTIVE
        self.expiry[users] = expire
        self.chain_auto[users] = auto
        self.cancel_day[users] = np.where(cancel, cancel_day, NEVER)

    def _renew(self, users: np.ndarray, month_start: int) -> None:
        """Auto-renewals land on the expiry; manual ones in [max(c, E-5, cancel+1), E+25]."""
        expiry = self.expiry[users]
        cancelled = self.cancel_day[users] > NEVER
        by_hand = ~self.chain_auto[users] | cancelled
        low = np.maximum(
            np.maximum(expiry - mg.MANUAL_EARLY_DAYS, month_start), self.cancel_day[users] + 1
        )
        high = expiry + mg.MANUAL_LATE_DAYS
        manual_day = low + (self.rng.random(users.size) ** 2 * (high - low + 1)).astype("int64")
        day = np.where(by_hand, manual_day, expiry)
        self._purchase(users, day, expiry, first=False, manual=cancelled)

    def _open_window(self, start: int) -> None:
        """Give users registered before ``start`` the subscription (or lapse) they hold then.

        ``start`` opens the written history; users registered later join inside it.
        """
        rng = self.rng
        pre = np.flatnonzero(self.pop.reg_day < start)
        live = rng.random(pre.size) < mg.ACTIVE_AT_START

        holders = pre[live]
        plan = self.pop.pref_plan[holders]
        expiry = start + (rng.random(holders.size) * plan).astype("int64")
        base = expiry - plan
        day = np.maximum(base, self.pop.reg_day[holders])
        self._purchase(
            holders, day, base, first=False, manual=np.zeros(holders.size, bool), plan=plan
        )

        lapsed = pre[~live]
        reg = self.pop.reg_day[lapsed]
        room = np.maximum(start - mg.COMEBACK_GAP_DAYS - (reg + 30), 0)
        last_expiry = reg + 30 + (rng.random(lapsed.size) * room).astype("int64")
        self._purchase(
            lapsed,
            last_expiry - 30,
            last_expiry - 30,
            first=False,
            manual=np.zeros(lapsed.size, bool),
            plan=np.full(lapsed.size, 30, dtype="int64"),
        )
        self.status[lapsed] = LAPSED
        returns = rng.random(lapsed.size) < mg.PRE_LAPSED_COMEBACK
        window = self.month_starts[-1] - start
        comeback = start + (rng.random(lapsed.size) * window).astype("int64")
        self.comeback_day[lapsed] = np.where(returns, comeback, NEVER)

    # --- churn --------------------------------------------------------------------------------

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
        truth = _sigmoid(observable + weight * inputs["latent"])
        averaged = _sigmoid(observable[:, None] + weight * _LATENT_NODES[None, :]) @ _LATENT_WEIGHTS
        return truth, averaged

    # --- listening ----------------------------------------------------------------------------

    def _coverage(self, first: int, end: int) -> np.ndarray:
        """users x days: whether a paid (non-cancel) membership covers the day."""
        txns = self.txns.arrays()
        live = (
            (txns["is_cancel"] == 0)
            & (txns["transaction_date"] < end)
            & (txns["membership_expire_date"] > first)
        )
        users = txns["user"][live]
        low = np.maximum(txns["transaction_date"][live], first) - first
        high = np.minimum(txns["membership_expire_date"][live], end) - first
        steps = np.zeros((len(self.pop), end - first + 1), dtype="int32")
        np.add.at(steps, (users, low), 1)
        np.add.at(steps, (users, high), -1)
        return np.cumsum(steps, axis=1)[:, :-1] > 0

    def _evolve_levels(self) -> None:
        """One month of engagement: level follows a persistent per-user trend, pulled home."""
        size = len(self.pop)
        self.level = (
            self.level
            + self.trend
            + self.rng.normal(0.0, mg.LEVEL_NOISE_SD, size)
            - mg.LEVEL_REVERSION * (self.level - self.pop.level0)
        )
        keep = mg.TREND_PERSISTENCE
        self.trend = keep * self.trend + np.sqrt(1 - keep**2) * self.rng.normal(
            0.0, mg.TREND_SD, size
        )

    def _volume(self, days: np.ndarray, factor: float = mg.COVARIATE_VOLUME) -> np.ndarray:
        """1 before a covariate drift, ``factor`` from its first day on (listening drops)."""
        if self.covariate_from is None or self.covariate_from >= self.months:
            return np.ones(days.size)
        drift_day = self.month_starts[self.covariate_from]
        return np.where(days >= drift_day, factor, 1.0)

    def _listen(self, first: int, end: int, *, landed: bool) -> dict[str, np.ndarray]:
        """Daily play counts for days [first, end); also moves the churn inputs and levels on."""
        rng = self.rng
        size, span = len(self.pop), end - first
        days = first + np.arange(span)
        covered = self._coverage(first, end)
        registered = days[None, :] >= self.pop.reg_day[:, None]
        level = self.level[:, None] + self.trend[:, None] * (np.arange(span) / span)[None, :]
        chance = _sigmoid(
            mg.ACTIVITY_INTERCEPT
            + mg.ACTIVITY_SLOPE * (level - mg.LEVEL_REF)
            + self.pop.activity_bias[:, None]
        )
        chance = chance * self._volume(days, mg.COVARIATE_ACTIVITY)[None, :]
        chance = np.where(covered, chance, np.where(registered, chance * mg.LAPSED_LISTENING, 0.0))
        day_index, users = np.nonzero(rng.random((span, size)) < chance.T)
        rows = users.size

        plays = np.exp(level[users, day_index] + rng.normal(0.0, mg.DAY_NOISE_SD, rows))
        plays = np.minimum(plays, mg.MAX_DAILY_PLAYS) * self._volume(days)[day_index]
        if self.city_day is not None:
            declined = (self.pop.city[users] == self.targeted.city) & (
                days[day_index] >= self.city_day
            )
            plays = np.where(declined, plays * CITY_DECLINE_VOLUME, plays)
        counts = {name: rng.poisson(plays * share) for name, share in mg.PARTIAL_PLAYS.items()}
        counts["num_100"] = rng.poisson(plays)
        total = sum(counts[name] for name in LOG_COUNTS)
        silent = total == 0
        counts["num_25"][silent] = 1
        total[silent] = 1
        unique = np.maximum(rng.binomial(total, mg.UNIQUE_SHARE), 1)
        song = mg.SONG_SECS * np.exp(rng.normal(0.0, mg.SONG_SD, rows))
        secs = np.round(song * sum(counts[name] * mg.PLAYED_SHARE[name] for name in LOG_COUNTS), 3)

        daily = np.zeros((size, span))
        daily[users, day_index] = secs
        self.history = np.concatenate([self.history, daily], axis=1)[:, -HISTORY_DAYS:]
        np.maximum.at(self.last_listen, users, days[day_index])
        self._evolve_levels()
        if not landed or rows == 0:
            shown = secs
        else:
            shown = secs.copy()
            negative = max(1, round(mg.NEGATIVE_SECS_SHARE * rows))
            absurd = max(1, round(mg.ABSURD_SECS_SHARE * rows))
            picked = rng.choice(rows, size=min(rows, negative + absurd), replace=False)
            shown[picked[:negative]] = -np.round(rng.uniform(1.0, 5e4, picked[:negative].size), 3)
            shown[picked[negative:]] = np.round(
                rng.uniform(86_400.5, 864_000.0, picked[negative:].size), 3
            )
        return {
            "user": users,
            "date": days[day_index],
            **{name: counts[name] for name in LOG_COUNTS},
            "num_unq": unique,
            "total_secs": shown,
        }

    # --- the month loop -----------------------------------------------------------------------

    def _month(
        self, month: int, first: int, end: int, *, landed_logs: bool = True
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Decide every expiry of the month, then let everyone listen; return the landed rows.

        ``month`` indexes the window (negative in the history before it); history months land
        transactions only, their listening just moves the churn inputs on.
        """
        rng = self.rng
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

    def _land_transactions(self, first: int, end: int) -> dict[str, np.ndarray]:
        """Final rows dated in [first, end), plus duplicate and back-dated-expiry quirk rows.

        Called once the month is over: later purchases are all dated after it. A back-dated row
        copies a paid row's date with an expiry at least 31 days earlier, so it never extends a
        membership within a label window and never wins the same-day tie against its original:
        labels are unchanged by it, as with KKBox's own odd rows.
        """
        rng = self.rng
        txns = self.txns.arrays()
        dates = txns["transaction_date"]
        inside = (dates >= first) & (dates < end)
        rows = {name: values[inside] for name, values in txns.items()}
        count = int(inside.sum())
        if count:
            wanted = max(1, round(mg.DUPLICATE_TXN_SHARE * count))
            copies = rng.choice(count, size=min(wanted, count), replace=False)
            paid = np.flatnonzero(rows["is_cancel"] == 0)
            wanted = max(1, round(mg.BACKDATED_EXPIRY_SHARE * count))
            odd = rng.choice(paid, size=min(wanted, paid.size), replace=False)
            backdated = {name: values[odd] for name, values in rows.items()}
            backdated["membership_expire_date"] = backdated["transaction_date"] - rng.integers(
                31, 401, odd.size
            )
            rows = {
                name: np.concatenate([values, values[copies], backdated[name]])
                for name, values in rows.items()
            }
        order = np.lexsort((np.arange(rows["user"].size), rows["user"], rows["transaction_date"]))
        return {name: values[order] for name, values in rows.items()}

    def run(self) -> WorldHistory:
        """Open the history, warm listening up for a month, step the history then the window."""
        starts = np.concatenate([self.history_starts, self.month_starts])
        opening = int(starts[0])
        self._open_window(opening)
        warm_up = to_day(add_months(self.start, -1 - self.history_starts.size))
        self._listen(warm_up, opening, landed=False)
        back = self.history_starts.size
        past = [
            self._month(k - back, int(starts[k]), int(starts[k + 1]), landed_logs=False)[0]
            for k in range(back)
        ]
        landed = [
            self._month(k, int(self.month_starts[k]), int(self.month_starts[k + 1]))
            for k in range(self.months)
        ]
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
