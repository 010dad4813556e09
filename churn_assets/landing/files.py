"""Which landing files make a table, and what their names say.

A table's files are found by the prefix of their names, a cohort's labels by ``train_YYYYMM``
or KKBox's own ``train``/``train_v2``; a name's ``_YYYYMM`` is the month it carries.
"""

from __future__ import annotations

import re
from pathlib import Path

from churn_assets.landing.contract import LandingFormatError

FILE_PREFIX = {"members": "members", "transactions": "transactions", "user_logs": "user_logs"}
SUFFIXES = (".csv", ".csv.gz", ".parquet")
# Names and extensions are matched case-insensitively: TRANSACTIONS_201604.CSV is read too.
LABEL_FILE = re.compile(r"^train_(\d{4})(\d{2})\.(csv|csv\.gz|parquet)$", re.IGNORECASE)
# KKBox's own names for the two labelled cohorts it shipped.
KKBOX_LABEL_FILES = {"train": "201702", "train_v2": "201703"}
_NAME_MONTH = re.compile(r"(?<!\d)(\d{4})(\d{2})(?!\d)")


def _stem(path: Path) -> str:
    """The name without its landing extension, lower-cased."""
    name = path.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def has_landing_suffix(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)


def utf8_name(path: Path) -> bool:
    """Whether the name is valid UTF-8: DuckDB cannot open a file named otherwise, so no table
    claims it (it is listed as not read instead of failing every load of its table)."""
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_name(path: Path) -> str:
    """The name as a person can read it, its invalid bytes shown as the replacement character."""
    if utf8_name(path):
        return path.name
    readable = path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return f"{readable} (its name is not valid UTF-8)"


def table_files(folder: Path, table: str) -> list[Path]:
    """The files of one table: ``members*.csv`` etc.; labels are found by :func:`label_files`."""
    if not folder.is_dir():
        raise LandingFormatError(f"landing folder {folder} does not exist")
    prefix = FILE_PREFIX[table]
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and utf8_name(p)
        and p.name.lower().startswith(prefix)
        and has_landing_suffix(p)
    )


def label_cohort(path: Path) -> str | None:
    """The cohort (``YYYYMM``) a labels file holds, or None for a file that holds no labels."""
    if not utf8_name(path):
        return None
    match = LABEL_FILE.match(path.name)
    if match:
        return match.group(1) + match.group(2)
    return KKBOX_LABEL_FILES.get(_stem(path)) if has_landing_suffix(path) else None


def label_files(folder: Path, cohort: str) -> list[Path]:
    """Label files of cohort ``YYYYMM``: ``train_YYYYMM.*`` or KKBox's ``train``/``train_v2``."""
    if not folder.is_dir():
        raise LandingFormatError(f"landing folder {folder} does not exist")
    return [p for p in sorted(folder.iterdir()) if p.is_file() and label_cohort(p) == cohort]


def name_month(path: Path) -> str | None:
    """The month a file's name carries (``*_YYYYMM.*``), as a partition key."""
    match = _NAME_MONTH.search(path.name)
    if not match or not 1 <= int(match.group(2)) <= 12:
        return None
    return f"{match.group(1)}-{match.group(2)}-01"
