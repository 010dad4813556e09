"""The summary ``churn-assets demo`` and ``replay`` print: what ran and why, every warning, error,
escalation and alert, the champion and why it is champion, and what to do next.

It is gathered from the records (the Dagster instance, the warehouse, the registry, the alert
log) rather than from what one replay saw, so it is true of the home whoever made its runs.
"""

from __future__ import annotations

import dagster as dg

from churn_assets.report.story import Story, gather, next_steps
from churn_assets.report.text import (
    Say,
    say_alerts,
    say_decisions,
    say_models,
    say_monitors,
    say_next,
    say_runs,
    say_scores,
)
from churn_assets.settings import ChurnPaths


def tell(story: Story, say: Say = print, listed: set[str] | None = None) -> None:
    """The summary's text. ``listed``: the ids of the runs the caller printed as they ran (not
    repeated here); None lists every run of the instance."""
    say_runs(story, say, listed)
    say_monitors(story, say)
    say_decisions(story, say)
    say_alerts(story, say)
    say_scores(story, say)
    say_models(story, say)
    say_next(story, say)


def print_summary(
    paths: ChurnPaths,
    instance: dg.DagsterInstance,
    given_up: list[tuple[str, str, str]] | None = None,
    listed: set[str] | None = None,
    say: Say = print,
) -> Story:
    """Gather the story of ``paths`` and ``instance`` and print it; returns what was told."""
    story = gather(paths, instance, given_up)
    tell(story, say, listed)
    return story


__all__ = ["Story", "gather", "next_steps", "print_summary", "tell"]
