"""The embedded online store: one SQLite file per published version, and a pointer file.

Why not the warehouse itself: DuckDB lets no process read a file that another process writes, and
the pipeline writes ``warehouse.duckdb`` during every run, so a server reading it would fail
whenever the loop runs. Here a version is written under a temporary name, renamed whole into place
(never changed again, so readers open it ``immutable``), and only then named in
``published.json``, which is itself replaced by an atomic rename. A reader reads the pointer, then
the version it names: it sees the old version or the new one, never half of one.

The pointer names the newest :data:`KEPT_COHORTS` cohorts only. A file goes when neither the
pointer nor the one it replaced names it: a reader that read the replaced pointer may still open
what that named, and a reader with a file open keeps reading it after it is unlinked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from churn_assets.online.store import (
    OnlineRecord,
    OnlineStore,
    Publication,
    StoreUnavailable,
    chunks,
    decode_payload,
    kept_cohorts,
    new_version_id,
)

SCHEMA = Path(__file__).with_name("embedded_schema.sql")
POINTER = "published.json"
# A partial file this old was left by a publish that died; younger ones may be under way.
STALE_PARTIAL_S = 3600.0


class EmbeddedOnlineStore(OnlineStore):
    """SQLite files under ``folder``; a reader in another process is never blocked."""

    kind = "embedded"
    inline_lookup = True  # an indexed read of a local, immutable SQLite file

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._pointer_stamp: tuple[int, int, int] | None = None
        self._pointers: list[tuple[date, str]] = []  # newest cohort first
        self._columns: dict[str, list[str]] = {}
        self._local = threading.local()

    # Publishing -------------------------------------------------------------------------------
    def publish(
        self, cohort: date, columns: list[str], rows: Iterable[tuple[str, str]]
    ) -> Publication:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sweep_partials()
        version = new_version_id()
        name = f"{cohort:%Y-%m-%d}.{version}.sqlite"
        partial = self.folder / f".{name}.partial"
        count = self._write_version(partial, cohort, version, columns, rows)
        # Under the lock, so no other publish retires a version renamed but not yet pointed at.
        with self._pointer_lock():
            os.replace(partial, self.folder / name)  # the version appears whole, or not at all
            before, after = self._flip(cohort, name)
            # Readers one publish behind may still open what the replaced pointer named.
            self._retire(keep={*before.values(), *after.values()})
        retired = sorted({*before, cohort.isoformat()} - set(after))
        return Publication(
            cohort=cohort,
            version=version,
            rows=count,
            retired_cohorts=tuple(date.fromisoformat(day) for day in retired),
        )

    def _write_version(
        self,
        path: Path,
        cohort: date,
        version: str,
        columns: list[str],
        rows: Iterable[tuple[str, str]],
    ) -> int:
        conn = sqlite3.connect(path)
        try:
            conn.executescript(SCHEMA.read_text())
            meta = {
                "columns": json.dumps(columns),
                "cohort": cohort.isoformat(),
                "version": version,
                "published_at": datetime.now(UTC).isoformat(),
            }
            conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            count = 0
            for batch in chunks(rows):
                conn.executemany("INSERT INTO users VALUES (?, ?)", batch)
                count += len(batch)
            conn.commit()
        except BaseException:
            conn.close()
            path.unlink(missing_ok=True)
            raise
        conn.close()
        _fsync(path)
        return count

    @contextlib.contextmanager
    def _pointer_lock(self) -> Iterator[None]:
        with open(self.folder / ".published.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _flip(self, cohort: date, name: str) -> tuple[dict[str, str], dict[str, str]]:
        """Point ``cohort`` at ``name`` and keep the newest cohorts, by replacing the pointer file
        (the caller holds the lock); the pointers before and after."""
        pointer = self.folder / POINTER
        before = json.loads(pointer.read_text()) if pointer.exists() else {}
        after = kept_cohorts({**before, cohort.isoformat(): name})
        temporary = self.folder / f".{POINTER}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(after, indent=1, sort_keys=True))
        _fsync(temporary)
        os.replace(temporary, pointer)
        return before, after

    def _retire(self, keep: set[str]) -> None:
        """Every version file but ``keep``: never what the pointer names, nor what the pointer it
        replaced named."""
        for path in self.folder.glob("*.sqlite"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def _sweep_partials(self) -> None:
        now = time.time()
        for path in self.folder.glob(".*.partial"):
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > STALE_PARTIAL_S:
                    path.unlink()

    # Reading ----------------------------------------------------------------------------------
    def published(self) -> dict[date, str]:
        try:
            return {cohort: name.split(".")[1] for cohort, name in self._read_pointers()}
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"{self.folder / POINTER}: {exc}") from exc

    def lookup(self, msno: str) -> OnlineRecord | None:
        try:
            try:
                return self._lookup(msno)
            except sqlite3.OperationalError:
                # The version named was retired between reading the pointer and opening it (two
                # publishes meanwhile): read the pointer again.
                self._pointer_stamp = None
                return self._lookup(msno)
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise StoreUnavailable(f"the online store in {self.folder}: {exc}") from exc

    def _lookup(self, msno: str) -> OnlineRecord | None:
        for cohort, name in self._read_pointers():
            conn = self._connection(name)
            row = conn.execute("SELECT payload FROM users WHERE msno = ?", (msno,)).fetchone()
            if row is not None:
                return decode_payload(msno, cohort, self._columns_of(name, conn), row[0])
        return None

    def _read_pointers(self) -> list[tuple[date, str]]:
        """The pointer file, parsed again only when it was replaced (a stat per lookup)."""
        try:
            stat = os.stat(self.folder / POINTER)
        except FileNotFoundError:
            return []
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._pointer_stamp:
            text = (self.folder / POINTER).read_text()
            pointers = sorted(
                ((date.fromisoformat(k), v) for k, v in json.loads(text).items()), reverse=True
            )
            self._pointers, self._pointer_stamp = pointers, stamp
        return self._pointers

    def _connection(self, name: str) -> sqlite3.Connection:
        """This thread's read-only connection to a version file (never written again)."""
        connections: dict[str, sqlite3.Connection] = self._local.__dict__.setdefault("conns", {})
        if name not in connections:
            live = {n for _, n in self._pointers}
            for stale in [n for n in connections if n not in live]:
                connections.pop(stale).close()
            uri = f"file:{self.folder / name}?mode=ro&immutable=1"
            connections[name] = sqlite3.connect(uri, uri=True, check_same_thread=False)
        return connections[name]

    def _columns_of(self, name: str, conn: sqlite3.Connection) -> list[str]:
        if name not in self._columns:
            row = conn.execute("SELECT value FROM meta WHERE key = 'columns'").fetchone()
            self._columns[name] = json.loads(row[0])
        return self._columns[name]

    def close(self) -> None:
        for conn in self._local.__dict__.pop("conns", {}).values():
            conn.close()


def _fsync(path: Path) -> None:
    """On disk before it is renamed into place or pointed at."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
