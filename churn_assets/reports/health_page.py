"""The monthly health page: the month's pictures and figures on one HTML page, beside its PNGs.

``health/YYYY-MM/health_YYYY-MM.html`` with its pictures in the same folder, linked relatively,
so the page reads the same opened from disk or through ``churn-assets serve``'s /reports route.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from churn_assets.reports.health_charts import CHARTS
from churn_assets.reports.health_data import labelled_by

FOLDER = "health"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 72em; }
img { max-width: 100%; border: 1px solid #eee; margin-bottom: 0.5em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
p.caption { color: #555; margin-top: 0; }
"""
CAPTIONS = {
    "performance": "Lines: each registered version's backtest on the cohorts labelled so far. "
    "Dashed: what the scoring champion promised before the labels, with its interval.",
    "calibration": "The champion's scores in ten equal-size bins against the churn seen; the "
    "grey diagonal is a calibrated model. ECE: the users-weighted mean gap.",
    "drift": "The project's drift verdict per cohort: PSI beyond sampling noise, features "
    "weighted by importance, and the champion's scores; the colour is the tier.",
    "importance": "The reference model's gain importance of each feature, coloured by how far "
    "that feature drifted this cohort.",
    "buckets": "How many users each bucket held; the at-risk list calls A and makes B an offer.",
    "timeline": "The version that scored each cohort, and each retraining decision (dashed).",
}


def page_folder(reports: Path, month: date) -> Path:
    return reports / FOLDER / f"{month:%Y-%m}"


def page_path(reports: Path, month: date) -> Path:
    return page_folder(reports, month) / f"health_{month:%Y-%m}.html"


@dataclass(frozen=True)
class HealthPage:
    """One month's page: its pictures, its figures and where it links to."""

    month: date
    champion: str
    figures: dict[str, float | int]
    pictures: dict[str, Path]
    links: dict[str, str] = field(default_factory=dict)  # label -> http URL

    def html(self) -> str:
        links = " · ".join(
            f'<a href="{html.escape(url)}">{html.escape(label)}</a>'
            for label, url in self.links.items()
        )
        sections = "".join(
            f"<h2>{html.escape(CHARTS[name][0])}</h2>"
            f'<img src="{html.escape(path.name)}" alt="{html.escape(CHARTS[name][0])}">'
            f'<p class="caption">{html.escape(CAPTIONS.get(name, ""))}</p>'
            for name, path in self.pictures.items()
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>Model health "
            f"{self.month:%Y-%m}</title><style>{STYLE}</style></head><body>"
            f"<h1>Model health, {self.month:%Y-%m}</h1>"
            f"<p>Champion scoring this cohort: v{html.escape(self.champion)}. Realised figures "
            f"are those of cohorts labelled by {labelled_by(self.month):%Y-%m}.</p>"
            f"<p>{links}</p>{self._figures()}{sections}</body></html>"
        )

    def _figures(self) -> str:
        rows = "".join(
            f"<tr><th>{html.escape(name)}</th><td class='n'>{_number(value)}</td></tr>"
            for name, value in self.figures.items()
        )
        return f"<h2>This month in figures</h2><table>{rows}</table>"

    def write(self, reports: Path) -> Path:
        path = page_path(reports, self.month)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html())
        return path


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "n/a" if math.isnan(value) else f"{value:.4f}"
