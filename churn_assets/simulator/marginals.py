"""Distributions and coefficients of the simulated world.

Marginals follow the public KKBox "WSDM churn" dump closely enough for feature code written
against the real data to meet the same value ranges, codes and quirks.
"""

from __future__ import annotations

import numpy as np

# --- population -----------------------------------------------------------------------------
PRE_START_SHARE = 0.75  # users registered before the first simulated month
PRE_START_MIN_AGE_DAYS = 61  # earlier users registered at least two months before the window
PRE_START_MEAN_AGE_DAYS = 900.0  # registration age of earlier users (exponential, capped)
PRE_START_MAX_AGE_DAYS = 13 * 365
ACTIVE_AT_START = 0.84  # earlier users holding a live subscription when the window opens
MISSING_MEMBER_SHARE = 0.015  # users with activity but no members row
HISTORY_MONTHS = 12  # months of subscription history written before the window, by default

CITY = {
    1: 0.71, 13: 0.06, 5: 0.05, 4: 0.035, 15: 0.03, 22: 0.03, 6: 0.025, 14: 0.013, 12: 0.009,
    9: 0.008, 11: 0.008, 18: 0.006, 8: 0.006, 10: 0.005, 17: 0.004, 21: 0.004, 3: 0.004,
    7: 0.002, 16: 0.001, 20: 0.0005, 19: 0.0005,
}  # fmt: skip
BLANK_PROFILE_SHARE = 0.60  # no gender, bd 0 (and mostly city 1), as in the real dump
BLANK_PROFILE_CITY1 = 0.88
GENDER_SKIPPED = 0.125  # of filled-in profiles
MALE_SHARE = 0.52
BAD_BD_SHARE = 0.175  # of filled-in profiles: 0, negative or > 100

REGISTERED_VIA = {7: 0.54, 9: 0.27, 3: 0.12, 4: 0.06, 13: 0.01}
REGISTERED_VIA_SHIFTED = {7: 0.36, 9: 0.20, 3: 0.10, 4: 0.26, 13: 0.08}
AUTO_RENEW_BY_VIA = {7: 0.96, 9: 0.92, 3: 0.80, 4: 0.62, 13: 0.66}
AGE_GAMMA = (17.0, 2.2, 4.0)  # offset, shape, scale: mode in the early twenties
AGE_GAMMA_SHIFTED = (14.0, 2.2, 3.0)

# --- payments -------------------------------------------------------------------------------
PAYMENT_METHOD = {
    41: 0.54, 40: 0.09, 38: 0.075, 39: 0.065, 37: 0.06, 36: 0.05, 34: 0.045, 33: 0.02,
    32: 0.015, 31: 0.01, 30: 0.01, 29: 0.01, 27: 0.01,
}  # fmt: skip
METHOD_41_AUTO = 0.56  # auto-renewing users mostly pay through method 41
METHOD_41_MANUAL = 0.10
METHOD_SWITCH = 0.04

PRICE_TIER = {149: 0.55, 99: 0.30, 129: 0.15}  # list price of a 30-day plan
FIXED_PRICE = {7: 35, 90: 480, 100: 500, 120: 600, 180: 894, 365: 1788, 395: 1788, 410: 1788}
USER_PLAN = {30: 0.905, 31: 0.035, 7: 0.012, 90: 0.02, 180: 0.012, 365: 0.01, 410: 0.006}
TXN_PLAN = {30: 0.86, 31: 0.05, 7: 0.05, 90: 0.02, 100: 0.005, 120: 0.005, 180: 0.006, 395: 0.004}
PLAN_LOYALTY = 0.93  # chance a purchase repeats the user's usual plan
ZERO_DAY_SHARE = 0.045  # 30-day purchases whose plan field reads 0 (the membership still grows)
LONG_PLAN_DAYS = 90

TRIAL_SHARE = 0.14  # first purchases that are free trials
DISCOUNT_SHARE = 0.035
FREE_SHARE = 0.008
AUTO_SLIP = 0.02  # purchases of an auto-renewing user made by hand
LONG_PLAN_MANUAL = 0.8
COMEBACK_MANUAL = 0.5

CANCEL_INTERCEPT = -3.1
CANCEL_LATENT = 0.8
CANCEL_MANUAL_FACTOR = 0.2
CANCEL_DROPS_AUTO = 0.3  # chance a cancel turns the user's auto-renewal off for good

MANUAL_EARLY_DAYS = 5  # manual renewals fall in [max(month start, E - 5), E + 25]
MANUAL_LATE_DAYS = 25
COMEBACK_SHARE = 0.2  # churners who buy again later
COMEBACK_GAP_DAYS = 31  # minimum days after expiry, so a comeback never counts as a renewal
COMEBACK_MEAN_EXTRA_DAYS = 75.0
PRE_LAPSED_COMEBACK = 0.15

# --- listening ------------------------------------------------------------------------------
LEVEL_REF = float(np.log(14.0))  # typical log daily full plays
LEVEL_SD = 0.45
LEVEL_LOW_VIA = -0.15  # registered_via 4 / 13 listen a bit less
TREND_SD = 0.07  # monthly change of a user's level, persistent over several months
TREND_PERSISTENCE = 0.85
LEVEL_NOISE_SD = 0.08
LEVEL_REVERSION = 0.10
LEVEL_BURN_IN_MONTHS = 24  # start the level process near its steady state
ACTIVITY_INTERCEPT = 0.35
ACTIVITY_SLOPE = 1.3
ACTIVITY_BIAS_SD = 0.7
LAPSED_LISTENING = 0.04  # listening mostly stops without a live subscription
DAY_NOISE_SD = 0.75
MAX_DAILY_PLAYS = 220.0  # about 16 hours: longer days only come from the quirk rows
PARTIAL_PLAYS = {"num_25": 0.13, "num_50": 0.05, "num_75": 0.05, "num_985": 0.06}
PLAYED_SHARE = {"num_25": 0.2, "num_50": 0.62, "num_75": 0.86, "num_985": 0.99, "num_100": 1.0}
UNIQUE_SHARE = 0.82
SONG_SECS = 232.0
SONG_SD = 0.15
COVARIATE_VOLUME = 0.6  # listening volume under a covariate drift
COVARIATE_ACTIVITY = 0.75  # and the chance of listening on a given day
COVARIATE_REGISTRATIONS = 2  # new registrations multiply by this

# --- quirks (always present, at low rates) --------------------------------------------------
NEGATIVE_SECS_SHARE = 0.0003
ABSURD_SECS_SHARE = 0.0003
DUPLICATE_TXN_SHARE = 0.002
BACKDATED_EXPIRY_SHARE = 0.001  # rows with membership_expire_date before transaction_date

# --- churn ----------------------------------------------------------------------------------
FEATURES = (
    "not_auto_renew", "cancelled", "discounted", "free", "listening_trend", "recency",
    "active_share", "tenure", "long_plan", "no_history", "latent",
)  # fmt: skip
CHURN_BASE = {
    "intercept": -2.85,
    "not_auto_renew": 2.4,
    "cancelled": 1.6,
    "discounted": 0.5,
    "free": 1.0,
    "listening_trend": -0.5,
    "recency": 1.4,
    "active_share": -1.2,
    "tenure": -0.25,
    "long_plan": -0.4,
    "no_history": 0.8,
    # Heterogeneity no feature table sees (it also moves cancellations, so part of it shows).
    # At 0.4 the truth's log loss is about 2 % below that of the same probability averaged over
    # the latent term (the truth file's churn_probability_without_latent); at 0.9 it was 7-11 %,
    # more than any model of the observable data could close.
    "latent": 0.4,
}
CHURN_CONCEPT = {
    **CHURN_BASE,
    "intercept": -2.3,
    "not_auto_renew": 0.7,
    "cancelled": 1.0,
    "listening_trend": -1.0,
    "recency": 3.5,
    "active_share": -1.6,
}


def probabilities(table: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """Codes and normalised probabilities of a marginal table."""
    codes = np.array(list(table), dtype="int64")
    weights = np.array(list(table.values()), dtype="float64")
    return codes, weights / weights.sum()


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic link of every probability above given by an intercept and coefficients."""
    return 1.0 / (1.0 + np.exp(-x))
