"""Readable reasons from LightGBM's own SHAP contributions (``pred_contrib``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn_assets.modeling.contributions import ContributionTables, compile_contributions

K = TypeVar("K")

# How a feature reads in a sentence; unknown features fall back to their column name.
FEATURE_WORDS: dict[str, str] = {
    "days_to_expiry": "days until the membership expires",
    "last_plan_days": "length of the current plan (days)",
    "last_list_price": "list price of the current plan",
    "last_amount_paid": "amount paid for the current plan",
    "last_discount": "discount on the current plan",
    "last_is_auto_renew": "auto-renew on the current plan",
    "last_is_cancel": "cancelled the current plan",
    "last_payment_method_id": "payment method",
    "txn_count_365d": "payments in the last year",
    "cancel_count_365d": "cancellations in the last year",
    "auto_renew_share_365d": "share of auto-renewed payments in the last year",
    "mean_discount_share": "average discount share",
    "lapse_count": "earlier lapses in the subscription",
    "subscription_tenure_days": "days since the first payment",
    "plays_7d": "songs played in the last 7 days",
    "plays_30d": "songs played in the last 30 days",
    "plays_90d": "songs played in the last 90 days",
    "active_days_7d": "listening days in the last 7 days",
    "active_days_30d": "listening days in the last 30 days",
    "active_days_90d": "listening days in the last 90 days",
    "secs_30d": "listening seconds in the last 30 days",
    "secs_90d": "listening seconds in the last 90 days",
    "unique_songs_30d": "unique songs in the last 30 days",
    "completion_ratio_30d": "share of songs played to the end",
    "plays_trend_14d": "listening trend, last 14 days against the 14 before",
    "days_since_last_listen": "days since the last listen",
    "city": "city",
    "age": "age",
    "gender_code": "gender",
    "registered_via": "registration channel",
    "registration_age_days": "days since registration",
    "plays_14d": "songs played in the last 14 days",
    "plays_60d": "songs played in the last 60 days",
    "active_days_14d": "listening days in the last 14 days",
    "active_days_60d": "listening days in the last 60 days",
    "secs_7d": "listening seconds in the last 7 days",
    "secs_14d": "listening seconds in the last 14 days",
    "secs_60d": "listening seconds in the last 60 days",
    "unique_songs_7d": "unique songs in the last 7 days",
    "unique_songs_14d": "unique songs in the last 14 days",
    "unique_songs_60d": "unique songs in the last 60 days",
    "unique_songs_90d": "unique songs in the last 90 days",
    "completion_ratio_7d": "share of songs played to the end, last 7 days",
    "completion_ratio_14d": "share of songs played to the end, last 14 days",
    "completion_ratio_60d": "share of songs played to the end, last 60 days",
    "completion_ratio_90d": "share of songs played to the end, last 90 days",
    "secs_trend_14d": "listening-time trend, last 14 days against the 14 before",
    "last_discount_share": "discount share on the current plan",
    "last_is_free": "current plan is free",
    "renewal_count_365d": "renewals in the last year",
    "cancel_count_90d": "cancellations in the last 90 days",
    "cancel_count_180d": "cancellations in the last 180 days",
    "payment_methods_365d": "payment methods used in the last year",
    "lapse_count_365d": "lapses in the last year",
}


def top_reasons(
    booster: lgb.Booster, matrix: pd.DataFrame, count: int = 3
) -> list[list[tuple[str, float, float]]]:
    """Per row, ``count`` reasons: (feature, value, SHAP contribution to the log-odds).

    What raises the risk comes first, strongest first: that is what a retention agent acts on.
    A user with fewer than ``count`` risk factors gets what holds them back next, strongest
    first, so every score is explained by the same number of reasons.
    """
    contributions = booster.predict(matrix, pred_contrib=True)[:, :-1]  # last column: base value
    names = list(matrix.columns)
    values = matrix.to_numpy()
    # Raising contributions sort before lowering ones, each group by its strength.
    order = np.lexsort((-np.abs(contributions), contributions <= 0), axis=1)[:, :count]
    return [
        [(names[c], float(values[row, c]), float(contributions[row, c])) for c in columns]
        for row, columns in enumerate(order)
    ]


# Yes/no features read as words, not as 0 and 1; coded ones through their codebook.
YES_NO_FEATURES = frozenset({"last_is_auto_renew", "last_is_cancel", "last_is_free"})
CODEBOOKS: dict[str, dict[int, str]] = {"gender_code": {0: "not given", 1: "male", 2: "female"}}


def reason_text(feature: str, value: float, contribution: float) -> str:
    """One reason as an agent reads it: ``auto-renew on the current plan: no (raises risk)``."""
    if np.isnan(value):
        shown = "unknown"
    elif feature in YES_NO_FEATURES:
        shown = "yes" if value >= 0.5 else "no"
    elif feature in CODEBOOKS and float(value).is_integer():
        shown = CODEBOOKS[feature].get(int(value), f"code {int(value)}")
    elif float(value).is_integer():
        shown = f"{int(value):d}"
    else:
        shown = f"{value:.2f}"
    direction = (
        "raises risk" if contribution > 0 else "lowers risk" if contribution < 0 else "no effect"
    )
    return f"{FEATURE_WORDS.get(feature, feature)}: {shown} ({direction})"


# --- At scale: the same reasons, chunk by chunk, selected and worded with numpy. ---

# Rows of contributions held at once: 50,000 x 56 doubles is about 22 MB.
CHUNK_ROWS = 50_000
DIRECTIONS = np.array([" (raises risk)", " (lowers risk)", " (no effect)"], dtype=object)
# Bits of the largest finite double: every |contribution| sorts below it as an integer.
_LARGEST_FINITE_BITS = np.uint64(0x7FF0000000000000)
_LOWERING_GROUP = np.uint64(1 << 63)


def reason_order_keys(contributions: np.ndarray) -> np.ndarray:
    """Integer keys that sort as :func:`top_reasons` orders: raising first, each by strength.

    A non-negative double's bits sort as its value, so the key is exact: no rounding can swap two
    contributions that differ, and equal ones tie (broken by column, as a stable sort would).
    """
    strength = np.abs(contributions).view(np.uint64)
    keys = _LARGEST_FINITE_BITS - strength  # strongest first
    keys[contributions <= 0] += _LOWERING_GROUP
    return keys


def top_reason_columns(contributions: np.ndarray, count: int = 3) -> np.ndarray:
    """Per row, the columns of its ``count`` reasons, in :func:`top_reasons`' order.

    ``argpartition`` finds the ``count``-th key; columns below it are in, and ties on it are
    filled from the left, as a stable sort would; then only ``count`` keys per row are sorted.
    """
    keys = reason_order_keys(contributions)
    count = min(count, keys.shape[1])
    kth = np.partition(keys, count - 1, axis=1)[:, count - 1 : count]
    chosen = keys <= kth
    # Rows with more ties on the last place than room for them (zeros, mostly): leftmost win.
    crowded = np.flatnonzero(np.count_nonzero(chosen, axis=1) > count)
    if len(crowded):
        tied = keys[crowded] == kth[crowded]
        room = count - np.count_nonzero(keys[crowded] < kth[crowded], axis=1)
        chosen[crowded] &= ~tied | (np.cumsum(tied, axis=1) <= room[:, None])
    columns = np.nonzero(chosen)[1].reshape(-1, count)  # left to right within each row
    order = np.argsort(np.take_along_axis(keys, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


def _shown_values(values: np.ndarray, features: np.ndarray, names: list[str]) -> np.ndarray:
    """Each value as :func:`reason_text` shows it, formatted a whole array at a time."""
    shown = np.empty(values.shape, dtype=object)
    integer = np.isfinite(values) & (values == np.floor(values))
    small = integer & (np.abs(values) < 2.0**62)
    shown[small] = values[small].astype(np.int64).astype(str).astype(object)
    shown[integer & ~small] = [f"{int(v):d}" for v in values[integer & ~small]]
    fraction = ~integer & ~np.isnan(values)  # infinities print as "inf", as in reason_text
    shown[fraction] = np.char.mod("%.2f", values[fraction]).astype(object)
    shown[np.isnan(values)] = "unknown"
    for column, name in enumerate(names):
        if name in YES_NO_FEATURES:
            mine = (features == column) & ~np.isnan(values)
            shown[mine] = np.where(values[mine] >= 0.5, "yes", "no")
        elif name in CODEBOOKS:
            mine = (features == column) & integer
            codes, which = np.unique(values[mine], return_inverse=True)
            book = CODEBOOKS[name]
            words = np.array([book.get(int(c), f"code {int(c)}") for c in codes], dtype=object)
            shown[mine] = words[which]
    return shown


def reason_texts(
    names: list[str], values: np.ndarray, contributions: np.ndarray, count: int = 3
) -> np.ndarray:
    """Per row, its ``count`` reasons as one string: :func:`reason_text`'s, joined by ``; ``."""
    columns = top_reason_columns(contributions, count)
    picked_values = np.take_along_axis(values, columns, axis=1)
    picked = np.take_along_axis(contributions, columns, axis=1)
    phrases = np.array([f"{FEATURE_WORDS.get(n, n)}: " for n in names], dtype=object)
    shown = _shown_values(picked_values, columns, names)
    direction = DIRECTIONS[np.where(picked > 0, 0, np.where(picked < 0, 1, 2))]
    parts = phrases[columns] + shown + direction
    texts = parts[:, 0]
    for position in range(1, parts.shape[1]):
        texts = texts + "; " + parts[:, position]
    return texts


def contribution_tables(
    booster: lgb.Booster, rows: int, tabulate_from: int
) -> ContributionTables | None:
    """The booster's trees tabulated when ``rows`` to explain (``tabulate_from`` or more) repay
    the one-off build; None where LightGBM's ``pred_contrib`` is cheaper."""
    return compile_contributions(booster) if rows >= tabulate_from else None


def _contributions(
    booster: lgb.Booster,
    values: np.ndarray,
    num_threads: int,
    tables: ContributionTables | None,
) -> np.ndarray:
    """Per-feature contributions (the base value dropped), from the tables when given."""
    if tables is not None:
        return tables(values, num_threads=num_threads)[:, :-1]
    return booster.predict(values, pred_contrib=True, num_threads=num_threads)[:, :-1]


def explain_rows(
    booster: lgb.Booster,
    values: np.ndarray,
    names: list[str],
    rows: np.ndarray | None = None,
    chunk_rows: int = CHUNK_ROWS,
    num_threads: int = 0,
    tables: ContributionTables | None = None,
) -> np.ndarray:
    """Reasons of ``rows`` of ``values`` (default: all), ``chunk_rows`` at a time: the
    contribution matrix of a whole cohort is never held (it is as wide as the features).
    With ``tables`` (:func:`~churn_assets.modeling.contributions.compile_contributions` of the
    same booster) the contributions come from them, the same numbers far cheaper a row;
    without, from LightGBM's ``pred_contrib`` (cheaper for a handful of rows)."""
    rows = np.arange(len(values)) if rows is None else rows
    texts = np.empty(len(rows), dtype=object)
    for start in range(0, len(rows), chunk_rows):
        chunk = values[rows[start : start + chunk_rows]]
        contributions = _contributions(booster, chunk, num_threads, tables)
        texts[start : start + len(chunk)] = reason_texts(names, chunk, contributions)
    return texts


def explain_blocks(
    booster: lgb.Booster,
    blocks: Iterable[tuple[K, np.ndarray]],
    names: list[str],
    num_threads: int = 0,
    tables: ContributionTables | None = None,
) -> Iterator[tuple[K, np.ndarray]]:
    """``(key, reasons)`` for each ``(key, values)`` block, as :func:`explain_rows` words them.

    A block's reasons are picked and worded on a worker thread while the next block's
    contributions are computed: wording is Python work on strings, the contributions numpy or
    LightGBM work that leaves the GIL, so each goes on while the other runs. A block's values may
    be overwritten once the next block is asked for: the worker is given a copy.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reason-words") as wording:
        pending: list[tuple[K, Future]] = []
        for key, values in blocks:
            contributions = _contributions(booster, values, num_threads, tables)
            job = wording.submit(reason_texts, names, values.copy(), contributions)
            pending.append((key, job))
            # At most two blocks wait for their words: memory stays a few blocks' worth.
            while pending and (pending[0][1].done() or len(pending) > 2):
                done_key, job = pending.pop(0)
                yield done_key, job.result()
        for key, job in pending:
            yield key, job.result()
