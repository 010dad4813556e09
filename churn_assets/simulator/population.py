"""Who exists in a world: registration days, the members profile and the traits nobody sees.

The population is drawn once, before the first month, from the world's own random stream; the
order of the draws is part of what makes a seed give the same files every time.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from . import marginals as mg
from .targeted import TargetedDrifts

MSNO_BYTES = 32  # 32 random bytes encode to KKBox's 44-character ids
CODE_LOOKUP_SIZE = 64


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


def _lookup(table: dict[int, float]) -> np.ndarray:
    """Dense array indexed by code, so a per-user mapping stays vectorised."""
    out = np.zeros(CODE_LOOKUP_SIZE)
    for code, value in table.items():
        out[code] = value
    return out


class PopulationDraws:
    """Steps of :class:`~.world.World` that draw its users."""

    rng: np.random.Generator
    months: int
    month_starts: np.ndarray
    covariate_from: int | None
    targeted: TargetedDrifts
    methods: tuple[np.ndarray, np.ndarray]

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
        """Every user: registration, members profile, payment habits, then the hidden traits.

        Each step draws from the world's one stream, so the steps run in this order only.
        """
        rng = self.rng
        reg_day, reg_month = self._registrations(users)
        size = reg_day.size
        drift_month = self.months if self.covariate_from is None else self.covariate_from
        shifted = reg_month >= drift_month

        blank = rng.random(size) < mg.BLANK_PROFILE_SHARE
        city = self._cities(blank)
        gender = self._genders(blank)
        bd = self._birth_years(blank, shifted)
        via = self._channels(shifted)
        pref_auto = rng.random(size) < _lookup(mg.AUTO_RENEW_BY_VIA)[via]
        pay_method = self._pay_methods(pref_auto)

        tier_codes, tier_p = mg.probabilities(mg.PRICE_TIER)
        plan_codes, plan_p = mg.probabilities(mg.USER_PLAN)
        low_volume = np.isin(via, (4, 13))
        has_member_row = self._member_rows(size)

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

    def _cities(self, blank: np.ndarray) -> np.ndarray:
        """City of every user; blank profiles are mostly city 1, as in the real dump.

        City 1's share among filled-in profiles is set so that overall it keeps its share of
        :data:`~.marginals.CITY`.
        """
        rng = self.rng
        size = blank.size
        city_codes, city_p = mg.probabilities(mg.CITY)
        others = city_codes != 1
        filled_city1 = (city_p[~others][0] - mg.BLANK_PROFILE_SHARE * mg.BLANK_PROFILE_CITY1) / (
            1 - mg.BLANK_PROFILE_SHARE
        )
        is_city1 = rng.random(size) < np.where(blank, mg.BLANK_PROFILE_CITY1, filled_city1)
        other_city = rng.choice(
            city_codes[others], size=size, p=city_p[others] / city_p[others].sum()
        )
        return np.where(is_city1, 1, other_city)

    def _genders(self, blank: np.ndarray) -> np.ndarray:
        """``male``, ``female`` or empty: blank profiles and some filled-in ones skip it."""
        rng = self.rng
        size = blank.size
        gender_draw = np.where(rng.random(size) < mg.MALE_SHARE, "male", "female")
        skipped = blank | (rng.random(size) < mg.GENDER_SKIPPED)
        return np.where(skipped, "", gender_draw).astype(object)

    def _birth_years(self, blank: np.ndarray, shifted: np.ndarray) -> np.ndarray:
        """The ``bd`` column; some filled-in profiles get a bad one (0, negative or > 100).

        Users registered under a covariate drift are younger; blank profiles read 0, as in the
        real dump.
        """
        rng = self.rng
        size = blank.size
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
        return bd

    def _channels(self, shifted: np.ndarray) -> np.ndarray:
        """``registered_via``; a covariate drift moves new registrations to the minor channels."""
        rng = self.rng
        size = shifted.size
        via_codes, via_p = mg.probabilities(mg.REGISTERED_VIA)
        shifted_codes, shifted_p = mg.probabilities(mg.REGISTERED_VIA_SHIFTED)
        return np.where(
            shifted,
            rng.choice(shifted_codes, size=size, p=shifted_p),
            rng.choice(via_codes, size=size, p=via_p),
        )

    def _pay_methods(self, pref_auto: np.ndarray) -> np.ndarray:
        """Usual payment method: auto-renewing users mostly pay through method 41."""
        rng = self.rng
        size = pref_auto.size
        codes, weights = self.methods
        not41 = codes != 41
        other_method = rng.choice(codes[not41], size=size, p=weights[not41] / weights[not41].sum())
        uses41 = rng.random(size) < np.where(pref_auto, mg.METHOD_41_AUTO, mg.METHOD_41_MANUAL)
        return np.where(uses41, 41, other_method)

    def _member_rows(self, size: int) -> np.ndarray:
        """Whether each user has a members row; a few active users have none, as in KKBox."""
        has_member_row = np.ones(size, dtype=bool)
        missing = max(1, round(mg.MISSING_MEMBER_SHARE * size))
        has_member_row[self.rng.choice(size, size=min(missing, size), replace=False)] = False
        return has_member_row

    def _msnos(self, size: int) -> np.ndarray:
        raw = self.rng.bytes(MSNO_BYTES * size)
        ids = [
            base64.b64encode(raw[i * MSNO_BYTES : (i + 1) * MSNO_BYTES]).decode("ascii")
            for i in range(size)
        ]
        if len(set(ids)) != size:  # astronomically unlikely, but ids must be unique
            raise RuntimeError("msno collision; choose another seed")
        return np.array(ids, dtype=object)
