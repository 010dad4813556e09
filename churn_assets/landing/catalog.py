"""What has landed: for every landing file, the months its rows are dated in.

A month's load reads only the files that hold rows of that month, so one bad value in an old file
blocks that file's months and nothing else, and a file that arrives late (or is fixed) changes the
fingerprint of exactly the months it covers. That fingerprint is what the landing sensor and the
schedule compare with the last good load to decide what to (re)load.

Scanning reads only the date column (as text, so a malformed value elsewhere does not stop it);
results are cached by file size and modification time in a JSON file under CHURN_HOME, so a
sensor tick costs a directory listing once the files are known. A file whose dates cannot be read
at all (truncated, not UTF-8, ...) is kept with its error: it feeds the months its name carries
(``transactions_201603.csv``), or every load of its table when its name carries none, so its
loads fail naming it rather than silently skipping its rows.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import duckdb

from churn_assets.landing.contract import (
    LandingFormatError,
    csv_compression,
    is_parquet,
    sql_literal,
)
from churn_assets.landing.files import (
    label_cohort,
    label_files,
    name_month,
    shown_name,
    table_files,
)

# The column whose month places a row; members and labels are not placed by a date column.
DATE_COLUMNS = {"transactions": "transaction_date", "user_logs": "date"}
MONTHLY_TABLES = tuple(DATE_COLUMNS)


@dataclass(frozen=True)
class CatalogEntry:
    """One landing file as last scanned."""

    name: str
    table: str
    size: int
    mtime_ns: int
    months: tuple[str, ...]  # YYYY-MM-01 keys of the months its rows are dated in
    undated_rows: int  # rows whose date column is empty or not a valid YYYYMMDD date
    error: str | None = None

    @property
    def signature(self) -> str:
        return f"{self.name}:{self.size}:{self.mtime_ns}"


def _scan_dates(path: Path, column: str) -> tuple[tuple[str, ...], int]:
    """Distinct months of a file's date column, and how many rows carry no valid date."""
    source = (
        f"read_parquet({sql_literal(str(path))})"
        if is_parquet(path)
        else f"read_csv({sql_literal(str(path))}, header=true, all_varchar=true, "
        f"compression='{csv_compression(path)}', "
        f"delim=',', quote='\"', null_padding=true, ignore_errors=false)"
    )
    parsed = f"try_strptime(trim(CAST(\"{column}\" AS VARCHAR)), '%Y%m%d')"
    with duckdb.connect() as conn:
        rows = conn.execute(
            f"SELECT strftime(date_trunc('month', {parsed}), '%Y-%m-01') AS month, count(*) "
            f"FROM {source} GROUP BY ALL"
        ).fetchall()
    months = tuple(sorted(m for m, _ in rows if m is not None))
    undated = sum(n for m, n in rows if m is None)
    return months, int(undated)


def scan_file(path: Path, table: str) -> CatalogEntry:
    stat = path.stat()
    base = {"name": path.name, "table": table, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if table not in DATE_COLUMNS:
        return CatalogEntry(**base, months=(), undated_rows=0)
    try:
        if stat.st_size == 0:
            raise LandingFormatError(f"{path}: empty file, expected a header with {table} columns")
        months, undated = _scan_dates(path, DATE_COLUMNS[table])
    except (duckdb.Error, LandingFormatError, OSError) as exc:
        hinted = name_month(path)
        message = str(exc).strip().splitlines()[0]
        return CatalogEntry(
            **base, months=(hinted,) if hinted else (), undated_rows=0, error=message
        )
    if not months and undated:
        # Rows, but not one valid date: the file cannot be placed by its rows. It feeds the month
        # its name carries (so only that month's load fails, naming it) or, without one, every
        # load of its table.
        hinted = name_month(path)
        return CatalogEntry(
            **base,
            months=(hinted,) if hinted else (),
            undated_rows=undated,
            error=f"{path}: none of its {undated} rows has a valid YYYYMMDD {DATE_COLUMNS[table]}",
        )
    return CatalogEntry(**base, months=months, undated_rows=undated)


class LandingCatalog:
    """The landing folder's files by table and month, scanned incrementally."""

    def __init__(self, folder: Path, cache: Path | None = None) -> None:
        self.folder = folder
        self.cache = cache
        self.entries: dict[str, CatalogEntry] = {}

    def refresh(self) -> LandingCatalog:
        """Rescan files that are new or changed since the cached scan; forget removed ones."""
        cached = self._read_cache()
        entries: dict[str, CatalogEntry] = {}
        for table in (*MONTHLY_TABLES, "members"):
            for path in table_files(self.folder, table):
                stat = path.stat()
                known = cached.get(path.name)
                if (
                    known is not None
                    and known.table == table
                    and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
                ):
                    entries[path.name] = known
                else:
                    entries[path.name] = scan_file(path, table)
        self.entries = entries
        self._write_cache()
        return self

    def _read_cache(self) -> dict[str, CatalogEntry]:
        if self.cache is None or not self.cache.exists():
            return {}
        try:
            raw = json.loads(self.cache.read_text())
            if raw.get("folder") != str(self.folder):
                return {}
            return {
                e["name"]: CatalogEntry(**{**e, "months": tuple(e["months"])}) for e in raw["files"]
            }
        except (ValueError, KeyError, TypeError):
            return {}  # an unreadable cache is rebuilt, never trusted

    def _write_cache(self) -> None:
        if self.cache is None:
            return
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        payload = {"folder": str(self.folder), "files": [asdict(e) for e in self.entries.values()]}
        temporary = self.cache.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(payload, indent=1))
        temporary.replace(self.cache)

    def files_for(self, table: str, months: list[date] | None = None) -> list[Path]:
        """The files a load of ``months`` reads: those dated in them, and unreadable undated ones.

        Members are one snapshot history and read whole (``months`` is ignored).
        """
        wanted = {m.strftime("%Y-%m-01") for m in months or []}
        names = [
            e.name
            for e in self.entries.values()
            if e.table == table
            and (table not in DATE_COLUMNS or not e.months or wanted & set(e.months))
        ]
        return [self.folder / n for n in sorted(names)]

    def months(self, table: str) -> list[str]:
        """Every month some file of ``table`` holds rows of."""
        return sorted({m for e in self.entries.values() if e.table == table for m in e.months})

    def fingerprint(self, table: str, month: date) -> str:
        """Changes whenever a file feeding ``month`` of ``table`` appears, changes or goes."""
        if table == "labels":
            paths = label_files(self.folder, f"{month:%Y%m}")
            parts = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths]
        else:
            parts = [self.entries[p.name].signature for p in self.files_for(table, [month])]
        return hashlib.sha1("|".join(sorted(parts)).encode()).hexdigest()[:12] if parts else ""

    def signatures(self, table: str, month: date) -> dict[str, str]:
        """File name -> signature (name, size, modification time) of the files feeding ``month``."""
        return {p.name: self.entries[p.name].signature for p in self.files_for(table, [month])}

    def names(self, table: str) -> list[str]:
        """Every file of ``table`` in the landing folder now, whatever months it holds."""
        return sorted(e.name for e in self.entries.values() if e.table == table)

    def unclaimed(self) -> list[str]:
        """Files in the landing folder that no table reads (a ``.txt``, a misspelt prefix): a
        load lists them as a warning, so that none is skipped in silence. Hidden files are left
        alone."""
        return sorted(
            shown_name(p)
            for p in self.folder.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and p.name not in self.entries
            and label_cohort(p) is None
        )

    def errors(self, table: str | None = None) -> dict[str, str]:
        return {
            e.name: e.error
            for e in self.entries.values()
            if e.error and (table is None or e.table == table)
        }

    def undated_rows(self, table: str, month: date) -> int:
        """Rows without a valid date in the files feeding ``month`` (they belong to no month)."""
        return sum(self.entries[p.name].undated_rows for p in self.files_for(table, [month]))
