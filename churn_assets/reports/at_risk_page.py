"""The at-risk list as people read it: a CSV for the call centre's tools, an HTML page, a mail."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

CSV_COLUMNS = [
    "msno",
    "churn_probability",
    "bucket",
    "action",
    "top_reasons",
    "change",
    "previous_bucket",
]
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; }
td.p { text-align: right; font-variant-numeric: tabular-nums; }
.A { color: #b00020; font-weight: bold; } .B { color: #a15c00; font-weight: bold; }
ul { margin: 0; padding-left: 1.2em; }
"""


@dataclass(frozen=True)
class ListPage:
    """One week's list and what it was built from."""

    week: date
    cohort: date
    previous_week: date | None
    model_version: str
    policy: str
    rows: pd.DataFrame  # the list, then the users who left it

    def on_list(self) -> pd.DataFrame:
        return self.rows[self.rows["change"] != "left"]

    def left(self) -> pd.DataFrame:
        return self.rows[self.rows["change"] == "left"]

    def bucket_counts(self) -> dict[str, int]:
        counts = self.on_list()["bucket"].value_counts()
        return {b: int(counts.get(b, 0)) for b in ("A", "B")}

    def change_counts(self) -> dict[str, int]:
        changes = self.rows["change"].where(~self.rows["change"].str.startswith("moved"), "moved")
        counts = changes.value_counts()
        return {c: int(counts.get(c, 0)) for c in ("new", "moved", "left", "unchanged")}

    def summary(self) -> str:
        buckets, changes = self.bucket_counts(), self.change_counts()
        since = f"since {self.previous_week}" if self.previous_week else "(first list)"
        return (
            f"{buckets['A']} to call, {buckets['B']} to make an offer; {changes['new']} new, "
            f"{changes['moved']} moved, {changes['left']} left {since}"
        )

    def subject(self) -> str:
        return f"[churn] at-risk list, week of {self.week}: {self.summary()}"

    def mail_body(self) -> str:
        lines = [
            f"At-risk list for the week of {self.week} (cohort {self.cohort:%Y-%m}, model "
            f"v{self.model_version}).",
            f"Bucket policy: {self.policy}.",
            self.summary() + ".",
            "",
            "The list is attached as CSV and as an HTML page. The riskiest users:",
        ]
        for row in self.on_list().head(10).itertuples():
            lines.append(
                f"  {row.msno}  {row.churn_probability:.2f}  {row.bucket} {row.action}  "
                f"{row.change}"
            )
        return "\n".join(lines) + "\n"


def write_pages(page: ListPage, folder: Path) -> tuple[Path, Path]:
    """``at_risk_<week>.csv`` and ``.html`` in ``folder``; a rebuilt week replaces its pair."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"at_risk_{page.week}.csv"
    html_path = folder / f"at_risk_{page.week}.html"
    page.rows[CSV_COLUMNS].to_csv(csv_path, index=False, float_format="%.6f")
    html_path.write_text(render_html(page), encoding="utf-8")
    return csv_path, html_path


def _reasons_html(reasons: object) -> str:
    if not isinstance(reasons, str) or not reasons:
        return "<em>not explained</em>"
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons.split("; "))
    return f"<ul>{items}</ul>"


def _table(rows: pd.DataFrame, empty: str) -> str:
    if rows.empty:
        return f"<p>{html.escape(empty)}</p>"
    head = "<tr><th>user</th><th>probability</th><th>bucket</th><th>action</th>"
    head += "<th>reasons</th><th>since last week</th></tr>"
    body = []
    for row in rows.itertuples():
        probability = "" if pd.isna(row.churn_probability) else f"{row.churn_probability:.3f}"
        bucket = "" if pd.isna(row.bucket) else str(row.bucket)
        action = "" if pd.isna(row.action) else str(row.action)
        body.append(
            f"<tr><td>{html.escape(str(row.msno))}</td><td class='p'>{probability}</td>"
            f"<td class='{bucket}'>{bucket}</td><td>{html.escape(action)}</td>"
            f"<td>{_reasons_html(row.top_reasons)}</td><td>{html.escape(str(row.change))}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def render_html(page: ListPage) -> str:
    """A page a team lead can read: who to call, who gets an offer, why, and what changed."""
    title = f"At-risk list, week of {page.week}"
    since = f"the list of {page.previous_week}" if page.previous_week else "no earlier list"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
        f"<p>Cohort {page.cohort:%Y-%m}, model v{html.escape(str(page.model_version))}. "
        f"Bucket policy: {html.escape(page.policy)}. Control-group users are left out: they "
        f"measure what the actions achieve. Compared with {since}.</p>"
        f"<p><strong>{html.escape(page.summary())}</strong></p>"
        f"<h2>On the list</h2>{_table(page.on_list(), 'Nobody is at risk this week.')}"
        f"<h2>Left the list since last week</h2>{_table(page.left(), 'Nobody left the list.')}"
        "</body></html>\n"
    )
