"""The retraining policy's alarm: a retrained model that did not bring its cohort back."""

from __future__ import annotations

from datetime import date

from churn_assets.alerts.channels import AlertsResource
from churn_assets.alerts.events import ERROR, RETRAINING_DID_NOT_HELP, Alert


def alert_retraining_did_not_help(alerts: AlertsResource, cohort: str | date, detail: str) -> bool:
    """Alert that retraining for ``cohort`` did not help, once per cohort; whether it was sent.

    ``cohort`` is the cohort's partition key (``YYYY-MM-DD``) or its first day; ``detail`` says
    what is still wrong (e.g. which monitor still fails after the retrain).
    """
    key = cohort.isoformat() if isinstance(cohort, date) else str(cohort)
    subject = f"cohort {key}"
    if alerts.sent_before(RETRAINING_DID_NOT_HELP, subject):
        return False
    alerts.send(Alert(RETRAINING_DID_NOT_HELP, ERROR, subject, detail, cohort=key))
    return True
