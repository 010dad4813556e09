"""Worlds whose shape nobody chose: a seeded draw of every :func:`~.runner.simulate` knob.

The product has to hold on any of them, so world-fuzz tests draw a spec, simulate it, and run the
product over it. Every drawn world keeps labels and a model possible: at least eight simulated
months, and a missing file never in the first two or the last two of them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np

from .dates import add_months
from .drift import DRIFT_KINDS, Drift
from .knobs import DEGENERATE_KINDS, LATE_TABLES, format_late, format_missing

FIRST_START, START_CHOICES = date(2014, 6, 1), 49  # starts 2014-06 .. 2018-06
SMALL_USERS, LARGE_USERS = (300, 900), (1_500, 20_000)
MONTHS = (8, 12)
HISTORY_MONTHS = (0, 18)
DEGENERATE_SHARE = 0.2  # chance of each degenerate kind
MAX_LATE, LATE_DELAYS = 2, (1, 2)
MISSING_TABLES = ("user_logs", "transactions")
MISSING_SHARE = 0.5  # chance of one missing file
MAX_MEMBER_CHANGES = 0.1
DRIFT_SHARE = 0.5  # chance of one drift
THIN_SHARE, THIN_MEANS = 0.3, (1.5, 6.0)  # chance of a thinning history, its mean months back
_FUZZ_STREAM = 104


def _between(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return int(rng.integers(low, high + 1))


def draw_world(seed: int, small: bool = True) -> dict[str, Any]:
    """The keyword arguments of :func:`~.runner.simulate` (all but ``out``) for world ``seed``.

    Users 300..900 (``small``) or 1,500..20,000; a start month in 2014-06..2018-06; 8..12
    simulated months after 0..18 months of subscription history; each degenerate column kind
    with chance 0.2; 0..2 late monthly files (1..2 months late); at most one missing user_logs or
    transactions file (never in the first two or last two months); up to 10 % changed members;
    half the time, one drift of any kind from a month after the first; and, three times in ten,
    a payment history thinning toward the start of the data (1.5..6 months back on average).
    The thinning is drawn last, so every other draw is that of the same seed before it existed.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"a world seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng([_FUZZ_STREAM, seed])
    users = _between(rng, SMALL_USERS if small else LARGE_USERS)
    start = add_months(FIRST_START, int(rng.integers(START_CHOICES)))
    months = _between(rng, MONTHS)
    history_months = _between(rng, HISTORY_MONTHS)
    degenerate = [k for k in DEGENERATE_KINDS if rng.random() < DEGENERATE_SHARE]

    missing: list[tuple[str, date]] = []
    if rng.random() < MISSING_SHARE:
        table = MISSING_TABLES[int(rng.integers(len(MISSING_TABLES)))]
        missing.append((table, add_months(start, _between(rng, (2, months - 3)))))
    tables = list(LATE_TABLES)
    candidates = [
        (table, add_months(start, k))
        for table in tables
        for k in range(months)
        if (table, add_months(start, k)) not in missing
    ]
    picked = rng.choice(len(candidates), size=_between(rng, (0, MAX_LATE)), replace=False)
    late = [(*candidates[int(i)], _between(rng, LATE_DELAYS)) for i in sorted(picked)]

    member_changes = round(float(rng.uniform(0.0, MAX_MEMBER_CHANGES)), 3)
    drifts = []
    if rng.random() < DRIFT_SHARE:
        kind = DRIFT_KINDS[int(rng.integers(len(DRIFT_KINDS)))]
        drifts.append(Drift(kind, add_months(start, _between(rng, (1, months - 1)))))
    thin_history = 0.0
    if rng.random() < THIN_SHARE:
        thin_history = round(float(rng.uniform(*THIN_MEANS)), 1)
    return {
        "users": users,
        "start": f"{start:%Y-%m}",
        "months": months,
        "seed": seed,
        "drifts": drifts,
        "history_months": history_months,
        "degenerate": degenerate,
        "late": late,
        "missing": missing,
        "member_changes": member_changes,
        "thin_history": thin_history,
    }


def describe_world(spec: dict[str, Any]) -> str:
    """A drawn world on one line, each argument as the command line spells it."""

    def shown(name: str, value: Any) -> str:
        if name == "late":
            return "[" + ", ".join(format_late(entry) for entry in value) + "]"
        if name == "missing":
            return "[" + ", ".join(format_missing(entry) for entry in value) + "]"
        if isinstance(value, list):
            return "[" + ", ".join(map(str, value)) + "]"
        return str(value)

    return ", ".join(f"{name}={shown(name, value)}" for name, value in spec.items())
