"""Where alerts go: a log file always, mail and a webhook when configured.

A channel that fails does not stop the others: its failure is written to the log file instead,
and the caller (a sensor) carries on.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path

import dagster as dg
from pydantic import Field

from churn_assets.alerts.events import CHANNEL_FAILED, WARNING, Alert, one_line
from churn_assets.settings import ALERT_VARIABLES, churn_paths, read_variables

SMTP_TIMEOUT_S = 10.0
RETRY_PAUSE_S = 0.5
DEFAULT_SENDER = "churn-alerts@localhost"

logger = logging.getLogger(__name__)


class AlertsResource(dg.ConfigurableResource):
    """Alert channels: the log file, SMTP (host and recipients set), a webhook (URL set)."""

    log_path: str = Field(description="One line per alert: time, severity, event, subject, ...")
    smtp_host: str = Field(default="", description="SMTP server; empty: no mail.")
    smtp_port: int = 25
    smtp_from: str = ""
    email_to: list[str] = Field(default_factory=list, description="Recipients of alert mail.")
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    webhook_url: str = Field(default="", description="POSTed each alert as JSON; empty: none.")
    webhook_timeout_s: float = 5.0
    webhook_retries: int = Field(default=2, description="Further attempts after a failed POST.")
    slow_run_s: float = Field(default=3600.0, description="A run longer than this is alerted.")
    dagster_url: str = Field(default="http://127.0.0.1:3000", description="Base of run links.")

    def run_link(self, run_id: str) -> str:
        return f"{self.dagster_url.rstrip('/')}/runs/{run_id}"

    def channels(self) -> list[str]:
        """The configured channels besides the log file."""
        names = []
        if self.smtp_host and self.email_to:
            names.append("smtp")
        if self.webhook_url:
            names.append("webhook")
        return names

    def send(self, alert: Alert) -> list[str]:
        """Log ``alert`` and deliver it on every configured channel; the channels that failed.

        Never raises for a channel: each failure is logged as a ``channel_failed`` line.
        """
        self._append(alert.log_line())
        failed = []
        for name in self.channels():
            deliver = self._mail if name == "smtp" else self._post
            try:
                deliver(alert)
            except Exception as error:  # any failure of one channel leaves the others to run
                failed.append(name)
                reason = f"{type(error).__name__}: {error}"
                self._append(
                    Alert(
                        CHANNEL_FAILED,
                        WARNING,
                        name,
                        f"{alert.event} for {alert.subject} not delivered: {reason}",
                        cohort=alert.cohort,
                        run_id=alert.run_id,
                        link=alert.link,
                    ).log_line()
                )
        return failed

    def sent_before(self, event: str, subject: str, link: str | None = None) -> bool:
        """Whether the log file already holds ``event`` for ``subject`` (with ``link``, when
        given: the same run's alert)."""
        path = Path(self.log_path)
        if not path.exists():
            return False
        subject = one_line(subject)
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                fields = line.rstrip("\n").split("\t")
                same = len(fields) > 3 and fields[2] == event and fields[3] == subject
                if same and (link is None or (len(fields) > 5 and fields[5] == link)):
                    return True
        return False

    def _append(self, line: str) -> None:
        path = Path(self.log_path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as log:
                log.write(line + "\n")
        except OSError as error:
            logger.warning("alert log %s not writable (%s): %s", path, error, line)

    def mail_report(self, subject: str, body: str, attachments: Sequence[Path] = ()) -> str:
        """Mail a report (the weekly list) to the alert recipients, its files attached.

        Returns what happened, for the report's metadata: ``sent to ...``, ``not configured``, or
        ``failed: ...`` (also logged as a ``channel_failed`` line): a report is never lost to a
        mail server that does not answer, it stays on disk.
        """
        if "smtp" not in self.channels():
            return "not configured"
        message = self._message(one_line(subject), body)
        for path in attachments:
            kind = "html" if path.suffix == ".html" else "csv"
            message.add_attachment(
                path.read_bytes(), maintype="text", subtype=kind, filename=path.name
            )
        try:
            self._deliver(message)
        except Exception as error:  # the report stays on disk; the failure is logged
            reason = f"{type(error).__name__}: {error}"
            detail = f"report {subject} not delivered: {reason}"
            self._append(Alert(CHANNEL_FAILED, WARNING, "smtp", detail).log_line())
            return f"failed: {reason}"
        return f"sent to {', '.join(self.email_to)}"

    def _message(self, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.smtp_from or DEFAULT_SENDER
        message["To"] = ", ".join(self.email_to)
        message.set_content(body)
        return message

    def _mail(self, alert: Alert) -> None:
        self._deliver(self._message(alert.mail_subject(), alert.mail_body()))

    def _deliver(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            if self.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password)
            smtp.send_message(message)

    def _post(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(alert.payload()).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        for attempt in range(self.webhook_retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.webhook_timeout_s):
                    return
            except urllib.error.HTTPError as error:
                if error.code < 500 or attempt == self.webhook_retries:
                    raise  # the receiver refused it: sending it again would not help
            except OSError:  # refused, unreachable, timed out
                if attempt == self.webhook_retries:
                    raise
            time.sleep(RETRY_PAUSE_S * (attempt + 1))


def alert_log(home: Path) -> Path:
    """Where every alert is written, whatever else is configured."""
    return home / "logs" / "alerts.log"


def alerts_resource(environ: Mapping[str, str] | None = None) -> AlertsResource:
    """The alerts resource from the ``CHURN_ALERT_*`` variables (log file only by default)."""
    fields = read_variables(ALERT_VARIABLES, environ)
    if environ is None and fields.get("smtp_password"):
        # Read when the resource is used, and never shown in Dagster's UI.
        fields["smtp_password"] = dg.EnvVar("CHURN_ALERT_SMTP_PASSWORD")
    log_path = alert_log(churn_paths(environ).home)
    return AlertsResource(log_path=str(log_path), **fields)
