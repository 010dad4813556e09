"""The health page's pictures, as PNG files: where people would rather look than read.

Drawn with matplotlib's object interface on the Agg canvas: no display, no pyplot state shared
between runs, so a step renders the same in a daemon, a test or a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, MonthLocator
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from churn_assets.reports.health_data import HealthData, labelled_by

TIER_COLOURS = {"pass": "#2e7d32", "warn": "#ef8f00", "error": "#c62828"}
BUCKET_COLOURS = {"A": "#c62828", "B": "#ef8f00", "C": "#90a4ae"}
ACTION_COLOURS = {"retrain": "#c62828", "escalate": "#6a1b9a"}
ACTION_ORDER = {"retrain": 0, "escalate": 1}
METRICS = {"auc": "AUC", "log_loss": "log loss", "lift_top_decile": "lift, top decile"}
DPI = 80
TOP_FEATURES = 15


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _months(ax: Axes) -> None:
    """One tick a month (fewer over long spans), labelled YYYY-MM."""
    low, high = ax.get_xlim()
    span = max(1, round((high - low) / 30))
    ax.xaxis.set_major_locator(MonthLocator(interval=max(1, span // 12)))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m"))
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.grid(alpha=0.3)


def performance_chart(data: HealthData, path: Path) -> Path:
    """AUC, log loss and lift of every version on each labelled cohort (lines), beside what the
    scoring champion promised before the labels (dashed, with its interval)."""
    figure = Figure(figsize=(11, 3.4))
    for ax, (metric, title) in zip(figure.subplots(1, 3), METRICS.items(), strict=True):
        ax.set_title(title, fontsize=10)
        drawn = False
        for version, rows in data.performance.groupby("model_version", sort=True):
            ax.plot(rows["cohort_month"], rows[metric], marker="o", ms=3, label=f"v{version}")
            drawn = True
        estimates = data.champion_estimates(metric)
        if len(estimates):
            ax.fill_between(
                estimates["cohort_month"],
                estimates["low"],
                estimates["high"],
                color="#000",
                alpha=0.08,
                label="estimate interval",
            )
            ax.plot(
                estimates["cohort_month"], estimates["estimate"], "k--", lw=1.2, label="estimated"
            )
            drawn = True
        if not drawn:
            _empty(ax, "no scores yet")
            continue
        _months(ax)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    if handles:
        figure.axes[0].legend(handles, labels, fontsize=7, loc="best")
    figure.suptitle(
        f"Model health: realised on cohorts labelled by {labelled_by(data.month):%Y-%m}, "
        "estimated before labels",
        fontsize=10,
    )
    return _save(figure, path)


def calibration_chart(data: HealthData, path: Path) -> Path:
    """The champion's reliability on the newest labelled cohort: mean score against churn seen."""
    figure = Figure(figsize=(4.2, 4))
    ax = figure.subplots()
    bins = data.reliability()
    if bins.empty:
        _empty(ax, "no labelled cohort scored yet")
        return _save(figure, path)
    cohort = data.calibration["cohort_month"].iloc[0]
    version = data.calibration["model_version"].iloc[0]
    top = float(max(bins["mean_score"].max(), bins["observed_rate"].max(), 0.05)) * 1.05
    ax.plot([0, top], [0, top], color="#999", lw=1, label="calibrated")
    ax.plot(bins["mean_score"], bins["observed_rate"], marker="o", label=f"v{version}")
    ax.set_xlabel("mean score in bin")
    ax.set_ylabel("churn seen in bin")
    ax.set_title(
        f"Calibration, cohort {cohort:%Y-%m} (ECE {data.calibration_error():.3f})", fontsize=10
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(figure, path)


def importance_chart(data: HealthData, path: Path) -> Path:
    """The reference model's most important features, coloured by their drift tier this cohort."""
    figure = Figure(figsize=(6, 4.5))
    ax = figure.subplots()
    ranked = data.importance.dropna(subset=["importance"])
    top = ranked[ranked["importance"] > 0].head(TOP_FEATURES).iloc[::-1]
    if top.empty:
        _empty(ax, "no drift measured for this cohort")
        return _save(figure, path)
    colours = [TIER_COLOURS.get(t, "#777") for t in top["tier"]]
    ax.barh(top["column_name"], top["importance"], color=colours)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("share of the model's gain (colour: drift tier this cohort)")
    version = top["reference_model_version"].iloc[0]
    ax.set_title(f"Importance, v{version}, cohort {data.month:%Y-%m}", fontsize=10)
    return _save(figure, path)


def drift_chart(data: HealthData, path: Path) -> Path:
    """Weighted feature PSI and score PSI per cohort, each point coloured by its tier."""
    figure = Figure(figsize=(7, 3.4))
    ax = figure.subplots()
    drift = data.drift
    if drift.empty:
        _empty(ax, "no drift measured yet")
        return _save(figure, path)
    series = (
        ("weighted_psi", "data_tier", "features (weighted PSI)", "-"),
        ("prediction_psi", "prediction_tier", "scores (PSI)", ":"),
    )
    for column, tier, label, style in series:
        ax.plot(drift["cohort_month"], drift[column], style, color="#555", lw=1, label=label)
        ax.scatter(
            drift["cohort_month"],
            drift[column],
            c=[TIER_COLOURS.get(t, "#777") for t in drift[tier]],
            zorder=3,
            s=28,
        )
    for row in drift.itertuples():
        ax.annotate(
            f"{row.drifted_columns}/{row.judged_columns}",
            (row.cohort_month, row.weighted_psi),
            textcoords="offset points",
            xytext=(0, 6),
            fontsize=7,
            ha="center",
        )
    ax.set_ylabel("PSI beyond noise")
    ax.set_title(
        "Drift over time (labels: drifted/judged columns; green pass, orange warn, red error)",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    _months(ax)
    return _save(figure, path)


def buckets_chart(data: HealthData, path: Path) -> Path:
    """Users per bucket, cohort by cohort."""
    figure = Figure(figsize=(7, 3.2))
    ax = figure.subplots()
    table = data.bucket_table()
    if table.empty:
        _empty(ax, "nothing scored yet")
        return _save(figure, path)
    labels = [f"{m:%Y-%m}" for m in table.index]
    bottom = pd.Series(0, index=table.index)
    for bucket in table.columns:
        ax.bar(labels, table[bucket], bottom=bottom, color=BUCKET_COLOURS[bucket], label=bucket)
        bottom = bottom + table[bucket]
    ax.set_ylabel("users")
    ax.set_title("Bucket sizes (A: call, B: offer, C: no action)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.legend(fontsize=8)
    return _save(figure, path)


def timeline_chart(data: HealthData, path: Path) -> Path:
    """Which version scored each cohort, and every retraining decision on the same months."""
    figure = Figure(figsize=(7, 2.8))
    ax = figure.subplots()
    versions, decisions = data.scoring_versions(), data.decisions
    if versions.empty and decisions.empty:
        _empty(ax, "no cohort scored yet")
        return _save(figure, path)
    if not versions.empty:
        ax.step(
            versions.index,
            versions.astype(int),
            where="post",
            color="#1565c0",
            label="scoring champion",
        )
        ax.set_ylabel("champion version")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # One line a cohort, strongest action first (several triggers may be decided at once).
    for cohort, rows in decisions.groupby("cohort_month"):
        actions = sorted(set(rows["action"]), key=lambda a: ACTION_ORDER.get(a, 9))
        colour = ACTION_COLOURS.get(actions[0], "#777")
        ax.axvline(cohort, color=colour, ls="--", lw=1)
        label = f"{'/'.join(actions)}: {', '.join(sorted(set(rows['trigger'])))}"
        ax.annotate(
            label[:40],
            (cohort, 0.98),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
            color=colour,
        )
    ax.set_title("Champion and retraining decisions", fontsize=10)
    _months(ax)
    return _save(figure, path)


CHARTS: dict[str, tuple[str, Callable[[HealthData, Path], Path]]] = {
    "performance": ("Model health over cohorts", performance_chart),
    "calibration": ("Calibration", calibration_chart),
    "drift": ("Drift over time", drift_chart),
    "importance": ("Importance", importance_chart),
    "buckets": ("Bucket sizes", buckets_chart),
    "timeline": ("Retraining decisions", timeline_chart),
}


def render_all(data: HealthData, folder: Path) -> dict[str, Path]:
    """Every picture of the month, as ``folder/<name>.png``."""
    return {name: draw(data, folder / f"{name}.png") for name, (_, draw) in CHARTS.items()}
