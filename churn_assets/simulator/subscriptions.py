"""What each user holds, and the transactions that say so.

Every user holds at most one live subscription. A purchase lands a paid row (and sometimes a
cancel row before its expiry); a renewal is a purchase dated on or around the expiry. Every
transaction made so far stays in one store, because the churn inputs and the listening coverage
are read back from it; the landed monthly rows add the duplicate and back-dated quirks.
"""

from __future__ import annotations

import numpy as np

from . import marginals as mg
from .population import Population
from .targeted import TargetedDrifts

UNREGISTERED, ACTIVE, LAPSED = 0, 1, 2
NEVER = -(10**6)  # a day number meaning "no such day"
TXN_COLUMNS = (
    "user", "payment_method_id", "payment_plan_days", "plan_list_price", "actual_amount_paid",
    "is_auto_renew", "transaction_date", "membership_expire_date", "is_cancel",
)  # fmt: skip


class TransactionStore:
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


class Subscriptions:
    """Steps of :class:`~.world.World` that buy, renew and land subscriptions."""

    rng: np.random.Generator
    pop: Population
    txns: TransactionStore
    txn_plans: tuple[np.ndarray, np.ndarray]
    methods: tuple[np.ndarray, np.ndarray]
    targeted: TargetedDrifts
    price_day: int | None
    month_starts: np.ndarray
    status: np.ndarray
    expiry: np.ndarray
    chain_auto: np.ndarray
    cancel_day: np.ndarray
    comeback_day: np.ndarray
    pref_auto: np.ndarray

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
        """Buy a plan on ``day``; the membership runs ``plan`` days from max(day, base).

        The steps draw from the world's one stream, so they run in this order only: plan, price,
        renewal and payment method, then a possible cancel.
        """
        size = users.size
        if size == 0:
            return
        if plan is None:
            plan = self._plans_bought(users)
        plan_field = np.where((plan == 30) & (self.rng.random(size) < mg.ZERO_DAY_SHARE), 0, plan)
        list_price, paid = self._prices(users, day, plan, first=first)
        auto, method = self._renewal_and_method(users, plan, manual)
        expire = np.maximum(day, base) + plan
        bought = {
            "user": users,
            "payment_method_id": method,
            "payment_plan_days": plan_field,
            "plan_list_price": list_price,
            "actual_amount_paid": paid,
            "transaction_date": day,
            "membership_expire_date": expire,
        }
        self.txns.add(**bought, is_auto_renew=auto.astype("int64"), is_cancel=0)
        cancel, cancel_day = self._cancellations(bought, auto)

        self.status[users] = ACTIVE
        self.expiry[users] = expire
        self.chain_auto[users] = auto
        self.cancel_day[users] = np.where(cancel, cancel_day, NEVER)

    def _plans_bought(self, users: np.ndarray) -> np.ndarray:
        """Plan days of each purchase: mostly the user's usual plan, now and then another."""
        rng = self.rng
        size = users.size
        plan = self.pop.pref_plan[users].copy()
        redraw = rng.random(size) >= mg.PLAN_LOYALTY
        codes, weights = self.txn_plans
        plan[redraw] = rng.choice(codes, size=int(redraw.sum()), p=weights)
        return plan

    def _prices(
        self, users: np.ndarray, day: np.ndarray, plan: np.ndarray, *, first: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """List price and amount paid of each purchase.

        A first purchase may be a free trial, a later one discounted or free; a price drift
        raises one tier's price from its day on.
        """
        rng = self.rng
        size = users.size
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
        return self.targeted.prices(day, plan, list_price, paid, self.price_day)

    def _renewal_and_method(
        self, users: np.ndarray, plan: np.ndarray, manual: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Whether each purchase auto-renews, and the payment method it is made with.

        Long plans and a few purchases of auto-renewing users are bought by hand; a few pay with
        another method than the user's usual one.
        """
        rng = self.rng
        size = users.size
        long_by_hand = (plan >= mg.LONG_PLAN_DAYS) & (rng.random(size) < mg.LONG_PLAN_MANUAL)
        auto = self.pref_auto[users] & ~manual & (rng.random(size) >= mg.AUTO_SLIP) & ~long_by_hand
        method = self.pop.pay_method[users].copy()
        switch = rng.random(size) < mg.METHOD_SWITCH
        codes, weights = self.methods
        method[switch] = rng.choice(codes, size=int(switch.sum()), p=weights)
        return auto, method

    def _cancellations(
        self, bought: dict[str, np.ndarray], auto: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Some subscribers cancel before expiry: a row with is_cancel=1 and the same expiry.

        The latent term moves cancels, so part of what no feature sees shows in the rows; a
        cancel sometimes turns the user's auto-renewal off for good. Returns who cancelled, and
        the cancel day drawn for every purchase.
        """
        rng = self.rng
        users, day = bought["user"], bought["transaction_date"]
        expire = bought["membership_expire_date"]
        size = users.size
        chance = mg.sigmoid(mg.CANCEL_INTERCEPT + mg.CANCEL_LATENT * self.pop.latent[users])
        chance = chance * np.where(auto, 1.0, mg.CANCEL_MANUAL_FACTOR)
        span = expire - day
        cancel = (rng.random(size) < chance) & (span >= 2)
        cancel_day = day + 1 + (rng.random(size) ** 1.5 * (span - 1)).astype("int64")
        cancelled = {name: values[cancel] for name, values in bought.items()}
        cancelled["transaction_date"] = cancel_day[cancel]
        self.txns.add(**cancelled, is_auto_renew=0, is_cancel=1)
        gives_up_auto = cancel & (rng.random(size) < mg.CANCEL_DROPS_AUTO)
        self.pref_auto[users[gives_up_auto]] = False
        return cancel, cancel_day

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
