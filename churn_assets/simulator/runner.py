"""``simulate``: run a seeded world and land it as KKBox-format files plus the hidden truth."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from .dates import add_months, month_tag, parse_month, yyyymmdd
from .delivery import Delivery
from .drift import Drift
from .labels import cohort_expiries, kkbox_churn_labels
from .world import World, WorldHistory
from .writer import (
    LABEL_COLUMNS,
    TRUTH_COLUMNS,
    logs_frame,
    members_frame,
    transactions_frame,
    write_csv,
)


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate` wrote, for callers that go on to load or check it."""

    landing_dir: Path
    truth_dir: Path
    users: int  # users that exist in the world (a covariate drift adds registrations)
    months: list[date]  # first days of the simulated months (those with listening rows)
    history_months: list[date]  # earlier months with transactions only (subscription history)
    labeled_cohorts: list[date]  # cohorts for which train_YYYYMM.csv was written
    rows: dict[str, int]  # rows written per table: members, transactions, user_logs, labels
    drifts: list[Drift]


def _validate(users: int, months: int, drifts: Sequence[Drift]) -> None:
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise ValueError(f"users must be a positive integer, got {users!r}")
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise ValueError(f"months must be a positive integer, got {months!r}")
    kinds: set[str] = set()
    for drift in drifts:
        if not isinstance(drift, Drift):
            raise TypeError(f"drifts must be Drift objects (see parse_drift), got {drift!r}")
        if drift.kind in kinds:
            raise ValueError(f"at most one {drift.kind} drift per world, got {list(drifts)}")
        kinds.add(drift.kind)


def _prepare(out: Path) -> tuple[Path, Path]:
    landing, truth = out / "landing", out / "truth"
    if landing.exists() and any(landing.iterdir()):
        raise FileExistsError(
            f"{landing} already holds files; simulate into an empty folder rather than mixing "
            "two worlds"
        )
    landing.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    return landing, truth


def _decision_frame(history: WorldHistory) -> pd.DataFrame:
    made = history.decisions
    users = made["user"].astype("int64")
    return pd.DataFrame(
        {
            "msno": history.population.msno[users],
            "expiry": yyyymmdd(made["expiry"]),
            "churn_probability": made["probability"].astype("float64"),
            "churn_probability_without_latent": made["probability_without_latent"].astype(
                "float64"
            ),
            "decided_churn": made["churn"].astype("int64"),
        }
    )


def _label_cohort(
    transactions: pd.DataFrame, decisions: pd.DataFrame, cohort: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labels by the KKBox rule from landed rows, and the world's own view of the same users.

    The two must agree user by user; a disagreement means the world wrote transactions that do
    not say what it decided, so it is raised rather than written.
    """
    labels = kkbox_churn_labels(transactions, cohort)
    members = cohort_expiries(transactions, cohort)
    truth = members.merge(decisions, on=["msno", "expiry"], how="left", validate="one_to_one")
    if truth["churn_probability"].isna().any():
        raise RuntimeError(f"cohort {cohort}: users in the label rule without a world decision")
    truth = truth.merge(labels, on="msno", validate="one_to_one")
    if (truth["is_churn"] != truth["decided_churn"]).any():
        raise RuntimeError(f"cohort {cohort}: landed labels disagree with the world's decisions")
    truth = truth.sort_values("msno", kind="mergesort")
    truth["cohort_month"] = f"{cohort:%Y-%m-%d}"
    truth["is_churn"] = truth["decided_churn"]
    return labels, truth[list(TRUTH_COLUMNS)]


def simulate(
    out: Path,
    users: int = 2000,
    start: str = "2016-01",
    months: int = 8,
    seed: int = 7,
    drifts: Sequence[Drift] = (),
) -> SimulationSummary:
    """Simulate ``months`` months of a ``users``-user KKBox-like service into ``out``.

    Writes ``out/landing`` (members, transactions, user_logs and train_YYYYMM label files) and
    ``out/truth`` (true churn probabilities and the drift schedule). Equal arguments give
    byte-identical files. Cohort M is labelled when months M-1 and M+1 are both simulated: the
    rule needs the transaction current before M, and renewals up to 30 days past expiry.
    Users who exist before ``start`` come with up to 12 months of transactions before it
    (``transactions_YYYYMM.csv`` of those months; listening rows start at ``start``).
    """
    drifts = list(drifts)
    _validate(users, months, drifts)
    first = parse_month(start)
    landing, truth_dir = _prepare(Path(out))
    history = World(users, first, months, seed, drifts).run()
    pop = history.population
    month_list = [add_months(first, k) for k in range(months)]
    back = history.history_starts.size
    history_list = [add_months(first, k) for k in range(-back, 0)]
    delivery = Delivery(seed, drifts)
    rows = dict.fromkeys(("members", "transactions", "user_logs", "labels"), 0)

    everyone = np.arange(len(pop))
    rows["members"] += write_csv(
        members_frame(pop, everyone[pop.reg_month < 0]), landing / "members.csv"
    )
    for k, month in enumerate(month_list):
        rows["members"] += write_csv(
            members_frame(pop, everyone[pop.reg_month == k]),
            landing / f"members_{month_tag(month)}.csv",
        )

    transactions = transactions_frame(history)
    dates = transactions["transaction_date"].to_numpy()
    stamps = yyyymmdd(np.concatenate([history.history_starts, history.month_starts]))
    for k, month in enumerate(history_list + month_list):
        inside = (dates >= stamps[k]) & (dates < stamps[k + 1])
        if inside.any() or k >= back:
            rows["transactions"] += write_csv(
                transactions[inside], landing / f"transactions_{month_tag(month)}.csv"
            )
    for k, month in enumerate(month_list):
        rows["user_logs"] += write_csv(
            delivery.user_logs(logs_frame(pop, history.logs[k]), month),
            landing / f"user_logs_{month_tag(month)}.csv",
            decimals=3,
        )

    decisions = _decision_frame(history)
    labeled = month_list[1:-1]
    truth_parts = []
    for cohort in labeled:
        labels, truth = _label_cohort(transactions, decisions, cohort)
        rows["labels"] += write_csv(
            labels[list(LABEL_COLUMNS)], landing / f"train_{month_tag(cohort)}.csv"
        )
        truth_parts.append(truth)
    truth_frame = (
        pd.concat(truth_parts, ignore_index=True)
        if truth_parts
        else pd.DataFrame(columns=list(TRUTH_COLUMNS))
    )
    write_csv(truth_frame, truth_dir / "churn_probability.csv", decimals=6)

    schedule = {
        "drifts": [delivery.describe(d) for d in drifts],
        "arguments": {
            "users": users,
            "start": f"{first:%Y-%m}",
            "months": months,
            "seed": seed,
            "drifts": [str(d) for d in drifts],
        },
        "months": [f"{m:%Y-%m-%d}" for m in month_list],
        "history_months": [f"{m:%Y-%m-%d}" for m in history_list],
        "labeled_cohorts": [f"{m:%Y-%m-%d}" for m in labeled],
    }
    (truth_dir / "drift_schedule.json").write_text(
        json.dumps(schedule, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return SimulationSummary(
        landing_dir=landing,
        truth_dir=truth_dir,
        users=len(pop),
        months=month_list,
        history_months=history_list,
        labeled_cohorts=labeled,
        rows=rows,
        drifts=drifts,
    )
