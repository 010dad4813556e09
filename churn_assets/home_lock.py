"""One writer per CHURN_HOME: commands that run the loop take an exclusive lock on the home.

Two replays on one home would race on Dagster's storage (a fresh home's schema migrations can
corrupt it), repeat run keys and register duplicate models. The lock is taken before Dagster's
instance is opened, and refused at once with who holds it; the operating system releases it
when its holder dies, so a killed command never leaves the home locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".churn.lock"


class HomeBusyError(RuntimeError):
    """Another command holds the home's lock."""


@contextmanager
def home_lock(home: Path, command: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the exclusive lock of ``home`` for ``command``; wait up to ``wait_s`` seconds."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    handle = path.open("a+")
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HomeBusyError(_busy_message(path, home)) from None
                time.sleep(0.5)
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {"pid": os.getpid(), "command": command, "argv": sys.argv, "since": time.time()}
            )
        )
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def _busy_message(path: Path, home: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = (
        f"'{holder.get('command', '?')}' (pid {holder.get('pid', '?')}, running for "
        f"{time.time() - float(holder.get('since', time.time())):.0f} s)"
        if holder
        else "another command"
    )
    return (
        f"{home} is in use by {who}; one command at a time runs the loop on a home. Wait for "
        "it to finish (or stop it), or use another CHURN_HOME."
    )


# A daemon that has not beaten within this many seconds is taken for stopped.
DAEMON_SILENT_AFTER_S = 120.0


def refuse_while_a_daemon_runs(instance: object, home: Path) -> None:
    """The CLI and a ``dagster dev`` daemon on one home would both write; the CLI refuses.

    The daemon takes no home lock of its own, but it beats: a heartbeat in the instance younger
    than ``DAEMON_SILENT_AFTER_S`` means it runs.
    """
    beats = instance.get_daemon_heartbeats()
    newest = max((b.timestamp for b in beats.values()), default=0.0)
    if time.time() - newest < DAEMON_SILENT_AFTER_S:
        raise HomeBusyError(
            f"home {home} is in use by a running Dagster daemon (dagster dev); its schedules and "
            "sensors run the loop there. Stop it, or use another CHURN_HOME."
        )
