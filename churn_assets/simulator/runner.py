"""``simulate``: run a seeded world and land it as KKBox-format files plus the hidden truth."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn_assets.progress import Progress

from . import marginals as mg
from .arrivals import DATA_DELAY_MONTHS, LABEL_DELAY_MONTHS, arrival_record
from .dates import add_months, month_tag, parse_month, yyyymmdd
from .delivery import Delivery
from .drift import Drift
from .knobs import degenerate_kinds, degrade, file_name, format_late, format_missing, late_files
from .labels import cohort_expiries, kkbox_churn_labels
from .member_changes import CHANGE_COLUMNS, MemberChanges, draw_member_changes
from .population import Population
from .targeted import TargetedDrifts
from .thinning import HistoryStarts, check_thin_history, draw_history_starts
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
    labelled_cohorts: list[date]  # cohorts for which train_YYYYMM.csv was written
    rows: dict[str, int]  # rows written per table: members, transactions, user_logs, labels
    drifts: list[Drift]
    arrivals: dict[str, date] = field(default_factory=dict)  # file -> first day it is visible
    missing_files: list[str] = field(default_factory=list)  # monthly files never written
    member_changes: int = 0  # users whose profile changes in a later members file


def _whole(value: object, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        kind = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def _validate(
    users: int, months: int, drifts: Sequence[Drift], history_months: int, member_changes: float
) -> None:
    _whole(users, "users", 1)
    _whole(months, "months", 1)
    _whole(history_months, "history_months", 0)
    share_ok = isinstance(member_changes, int | float) and not isinstance(member_changes, bool)
    if not share_ok or not 0.0 <= member_changes <= 1.0:
        raise ValueError(f"member_changes must be a share in [0, 1], got {member_changes!r}")
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


def _arguments(shape: _Shape) -> dict[str, object]:
    """The shape knobs as recorded, those left at their defaults omitted (older worlds read the
    same)."""
    out: dict[str, object] = {}
    if len(shape.history) != mg.HISTORY_MONTHS:
        out["history_months"] = len(shape.history)
    if shape.kinds:
        out["degenerate"] = list(shape.kinds)
    if shape.late:
        out["late"] = [format_late(entry) for entry in shape.late]
    if shape.missing:
        out["missing"] = [format_missing(entry) for entry in shape.missing]
    if shape.member_changes:
        out["member_changes"] = shape.member_changes
    if shape.thin_history:
        out["thin_history"] = shape.thin_history
    return out


@dataclass(frozen=True)
class _Shape:
    """The world :func:`simulate` was asked for, all but its seed: checked, month by month."""

    users: int
    first: date
    months: list[date]  # first days of the simulated months (those with listening rows)
    history: list[date]  # earlier months with transactions only
    drifts: list[Drift]
    kinds: tuple[str, ...]  # degenerate columns, each once
    late: list[tuple[str, date, int]]
    missing: list[tuple[str, date]]
    member_changes: float
    thin_history: float  # mean months back of each user's first landed month; 0: all lands

    @property
    def cohorts(self) -> list[date]:
        """Cohorts with a label file: the months before and after each are simulated too."""
        return self.months[1:-1]


def _shape(
    users: int,
    start: str,
    months: int,
    drifts: Sequence[Drift],
    history_months: int,
    degenerate: Sequence[str],
    late: Sequence[tuple[str, date, int]],
    missing: Sequence[tuple[str, date]],
    member_changes: float,
    thin_history: float,
) -> _Shape:
    """Check every argument before anything is written, so a bad call leaves no folder behind."""
    drifts = list(drifts)
    _validate(users, months, drifts, history_months, member_changes)
    kinds = degenerate_kinds(degenerate)
    first = parse_month(start)
    month_list = [add_months(first, k) for k in range(months)]
    late_list, missing_list = late_files(late, missing, month_list)
    thin_history = check_thin_history(thin_history)
    return _Shape(
        users=users,
        first=first,
        months=month_list,
        history=[add_months(first, k) for k in range(-history_months, 0)],
        drifts=drifts,
        kinds=kinds,
        late=late_list,
        missing=missing_list,
        member_changes=member_changes,
        thin_history=thin_history,
    )


class _Landing:
    """The landing folder as :func:`simulate` fills it, one table after the other.

    Every file goes through :meth:`land`, so a missing file is never written, a late one is
    recorded as arriving late and degenerate members columns are applied in one place.
    """

    def __init__(self, folder: Path, shape: _Shape) -> None:
        self.folder = folder
        self.shape = shape
        self.rows = dict.fromkeys(("members", "transactions", "user_logs", "labels"), 0)
        self.delays = {file_name(table, month): delay for table, month, delay in shape.late}
        self.never = {file_name(table, month) for table, month in shape.missing}
        self.arrivals: dict[str, date] = {}

    def land(
        self, frame: pd.DataFrame, name: str, arrives: date, decimals: int | None = None
    ) -> int:
        """Write one file unless it is missing, note the day it arrives; return its rows."""
        if name in self.never:
            return 0
        if self.shape.kinds and name.startswith("members"):
            frame = degrade(frame, "members", self.shape.kinds)
        self.arrivals[name] = add_months(arrives, self.delays.get(name, 0))
        return write_csv(frame, self.folder / name, decimals=decimals)

    def arrival_record(self) -> dict[str, Any]:
        """truth/arrivals.json: when each written file arrives, and which are late or missing."""
        return arrival_record(self.arrivals, self.shape.late, self.shape.missing)

    def monthly(self, month: date) -> date:
        """The day a month's data file arrives; the history's files are there from the start."""
        return max(add_months(month, DATA_DELAY_MONTHS), self.shape.first)

    def members(self, pop: Population, changes: MemberChanges) -> None:
        """members.csv for the users from before the window, then each month's registrations.

        A user whose profile changes in a month appears again, changed, in that month's file.
        """
        everyone = np.arange(len(pop))
        self.rows["members"] += self.land(
            members_frame(pop, everyone[pop.reg_month < 0]), "members.csv", self.shape.first
        )
        for k, month in enumerate(self.shape.months):
            frame = members_frame(pop, everyone[pop.reg_month == k])
            if changes.users.size:
                frame = pd.concat([frame, changes.rows(pop, k)], ignore_index=True)
            self.rows["members"] += self.land(
                frame, f"members_{month_tag(month)}.csv", self.monthly(month)
            )

    def transactions(self, history: WorldHistory, starts: HistoryStarts | None) -> pd.DataFrame:
        """One transactions file per month; all of them are returned, for the labels.

        With ``starts`` (a thinning history), a user's rows dated before its drawn start are not
        landed but are returned all the same: labels are KKBox's own, from its full records.
        """
        transactions = transactions_frame(history)
        if self.shape.kinds:
            transactions = degrade(transactions, "transactions", self.shape.kinds)
        landed = transactions
        if starts is not None:
            rows = history.transactions
            kept = starts.landed(rows["user"], rows["transaction_date"])
            landed = transactions[kept[transactions.index.to_numpy()]]
        self._monthly_transactions(landed, history)
        return transactions

    def _monthly_transactions(self, transactions: pd.DataFrame, history: WorldHistory) -> None:
        """A history month without a landed transaction gets no file; every simulated month
        gets one."""
        dates = transactions["transaction_date"].to_numpy()
        stamps = yyyymmdd(np.concatenate([history.history_starts, history.month_starts]))
        history_months = len(self.shape.history)
        for k, month in enumerate(self.shape.history + self.shape.months):
            inside = (dates >= stamps[k]) & (dates < stamps[k + 1])
            if inside.any() or k >= history_months:
                self.rows["transactions"] += self.land(
                    transactions[inside],
                    f"transactions_{month_tag(month)}.csv",
                    self.monthly(month),
                )

    def user_logs(self, history: WorldHistory, delivery: Delivery) -> None:
        """One user_logs file per simulated month, as delivered (schema and outage drifts)."""
        for k, month in enumerate(self.shape.months):
            self.rows["user_logs"] += self.land(
                delivery.user_logs(logs_frame(history.population, history.logs[k]), month),
                f"user_logs_{month_tag(month)}.csv",
                self.monthly(month),
                decimals=3,
            )

    def labels(self, transactions: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
        """One train_YYYYMM.csv per cohort; the truth of all cohorts is returned, in order."""
        truth_parts = []
        for cohort in self.shape.cohorts:
            labels, truth = _label_cohort(transactions, decisions, cohort)
            self.rows["labels"] += self.land(
                labels[list(LABEL_COLUMNS)],
                f"train_{month_tag(cohort)}.csv",
                add_months(cohort, LABEL_DELAY_MONTHS),
            )
            truth_parts.append(truth)
        return (
            pd.concat(truth_parts, ignore_index=True)
            if truth_parts
            else pd.DataFrame(columns=list(TRUTH_COLUMNS))
        )


def _history_starts(shape: _Shape, history: WorldHistory, seed: int) -> HistoryStarts | None:
    """Each user's first landed month when the history thins, drawn from its own stream."""
    if not shape.thin_history:
        return None
    days = np.concatenate([history.history_starts, history.month_starts[:1]])
    return draw_history_starts(history.population, days, shape.thin_history, seed)


def _write_truth(
    folder: Path,
    shape: _Shape,
    truth: pd.DataFrame,
    pop: Population,
    changes: MemberChanges,
    starts: HistoryStarts | None,
) -> None:
    """What the landing files hide: true churn probabilities, the members' changes and, when
    the history thins, where each user's landed payments begin."""
    write_csv(truth, folder / "churn_probability.csv", decimals=6)
    month_days = [f"{m:%Y-%m-%d}" for m in shape.months]
    change_frame = (
        changes.record(pop, month_days)
        if changes.users.size
        else pd.DataFrame(columns=list(CHANGE_COLUMNS))
    )
    write_csv(change_frame, folder / "member_changes.csv")
    if starts is not None:
        write_csv(starts.record(pop), folder / "history_starts.csv")


def _schedule(shape: _Shape, seed: int, delivery: Delivery) -> dict[str, object]:
    """truth/drift_schedule.json: each drift as applied, the arguments, the months written."""
    targeted = TargetedDrifts.plan(seed, shape.drifts, shape.first)
    return {
        "drifts": [delivery.describe(d) | targeted.describe(d) for d in shape.drifts],
        "arguments": {
            "users": shape.users,
            "start": f"{shape.first:%Y-%m}",
            "months": len(shape.months),
            "seed": seed,
            "drifts": [str(d) for d in shape.drifts],
            **_arguments(shape),
        },
        "months": [f"{m:%Y-%m-%d}" for m in shape.months],
        "history_months": [f"{m:%Y-%m-%d}" for m in shape.history],
        "labelled_cohorts": [f"{m:%Y-%m-%d}" for m in shape.cohorts],
    }


def _summary(
    landing: _Landing, truth_dir: Path, users: int, member_changes: int
) -> SimulationSummary:
    """What was written, for a caller that goes on to load or check it."""
    shape = landing.shape
    return SimulationSummary(
        landing_dir=landing.folder,
        truth_dir=truth_dir,
        users=users,
        months=shape.months,
        history_months=shape.history,
        labelled_cohorts=shape.cohorts,
        rows=landing.rows,
        drifts=shape.drifts,
        arrivals=dict(sorted(landing.arrivals.items())),
        missing_files=sorted(landing.never),
        member_changes=member_changes,
    )


def simulate(
    out: Path,
    users: int = 2000,
    start: str = "2016-01",
    months: int = 8,
    seed: int = 7,
    drifts: Sequence[Drift] = (),
    *,
    history_months: int = mg.HISTORY_MONTHS,
    degenerate: Sequence[str] = (),
    late: Sequence[tuple[str, date, int]] = (),
    missing: Sequence[tuple[str, date]] = (),
    member_changes: float = 0.0,
    thin_history: float = 0.0,
    progress: Callable[[int], Progress] | None = None,
) -> SimulationSummary:
    """Simulate ``months`` months of a ``users``-user KKBox-like service into ``out``.

    Writes ``out/landing`` (members, transactions, user_logs and train_YYYYMM label files) and
    ``out/truth`` (true churn probabilities, the drift schedule, when each file arrives and which
    members changed). Equal arguments give byte-identical files. Cohort M is labelled when months
    M-1 and M+1 are both simulated: the rule needs the transaction current before M, and
    renewals up to 30 days past expiry.

    The shape of the world:

    * ``history_months``: users who exist before ``start`` come with that many months of
      transactions before it (``transactions_YYYYMM.csv`` of those months; listening rows start
      at ``start``); 0 gives none.
    * ``degenerate``: columns constant over the whole world (see :mod:`.knobs`), e.g.
      ``no_cancels`` or ``single_city``.
    * ``late``: ``(table, data month, delay in months)``; that monthly file of ``transactions``,
      ``user_logs`` or ``members`` lands the delay after its normal day (truth/arrivals.json).
    * ``missing``: ``(table, data month)``; that monthly file is never written.
    * ``member_changes``: the share of users with a members row whose city (sometimes birth year
      or registration channel) changes in a later simulated month; they appear again, with the
      new values, in that month's members file (truth/member_changes.csv lists the changes).
    * ``thin_history``: each user's transactions land from a month drawn per user, that many
      months before ``start`` on average, as a log that begins on a fixed day (:mod:`.thinning`;
      0 lands the whole history; :data:`~.thinning.THIN_HISTORY_MEAN` is a KKBox-like mean).

    Labels are computed from every transaction, a missing or late file's and a thinned history's
    too, as KKBox would have shipped them; they must agree with the world's own decisions user by
    user. ``progress(steps)`` returns the :class:`~churn_assets.progress.Progress` told of each.
    """
    shape = _shape(
        users, start, months, drifts, history_months, degenerate, late, missing, member_changes,
        thin_history,
    )  # fmt: skip
    landing_dir, truth_dir = _prepare(Path(out))
    world = World(users, shape.first, months, seed, shape.drifts, history_months=history_months)
    total = world.history_starts.size + months + len(LANDING_STEPS)  # a month is a tick
    steps = progress(total) if progress is not None else Progress.silent()
    try:
        history = world.run(on_month=lambda month: steps.tick(f"month {month}"))
        landing = _Landing(landing_dir, shape)
        changes = _land(landing, truth_dir, history, seed, steps)
    finally:
        steps.close()
    return _summary(landing, truth_dir, len(history.population), int(changes.users.size))


# What is written after the world is stepped, one progress step each.
LANDING_STEPS = ("members", "transactions", "user_logs", "labels", "truth")


def _land(
    landing: _Landing, truth_dir: Path, history: WorldHistory, seed: int, steps: Progress
) -> MemberChanges:
    """Every landing file, then the truth they hide; the members' changes are returned."""
    shape, pop = landing.shape, history.population
    delivery = Delivery(seed, shape.drifts)
    changes = draw_member_changes(
        pop, len(shape.months), shape.member_changes, seed, frozenset(shape.kinds)
    )
    landing.members(pop, changes)
    steps.step("members")
    starts = _history_starts(shape, history, seed)
    transactions = landing.transactions(history, starts)
    steps.step("transactions")
    landing.user_logs(history, delivery)
    steps.step("user_logs")
    truth = landing.labels(transactions, _decision_frame(history))
    steps.step("labels")
    _write_truth(truth_dir, shape, truth, pop, changes, starts)
    _write_json(truth_dir / "drift_schedule.json", _schedule(shape, seed, delivery))
    _write_json(truth_dir / "arrivals.json", landing.arrival_record())
    steps.step("truth")
    return changes


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
