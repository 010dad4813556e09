"""When each landing file becomes visible, and a stager that lets the files arrive month by month.

A simulated landing folder holds every file at once; a real one fills up over time. The data of
month M lands by the first of M+1, the label file of cohort M (``train_YYYYMM.csv``) by the first
of M+2 (the renewal window must close first), and the subscription history and ``members.csv``
are there from the first simulated month on. A late file lands its delay in months after that; a
missing file never does. ``truth/arrivals.json`` records it all::

    {
      "files": {"members.csv": "2016-01-01", "user_logs_201603.csv": "2016-06-01", ...},
      "late": [{"file": "user_logs_201603.csv", "table": "user_logs", "month": "2016-03-01",
                "delay_months": 2, "arrives": "2016-06-01"}],
      "missing": [{"file": "transactions_201604.csv", "table": "transactions",
                   "month": "2016-04-01"}]
    }

``files`` names every file written to the landing folder with the first month on whose first
day it is visible. :func:`stage_arrivals` replays that into a folder of its own.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from .dates import add_months
from .knobs import file_name

LABEL_DELAY_MONTHS = 2  # train_YYYYMM of cohort M lands on the first of M+2
DATA_DELAY_MONTHS = 1  # monthly data of M lands on the first of M+1


def arrival_record(
    written: dict[str, date],
    late: list[tuple[str, date, int]],
    missing: list[tuple[str, date]],
) -> dict[str, Any]:
    """The content of ``truth/arrivals.json`` (dates as ``YYYY-MM-01``)."""
    return {
        "files": {name: f"{month:%Y-%m-%d}" for name, month in sorted(written.items())},
        "late": [
            {
                "file": file_name(table, month),
                "table": table,
                "month": f"{month:%Y-%m-%d}",
                "delay_months": delay,
                "arrives": f"{add_months(month, DATA_DELAY_MONTHS + delay):%Y-%m-%d}",
            }
            for table, month, delay in sorted(late)
        ],
        "missing": [
            {"file": file_name(table, month), "table": table, "month": f"{month:%Y-%m-%d}"}
            for table, month in sorted(missing)
        ],
    }


def read_arrivals(arrivals_json: Path) -> dict[str, date]:
    """File name -> first day on which it is visible, from a ``truth/arrivals.json``."""
    record = json.loads(Path(arrivals_json).read_text(encoding="utf-8"))
    return {name: date.fromisoformat(day) for name, day in record["files"].items()}


def _place(source: Path, target: Path) -> None:
    """Hard-link ``source`` as ``target`` (copy where links are not possible), all at once."""
    try:
        os.link(source, target)
    except OSError:
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        partial.replace(target)


def stage_arrivals(landing: Path, arrivals_json: Path, staged: Path, as_of: date) -> list[str]:
    """Put into ``staged`` every landing file visible on ``as_of`` that is not there yet.

    Files are hard-linked where the file system allows it (they share their content with the
    landing folder, so neither copy may be edited in place) and copied otherwise. Returns the
    names added, sorted; calling it again for the same or an earlier day adds nothing. A file
    that has left the landing folder (archived after delivery) is not staged again.
    """
    landing, staged = Path(landing), Path(staged)
    staged.mkdir(parents=True, exist_ok=True)
    added = []
    for name, visible in sorted(read_arrivals(arrivals_json).items()):
        if visible <= as_of and not (staged / name).exists() and (landing / name).exists():
            _place(landing / name, staged / name)
            added.append(name)
    return added
