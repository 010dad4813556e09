"""BENCHMARKS.md holds one section per benchmark script; each run replaces only its own.

Every section says where its figures come from, on the line under its heading: the commit measured
(``+dirty`` when tracked files had uncommitted changes, BENCHMARKS.md itself aside), the date, and
the exact command, so a figure can always be traced back and measured again. Commit and date are
taken when the script starts: the code measured is the code of that moment, however long the run.

Each benchmark script declares ``SECTION`` (its heading) and ``SMOKE`` (the arguments of its
smallest run and the first cell of each table row that run writes); the test suite runs every
``benchmarks/*.py`` that way, so a benchmark a refactor breaks fails the suite.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit() -> str:
    """``git rev-parse --short HEAD``, plus ``+dirty`` when tracked files differ from it.

    BENCHMARKS.md does not count: a benchmark run after another's has not been committed yet
    measures the same code.
    """
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "unknown"
    changes = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md")
    return head + ("+dirty" if changes else "")


STARTED = (commit(), date.today())


def command(argv: list[str] | None = None) -> str:
    """The command that ran, as typed from the repository root."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    if script.is_relative_to(ROOT):
        argv[0] = script.relative_to(ROOT).as_posix()
    return "python " + shlex.join(argv)


def provenance(argv: list[str] | None = None) -> str:
    measured_at, measured_on = STARTED
    return f"Measured at commit `{measured_at}` on {measured_on.isoformat()}: `{command(argv)}`"


def parse_args(parser: argparse.ArgumentParser, smoke: list[str]) -> argparse.Namespace:
    """The script's arguments plus ``--output`` and ``--smoke`` (``smoke`` prepended).

    A smoke run proves the script still runs; its figures are no benchmark, so it must be told
    where to write them rather than overwrite the repository's BENCHMARKS.md.
    """
    parser.add_argument(
        "--output", type=Path, help="BENCHMARKS.md to update (default: the repository's)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"the smallest run ({' '.join(smoke)}), as the tests run it; needs --output",
    )
    args = parser.parse_args()
    if args.smoke:
        if args.output is None:
            parser.error("--smoke needs --output: its figures must not replace the real ones")
        args = parser.parse_args([*smoke, *sys.argv[1:]])
    if args.output is None:
        args.output = ROOT / "BENCHMARKS.md"
    return args


def write_section(path: Path, heading: str, section: str) -> str:
    """Replace the section under ``heading`` (or append it); keep every other section.

    ``section`` starts with ``heading``; the provenance line is put right under it. Returns the
    section as written.
    """
    body = section.removeprefix(heading).lstrip("\n")
    section = f"{heading}\n\n{provenance()}\n\n{body}".rstrip("\n") + "\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")
    return section


_UNITS = {"": 1, "k": 1_000, "M": 1_000_000}


def parse_size(size: str) -> int:
    """A size written ``20k``, ``1M``, ``100M`` or ``25000``, as a number."""
    number, unit = size.rstrip("kM"), size[len(size.rstrip("kM")) :]
    if not number.isdigit() or unit not in _UNITS or int(number) == 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 20k, 1M or 100M, got {size!r}")
    return int(number) * _UNITS[unit]


def size_argument(size: str) -> str:
    """An argparse ``type`` that checks a size and keeps it as written (it names table rows)."""
    parse_size(size)
    return size


def timed_materialization(
    asset: object, cohort: date, resources: dict, run_config: dict | None = None
) -> tuple[float, object]:
    """One materialization of ``asset`` for ``cohort`` in a fresh ephemeral instance, timed
    from the run's start: (seconds, the successful result). RuntimeError if it failed."""
    import dagster as dg

    from churn_assets.partitions import partition_key, register_months

    with dg.DagsterInstance.ephemeral() as instance:
        register_months(instance, [cohort])
        began = time.perf_counter()
        result = dg.materialize(
            [asset],
            partition_key=partition_key(cohort),
            instance=instance,
            resources=resources,
            run_config=run_config,
        )
        seconds = time.perf_counter() - began
    if not result.success:
        raise RuntimeError(f"{asset.key.to_user_string()} failed")
    return seconds, result
