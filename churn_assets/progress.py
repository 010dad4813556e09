"""Progress of long work on the command line: a bar on a terminal, one line per step elsewhere
(a CI log has no terminal, and a bar's redraws would fill it with noise).

Both go to stderr, as it is when the progress starts: a command that later sends Dagster's words
to its log file hands over the terminal it had before.
"""

from __future__ import annotations

import io
import sys
from typing import TextIO

from tqdm import tqdm


class Progress:
    """``total`` steps of ``what``; :meth:`step` after each, :meth:`close` at the end."""

    def __init__(
        self,
        total: int,
        what: str,
        unit: str,
        stream: TextIO | None = None,
        lines: bool = True,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.what, self.total, self.done, self.lines = what, total, 0, lines
        self.bar = (
            tqdm(total=total, desc=what, unit=unit, file=self.stream, leave=False)
            if _is_terminal(self.stream)
            else None
        )

    @classmethod
    def silent(cls) -> Progress:
        """Progress nobody is told of (a library call without a command around it)."""
        return cls(0, "", "", stream=io.StringIO(), lines=False)

    def doing(self, label: str) -> None:
        """Say what is under way (a bar shows it beside the count; a log says nothing)."""
        if self.bar is not None:
            self.bar.set_postfix_str(label)

    def tick(self, label: str = "") -> None:
        """One small step done: the bar moves and names it; a log says nothing (many of them)."""
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(label, refresh=False)
            self.bar.update(1)

    def step(self, label: str = "") -> None:
        """One step done: the bar moves, or one line says which."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines:
            print(f"{self.what}: {label} done", file=self.stream, flush=True)

    def write(self, line: str, stream: TextIO | None = None) -> None:
        """A line of the command's own output, printed above the bar (not through it)."""
        out = stream if stream is not None else sys.stdout
        if self.bar is not None:
            self.bar.write(line, file=out)
            out.flush()
        else:
            print(line, file=out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
