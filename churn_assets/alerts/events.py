"""What an alert says, the same on every channel."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

CHECK_FAILED = "check_failed"
RUN_FAILED = "run_failed"
RUN_SLOW = "run_slow"
RETRAINING_DID_NOT_HELP = "retraining_did_not_help"
CHANNEL_FAILED = "channel_failed"

ERROR = "error"
WARNING = "warning"


def one_line(text: str) -> str:
    """``text`` with its line breaks and tabs folded into single spaces."""
    return " ".join(text.split())


def clauses(text: str) -> list[str]:
    """``text`` split at its top-level ``"; "`` (never inside parentheses or brackets)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if depth == 0 and text.startswith("; ", i):
            parts.append(text[start:i])
            start = i + 2
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def whole_clauses(text: str, limit: int) -> str:
    """As many of ``text``'s clauses as fit in ``limit`` characters (at least the first, whole),
    saying how many were left out: a figure is never cut in the middle."""
    parts = clauses(one_line(text))
    if parts and len(parts[0]) > limit:  # one clause too long: whole words only
        parts[0] = parts[0][:limit].rsplit(" ", 1)[0] + " ..."
    kept = parts[:1]
    for part in parts[1:]:
        if len("; ".join([*kept, part])) > limit:
            break
        kept.append(part)
    left = len(parts) - len(kept)
    return "; ".join(kept) + (f" [{left} more clause(s)]" if left else "")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Alert:
    """One alert: ``event`` happened to ``subject`` (a check and partition, a run, a cohort)."""

    event: str
    severity: str
    subject: str
    detail: str
    cohort: str | None = None
    run_id: str | None = None
    link: str | None = None
    at: str = field(default_factory=_now)

    def payload(self) -> dict[str, str | None]:
        """The webhook's JSON body."""
        return asdict(self)

    def log_line(self) -> str:
        """Tab-separated: time, severity, event, subject, detail, link."""
        fields = (self.at, self.severity, self.event, self.subject, self.detail, self.link or "")
        return "\t".join(one_line(f) for f in fields)

    def mail_subject(self) -> str:
        return one_line(f"[churn {self.severity}] {self.event}: {self.subject}")

    def mail_body(self) -> str:
        lines = [self.detail, ""]
        lines += [
            f"{name}: {value}"
            for name, value in (
                ("event", self.event),
                ("subject", self.subject),
                ("cohort", self.cohort),
                ("run", self.run_id),
                ("link", self.link),
                ("at", self.at),
            )
            if value
        ]
        return "\n".join(lines) + "\n"
