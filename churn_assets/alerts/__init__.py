"""Alerts: failed ERROR checks, failed and slow runs, retraining that did not help.

Always written to ``$CHURN_HOME/logs/alerts.log``; mailed and POSTed to a webhook when the
``CHURN_ALERT_*`` variables configure them. The sensors are in :mod:`churn_assets.alerts.sensors`.
"""

from churn_assets.alerts.channels import AlertsResource, alerts_resource
from churn_assets.alerts.events import (
    CHANNEL_FAILED,
    CHECK_FAILED,
    RETRAINING_DID_NOT_HELP,
    RUN_FAILED,
    RUN_SLOW,
    Alert,
)
from churn_assets.alerts.retraining import alert_retraining_did_not_help

__all__ = [
    "CHANNEL_FAILED",
    "CHECK_FAILED",
    "RETRAINING_DID_NOT_HELP",
    "RUN_FAILED",
    "RUN_SLOW",
    "Alert",
    "AlertsResource",
    "alert_retraining_did_not_help",
    "alerts_resource",
]
